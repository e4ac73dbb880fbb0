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
