use std::process::ExitCode;

use clap::Parser;
use monstack::output::{self, Stream};

fn main() -> ExitCode {
    output::exit_quietly_when_a_print_panics();
    let cli = match monstack::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    monstack::logging::init(cli.verbose);
    let printer = monstack::output::Printer::new(cli.quiet, cli.color);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            printer.error(&monstack::error::Error::Other(anyhow::anyhow!(
                "starting the async runtime: {e}"
            )));
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(monstack::commands::run(cli)) {
        Ok(()) => 0,
        Err(error) => {
            printer.error(&error);
            error.exit_code()
        }
    };
    // A result nobody received is a failure, as for other command-line tools.
    if printer.report_lost_output() && code == 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::from(code)
}

/// `--help`, `--version` and argument errors, printed by clap: its exit code, or 1 when what it
/// printed (help on stdout) was lost.
fn clap_exit(e: &clap::Error) -> ExitCode {
    let stream = if e.use_stderr() {
        Stream::Stderr
    } else {
        Stream::Stdout
    };
    let lost = e.print().is_err() || output::was_closed_at_start(stream);
    match u8::try_from(e.exit_code()) {
        Ok(0) if lost => ExitCode::FAILURE,
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::FAILURE,
    }
}

/// Rust's runtime replaces a closed stdout or stderr with `/dev/null` before `main` runs (so
/// that no file opened later takes its number), which hides from `main` that
/// `monstack validate >&-` has nowhere to write. An ELF constructor runs before the runtime
/// does, and looks.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static CHECK_STREAMS_BEFORE_THE_RUNTIME: extern "C" fn() = check_streams;

#[cfg(target_os = "linux")]
extern "C" fn check_streams() {
    for (fd, stream) in [(1, Stream::Stdout), (2, Stream::Stderr)] {
        // SAFETY: F_GETFD reads the descriptor's flags; it fails only when there is none.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            output::closed_at_start(stream);
        }
    }
}
