//! Writing files safely: atomically (temp file in the same directory, then rename) and with
//! modes that keep secrets away from other users of the machine.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Mode of ordinary generated files.
pub const MODE_PUBLIC: u32 = 0o644;
/// Mode of rendered files holding secrets: the owner and the owning group only. Containers
/// that read them get that group as a supplementary group, whatever user their image runs as;
/// nobody else on the machine can read them.
pub const MODE_SECRET: u32 = 0o640;
/// Mode of files only monstack itself reads (the Grafana admin password).
pub const MODE_PRIVATE: u32 = 0o600;

/// An existing file's permission bits (to keep them when rewriting it), else [`MODE_PUBLIC`].
pub fn mode_of(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(MODE_PUBLIC)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        MODE_PUBLIC
    }
}

pub fn mode_for(secret: bool) -> u32 {
    if secret {
        MODE_SECRET
    } else {
        MODE_PUBLIC
    }
}

/// Writes `contents` to `path` atomically. The temp file starts with `.` and ends in `.tmp`, so
/// Prometheus' file_sd globs (`*.json`) never see a half-written file.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    write_atomic_with(path, contents, mode, true)
}

/// [`write_atomic`] without the fsync: readers still never see a half-written file (the rename
/// is atomic), but a crash may lose the write. For files that are re-derived anyway (the
/// discovered targets, rebuilt from etcd on every start), where an fsync per file would make a
/// listing of thousands of services take seconds.
pub fn write_atomic_unsynced(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    write_atomic_with(path, contents, mode, false)
}

fn write_atomic_with(path: &Path, contents: &[u8], mode: u32, sync: bool) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Unique per process and per call: two writers of one path never share a temp file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(contents)
            .with_context(|| format!("writing {}", tmp.display()))?;
        if sync {
            file.sync_all()
                .with_context(|| format!("writing {}", tmp.display()))?;
        }
        #[cfg(unix)]
        {
            // The mode given to open() is filtered by the umask; set it exactly.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting permissions of {}", tmp.display()))?;
        }
        fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn secret_files_are_private_and_others_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&dir.path().join("a/secret.yml"), b"pw", MODE_SECRET).unwrap();
        write_atomic(&dir.path().join("a/plain.yml"), b"x", MODE_PUBLIC).unwrap();
        let mode = |p: &str| {
            fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("a/secret.yml"), 0o640);
        assert_eq!(mode("a/plain.yml"), 0o644);
        // No temp files are left behind.
        assert_eq!(fs::read_dir(dir.path().join("a")).unwrap().count(), 2);
    }
}
