//! Ctrl-C and SIGTERM: what stops a foreground command (`register`, `agent`) and interrupts a
//! long one (`up`), which then exits 130 and leaves the next run to converge.

use crate::error::{Error, Result};

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM (systemd, `timeout`, `docker stop`).
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `work` until it ends or Ctrl-C arrives; Ctrl-C becomes [`Error::Interrupted`].
pub async fn interruptible(
    work: impl std::future::Future<Output = Result<()>>,
    what: &str,
) -> Result<()> {
    tokio::select! {
        result = work => result,
        _ = stop_signal() => Err(Error::Interrupted(what.to_string())),
    }
}
