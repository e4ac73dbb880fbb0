//! The project's lock: every command that changes a project (render, up, down, add- and
//! remove-target, import-dashboard, init --force) holds it, so two of them never interleave
//! their edits of monstack.yaml, `.monstack/` or the project's containers. A second one waits,
//! saying for whom, up to a timeout; commands that only read never take it.
//!
//! An advisory `flock` on the manifest's directory itself: the kernel releases it when the
//! process ends however it ends (Ctrl-C, a crash), so a stale lock cannot block anyone, and
//! taking it writes nothing (a command refused for bad input leaves no trace). The holder's
//! pid goes into `.monstack/lock` when that directory exists already, for the waiting message.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::error::{hinted, Error, Result};
use crate::layout::{LOCK_FILE, OUT_DIR};
use crate::output::Printer;

/// How long a command waits for another one by default; `MONSTACK_LOCK_TIMEOUT` (seconds)
/// changes it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(100);

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
    path: PathBuf,
}

impl ProjectLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The timeout from `MONSTACK_LOCK_TIMEOUT`, else [`DEFAULT_TIMEOUT`].
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var("MONSTACK_LOCK_TIMEOUT") {
        Err(_) => Ok(DEFAULT_TIMEOUT),
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| {
                Error::usage(
                    format!("MONSTACK_LOCK_TIMEOUT={text:?} is not a number of seconds"),
                    Some("e.g. MONSTACK_LOCK_TIMEOUT=60".to_string()),
                )
            }),
    }
}

/// Takes the lock of the project whose manifest directory is `root`, waiting up to `timeout`
/// for another monstack that holds it (and saying so once).
pub fn acquire(root: &Path, timeout: Duration, printer: &Printer) -> Result<ProjectLock> {
    let file = File::open(root).with_context(|| format!("opening {}", root.display()))?;
    let path = root.join(OUT_DIR).join(LOCK_FILE);
    let started = Instant::now();
    let mut told = false;
    loop {
        match try_lock(&file) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("locking {}", root.display()))
                    .into())
            }
        }
        let holder = holder_pid(&path);
        if started.elapsed() >= timeout {
            return Err(Error::Other(hinted(
                format!(
                    "another monstack{} still works on this project after {}s ({})",
                    holder.map(|p| format!(", pid {p},")).unwrap_or_default(),
                    timeout.as_secs(),
                    root.display()
                ),
                "wait for it to finish, or stop it; MONSTACK_LOCK_TIMEOUT sets how long to wait",
            )));
        }
        if !told {
            printer.note(&format!(
                "waiting for another monstack{} on this project",
                holder.map(|p| format!(", pid {p},")).unwrap_or_default()
            ));
            told = true;
        }
        std::thread::sleep(POLL);
    }
    // Ours now: say who holds it, where there is a place for that already.
    if path.parent().is_some_and(Path::is_dir) {
        let pid = std::process::id().to_string();
        std::fs::write(&path, pid).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ProjectLock { _file: file, path })
}

/// The pid in the lock note, when that process still runs (a note left by an earlier holder
/// that could not replace it names nobody).
fn holder_pid(path: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[cfg(not(unix))]
fn alive(_: u32) -> bool {
    true
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::ColorChoice;

    fn quiet() -> Printer {
        Printer::new(true, ColorChoice::Never)
    }

    #[test]
    fn a_second_holder_waits_and_times_out_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(OUT_DIR)).unwrap();
        let first = acquire(dir.path(), Duration::from_secs(1), &quiet()).unwrap();
        assert_eq!(
            std::fs::read_to_string(first.path()).unwrap(),
            std::process::id().to_string()
        );
        // flock locks belong to the open file description: a second open in this process
        // conflicts like another process would.
        let started = Instant::now();
        let error = acquire(dir.path(), Duration::from_millis(300), &quiet()).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        let text = format!("{error}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(error.hint().unwrap().contains("MONSTACK_LOCK_TIMEOUT"));
        drop(first);
        acquire(dir.path(), Duration::from_millis(300), &quiet()).unwrap();
    }

    #[test]
    fn taking_the_lock_writes_nothing_where_there_is_no_monstack_directory() {
        let dir = tempfile::tempdir().unwrap();
        let lock = acquire(dir.path(), Duration::from_secs(1), &quiet()).unwrap();
        assert!(!dir.path().join(OUT_DIR).exists());
        drop(lock);
    }

    #[test]
    fn the_waiter_gets_the_lock_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), Duration::from_secs(1), &quiet()).unwrap();
        let root = dir.path().to_path_buf();
        let waiter =
            std::thread::spawn(move || acquire(&root, Duration::from_secs(10), &quiet()).is_ok());
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
        assert!(waiter.join().unwrap());
    }
}
