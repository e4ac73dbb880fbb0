//! `-v`/`-vv` -> tracing levels; `MONSTACK_LOG` (an env-filter directive) overrides. Other
//! crates log at `info` at most by default: the Docker client's debug log holds whole request
//! bodies, containers' environments (Grafana's passwords) among them. Whatever the filter,
//! every line passes [`redact`](crate::output::redact) on its way to stderr.

use crate::output::redact::RedactingStderr;

pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "monstack=debug,info",
        _ => "monstack=trace,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MONSTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .without_time()
        .try_init();
}
