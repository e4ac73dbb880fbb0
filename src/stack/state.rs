//! What `up` remembers between runs (`.monstack/state.json`): the config hash each container
//! has applied through a reload, since container labels cannot change after creation.

use std::collections::BTreeMap;
use std::path::Path;

use crate::files;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AppliedState {
    #[serde(default)]
    pub applied: BTreeMap<String, String>,
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
