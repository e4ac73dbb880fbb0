//! TODO(helper): render grafana files.
use super::RenderedFile;
use crate::model::Stack;

pub fn render(_stack: &Stack) -> anyhow::Result<Vec<RenderedFile>> {
    Ok(vec![])
}
