use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = monstack::cli::Cli::parse();
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
    match runtime.block_on(monstack::commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            printer.error(&error);
            ExitCode::from(error.exit_code())
        }
    }
}
