//! Writing files safely: atomically (temp file in the same directory, then rename) and with
//! modes that keep secrets away from other users of the machine.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::render::Tree;

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

/// What [`write_tree`] changed, as paths relative to the output directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

/// Paths under `.monstack/` that are not rendered but owned by something else and kept:
/// generated secrets, targets the discovery agent writes, the manifest schema.
pub fn is_kept(relative: &str) -> bool {
    relative.starts_with("secrets/")
        || relative.starts_with("prometheus/targets/etcd/")
        || relative == SCHEMA_FILE
}

/// What `up` last applied (config hashes after reloads), next to the rendered files.
pub const STATE_FILE: &str = "state.json";

/// The JSON Schema of the manifest, written next to the rendered files for editors.
pub const SCHEMA_FILE: &str = "monstack.schema.json";

/// Writes a rendered tree under `out` (normally `.monstack/`). Files that are already
/// byte-identical are left alone, so their modification times only change when they do, and
/// files a previous render wrote that are no longer part of the tree are removed (a dashboard
/// dropped from the manifest must disappear from Grafana too).
pub fn write_tree(out: &Path, tree: &Tree) -> anyhow::Result<WriteReport> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for dir in &tree.dirs {
        let path = out.join(dir);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    let mut report = WriteReport::default();
    for file in &tree.files {
        let path = out.join(&file.path);
        let unchanged = fs::read(&path)
            .map(|old| old == file.contents)
            .unwrap_or(false)
            && mode_matches(&path, file.secret);
        if !unchanged {
            write_atomic(&path, &file.contents, mode_for(file.secret))?;
            report.written.push(file.path.clone());
        }
    }
    set_dir_modes(out)?;
    let mut existing = Vec::new();
    list_files(out, "", &mut existing)?;
    for relative in existing {
        if !is_kept(&relative) && tree.get(&relative).is_none() {
            let path = out.join(&relative);
            fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))?;
            report.removed.push(relative);
        }
    }
    Ok(report)
}

/// Directories get explicit modes, whatever the umask: the containers' users (65534, 472) must
/// be able to enter them to read the mounted files. `secrets/` is for monstack alone.
fn set_dir_modes(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if dir.file_name().is_some_and(|n| n == "secrets") {
            0o700
        } else {
            0o755
        };
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting permissions of {}", dir.display()))?;
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                set_dir_modes(&entry.path())?;
            }
        }
    }
    Ok(())
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        if kind.is_dir() {
            list_files(&entry.path(), &relative, out)?;
        } else {
            out.push(relative);
        }
    }
    Ok(())
}

#[cfg(unix)]
fn mode_matches(path: &Path, secret: bool) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let want = mode_for(secret);
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777 == want)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn mode_matches(_: &Path, _: bool) -> bool {
    true
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

    #[test]
    fn write_tree_skips_unchanged_files_and_prunes_stale_ones() {
        use crate::render::{RenderedFile, Tree};
        let dir = tempfile::tempdir().unwrap();
        let tree = |files: &[(&str, &str)]| Tree {
            files: files
                .iter()
                .map(|(p, c)| RenderedFile::new(*p, *c))
                .collect(),
            dirs: vec!["prometheus/targets/etcd".into()],
        };
        let first = write_tree(
            dir.path(),
            &tree(&[("a.yml", "1"), ("grafana/dashboards/x.json", "{}")]),
        )
        .unwrap();
        assert_eq!(first.written.len(), 2);
        fs::write(dir.path().join("prometheus/targets/etcd/svc.json"), "[]").unwrap();
        fs::create_dir_all(dir.path().join("secrets")).unwrap();
        fs::write(dir.path().join("secrets/grafana-admin-password"), "pw").unwrap();
        let second = write_tree(dir.path(), &tree(&[("a.yml", "1")])).unwrap();
        assert_eq!(
            second,
            WriteReport {
                written: vec![],
                removed: vec!["grafana/dashboards/x.json".into()]
            }
        );
        assert!(
            dir.path().join("prometheus/targets/etcd/svc.json").exists(),
            "agent-owned files are kept"
        );
        assert!(
            dir.path().join("secrets/grafana-admin-password").exists(),
            "secrets are kept"
        );
    }

    #[cfg(unix)]
    #[test]
    fn directories_are_enterable_by_container_users_whatever_the_umask() {
        use crate::render::{RenderedFile, Tree};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(".monstack");
        fs::create_dir_all(out.join("prometheus")).unwrap();
        fs::set_permissions(out.join("prometheus"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir_all(out.join("secrets")).unwrap();
        let tree = Tree {
            files: vec![RenderedFile::new("prometheus/prometheus.yml", "x")],
            dirs: vec![],
        };
        write_tree(&out, &tree).unwrap();
        let mode = |p: &str| fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("prometheus"), 0o755);
        assert_eq!(mode("secrets"), 0o700);
    }
}
