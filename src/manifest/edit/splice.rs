//! Splicing changes into the text: applying byte-range replacements (and proving the result
//! still parses), and the edits of mappings and lists that every section shares: set a null
//! value, add an entry, append to a list, remove a list item.

use super::spans::{
    after_colon, block_end, is_implicit_null, line_end, line_start, matching_bracket,
    next_significant, node_end, removal_range, seq_item_span, skip_blanks,
};
use super::tree::{is_flow, parse_input};
use super::{unsupported, Change, EditError};
use crate::manifest::yaml::{self, Node, Value};

pub(super) fn spaces(n: usize) -> String {
    " ".repeat(n)
}

/// Applies non-overlapping changes and proves the result still parses. Inserted text uses `\n`;
/// it becomes `\r\n` in a file that uses those.
pub(super) fn apply(text: &str, mut changes: Vec<Change>) -> Result<String, EditError> {
    changes.sort_by_key(|(range, _)| std::cmp::Reverse((range.start, range.end)));
    let crlf = text.contains("\r\n");
    let mut out = text.to_string();
    let mut limit = text.len();
    for (range, new) in changes {
        if range.end > limit || range.start > range.end {
            return Err(EditError::Internal {
                message: format!("overlapping changes at byte {}", range.start),
            });
        }
        let new = if crlf { new.replace('\n', "\r\n") } else { new };
        out.replace_range(range.clone(), &new);
        limit = range.start;
    }
    yaml::parse(&out).map_err(|e| EditError::Internal {
        message: format!("line {}: {}", e.pos.line, e.message),
    })?;
    Ok(out)
}

/// Parses `text`, computes changes with `f` and applies them.
pub(super) fn step(
    text: String,
    f: impl FnOnce(&str, &Node) -> Result<Vec<Change>, EditError>,
) -> Result<String, EditError> {
    let root = parse_input(&text)?;
    let changes = f(&text, &root)?;
    if changes.is_empty() {
        return Ok(text);
    }
    apply(&text, changes)
}

/// Inserts whole lines at `at` (a line start, or the end of a text without a final newline).
pub(super) fn insert_lines(text: &str, at: usize, lines: &str) -> Change {
    if at == text.len() && !text.is_empty() && !text.ends_with('\n') {
        // Keep the file's lack of a final newline.
        (
            at..at,
            format!("\n{}", lines.strip_suffix('\n').unwrap_or(lines)),
        )
    } else {
        (at..at, lines.to_string())
    }
}

/// A new top-level `key:` section at the end of the document.
pub(super) fn append_section(text: &str, key: &str, lines: &str) -> Change {
    let newline = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    (text.len()..text.len(), format!("{newline}{key}:\n{lines}"))
}

/// Replaces a null value (`key:` or `key: ~`) with `value`.
pub(super) fn set_null(
    text: &str,
    key: &Node,
    value: &Node,
    flow: bool,
    new: &str,
) -> Result<Vec<Change>, EditError> {
    let colon = after_colon(text, key, flow)?;
    let at = skip_blanks(text, colon);
    if is_implicit_null(text, at, flow) {
        return Ok(vec![(colon..colon, format!(" {new}"))]);
    }
    if at != value.pos.offset {
        return Err(unsupported(
            value.pos.line,
            "a null value with a tag or anchor",
        ));
    }
    Ok(vec![(at..node_end(text, value, flow)?, new.to_string())])
}

/// Adds `key: value` at the end of a block or flow mapping.
pub(super) fn add_entry(
    text: &str,
    map: &Node,
    key: &str,
    value: &str,
) -> Result<Vec<Change>, EditError> {
    let Value::Map(entries) = &map.value else {
        return Err(unsupported(map.pos.line, "not a mapping"));
    };
    if is_flow(text, map) {
        let open = map.pos.offset;
        let Some((k, v)) = entries.last() else {
            let close = matching_bracket(text, open, map.pos.line)?;
            let at = if text[open + 1..close].trim().is_empty() {
                close
            } else {
                open + 1
            };
            return Ok(vec![(at..at, format!("{key}: {value}"))]);
        };
        let end = match v.value {
            Value::Null => after_colon(text, k, true)?,
            _ => node_end(text, v, true)?,
        };
        return Ok(vec![(end..end, format!(", {key}: {value}"))]);
    }
    let line = line_start(text, map.pos.offset);
    let col = map.pos.offset - line;
    let end = block_end(text, line, col);
    Ok(vec![insert_lines(
        text,
        end,
        &format!("{}{key}: {value}\n", spaces(col)),
    )])
}

