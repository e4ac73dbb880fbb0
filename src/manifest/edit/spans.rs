//! Where things are in the text: the lines around an item of a block list (with the comments
//! that belong to it), and the byte span of a node written on one line or in flow style.

use std::ops::Range;

use super::{unsupported, EditError};
use crate::manifest::yaml::{Node, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineKind {
    Blank,
    Comment,
    Content,
}

pub(super) fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset after the newline ending the line of `offset` (or the end of the text).
pub(super) fn line_end(text: &str, offset: usize) -> usize {
    text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}

/// Indentation (spaces) and kind of the line starting at `start`.
pub(super) fn line_at(text: &str, start: usize) -> (usize, LineKind) {
    let line = &text[start..line_end(text, start)];
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = line.trim();
    let kind = if rest.is_empty() {
        LineKind::Blank
    } else if rest.starts_with('#') {
        LineKind::Comment
    } else {
        LineKind::Content
    };
    (indent, kind)
}

/// The end of the last content line of the block that starts on the line at `start` and goes
/// on while content lines are indented at least `min_indent` (comments and blank lines inside
/// do not end it).
pub(super) fn block_end(text: &str, start: usize, min_indent: usize) -> usize {
    let mut end = line_end(text, start);
    let mut at = end;
    while at < text.len() {
        let next = line_end(text, at);
        match line_at(text, at) {
            (indent, LineKind::Content) if indent < min_indent => break,
            (_, LineKind::Content) => end = next,
            _ => {}
        }
        at = next;
    }
    end
}

/// The lines of one item of a block list.
#[derive(Debug)]
pub(super) struct Span {
    /// Start of the first comment line directly above the item (no blank line between).
    pub(super) start: usize,
    /// Column of the item's `-`.
    pub(super) indent: usize,
    /// End of the item: its last content line, and comment lines right after it that are
    /// indented deeper than its `-` (a commented-out key of the item).
    pub(super) end: usize,
}

pub(super) fn seq_item_span(text: &str, item: &Node) -> Result<Span, EditError> {
    let before = text[..item.pos.offset].trim_end();
    if !before.ends_with('-') {
        return Err(unsupported(
            item.pos.line,
            "a list item with an anchor, alias or tag",
        ));
    }
    let dash = before.len() - 1;
    let line = line_start(text, dash);
    if !text[line..dash].bytes().all(|b| b == b' ') {
        return Err(unsupported(
            item.pos.line,
            "a list item that does not start its line",
        ));
    }
    let indent = dash - line;
    let mut end = block_end(text, line, indent + 1);
    while end < text.len() {
        match line_at(text, end) {
            (i, LineKind::Comment) if i > indent => end = line_end(text, end),
            _ => break,
        }
    }
    let mut start = line;
    while start > 0 {
        let above = line_start(text, start - 1);
        let (i, kind) = line_at(text, above);
        if kind == LineKind::Comment {
            start = above;
            continue;
        }
        let previous_item = kind == LineKind::Content
            && (i > indent || (i == indent && text[above + i..].starts_with('-')));
        if previous_item {
            // Its deeper-indented trailing comments stay with it (see `end`).
            while start < line && line_at(text, start).0 > indent {
                start = line_end(text, start);
            }
        }
        break;
    }
    Ok(Span { start, indent, end })
}

/// What removing a block item deletes: its span, and one blank line after it when there is
/// one before it too (so blank-line separated items stay singly separated).
pub(super) fn removal_range(text: &str, span: &Span) -> Range<usize> {
    let blank_before =
        span.start > 0 && line_at(text, line_start(text, span.start - 1)).1 == LineKind::Blank;
    let mut end = span.end;
    if blank_before && end < text.len() && line_at(text, end).1 == LineKind::Blank {
        end = line_end(text, end);
    }
    span.start..end
}

// ---- Spans of nodes ----

/// The end of a node written on one line or as a flow collection. `flow`: whether it sits
/// inside a flow collection (where `,]}` end a plain scalar).
pub(super) fn node_end(text: &str, node: &Node, flow: bool) -> Result<usize, EditError> {
    let start = node.pos.offset;
    match text.as_bytes().get(start) {
        Some(b'[' | b'{') => Ok(matching_bracket(text, start, node.pos.line)? + 1),
        Some(q @ (b'"' | b'\'')) => quoted_end(text, start, *q, node.pos.line),
        Some(b'&' | b'*' | b'!' | b'|' | b'>') | None => Err(unsupported(
            node.pos.line,
            "a value with an anchor, alias, tag or block scalar",
        )),
        Some(_) => {
            let end = plain_end(text, start, flow);
            let raw = &text[start..end];
            let same = match &node.value {
                Value::Scalar { text: t, .. } => raw == t,
                Value::Null => matches!(raw, "~" | "null" | "Null" | "NULL"),
                _ => false,
            };
            if !same {
                return Err(unsupported(
                    node.pos.line,
                    "a value written over several lines",
                ));
            }
            Ok(end)
        }
    }
}

fn quoted_end(text: &str, start: usize, quote: u8, line: usize) -> Result<usize, EditError> {
    let b = text.as_bytes();
    let mut i = start + 1;
    while i < b.len() {
        if quote == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if quote == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(unsupported(line, "an unterminated quoted value"))
}

fn plain_end(text: &str, start: usize, flow: bool) -> usize {
    let mut end = text.len();
    let mut prev = ' ';
    let mut chars = text[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let stop = match c {
            '\n' | '\r' => true,
            '#' => prev == ' ' || prev == '\t',
            ':' => {
                matches!(next, None | Some(' ' | '\t' | '\n' | '\r'))
                    || (flow && matches!(next, Some(',' | '[' | ']' | '{' | '}')))
            }
            ',' | '[' | ']' | '{' | '}' => flow,
            _ => false,
        };
        if stop {
            end = start + i;
            break;
        }
        prev = c;
    }
    start + text[start..end].trim_end().len()
}

/// The offset of the bracket closing the one at `open`, skipping quoted strings and comments.
pub(super) fn matching_bracket(text: &str, open: usize, line: usize) -> Result<usize, EditError> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut last = b' ';
    let mut i = open;
    while i < b.len() {
        let c = b[i];
        match c {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            b'"' | b'\'' if matches!(last, b'[' | b'{' | b',' | b':' | b'?') => {
                i = quoted_end(text, i, c, line)?;
                last = c;
                continue;
            }
            b'#' if b[i - 1].is_ascii_whitespace() => {
                i = line_end(text, i);
                continue;
            }
            _ => {}
        }
        if !c.is_ascii_whitespace() {
            last = c;
        }
        i += 1;
    }
    Err(unsupported(line, "an unclosed bracket"))
}

/// The offset right after the `:` following `key`.
pub(super) fn after_colon(text: &str, key: &Node, flow: bool) -> Result<usize, EditError> {
    let end = node_end(text, key, flow)?;
    let at = skip_blanks(text, end);
    if text[at..].starts_with(':') {
        Ok(at + 1)
    } else {
        Err(unsupported(key.pos.line, "a key without `: ` after it"))
    }
}

pub(super) fn skip_blanks(text: &str, at: usize) -> usize {
    at + text[at..].len() - text[at..].trim_start_matches([' ', '\t']).len()
}

/// `key:` with nothing after it (not even `~`).
pub(super) fn is_implicit_null(text: &str, at: usize, flow: bool) -> bool {
    match text.as_bytes().get(at) {
        None | Some(b'\n' | b'\r' | b'#') => true,
        Some(b',' | b'}') => flow,
        _ => false,
    }
}

/// The first offset at or after `at` that is neither whitespace nor inside a comment.
pub(super) fn next_significant(text: &str, mut at: usize) -> usize {
    loop {
        at += text[at..].len() - text[at..].trim_start().len();
        if text[at..].starts_with('#') {
            at = line_end(text, at);
        } else {
            return at;
        }
    }
}
