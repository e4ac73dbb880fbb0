//! The one place that prints. Knows about `--quiet`, colours (`--color`, `NO_COLOR`) and
//! whether stderr is a terminal. Results go to stdout; progress, notes and errors to stderr.

mod progress;
pub mod redact;
mod table;

pub use progress::{Progress, PullBars, PullProgress, Task};

use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    quiet: bool,
    color: bool,
}

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const GREEN: &str = "\x1b[1;32m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

impl Printer {
    pub fn new(quiet: bool, choice: ColorChoice) -> Printer {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        };
        Printer { quiet, color }
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// A result line on stdout (`validate`'s summary, `schema`'s JSON). Printed even with `-q`
    /// when `essential` (the output *is* the command's purpose).
    pub fn result(&self, text: &str, essential: bool) {
        if essential || !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        }
    }

    /// Progress and success lines on stderr, silenced by `-q`.
    pub fn status(&self, verb: &str, text: &str) {
        if !self.quiet {
            eprintln!("{} {text}", self.paint(GREEN, &format!("{verb:>9}")));
        }
    }

    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{} {text}", self.paint(CYAN, "note:"));
        }
    }

    /// Warnings are shown even with `-q`: they are about something the user should fix.
    pub fn warn(&self, text: &str) {
        eprintln!("{} {text}", self.paint(YELLOW, "warning:"));
    }

    pub fn error(&self, error: &crate::error::Error) {
        use crate::error::Error;
        match error {
            Error::Manifest(diagnostics) => {
                let text = diagnostics.to_string();
                for line in text.lines() {
                    if let Some(rest) = line.strip_prefix("  hint: ") {
                        eprintln!("  {} {rest}", self.paint(CYAN, "hint:"));
                    } else if line.starts_with(&diagnostics.file) {
                        let (location, message) = line.split_at(line.find(": ").unwrap_or(0));
                        eprintln!("{}{}", self.paint(RED, location), message);
                    } else {
                        eprintln!("{line}");
                    }
                }
            }
            Error::Usage { message, .. } => {
                eprintln!("{} {message}", self.paint(RED, "error:"));
            }
            Error::Interrupted(what) => eprintln!("{} {what}", self.paint(YELLOW, "interrupted:")),
            Error::Other(e) => {
                eprintln!("{} {e}", self.paint(RED, "error:"));
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
        }
        if let Some(hint) = error.hint() {
            eprintln!("  {} {hint}", self.paint(CYAN, "hint:"));
        }
    }
}
