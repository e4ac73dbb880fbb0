//! TODO(helper): render prometheus.yml and targets.
use super::RenderedFile;
use crate::model::Stack;

/// Directory (relative to `.monstack/`) where the agent writes etcd-discovered targets.
pub const ETCD_TARGETS_DIR: &str = "prometheus/targets/etcd";

pub fn render(_stack: &Stack) -> anyhow::Result<Vec<RenderedFile>> {
    Ok(vec![])
}
