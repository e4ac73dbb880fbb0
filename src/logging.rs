//! `-v`/`-vv` -> tracing levels; `MONSTACK_LOG` (an env-filter directive) overrides.

pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "monstack=debug,info",
        _ => "monstack=trace,debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MONSTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .without_time()
        .try_init();
}
