//! The one place that prints. Knows about `--quiet`, colours (`--color`, `NO_COLOR`) and
//! whether stderr is a terminal. Results go to stdout; progress, notes and errors to stderr.

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
            Error::Usage { message, hint } => {
                eprintln!("{} {message}", self.paint(RED, "error:"));
                if let Some(hint) = hint {
                    eprintln!("  {} {hint}", self.paint(CYAN, "hint:"));
                }
            }
            Error::Interrupted(what) => eprintln!("{} {what}", self.paint(YELLOW, "interrupted:")),
            Error::Other(e) => {
                eprintln!("{} {e}", self.paint(RED, "error:"));
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
        }
    }
}

/// Progress for long steps: indicatif on a terminal, plain lines otherwise (CI logs, pipes).
pub struct Progress {
    multi: Option<indicatif::MultiProgress>,
    quiet: bool,
    color: bool,
}

/// One line of [`Progress`]: a spinner on a terminal.
pub struct Task {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    quiet: bool,
    color: bool,
}

impl Printer {
    pub fn progress(&self) -> Progress {
        let tty = std::io::stderr().is_terminal() && !self.quiet;
        Progress {
            multi: tty.then(indicatif::MultiProgress::new),
            quiet: self.quiet,
            color: self.color,
        }
    }

    /// A table on stdout: a header and rows, columns padded to their widest cell.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            out.trim_end().to_string()
        };
        self.result(&line(header.iter().map(|h| h.to_string()).collect()), false);
        for row in rows {
            self.result(&line(row.clone()), false);
        }
    }
}

impl Progress {
    pub fn task(&self, label: &str, message: &str) -> Task {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(indicatif::ProgressBar::new_spinner());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix:<13} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label.to_string());
            bar.set_message(message.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Task {
            bar,
            label: label.to_string(),
            quiet: self.quiet,
            color: self.color,
        }
    }

    /// A byte-counting bar (image layers) on a terminal; nothing otherwise.
    pub fn bytes(&self, label: &str) -> Option<indicatif::ProgressBar> {
        self.multi.as_ref().map(|multi| {
            let bar = multi.add(indicatif::ProgressBar::new(0));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "  {prefix:<24} {msg:<12} {bytes:>10}/{total_bytes:<10} {wide_bar}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_prefix(label.to_string());
            bar
        })
    }

    /// A line that does not disturb the spinners.
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Task {
    pub fn message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    fn finish(&self, mark: &str, style: &str, message: &str) {
        let mark = if self.color {
            format!("{style}{mark}{RESET}")
        } else {
            mark.to_string()
        };
        match &self.bar {
            Some(bar) => {
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{prefix} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_prefix(format!("{mark} {:<13}", self.label));
                bar.finish_with_message(message.to_string());
            }
            None if !self.quiet => eprintln!("{mark} {:<13} {message}", self.label),
            None => {}
        }
    }

    pub fn ok(&self, message: &str) {
        self.finish("✔", GREEN, message);
    }

    pub fn fail(&self, message: &str) {
        self.finish("✘", RED, message);
    }
}

/// Image pull progress: per-layer byte bars on a terminal, one line per image otherwise.
pub struct PullBars<'a> {
    progress: &'a Progress,
    layers: std::sync::Mutex<std::collections::BTreeMap<String, indicatif::ProgressBar>>,
}

impl<'a> PullBars<'a> {
    pub fn new(progress: &'a Progress) -> PullBars<'a> {
        PullBars {
            progress,
            layers: std::sync::Mutex::new(Default::default()),
        }
    }
}

impl crate::stack::docker::PullProgress for PullBars<'_> {
    fn layer(
        &self,
        image: &str,
        layer: &str,
        status: &str,
        current: Option<u64>,
        total: Option<u64>,
    ) {
        if layer.is_empty() || self.progress.multi.is_none() {
            return;
        }
        let mut layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!("{image} {layer}");
        if !layers.contains_key(&key) {
            if let Some(bar) = self
                .progress
                .bytes(&format!("{} {layer}", short_image(image)))
            {
                layers.insert(key.clone(), bar);
            }
        }
        if let Some(bar) = layers.get(&key) {
            bar.set_message(status.to_string());
            if let Some(total) = total {
                bar.set_length(total);
            }
            if let Some(current) = current {
                bar.set_position(current);
            }
        }
    }

    fn done(&self, image: &str) {
        let mut layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        layers.retain(|key, bar| {
            let mine = key.starts_with(&format!("{image} "));
            if mine {
                bar.finish_and_clear();
            }
            !mine
        });
        self.progress.line(&format!("pulled {image}"));
    }
}

fn short_image(image: &str) -> &str {
    image.rsplit('/').next().unwrap_or(image)
}
