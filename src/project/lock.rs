//! The project's lock: every command that changes a project (render, up, down, add- and
//! remove-target, import-dashboard, init --force) holds it, so two of them never interleave
//! their edits of monstack.yaml, `.monstack/` or the project's containers. A second one waits,
//! saying for whom, up to a timeout; commands that only read never take it.
//!
//! An advisory `flock` on the manifest's directory itself: the kernel releases it when the
//! process ends however it ends (Ctrl-C, a crash), so a stale lock cannot block anyone, and
//! taking it writes nothing (a command refused for bad input leaves no trace, a no-op leaves
//! every file as it was). The waiting message names the holder's pid from `/proc/locks` where
//! there is one (Linux).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::error::{hinted, Error, Result};
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
    let path = root.to_path_buf();
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
        let holder = holder_pid(root);
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
    Ok(ProjectLock { _file: file, path })
}

/// The pid holding a `flock` on `dir`, from `/proc/locks` (`1: FLOCK ADVISORY WRITE <pid>
/// <major>:<minor>:<inode> 0 EOF`); `None` where that file does not exist.
fn holder_pid(dir: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir).ok()?;
        let wanted = format!(
            "{:02x}:{:02x}:{}",
            libc::major(meta.dev()),
            libc::minor(meta.dev()),
            meta.ino()
        );
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        locks.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (kind, pid, file) = (fields.get(1)?, fields.get(4)?, fields.get(5)?);
            (*kind == "FLOCK" && *file == wanted)
                .then(|| pid.parse().ok())
                .flatten()
                .filter(|pid| alive(*pid))
        })
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
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
        let first = acquire(dir.path(), Duration::from_secs(1), &quiet()).unwrap();
        assert_eq!(holder_pid(dir.path()), Some(std::process::id()));
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
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
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
