//! `dashboards:`: appending an entry, once.

use super::quoting::yaml_scalar;
use super::spans::seq_item_span;
use super::splice::{append_flow, append_section, apply, insert_lines, spaces, start_block_list};
use super::tree::{entry, is_flow, parse_input, scalar, top_entry};
use super::{unsupported, DashboardEntry, EditError};
use crate::manifest::yaml::{Node, Value};

/// Appends a dashboard to `dashboards:`. An entry for the same bundled dashboard, or the same
/// file in the same folder, leaves the text unchanged; the same file in another folder is a
/// [`EditError::DashboardConflict`] (two copies would share one uid).
pub fn add_dashboard(text: &str, entry: DashboardEntry) -> Result<String, EditError> {
    let root = parse_input(text)?;
    let (kind, name, folder) = match &entry {
        DashboardEntry::Bundled(name) => ("bundled", name.as_str(), None),
        DashboardEntry::File { path, folder } => ("file", path.as_str(), folder.as_deref()),
    };
    let block = |dash: usize| match &entry {
        DashboardEntry::Bundled(name) => format!("{}- {}\n", spaces(dash), yaml_scalar(name)),
        DashboardEntry::File { path, folder } => {
            let mut s = format!("{}- file: {}\n", spaces(dash), yaml_scalar(path));
            if let Some(folder) = folder {
                s += &format!("{}folder: {}\n", spaces(dash + 2), yaml_scalar(folder));
            }
            s
        }
    };
    let flow = match &entry {
        DashboardEntry::Bundled(name) => yaml_scalar(name),
        DashboardEntry::File { path, folder } => match folder {
            Some(folder) => format!(
                "{{file: {}, folder: {}}}",
                yaml_scalar(path),
                yaml_scalar(folder)
            ),
            None => format!("{{file: {}}}", yaml_scalar(path)),
        },
    };
    let changes = match top_entry(text, &root, "dashboards")? {
        None => vec![append_section(text, "dashboards", &block(2))],
        Some((key, list)) => match &list.value {
            Value::Null => start_block_list(text, key, list, &block(2))?,
            Value::Seq(items) => {
                for item in items {
                    let Some((k, n, f)) = dashboard_of(item) else {
                        continue;
                    };
                    if k != kind || normalize_path(n) != normalize_path(name) {
                        continue;
                    }
                    if kind == "bundled" || f == folder {
                        return Ok(text.to_string());
                    }
                    return Err(EditError::DashboardConflict {
                        source_name: name.into(),
                        line: item.pos.line,
                    });
                }
                if is_flow(text, list) && items.is_empty() {
                    start_block_list(text, key, list, &block(2))?
                } else if is_flow(text, list) {
                    append_flow(text, list, items, &flow)?
                } else {
                    let span = seq_item_span(text, items.last().expect("block lists have items"))?;
                    vec![insert_lines(text, span.end, &block(span.indent))]
                }
            }
            _ => return Err(unsupported(list.pos.line, "`dashboards` is not a list")),
        },
    };
    apply(text, changes)
}

fn dashboard_of(item: &Node) -> Option<(&'static str, &str, Option<&str>)> {
    if let Some(name) = scalar(item) {
        return Some(("bundled", name, None));
    }
    let folder = entry(item, "folder").and_then(|(_, v)| scalar(v));
    if let Some(name) = entry(item, "bundled").and_then(|(_, v)| scalar(v)) {
        return Some(("bundled", name, folder));
    }
    let path = entry(item, "file").and_then(|(_, v)| scalar(v))?;
    Some(("file", path, folder))
}

fn normalize_path(path: &str) -> &str {
    path.trim_start_matches("./")
}
