//! What `up` remembers between runs (`.monstack/state.json`): the config hash each container
//! has applied through a reload, since container labels cannot change after creation; and
//! which directories (by inode) each container bind-mounts, so a `.monstack/` deleted or
//! replaced under a running stack is noticed: the container still sees the old directory.

use std::collections::BTreeMap;
use std::path::Path;

use crate::files;
use crate::stack::containers::{ContainerSpec, MountSource};

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AppliedState {
    #[serde(default)]
    pub applied: BTreeMap<String, String>,
    /// Container id -> its bind-mounted host directories and their inodes when it started.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mounts: BTreeMap<String, BTreeMap<String, u64>>,
}

/// A bind-mounted directory as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountedDir {
    /// 0 when the directory is missing.
    pub inode: u64,
    /// When it was created (Unix seconds), where the file system says.
    pub born: Option<i64>,
}

/// Each directory `spec` bind-mounts, as it is now.
pub fn mount_identity(spec: &ContainerSpec) -> BTreeMap<String, MountedDir> {
    spec.mounts
        .iter()
        .filter_map(|m| match &m.source {
            MountSource::Bind(path) => Some((path.clone(), mounted_dir(Path::new(path)))),
            MountSource::Volume(_) => None,
        })
        .collect()
}

fn mounted_dir(path: &Path) -> MountedDir {
    let Ok(meta) = std::fs::metadata(path) else {
        return MountedDir {
            inode: 0,
            born: None,
        };
    };
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        meta.ino()
    };
    #[cfg(not(unix))]
    let inode = 1;
    MountedDir { inode, born }
}

impl AppliedState {
    pub fn load(out_dir: &Path) -> AppliedState {
        std::fs::read(out_dir.join(crate::layout::STATE_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, out_dir: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        files::write_atomic(
            &out_dir.join(crate::layout::STATE_FILE),
            text.as_bytes(),
            files::MODE_PUBLIC,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bind-mounted file (an existing etcd cluster's password or certificate) replaced by a
    /// rename, as secret managers write it, is a new identity, so `up` recreates the container
    /// that still sees the old one; rewritten in place it is the same file.
    #[cfg(unix)]
    #[test]
    fn a_mounted_file_replaced_by_a_rename_is_noticed_and_one_rewritten_in_place_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "one\n").unwrap();
        let first = mounted_dir(&file);
        assert_ne!(first.inode, 0);
        std::fs::write(&file, "two\n").unwrap();
        assert_eq!(mounted_dir(&file).inode, first.inode, "rewritten in place");
        let next = dir.path().join("password.new");
        std::fs::write(&next, "three\n").unwrap();
        std::fs::rename(&next, &file).unwrap();
        assert_ne!(
            mounted_dir(&file).inode,
            first.inode,
            "replaced by a rename"
        );
        std::fs::remove_file(&file).unwrap();
        assert_eq!(mounted_dir(&file).inode, 0, "gone");
    }
}
