//! The one place that prints. Knows about `--quiet`, colours (`--color`, `NO_COLOR`) and
//! whether stderr is a terminal. Results go to stdout; progress, notes and errors to stderr.
//!
//! A stream that is closed, a pipe whose reader left, a full disk: every write goes through
//! [`emit`], which never panics (`println!` would, and exit 101) and remembers what was lost,
//! so that `main` can fail the command (exit 1) as other command-line tools do.

mod progress;
pub mod redact;
mod table;

pub use progress::{Progress, PullBars, PullProgress, Task};

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

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

/// `eprintln!` without its panic: a line on stderr through [`emit`].
macro_rules! stderr_line {
    ($($arg:tt)*) => {
        $crate::output::emit($crate::output::Stream::Stderr, &format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use stderr_line;

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const GREEN: &str = "\x1b[1;32m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// The two streams the printer writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

/// Process-wide, as the streams are: the first error of each, once a write to it failed.
static LOST: [OnceLock<std::io::Error>; 2] = [OnceLock::new(), OnceLock::new()];

/// Records that `stream` was closed when the process started (`main` looks before Rust's
/// runtime puts `/dev/null` in its place, where writes would succeed unseen): the first write
/// to it counts as lost.
pub fn closed_at_start(stream: Stream) {
    CLOSED_AT_START[stream as usize].store(true, Ordering::Relaxed);
}

pub fn was_closed_at_start(stream: Stream) -> bool {
    CLOSED_AT_START[stream as usize].load(Ordering::Relaxed)
}

static CLOSED_AT_START: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Writes `text` to `stream` with every secret masked ([`redact`]), in full, or records why
/// not. After a failure the stream is not written again.
pub fn emit(stream: Stream, text: &str) {
    emit_unredacted(stream, &redact::redact(text));
}

/// [`emit`] without the masking: only for the one message whose point is a secret (Grafana's
/// generated password, shown once).
fn emit_unredacted(stream: Stream, text: &str) {
    let i = stream as usize;
    if LOST[i].get().is_some() {
        return;
    }
    if was_closed_at_start(stream) {
        LOST[i].get_or_init(|| std::io::Error::from_raw_os_error(libc::EBADF));
        return;
    }
    let written = match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    };
    if let Err(e) = written {
        LOST[i].get_or_init(|| e);
    }
}

/// Why output meant for `stream` was lost, if it was.
pub fn lost(stream: Stream) -> Option<&'static std::io::Error> {
    LOST[stream as usize].get()
}

/// Everything monstack prints goes through [`emit`], which never panics; a print elsewhere (a
/// library's own) that finds its stream gone does, and that is lost output, not a crash: exit
/// 1, not 101 with a backtrace nobody can read. Installed first thing in `main`.
pub fn exit_quietly_when_a_print_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // std's `print!` family, and clap_complete's writer (`monstack completions`).
        if message.starts_with("failed printing to std")
            || message.starts_with("failed to write completion file")
        {
            std::process::exit(1);
        }
        default(info);
    }));
}

impl Printer {
    /// After the command: when something for stdout was lost, says so on stderr (unless the
    /// reader of a pipe just left, as `| head` does) and returns true; true too when stderr
    /// lost something, which can only be told by the exit code.
    pub fn report_lost_output(&self) -> bool {
        if let Some(e) = lost(Stream::Stdout) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                let message = format!("cannot write the result to stdout: {e}");
                emit(
                    Stream::Stderr,
                    &format!("{} {message}\n", self.paint(RED, "error:")),
                );
            }
            return true;
        }
        lost(Stream::Stderr).is_some()
    }

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
            emit(Stream::Stdout, &format!("{text}\n"));
        }
    }

    /// A result that is a secret the user must see once (the generated Grafana password):
    /// the only output that is not masked.
    pub fn secret_result(&self, text: &str) {
        emit_unredacted(Stream::Stdout, &format!("{text}\n"));
    }

    /// Progress and success lines on stderr, silenced by `-q`.
    pub fn status(&self, verb: &str, text: &str) {
        if !self.quiet {
            stderr_line!("{} {text}", self.paint(GREEN, &format!("{verb:>9}")));
        }
    }

    pub fn note(&self, text: &str) {
        if !self.quiet {
            stderr_line!("{} {text}", self.paint(CYAN, "note:"));
        }
    }

    /// Warnings are shown even with `-q`: they are about something the user should fix.
    pub fn warn(&self, text: &str) {
        stderr_line!("{} {text}", self.paint(YELLOW, "warning:"));
    }

    pub fn error(&self, error: &crate::error::Error) {
        use crate::error::Error;
        match error {
            Error::Manifest(diagnostics) => {
                let text = diagnostics.to_string();
                for line in text.lines() {
                    if let Some(rest) = line.strip_prefix("  hint: ") {
                        stderr_line!("  {} {rest}", self.paint(CYAN, "hint:"));
                    } else if line.starts_with(&diagnostics.file) {
                        let (location, message) = line.split_at(line.find(": ").unwrap_or(0));
                        stderr_line!("{}{}", self.paint(RED, location), message);
                    } else {
                        stderr_line!("{line}");
                    }
                }
            }
            Error::Usage { message, .. } => {
                stderr_line!("{} {message}", self.paint(RED, "error:"));
            }
            Error::Interrupted(what) => {
                stderr_line!("{} {what}", self.paint(YELLOW, "interrupted:"))
            }
            Error::Other(e) => {
                stderr_line!("{} {e}", self.paint(RED, "error:"));
                for cause in e.chain().skip(1) {
                    stderr_line!("  caused by: {cause}");
                }
            }
        }
        if let Some(hint) = error.hint() {
            stderr_line!("  {} {hint}", self.paint(CYAN, "hint:"));
        }
    }
}
