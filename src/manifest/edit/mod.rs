//! Edits `monstack.yaml` as text, for the commands that change it (add a target, remove a
//! target, add a dashboard).
//!
//! The manifest is the user's file: its comments, blank lines, quoting and layout are theirs.
//! Loading and re-serialising would lose all of that, so these functions find spans with the
//! positions from [`yaml::parse`](crate::manifest::yaml::parse) and splice in only the bytes
//! that must change. Every edit is re-parsed before it is returned. Shapes that cannot be
//! edited safely (anchors and aliases, block scalars, multi-line plain scalars, a flow-style
//! document) are refused with [`EditError::Unsupported`] rather than guessed at.
//!
//! The public API is here; `targets` and `dashboards` hold the edits of each section,
//! `settings` the settings of a job, and `tree`, `spans`, `splice` and `quoting` what they
//! share: reading the parsed tree, the byte spans of its nodes and lines, splicing changes in,
//! and writing new scalars.

mod dashboards;
mod quoting;
mod settings;
mod spans;
mod splice;
mod targets;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ops::Range;

pub use dashboards::add_dashboard;
pub use targets::{add_targets, remove_targets};

/// Settings for a job, written when given (`None` / empty = leave as is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSettings {
    pub path: Option<String>,
    pub scheme: Option<String>,
    pub interval: Option<String>,
    pub fallback_scrape_protocol: Option<String>,
    /// Merged into the job's labels: existing keys get the new value, others are added.
    pub labels: BTreeMap<String, String>,
}

/// The edited manifest text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub text: String,
    /// Whether the job did not exist and was added.
    pub created_job: bool,
}

/// One entry of `dashboards:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DashboardEntry {
    Bundled(String),
    File {
        path: String,
        folder: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("job `{job}` already has the target `{addr}`")]
    Duplicate { job: String, addr: String },
    #[error("job `{job}` has no target `{addr}`")]
    NotFound { job: String, addr: String },
    #[error("there is no job `{job}` under `targets:`")]
    NoSuchJob { job: String },
    #[error("the dashboard `{source_name}` is already listed at line {line}, with another folder")]
    DashboardConflict { source_name: String, line: usize },
    #[error("the manifest is not valid YAML (line {line}): {message}")]
    Invalid { line: usize, message: String },
    #[error("cannot edit line {line} of the manifest automatically: {message}")]
    Unsupported { line: usize, message: String },
    #[error(
        "internal error: the edited manifest would not parse ({message}); nothing was changed"
    )]
    Internal { message: String },
}

/// A replacement of a byte range of the text.
pub(super) type Change = (Range<usize>, String);

pub(super) fn unsupported(line: usize, message: impl Into<String>) -> EditError {
    EditError::Unsupported {
        line,
        message: message.into(),
    }
}
