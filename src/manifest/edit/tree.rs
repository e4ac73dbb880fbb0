//! Finding entries in the parsed tree of the manifest, refusing the shapes that cannot be edited
//! in place (aliases, a flow-style document).

use super::{unsupported, EditError};
use crate::manifest::yaml::{self, Node, Value};

pub(super) fn parse_input(text: &str) -> Result<Node, EditError> {
    yaml::parse(text).map_err(|e| EditError::Invalid {
        line: e.pos.line,
        message: e.message,
    })
}

pub(super) fn scalar(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

pub(super) fn entry<'n>(map: &'n Node, key: &str) -> Option<(&'n Node, &'n Node)> {
    match &map.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| scalar(k) == Some(key))
            .map(|(k, v)| (k, v)),
        _ => None,
    }
}

/// Like [`entry`], for a value about to be edited: an alias (`*name`) is refused, since its
/// content (and so its positions) lives elsewhere in the file.
pub(super) fn entry_to_edit<'n>(
    text: &str,
    map: &'n Node,
    key: &str,
) -> Result<Option<(&'n Node, &'n Node)>, EditError> {
    match entry(map, key) {
        Some((_, v)) if text.as_bytes().get(v.pos.offset) == Some(&b'*') => Err(unsupported(
            v.pos.line,
            format!("`{key}` is an alias (`*name`); edit the anchored value instead"),
        )),
        found => Ok(found),
    }
}

pub(super) fn is_flow(text: &str, node: &Node) -> bool {
    matches!(
        (&node.value, text.as_bytes().get(node.pos.offset)),
        (Value::Seq(_), Some(b'[')) | (Value::Map(_), Some(b'{'))
    )
}

/// The top-level `key: value` entry; the document must be a block mapping (or empty).
pub(super) fn top_entry<'n>(
    text: &str,
    root: &'n Node,
    key: &str,
) -> Result<Option<(&'n Node, &'n Node)>, EditError> {
    match &root.value {
        Value::Null => Ok(None),
        Value::Map(_) if !is_flow(text, root) => entry_to_edit(text, root, key),
        _ => Err(unsupported(
            root.pos.line,
            "the manifest is not a block mapping of `key: value` lines",
        )),
    }
}