/// Appends `element` to a flow list.
pub(super) fn append_flow(
    text: &str,
    list: &Node,
    items: &[Node],
    element: &str,
) -> Result<Vec<Change>, EditError> {
    let open = list.pos.offset;
    let Some(last) = items.last() else {
        let close = matching_bracket(text, open, list.pos.line)?;
        return Ok(if text[open + 1..close].trim().is_empty() {
            vec![(open..close + 1, format!("[{element}]"))]
        } else {
            vec![(open + 1..open + 1, element.to_string())]
        });
    };
    let end = node_end(text, last, true)?;
    Ok(vec![(end..end, format!(", {element}"))])
}

/// Replaces `key:` / `key: ~` / `key: []` (a top-level key) with a block list of `lines`.
pub(super) fn start_block_list(
    text: &str,
    key: &Node,
    value: &Node,
    lines: &str,
) -> Result<Vec<Change>, EditError> {
    let colon = after_colon(text, key, false)?;
    let at = skip_blanks(text, colon);
    let end = if is_implicit_null(text, at, false) {
        colon
    } else if at != value.pos.offset {
        return Err(unsupported(value.pos.line, "a value with a tag or anchor"));
    } else if matches!(&value.value, Value::Seq(items) if items.is_empty()) {
        let close = matching_bracket(text, at, value.pos.line)?;
        if !text[at + 1..close].trim().is_empty() {
            return Err(unsupported(value.pos.line, "comments inside an empty list"));
        }
        close + 1
    } else {
        node_end(text, value, false)?
    };
    Ok(vec![
        (colon..end, String::new()),
        insert_lines(text, line_end(text, end), lines),
    ])
}

/// Removes item `index` of `list`, the value of `key` (in a flow mapping when `key_flow`).
pub(super) fn remove_from_seq(
    text: &str,
    key: &Node,
    key_flow: bool,
    list: &Node,
    index: usize,
) -> Result<Vec<Change>, EditError> {
    let Value::Seq(items) = &list.value else {
        return Err(unsupported(list.pos.line, "not a list"));
    };
    if is_flow(text, list) {
        return remove_flow_element(text, list, items, index);
    }
    let span = seq_item_span(text, &items[index])?;
    let mut changes = vec![(removal_range(text, &span), String::new())];
    if items.len() == 1 {
        let colon = after_colon(text, key, key_flow)?;
        changes.push((colon..colon, " []".into()));
    }
    Ok(changes)
}

fn remove_flow_element(
    text: &str,
    list: &Node,
    items: &[Node],
    index: usize,
) -> Result<Vec<Change>, EditError> {
    let item = &items[index];
    let start = item.pos.offset;
    if matches!(text.as_bytes().get(start), Some(b'&' | b'*' | b'!')) {
        return Err(unsupported(
            item.pos.line,
            "a list item with an anchor or tag",
        ));
    }
    let end = node_end(text, item, true)?;
    // A comma right after the element, on its line.
    let after = skip_blanks(text, end);
    let own_comma = text[after..].starts_with(',').then_some(after + 1);
    if items.len() == 1 {
        let close = matching_bracket(text, list.pos.offset, list.pos.line)?;
        let inner = list.pos.offset + 1..close;
        if !text[inner.clone()].contains('#') {
            return Ok(vec![(inner, String::new())]);
        }
        return Ok(vec![(start..own_comma.unwrap_or(end), String::new())]);
    }
    if index + 1 < items.len() {
        return Ok(vec![(start..items[index + 1].pos.offset, String::new())]);
    }
    // The last of several: also drop the separator before it.
    let prev_end = node_end(text, &items[index - 1], true)?;
    if line_start(text, prev_end) == line_start(text, start) {
        return Ok(vec![(prev_end..end, String::new())]);
    }
    let mut changes = Vec::new();
    if own_comma.is_none() {
        let comma = next_significant(text, prev_end);
        if !text[comma..].starts_with(',') {
            return Err(unsupported(item.pos.line, "a flow list without commas"));
        }
        changes.push((comma..comma + 1, String::new()));
    }
    let line = line_start(text, start);
    let tail = &text[own_comma.unwrap_or(end)..line_end(text, end)];
    let tail = tail.trim();
    if text[line..start].trim().is_empty() && (tail.is_empty() || tail.starts_with('#')) {
        changes.push((line..line_end(text, end), String::new()));
    } else {
        changes.push((start..own_comma.unwrap_or(end), String::new()));
    }
    Ok(changes)
}
