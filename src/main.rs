use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = monstack::cli::Cli::parse();
    monstack::logging::init(cli.verbose);
    let printer = monstack::output::Printer::new(cli.quiet, cli.color);
    match monstack::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            printer.error(&error);
            ExitCode::from(error.exit_code())
        }
    }
}
