//! Writing a rendered tree to `.monstack/`: unchanged files are left alone, stale ones pruned,
//! files other processes own kept, directories given modes the containers can enter, and
//! `.monstack/` itself one that keeps the secret files from other users of the machine
//! (see [`crate::files::OwnerGroup`]).

use std::fs;
use std::path::Path;

use anyhow::Context;

use super::Tree;
use crate::files::{
    host_owner_group, mode_for, write_atomic, OwnerGroup, MODE_DIR, MODE_DIR_PRIVATE, MODE_PUBLIC,
};
use crate::layout::is_kept;

/// What [`write_tree`] changed, as paths relative to the output directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

/// Writes a rendered tree under `out` (normally `.monstack/`). Files that are already
/// byte-identical are left alone, so their modification times only change when they do, and
/// files a previous render wrote that are no longer part of the tree are removed (a dashboard
/// dropped from the manifest must disappear from Grafana too).
pub fn write_tree(out: &Path, tree: &Tree) -> anyhow::Result<WriteReport> {
    write_tree_for(out, tree, host_owner_group())
}

/// [`write_tree`] for a user whose group is `group` (the machine's, in [`write_tree`]).
pub fn write_tree_for(out: &Path, tree: &Tree, group: OwnerGroup) -> anyhow::Result<WriteReport> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // Before any secret is written into it.
    set_mode(out, group.out_dir_mode())?;
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
    for entry in fs::read_dir(out).with_context(|| format!("reading {}", out.display()))? {
        let entry = entry.with_context(|| format!("reading {}", out.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            set_dir_modes(out, &entry.path())?;
        }
    }
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

/// Directories below `.monstack/` get explicit modes, whatever the umask: the containers'
/// users (65534, 472) must be able to enter them to read the mounted files (inside a container
/// only the mounted directory and what is below it are looked at, not `.monstack/`).
/// The top-level `secrets/` is for monstack alone; a directory of that name below a service's
/// directory (`prometheus/secrets/`) is mounted, and its container's user must enter it.
fn set_dir_modes(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let mode = if dir == root.join("secrets") {
        MODE_DIR_PRIVATE
    } else {
        MODE_DIR
    };
    set_mode(dir, mode)?;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            set_dir_modes(root, &entry.path())?;
        }
    }
    Ok(())
}

fn set_mode(dir: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting permissions of {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (dir, mode);
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

/// Writes `.monstack/monstack.schema.json` (what the manifest's first line points editors at)
/// and `.monstack/.gitignore`.
pub fn write_schema(out: &Path) -> anyhow::Result<()> {
    let schema = crate::manifest::spec::json_schema(&crate::dashboards::bundled_names());
    let mut text = serde_json::to_string_pretty(&schema)?;
    text.push('\n');
    write_if_changed(&out.join(crate::layout::SCHEMA_FILE), text.as_bytes())?;
    write_if_changed(&out.join(".gitignore"), super::GITIGNORE.as_bytes())
}

/// Leaves a file alone when it already holds these bytes (no needless write and fsync).
fn write_if_changed(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    write_atomic(path, contents, MODE_PUBLIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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

    /// Both kinds of host: with a private group the mode of the secret files keeps them from
    /// everyone else; with a shared one `.monstack/` itself does, and the files stay readable
    /// by the group the containers get.
    #[cfg(unix)]
    #[test]
    fn secret_files_are_kept_from_other_users_with_a_private_or_a_shared_group() {
        use crate::render::{RenderedFile, Tree};
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tree = Tree {
            files: vec![
                RenderedFile::new("prometheus/prometheus.yml", "x"),
                RenderedFile::secret("alertmanager/alertmanager.yml", "smtp: pw"),
                RenderedFile::secret("agent/agent.yml", "relay_token: t"),
            ],
            dirs: vec!["prometheus/targets/etcd".into()],
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(".monstack");
        let mode = |p: &str| fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
        let gid = unsafe { libc::getegid() };
        for (group, out_mode) in [
            (OwnerGroup::Private, 0o755),
            (OwnerGroup::Shared, 0o700),
            // A host whose group changes: the next render follows.
            (OwnerGroup::Private, 0o755),
        ] {
            write_tree_for(&out, &tree, group).unwrap();
            assert_eq!(mode(""), out_mode, "{group:?}");
            assert_eq!(mode("alertmanager/alertmanager.yml"), 0o640, "{group:?}");
            assert_eq!(mode("agent/agent.yml"), 0o640, "{group:?}");
            assert_eq!(mode("prometheus/prometheus.yml"), 0o644, "{group:?}");
            // The containers' users still enter the directories they get mounted.
            assert_eq!(mode("alertmanager"), 0o755, "{group:?}");
            assert_eq!(mode("prometheus/targets/etcd"), 0o755, "{group:?}");
            let owner = fs::metadata(out.join("alertmanager/alertmanager.yml")).unwrap();
            assert_eq!(owner.gid(), gid, "the group the containers are given");
        }
        // The machine's own decision is the one `write_tree` applies.
        write_tree(&out, &tree).unwrap();
        assert_eq!(mode(""), host_owner_group().out_dir_mode());
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
            files: vec![
                RenderedFile::new("prometheus/prometheus.yml", "x"),
                RenderedFile::secret(crate::render::consul::TOKEN_PATH, "t"),
            ],
            dirs: vec![],
        };
        write_tree(&out, &tree).unwrap();
        let mode = |p: &str| fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("prometheus"), 0o755);
        assert_eq!(mode("secrets"), 0o700);
        // The Consul token's directory is mounted: Prometheus' user (not the owner) enters it
        // and reads the 0640 file through the secret group.
        let token_dir = std::path::Path::new(crate::render::consul::TOKEN_PATH)
            .parent()
            .unwrap();
        assert_eq!(mode(token_dir.to_str().unwrap()), 0o755);
    }
}
