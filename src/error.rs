//! The one error type at the edge, the one place that maps errors to exit codes (0 success,
//! 2 invalid input: manifest, arguments, a port taken; 130 interrupted; 1 anything else), and
//! the one way to give the user advice with a failure: a hint, printed on its own line after
//! the message. Usage errors carry theirs ([`Error::usage`]); a failure at the edges that
//! travels as an `anyhow::Error` carries it as a [`Hinted`] ([`hinted`]), found in its chain.

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

/// A failure with advice: its message, and a hint the printer shows on its own line.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Hinted {
    message: String,
    pub hint: String,
}

/// An error whose message is `message` (an error's full chain, or any text) with `hint`.
pub fn hinted(message: impl std::fmt::Display, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        message: format!("{message:#}"),
        hint: hint.into(),
    })
}

impl Error {
    /// The hint of this error, wherever it was attached.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Usage { hint, .. } => hint.as_deref(),
            Error::Other(e) => e
                .chain()
                .find_map(|cause| cause.downcast_ref::<Hinted>())
                .map(|h| h.hint.as_str()),
            Error::Manifest(_) | Error::Interrupted(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_found_under_any_context() {
        let error = hinted("cannot reach the daemon", "is it running?");
        let error: Error = error.context("connecting").into();
        assert_eq!(error.hint(), Some("is it running?"));
        assert_eq!(error.exit_code(), 1);
        assert_eq!(format!("{error}"), "connecting");
        let usage = Error::usage("bad port", Some("use 9090".to_string()));
        assert_eq!((usage.hint(), usage.exit_code()), (Some("use 9090"), 2));
        assert_eq!(Error::Other(anyhow::anyhow!("plain")).hint(), None);
    }
}
