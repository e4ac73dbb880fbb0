//! Progress for long steps: indicatif on a terminal, plain lines otherwise (CI logs, pipes).
//! The only user of indicatif.

use std::io::IsTerminal;

use super::{Printer, GREEN, RED, RESET};

/// Receives image pull progress from the Docker edge; [`PullBars`] shows it.
pub trait PullProgress: Send + Sync {
    /// A layer's status (`Downloading`, `Extracting`, `Pull complete`) with bytes when known.
    fn layer(
        &self,
        image: &str,
        layer: &str,
        status: &str,
        current: Option<u64>,
        total: Option<u64>,
    );
    fn done(&self, image: &str);
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
            None => super::stderr_line!("{text}"),
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
            None if !self.quiet => super::stderr_line!("{mark} {:<13} {message}", self.label),
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

impl PullProgress for PullBars<'_> {
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
