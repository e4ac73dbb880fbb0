//! The settings of an existing job: `path`, `scheme`, `interval` set or replaced, `labels`
//! merged.

use super::quoting::{double_quoted, quote_like, yaml_scalar};
use super::spans::{after_colon, node_end, skip_blanks};
use super::splice::{add_entry, set_null};
use super::tree::{entry_to_edit, is_flow};
use super::{unsupported, Change, EditError};
use crate::manifest::yaml::{Node, Value};

/// Sets `key` in `map` (a job, or its labels) to the scalar `value`, adding it when missing.
pub(super) fn set_entry(
    text: &str,
    map: &Node,
    key: &str,
    value: &str,
) -> Result<Vec<Change>, EditError> {
    let flow = is_flow(text, map);
    let Some((k, v)) = entry_to_edit(text, map, key)? else {
        return add_entry(text, map, &yaml_scalar(key), &yaml_scalar(value));
    };
    match &v.value {
        Value::Scalar { text: old, .. } if old == value => Ok(Vec::new()),
        Value::Scalar { .. } => {
            let at = skip_blanks(text, after_colon(text, k, flow)?);
            if at != v.pos.offset {
                return Err(unsupported(
                    v.pos.line,
                    format!("`{key}` has an anchor, tag or block scalar"),
                ));
            }
            let end = node_end(text, v, flow)?;
            let new = match text.as_bytes()[at] {
                b'"' => double_quoted(value),
                b'\'' => quote_like(text, Some(v), value),
                _ => yaml_scalar(value),
            };
            Ok(vec![(at..end, new)])
        }
        Value::Null => set_null(text, k, v, flow, &yaml_scalar(value)),
        _ => Err(unsupported(
            v.pos.line,
            format!("`{key}` holds {}, not a single value", v.kind_name()),
        )),
    }
}

pub(super) fn set_label(
    text: &str,
    job: &Node,
    name: &str,
    value: &str,
) -> Result<Vec<Change>, EditError> {
    let flow = is_flow(text, job);
    let label = format!("{{{}: {}}}", yaml_scalar(name), yaml_scalar(value));
    match entry_to_edit(text, job, "labels")? {
        None => add_entry(text, job, "labels", &label),
        Some((k, v)) => match &v.value {
            Value::Null => set_null(text, k, v, flow, &label),
            Value::Map(_) => set_entry(text, v, name, value),
            _ => Err(unsupported(v.pos.line, "`labels` is not a mapping")),
        },
    }
}
