//! The one error type at the edge, and the exit codes: 0 success, 2 invalid input (manifest or
//! arguments), 1 anything else.

use crate::manifest::diagnostics::Diagnostics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest has problems; every one of them is in here.
    #[error("{0}")]
    Manifest(Diagnostics),
    /// Arguments or input files the user can fix.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// Ctrl-C: what was done stays done; the next run converges.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Everything else: I/O, the environment, bugs.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Error {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Manifest(_) | Error::Usage { .. } => 2,
            Error::Interrupted(_) => 130,
            Error::Other(_) => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
