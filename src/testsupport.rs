//! Helpers for unit tests that run the real services (Prometheus, Alertmanager, ...) as child
//! processes: a free port, a guard that kills the child when the test ends (also when it panics),
//! and "is this binary installed, or skip".

use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago. The listener is dropped before returning,
/// so another process could take it in between; good enough for tests.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 to pick a port");
    listener
        .local_addr()
        .expect("reading the bound address")
        .port()
}

/// The binary at `path`, or `None` after printing why the test is skipped. With
/// `MONSTACK_REQUIRE_ALL=1` a missing binary fails the test instead, so CI cannot skip silently.
pub fn require_binary(path: &str, debian_package: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let message = format!("{name} not found (install Debian package {debian_package})");
    if std::env::var("MONSTACK_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{message}; MONSTACK_REQUIRE_ALL=1 forbids skipping");
    }
    eprintln!("skipping: {message}");
    None
}

/// A child process that is killed and reaped when the guard is dropped. Its stdout and stderr go
/// to a log file, shown by [`ChildGuard::log`] when a test needs to explain a failure.
pub struct ChildGuard {
    child: Child,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Starts `command` with its output appended to `log_path`.
    pub fn spawn(command: &mut Command, log_path: &Path) -> ChildGuard {
        let log = File::create(log_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
        let log_err = log.try_clone().expect("duplicating the log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", command.get_program()));
        ChildGuard {
            child,
            log_path: log_path.to_path_buf(),
        }
    }

    /// What the child has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `Some(description)` once the child has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown state ({e})")),
        }
    }

    /// Polls `check` every 100 ms until it returns true. Panics with the child's log if the
    /// child exits or `deadline` passes first. A wait for a service to start, not a timing
    /// assertion: the deadline is generous.
    pub async fn wait_until<F, Fut>(&mut self, what: &str, deadline: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let start = Instant::now();
        loop {
            if check().await {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{what}: the process exited ({status}); its log:\n{}",
                    self.log()
                );
            }
            if start.elapsed() > deadline {
                panic!(
                    "{what}: still not done after {deadline:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
