//! Edits `monstack.yaml` as text, for the commands that change it (add a target, remove a
//! target, add a dashboard).
//!
//! The manifest is the user's file: its comments, blank lines, quoting and layout are theirs.
//! Loading and re-serialising would lose all of that, so these functions find spans with the
//! positions from [`yaml::parse`] and splice in only the bytes that must change. Every edit is
//! re-parsed before it is returned. Shapes that cannot be edited safely (anchors and aliases,
//! block scalars, multi-line plain scalars, a flow-style document) are refused with
//! [`EditError::Unsupported`] rather than guessed at.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::manifest::yaml::{self, Node, Value};

/// Settings for a job, written when given (`None` / empty = leave as is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSettings {
    pub path: Option<String>,
    pub scheme: Option<String>,
    pub interval: Option<String>,
    /// Merged into the job's labels: existing keys get the new value, others are added.
    pub labels: BTreeMap<String, String>,
}

/// The edited manifest text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub text: String,
    /// Whether the job did not exist and was added.
    pub created_job: bool,
}

/// One entry of `dashboards:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DashboardEntry {
    Bundled(String),
    File {
        path: String,
        folder: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("job `{job}` already has the target `{addr}`")]
    Duplicate { job: String, addr: String },
    #[error("job `{job}` has no target `{addr}`")]
    NotFound { job: String, addr: String },
    #[error("there is no job `{job}` under `targets:`")]
    NoSuchJob { job: String },
    #[error("the dashboard `{source_name}` is already listed at line {line}, with another folder")]
    DashboardConflict { source_name: String, line: usize },
    #[error("the manifest is not valid YAML (line {line}): {message}")]
    Invalid { line: usize, message: String },
    #[error("cannot edit line {line} of the manifest automatically: {message}")]
    Unsupported { line: usize, message: String },
    #[error(
        "internal error: the edited manifest would not parse ({message}); nothing was changed"
    )]
    Internal { message: String },
}

/// A replacement of a byte range of the text.
type Change = (Range<usize>, String);

/// Adds `addrs` to `job`, creating the job (with `settings`) when it does not exist; for an
/// existing job the given settings are set or replaced and the labels merged.
pub fn add_targets(
    text: &str,
    job: &str,
    addrs: &[String],
    settings: &JobSettings,
) -> Result<Edit, EditError> {
    let root = parse_input(text)?;
    for (i, addr) in addrs.iter().enumerate() {
        if addrs[..i].contains(addr) {
            return Err(EditError::Duplicate {
                job: job.into(),
                addr: addr.clone(),
            });
        }
    }
    let Some(item) = find_job(text, &root, job)? else {
        let changes = new_job(text, &root, job, addrs, settings)?;
        return Ok(Edit {
            text: apply(text, changes)?,
            created_job: true,
        });
    };
    let existing = job_addresses(item);
    if let Some(addr) = addrs.iter().find(|a| existing.contains(&a.as_str())) {
        return Err(EditError::Duplicate {
            job: job.into(),
            addr: addr.clone(),
        });
    }
    // One change at a time, each on a fresh parse: simpler than keeping offsets in step.
    let mut out = text.to_string();
    for addr in addrs {
        out = step(out, |t, root| add_address(t, job_item(t, root, job)?, addr))?;
    }
    let keys = [
        ("path", &settings.path),
        ("scheme", &settings.scheme),
        ("interval", &settings.interval),
    ];
    for (key, value) in keys {
        if let Some(value) = value {
            out = step(out, |t, root| {
                set_entry(t, job_item(t, root, job)?, key, value)
            })?;
        }
    }
    for (name, value) in &settings.labels {
        out = step(out, |t, root| {
            set_label(t, job_item(t, root, job)?, name, value)
        })?;
    }
    Ok(Edit {
        text: out,
        created_job: false,
    })
}

/// Removes `addrs` from `job`, or the whole job when `addrs` is empty. Removing the last job
/// leaves `targets: []`; removing a job's last target leaves its `targets: []`.
pub fn remove_targets(text: &str, job: &str, addrs: &[String]) -> Result<Edit, EditError> {
    let root = parse_input(text)?;
    let item = job_item(text, &root, job)?;
    let existing = job_addresses(item);
    if let Some(addr) = addrs.iter().find(|a| !existing.contains(&a.as_str())) {
        return Err(EditError::NotFound {
            job: job.into(),
            addr: addr.clone(),
        });
    }
    let mut out = text.to_string();
    if addrs.is_empty() {
        out = step(out, |t, root| {
            let (key, list) = top_entry(t, root, "targets")?.ok_or_else(|| no_job(job))?;
            let Value::Seq(items) = &list.value else {
                return Err(no_job(job));
            };
            let index = items
                .iter()
                .position(|i| job_name(i) == Some(job))
                .ok_or_else(|| no_job(job))?;
            remove_from_seq(t, key, false, list, index)
        })?;
    }
    let mut done: Vec<&String> = Vec::new();
    for addr in addrs {
        if done.contains(&addr) {
            continue;
        }
        done.push(addr);
        out = step(out, |t, root| {
            let item = job_item(t, root, job)?;
            let flow = is_flow(t, item);
            let (key, list) =
                entry_to_edit(t, item, "targets")?.ok_or_else(|| not_found(job, addr))?;
            let Value::Seq(items) = &list.value else {
                return Err(not_found(job, addr));
            };
            let index = items
                .iter()
                .position(|i| scalar(i) == Some(addr))
                .ok_or_else(|| not_found(job, addr))?;
            remove_from_seq(t, key, flow, list, index)
        })?;
    }
    Ok(Edit {
        text: out,
        created_job: false,
    })
}

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

/// A scalar as YAML writes it: plain when that reads back as the same string, else
/// double-quoted.
fn yaml_scalar(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        double_quoted(s)
    }
}

fn is_plain_safe(s: &str) -> bool {
    const SPECIAL_START: &str = "-?:,[]{}#&*!|>'\"%@`. ";
    !s.is_empty()
        && s.trim() == s
        && !s.starts_with(|c| SPECIAL_START.contains(c))
        && !s.chars().any(|c| c.is_control() || ",[]{}".contains(c))
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !looks_like_non_string(s)
}

/// Values YAML (1.1 or 1.2) reads as null, booleans, numbers or dates when unquoted.
fn looks_like_non_string(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) {
        return true;
    }
    let digits = s.trim_start_matches(['+', '-']);
    s.parse::<f64>().is_ok()
        || lower.starts_with("0x")
        || lower.starts_with("0o")
        || (digits.starts_with(|c: char| c.is_ascii_digit())
            && digits
                .chars()
                .all(|c| c.is_ascii_digit() || "_:.-".contains(c)))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` quoted like `model` (an existing item of the same list); double quotes by default.
fn quote_like(text: &str, model: Option<&Node>, s: &str) -> String {
    let Some(model) = model else {
        return double_quoted(s);
    };
    match (&model.value, text.as_bytes().get(model.pos.offset)) {
        (Value::Scalar { quoted: true, .. }, Some(b'\'')) if !s.chars().any(char::is_control) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        (Value::Scalar { quoted: false, .. }, _) => yaml_scalar(s),
        _ => double_quoted(s),
    }
}

fn spaces(n: usize) -> String {
    " ".repeat(n)
}

// ---- Reading the tree ----

fn parse_input(text: &str) -> Result<Node, EditError> {
    yaml::parse(text).map_err(|e| EditError::Invalid {
        line: e.pos.line,
        message: e.message,
    })
}

fn scalar(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

fn entry<'n>(map: &'n Node, key: &str) -> Option<(&'n Node, &'n Node)> {
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
fn entry_to_edit<'n>(
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

fn is_flow(text: &str, node: &Node) -> bool {
    matches!(
        (&node.value, text.as_bytes().get(node.pos.offset)),
        (Value::Seq(_), Some(b'[')) | (Value::Map(_), Some(b'{'))
    )
}

fn job_name(item: &Node) -> Option<&str> {
    entry(item, "job").and_then(|(_, v)| scalar(v))
}

fn job_addresses(item: &Node) -> Vec<&str> {
    match entry(item, "targets").map(|(_, v)| &v.value) {
        Some(Value::Seq(items)) => items.iter().filter_map(scalar).collect(),
        _ => Vec::new(),
    }
}

/// The top-level `key: value` entry; the document must be a block mapping (or empty).
fn top_entry<'n>(
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

fn find_job<'n>(text: &str, root: &'n Node, job: &str) -> Result<Option<&'n Node>, EditError> {
    let Some((_, list)) = top_entry(text, root, "targets")? else {
        return Ok(None);
    };
    match &list.value {
        Value::Null => Ok(None),
        Value::Seq(items) => match items.iter().find(|i| job_name(i) == Some(job)) {
            Some(item) if text.as_bytes().get(item.pos.offset) == Some(&b'*') => Err(unsupported(
                item.pos.line,
                format!("job `{job}` is an alias (`*name`)"),
            )),
            found => Ok(found),
        },
        _ => Err(unsupported(
            list.pos.line,
            "`targets` is not a list of jobs",
        )),
    }
}

fn job_item<'n>(text: &str, root: &'n Node, job: &str) -> Result<&'n Node, EditError> {
    find_job(text, root, job)?.ok_or_else(|| no_job(job))
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

fn no_job(job: &str) -> EditError {
    EditError::NoSuchJob { job: job.into() }
}

fn not_found(job: &str, addr: &str) -> EditError {
    EditError::NotFound {
        job: job.into(),
        addr: addr.into(),
    }
}

fn unsupported(line: usize, message: impl Into<String>) -> EditError {
    EditError::Unsupported {
        line,
        message: message.into(),
    }
}

// ---- Applying changes ----

/// Applies non-overlapping changes and proves the result still parses. Inserted text uses `\n`;
/// it becomes `\r\n` in a file that uses those.
fn apply(text: &str, mut changes: Vec<Change>) -> Result<String, EditError> {
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
fn step(
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
fn insert_lines(text: &str, at: usize, lines: &str) -> Change {
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
fn append_section(text: &str, key: &str, lines: &str) -> Change {
    let newline = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    (text.len()..text.len(), format!("{newline}{key}:\n{lines}"))
}

// ---- Lines ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Blank,
    Comment,
    Content,
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset after the newline ending the line of `offset` (or the end of the text).
fn line_end(text: &str, offset: usize) -> usize {
    text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}

/// Indentation (spaces) and kind of the line starting at `start`.
fn line_at(text: &str, start: usize) -> (usize, LineKind) {
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
fn block_end(text: &str, start: usize, min_indent: usize) -> usize {
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
struct Span {
    /// Start of the first comment line directly above the item (no blank line between).
    start: usize,
    /// Column of the item's `-`.
    indent: usize,
    /// End of the item: its last content line, and comment lines right after it that are
    /// indented deeper than its `-` (a commented-out key of the item).
    end: usize,
}

fn seq_item_span(text: &str, item: &Node) -> Result<Span, EditError> {
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
fn removal_range(text: &str, span: &Span) -> Range<usize> {
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
fn node_end(text: &str, node: &Node, flow: bool) -> Result<usize, EditError> {
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
fn matching_bracket(text: &str, open: usize, line: usize) -> Result<usize, EditError> {
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
fn after_colon(text: &str, key: &Node, flow: bool) -> Result<usize, EditError> {
    let end = node_end(text, key, flow)?;
    let at = skip_blanks(text, end);
    if text[at..].starts_with(':') {
        Ok(at + 1)
    } else {
        Err(unsupported(key.pos.line, "a key without `: ` after it"))
    }
}

fn skip_blanks(text: &str, at: usize) -> usize {
    at + text[at..].len() - text[at..].trim_start_matches([' ', '\t']).len()
}

/// `key:` with nothing after it (not even `~`).
fn is_implicit_null(text: &str, at: usize, flow: bool) -> bool {
    match text.as_bytes().get(at) {
        None | Some(b'\n' | b'\r' | b'#') => true,
        Some(b',' | b'}') => flow,
        _ => false,
    }
}

/// Replaces a null value (`key:` or `key: ~`) with `value`.
fn set_null(
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

// ---- Edits ----

/// Sets `key` in `map` (a job, or its labels) to the scalar `value`, adding it when missing.
fn set_entry(text: &str, map: &Node, key: &str, value: &str) -> Result<Vec<Change>, EditError> {
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

fn set_label(text: &str, job: &Node, name: &str, value: &str) -> Result<Vec<Change>, EditError> {
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

/// Adds `key: value` at the end of a block or flow mapping.
fn add_entry(text: &str, map: &Node, key: &str, value: &str) -> Result<Vec<Change>, EditError> {
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

fn add_address(text: &str, job: &Node, addr: &str) -> Result<Vec<Change>, EditError> {
    let Some((k, v)) = entry_to_edit(text, job, "targets")? else {
        return add_entry(text, job, "targets", &format!("[{}]", double_quoted(addr)));
    };
    match &v.value {
        Value::Null => set_null(
            text,
            k,
            v,
            is_flow(text, job),
            &format!("[{}]", double_quoted(addr)),
        ),
        Value::Seq(items) if is_flow(text, v) => {
            append_flow(text, v, items, &quote_like(text, items.last(), addr))
        }
        Value::Seq(items) => {
            let last = items.last().expect("block lists have items");
            let span = seq_item_span(text, last)?;
            let line = format!(
                "{}- {}\n",
                spaces(span.indent),
                quote_like(text, Some(last), addr)
            );
            Ok(vec![insert_lines(text, span.end, &line)])
        }
        _ => Err(unsupported(v.pos.line, "the job's `targets` is not a list")),
    }
}

/// Appends `element` to a flow list.
fn append_flow(
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
fn start_block_list(
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

/// The changes adding a job that does not exist yet.
fn new_job(
    text: &str,
    root: &Node,
    job: &str,
    addrs: &[String],
    settings: &JobSettings,
) -> Result<Vec<Change>, EditError> {
    let targets: Vec<String> = addrs.iter().map(|a| double_quoted(a)).collect();
    let mut fields = vec![
        ("job", yaml_scalar(job)),
        ("targets", format!("[{}]", targets.join(", "))),
    ];
    for (key, value) in [
        ("path", &settings.path),
        ("scheme", &settings.scheme),
        ("interval", &settings.interval),
    ] {
        if let Some(value) = value {
            fields.push((key, yaml_scalar(value)));
        }
    }
    if !settings.labels.is_empty() {
        let labels: Vec<String> = settings
            .labels
            .iter()
            .map(|(k, v)| format!("{}: {}", yaml_scalar(k), yaml_scalar(v)))
            .collect();
        fields.push(("labels", format!("{{{}}}", labels.join(", "))));
    }
    let flow = format!(
        "{{{}}}",
        fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let block = |dash: usize, keys: usize| {
        let mut s = spaces(dash) + "-" + &spaces(keys.saturating_sub(dash + 1).max(1));
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                s += &spaces(keys);
            }
            s += &format!("{k}: {v}\n");
        }
        s
    };
    let Some((key, list)) = top_entry(text, root, "targets")? else {
        return Ok(vec![append_section(text, "targets", &block(2, 4))]);
    };
    match &list.value {
        Value::Null => start_block_list(text, key, list, &block(2, 4)),
        Value::Seq(items) if is_flow(text, list) && items.is_empty() => {
            start_block_list(text, key, list, &block(2, 4))
        }
        Value::Seq(items) if is_flow(text, list) => append_flow(text, list, items, &flow),
        Value::Seq(items) => {
            let last = items.last().expect("block lists have items");
            let span = seq_item_span(text, last)?;
            let mut lines = if matches!(last.value, Value::Map(_)) && !is_flow(text, last) {
                block(
                    span.indent,
                    last.pos.offset - line_start(text, last.pos.offset),
                )
            } else {
                format!("{}- {flow}\n", spaces(span.indent))
            };
            // Jobs separated by blank lines get one too.
            if span.start > 0
                && line_at(text, line_start(text, span.start - 1)).1 == LineKind::Blank
            {
                lines.insert(0, '\n');
            }
            Ok(vec![insert_lines(text, span.end, &lines)])
        }
        _ => Err(unsupported(
            list.pos.line,
            "`targets` is not a list of jobs",
        )),
    }
}

/// Removes item `index` of `list`, the value of `key` (in a flow mapping when `key_flow`).
fn remove_from_seq(
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

/// The first offset at or after `at` that is neither whitespace nor inside a comment.
fn next_significant(text: &str, mut at: usize) -> usize {
    loop {
        at += text[at..].len() - text[at..].trim_start().len();
        if text[at..].starts_with('#') {
            at = line_end(text, at);
        } else {
            return at;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::manifest::{load, Source};
    use crate::model::{Scheme, Stack};

    const FIXTURE: &str = include_str!("../../tests/fixtures/manifests/commented/monstack.yaml");

    fn fixture_dir(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/manifests")
            .join(name)
    }

    /// Loads `text` with the real loader; panics with the diagnostics when it is not valid.
    fn load_at(text: &str, dir: &str) -> Stack {
        let root = fixture_dir(dir);
        let source = Source {
            text,
            display_name: "monstack.yaml",
            root: &root,
        };
        load(&source, &|_| None).unwrap_or_else(|d| panic!("not a valid manifest:\n{d}\n{text}"))
    }

    type View = Vec<(String, Vec<String>)>;

    /// The loader's view of the jobs and their targets.
    fn jobs(text: &str) -> View {
        load_at(text, "commented")
            .jobs
            .iter()
            .map(|j| (j.name.clone(), j.targets.clone()))
            .collect()
    }

    fn view(jobs: &[(&str, &[&str])]) -> View {
        jobs.iter()
            .map(|(name, targets)| (name.to_string(), strings(targets)))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn fixture_view() -> View {
        view(&[
            (
                "order",
                &["host.docker.internal:8085", "host.docker.internal:8086"],
            ),
            ("payment", &["10.0.0.5:9100", "10.0.0.6:9100"]),
            ("inventory", &["inventory-1:9100", "inventory-2:9100"]),
            ("shipping", &["ship-1:9100", "ship-2:9100"]),
            ("batch", &["batch:9091"]),
        ])
    }

    fn add(text: &str, job: &str, addrs: &[&str]) -> Result<Edit, EditError> {
        add_targets(text, job, &strings(addrs), &JobSettings::default())
    }

    fn remove(text: &str, job: &str, addrs: &[&str]) -> Result<Edit, EditError> {
        remove_targets(text, job, &strings(addrs))
    }

    /// The lines of a job's item, found independently of the code under test: the comments
    /// directly above its `- job:` line, its lines down to the last one indented deeper than
    /// its `-`, and comment lines right after those that are indented deeper too.
    fn job_lines(text: &str, job: &str) -> Option<Range<usize>> {
        let mut lines = Vec::new();
        let mut at = 0;
        for line in text.split_inclusive('\n') {
            lines.push((at, line));
            at += line.len();
        }
        let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
        let comment = |l: &str| l.trim_start().starts_with('#');
        let content = |l: &str| !l.trim().is_empty() && !comment(l);
        let i = lines.iter().position(|(_, l)| {
            let t = l.trim_start();
            t.starts_with(&format!("- job: {job} "))
                || t.trim_end() == format!("- job: {job}")
                || t.starts_with(&format!("- {{job: {job},"))
        })?;
        let dash = indent(lines[i].1);
        let mut first = i;
        while first > 0 && comment(lines[first - 1].1) {
            first -= 1;
        }
        let mut last = i;
        for (j, (_, l)) in lines.iter().enumerate().skip(i + 1) {
            if content(l) {
                if indent(l) <= dash {
                    break;
                }
                last = j;
            }
        }
        while last + 1 < lines.len()
            && comment(lines[last + 1].1)
            && indent(lines[last + 1].1) > dash
        {
            last += 1;
        }
        Some(lines[first].0..lines[last].0 + lines[last].1.len())
    }

    /// Everything outside the job's lines is byte-identical before and after the edit.
    fn assert_only_job_changed(input: &str, output: &str, job: &str) {
        let before = job_lines(input, job).expect("the job is in the input");
        let after = job_lines(output, job).expect("the job is in the output");
        assert_eq!(before.start, after.start, "the job moved:\n{output}");
        assert_eq!(&output[..after.start], &input[..before.start]);
        assert_eq!(
            &output[after.end..],
            &input[before.end..],
            "bytes after job `{job}` changed:\n{output}"
        );
    }

    /// Every comment, whole-line or trailing (the fixture has no `#` inside values).
    fn comments(text: &str) -> Vec<&str> {
        text.lines()
            .filter_map(|l| match l.trim_start().starts_with('#') {
                true => Some(l.trim()),
                false => l.find(" #").map(|i| l[i..].trim()),
            })
            .collect()
    }

    #[test]
    fn the_fixture_loads_as_expected() {
        assert_eq!(jobs(FIXTURE), fixture_view());
        assert!(FIXTURE.contains("日本語") && FIXTURE.contains("ダッシュボード"));
    }

    // ---- add_targets: existing jobs ----

    #[test]
    fn adds_to_a_block_list_with_the_items_indentation_and_quotes() {
        let out = add(FIXTURE, "order", &["host.docker.internal:8087"]).unwrap();
        assert!(!out.created_job);
        let expected = FIXTURE.replace(
            "      - \"host.docker.internal:8086\"\n",
            "      - \"host.docker.internal:8086\"\n      - \"host.docker.internal:8087\"\n",
        );
        assert_eq!(out.text, expected);
        assert_only_job_changed(FIXTURE, &out.text, "order");
        let mut want = fixture_view();
        want[0].1.push("host.docker.internal:8087".into());
        assert_eq!(jobs(&out.text), want);
    }

    #[test]
    fn adds_to_a_flow_list_after_its_last_item_in_its_quote_style() {
        let out = add(FIXTURE, "payment", &["10.0.0.7:9100", "10.0.0.8:9100"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "'10.0.0.6:9100']",
                "'10.0.0.6:9100', '10.0.0.7:9100', '10.0.0.8:9100']"
            )
        );
        assert_only_job_changed(FIXTURE, &out.text, "payment");
        let mut want = fixture_view();
        want[1]
            .1
            .extend(strings(&["10.0.0.7:9100", "10.0.0.8:9100"]));
        assert_eq!(jobs(&out.text), want);
    }

    #[test]
    fn adds_to_a_plain_list_indented_like_its_key() {
        let out = add(FIXTURE, "inventory", &["inventory-3:9100", "[::1]:9100"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "    - inventory-2:9100   # plain scalars\n",
                "    - inventory-2:9100   # plain scalars\n    - inventory-3:9100\n    - \"[::1]:9100\"\n"
            )
        );
        assert_only_job_changed(FIXTURE, &out.text, "inventory");
        let mut want = fixture_view();
        want[2]
            .1
            .extend(strings(&["inventory-3:9100", "[::1]:9100"]));
        assert_eq!(jobs(&out.text), want);
    }

    #[test]
    fn adds_to_a_multi_line_flow_list_keeping_its_comments() {
        let out = add(FIXTURE, "shipping", &["ship-3:9100"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "\"ship-2:9100\",   # us",
                "\"ship-2:9100\", \"ship-3:9100\",   # us"
            )
        );
        assert_only_job_changed(FIXTURE, &out.text, "shipping");
        let mut want = fixture_view();
        want[3].1.push("ship-3:9100".into());
        assert_eq!(jobs(&out.text), want);
    }

    #[test]
    fn adds_to_a_flow_job() {
        let out = add(FIXTURE, "batch", &["batch:9092"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace("[\"batch:9091\"]", "[\"batch:9091\", \"batch:9092\"]")
        );
        assert_only_job_changed(FIXTURE, &out.text, "batch");
        let mut want = fixture_view();
        want[4].1.push("batch:9092".into());
        assert_eq!(jobs(&out.text), want);
    }

    #[test]
    fn an_address_already_in_the_job_is_a_duplicate_and_nothing_is_written() {
        for (job, addr) in [
            ("order", "host.docker.internal:8086"),
            ("payment", "10.0.0.6:9100"),
            ("inventory", "inventory-1:9100"),
            ("shipping", "ship-2:9100"),
            ("batch", "batch:9091"),
        ] {
            let err = add(FIXTURE, job, &["new:1", addr]).unwrap_err();
            assert_eq!(
                err,
                EditError::Duplicate {
                    job: job.into(),
                    addr: addr.into()
                }
            );
        }
        // Adding twice: the second time is refused.
        let once = add(FIXTURE, "order", &["h:1"]).unwrap().text;
        assert!(matches!(
            add(&once, "order", &["h:1"]),
            Err(EditError::Duplicate { .. })
        ));
        let created = add(FIXTURE, "fresh", &["h:1"]).unwrap().text;
        assert!(matches!(
            add(&created, "fresh", &["h:1"]),
            Err(EditError::Duplicate { .. })
        ));
        // The same address twice in one call.
        assert!(matches!(
            add(FIXTURE, "order", &["h:1", "h:1"]),
            Err(EditError::Duplicate { .. })
        ));
    }

    #[test]
    fn a_job_without_targets_gets_a_targets_line() {
        let text = "targets:\n  - job: lonely   # no targets yet\n    path: /m   # custom\n  - {job: flowing}\n  - job: nulled\n    targets:   # none\n  - job: empty\n    targets: [ ]\n";
        let out = add(text, "lonely", &["a:1"]).unwrap().text;
        assert_eq!(
            out,
            text.replace(
                "    path: /m   # custom\n",
                "    path: /m   # custom\n    targets: [\"a:1\"]\n"
            )
        );
        let out = add(&out, "flowing", &["b:1"]).unwrap().text;
        assert!(
            out.contains("  - {job: flowing, targets: [\"b:1\"]}\n"),
            "{out}"
        );
        let out = add(&out, "nulled", &["c:1"]).unwrap().text;
        assert!(out.contains("    targets: [\"c:1\"]   # none\n"), "{out}");
        let out = add(&out, "empty", &["d:1"]).unwrap().text;
        assert!(out.contains("    targets: [\"d:1\"]\n"), "{out}");
        assert_eq!(
            jobs(&out),
            view(&[
                ("lonely", &["a:1"]),
                ("flowing", &["b:1"]),
                ("nulled", &["c:1"]),
                ("empty", &["d:1"]),
            ])
        );
    }

    // ---- add_targets: new jobs ----

    #[test]
    fn a_new_job_goes_after_the_last_job_in_its_style() {
        // The fixture's last job is a flow mapping.
        let out = add(FIXTURE, "cache", &["cache:6379"]).unwrap();
        assert!(out.created_job);
        let line =
            "  - {job: batch, targets: [\"batch:9091\"], labels: {team: data}}   # a flow job\n";
        assert_eq!(
            out.text,
            FIXTURE.replace(
                line,
                &format!("{line}  - {{job: cache, targets: [\"cache:6379\"]}}\n")
            )
        );
        let mut want = fixture_view();
        want.push(("cache".into(), strings(&["cache:6379"])));
        assert_eq!(jobs(&out.text), want);

        // Block jobs separated by blank lines, with a commented-out key trailing the last.
        let text = "# jobs\ntargets:\n\n  - job: a\n    targets: [\"a:1\"]\n\n  -   job: b   # b\n      targets:\n        - \"b:1\"\n      # timeout: 5s\n  # end of jobs\ndashboards: [go-runtime]\n";
        let settings = JobSettings {
            path: Some("/stats".into()),
            scheme: Some("https".into()),
            interval: Some("30s".into()),
            labels: BTreeMap::from([("env".into(), "prod: eu".into())]),
        };
        let out = add_targets(text, "c", &strings(&["c:1", "c:2"]), &settings).unwrap();
        assert_eq!(
            out.text,
            text.replace(
                "      # timeout: 5s\n",
                "      # timeout: 5s\n\n  -   job: c\n      targets: [\"c:1\", \"c:2\"]\n      path: /stats\n      scheme: https\n      interval: 30s\n      labels: {env: \"prod: eu\"}\n"
            )
        );
        let stack = load_at(&out.text, "commented");
        let c = &stack.jobs[2];
        assert_eq!(
            (c.name.as_str(), c.metrics_path.as_str(), c.scheme),
            ("c", "/stats", Scheme::Https)
        );
        assert_eq!(c.targets, strings(&["c:1", "c:2"]));
        assert_eq!(c.interval.map(|d| d.to_string()).as_deref(), Some("30s"));
        assert_eq!(c.labels["env"], "prod: eu");
    }

    #[test]
    fn a_new_job_replaces_an_empty_or_null_targets_with_a_block_list() {
        for (text, expected) in [
            (
                "project: p\ntargets: []   # none yet\n# next\nprometheus: {}\n",
                "project: p\ntargets:   # none yet\n  - job: web\n    targets: [\"web:80\"]\n# next\nprometheus: {}\n",
            ),
            (
                "targets:\n# next\nprometheus: {}\n",
                "targets:\n  - job: web\n    targets: [\"web:80\"]\n# next\nprometheus: {}\n",
            ),
            (
                "targets: ~  # nothing\n",
                "targets:  # nothing\n  - job: web\n    targets: [\"web:80\"]\n",
            ),
            ("targets: []", "targets:\n  - job: web\n    targets: [\"web:80\"]"),
        ] {
            let out = add(text, "web", &["web:80"]).unwrap();
            assert!(out.created_job);
            assert_eq!(out.text, expected);
            assert_eq!(jobs(&out.text), view(&[("web", &["web:80"])]));
        }
    }

    #[test]
    fn a_new_job_without_a_targets_key_appends_a_section() {
        for (text, expected) in [
            (
                "# only a comment\nproject: p  # x\n",
                "# only a comment\nproject: p  # x\ntargets:\n  - job: web\n    targets: [\"web:80\"]\n",
            ),
            (
                "project: p  # no final newline",
                "project: p  # no final newline\ntargets:\n  - job: web\n    targets: [\"web:80\"]\n",
            ),
            ("", "targets:\n  - job: web\n    targets: [\"web:80\"]\n"),
            (
                "# just comments\n",
                "# just comments\ntargets:\n  - job: web\n    targets: [\"web:80\"]\n",
            ),
        ] {
            let out = add(text, "web", &["web:80"]).unwrap();
            assert_eq!(out.text, expected);
            assert_eq!(jobs(&out.text), view(&[("web", &["web:80"])]));
        }
    }

    #[test]
    fn a_flow_list_of_jobs_gets_a_flow_job() {
        let text = "targets: [{job: a, targets: [\"a:1\"]}]  # flow\n";
        let out = add(text, "b", &["b:1"]).unwrap().text;
        assert_eq!(
            out,
            "targets: [{job: a, targets: [\"a:1\"]}, {job: b, targets: [\"b:1\"]}]  # flow\n"
        );
        let out = remove(&out, "a", &[]).unwrap().text;
        assert_eq!(out, "targets: [{job: b, targets: [\"b:1\"]}]  # flow\n");
        let out = remove(&out, "b", &[]).unwrap().text;
        assert_eq!(out, "targets: []  # flow\n");
        assert_eq!(jobs(&out), view(&[]));
    }

    #[test]
    fn a_file_without_a_final_newline_keeps_it_that_way() {
        let text = "targets:\n  - job: a\n    targets:\n      - \"a:1\"";
        let out = add(text, "a", &["a:2"]).unwrap().text;
        assert_eq!(out, format!("{text}\n      - \"a:2\""));
        let out = add(&out, "b", &["b:1"]).unwrap().text;
        assert!(out.ends_with("  - job: b\n    targets: [\"b:1\"]"), "{out}");
        let out = add_targets(
            &out,
            "b",
            &[],
            &JobSettings {
                path: Some("/m".into()),
                ..JobSettings::default()
            },
        )
        .unwrap()
        .text;
        assert!(
            out.ends_with("    targets: [\"b:1\"]\n    path: /m"),
            "{out}"
        );
        let out = remove(&out, "b", &[]).unwrap().text;
        assert_eq!(jobs(&out), view(&[("a", &["a:1", "a:2"])]));
        let out = remove(&out, "a", &["a:2"]).unwrap().text;
        assert_eq!(jobs(&out), view(&[("a", &["a:1"])]));
    }

    #[test]
    fn crlf_files_get_crlf_lines() {
        let text = "# c\r\ntargets:\r\n  - job: a\r\n    targets:\r\n      - \"a:1\"\r\n";
        let out = add(text, "a", &["a:2"]).unwrap().text;
        assert_eq!(out, format!("{text}      - \"a:2\"\r\n"));
        let out = add(&out, "b", &["b:1"]).unwrap().text;
        assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
        assert_eq!(jobs(&out), view(&[("a", &["a:1", "a:2"]), ("b", &["b:1"])]));
    }

    // ---- settings ----

    #[test]
    fn settings_on_an_existing_job_are_set_replaced_and_labels_merged() {
        let settings = JobSettings {
            path: Some("/stats".into()),
            scheme: Some("https".into()),
            interval: Some("1m".into()),
            labels: BTreeMap::from([
                ("env".into(), "staging".into()),
                ("team".into(), "shop #1".into()),
            ]),
        };
        let out = add_targets(FIXTURE, "order", &[], &settings).unwrap();
        assert!(!out.created_job);
        let expected = FIXTURE.replace(
            "    path: /metrics\n    labels:\n      env: prod   # environment\n",
            "    path: /stats\n    labels:\n      env: staging   # environment\n      team: \"shop #1\"\n    scheme: https\n    interval: 1m\n",
        );
        // Missing keys go at the end of the job; the labels block grows in place.
        assert_eq!(out.text, expected);
        assert_only_job_changed(FIXTURE, &out.text, "order");
        let stack = load_at(&out.text, "commented");
        let order = &stack.jobs[0];
        assert_eq!(order.metrics_path, "/stats");
        assert_eq!(order.scheme, Scheme::Https);
        assert_eq!(order.interval.map(|d| d.to_string()).as_deref(), Some("1m"));
        assert_eq!(
            order.labels,
            BTreeMap::from([
                ("env".to_string(), "staging".to_string()),
                ("team".to_string(), "shop #1".to_string())
            ])
        );
        assert_eq!(jobs(&out.text), fixture_view());
    }

    #[test]
    fn settings_on_flow_and_commented_jobs() {
        let settings = JobSettings {
            scheme: Some("http".into()),
            labels: BTreeMap::from([("team".into(), "pay".into())]),
            ..JobSettings::default()
        };
        let out = add_targets(FIXTURE, "payment", &[], &settings).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "    scheme: https   # TLS only\n",
                "    scheme: http   # TLS only\n    labels: {team: pay}\n"
            )
        );
        assert_only_job_changed(FIXTURE, &out.text, "payment");

        let settings = JobSettings {
            path: Some("/m".into()),
            labels: BTreeMap::from([("team".into(), "ops".into()), ("tier".into(), "1".into())]),
            ..JobSettings::default()
        };
        let out = add_targets(FIXTURE, "batch", &strings(&["batch:9092"]), &settings).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "{job: batch, targets: [\"batch:9091\"], labels: {team: data}}",
                "{job: batch, targets: [\"batch:9091\", \"batch:9092\"], labels: {team: ops, tier: \"1\"}, path: /m}"
            )
        );
        assert_only_job_changed(FIXTURE, &out.text, "batch");
        let stack = load_at(&out.text, "commented");
        assert_eq!(stack.jobs[4].metrics_path, "/m");
        assert_eq!(stack.jobs[4].labels["tier"], "1");

        // Setting what is already there changes nothing.
        let same = JobSettings {
            path: Some("/metrics".into()),
            labels: BTreeMap::from([("env".into(), "prod".into())]),
            ..JobSettings::default()
        };
        assert_eq!(
            add_targets(FIXTURE, "order", &[], &same).unwrap().text,
            FIXTURE
        );

        // `labels:` with nothing after it.
        let text = "targets:\n  - job: a\n    labels:   # later\n";
        let out = add_targets(text, "a", &strings(&["a:1"]), &settings)
            .unwrap()
            .text;
        assert_eq!(
            out,
            "targets:\n  - job: a\n    labels: {team: ops, tier: \"1\"}   # later\n    targets: [\"a:1\"]\n    path: /m\n"
        );
        assert_eq!(load_at(&out, "commented").jobs[0].labels["team"], "ops");
    }

    // ---- remove_targets ----

    #[test]
    fn removes_one_address_from_each_list_style() {
        let out = remove(FIXTURE, "order", &["host.docker.internal:8085"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "      - \"host.docker.internal:8085\"   # first instance\n",
                ""
            )
        );
        assert_only_job_changed(FIXTURE, &out.text, "order");
        // A comment directly above an item goes with it.
        let out = remove(FIXTURE, "order", &["host.docker.internal:8086"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "      # between two targets\n      - \"host.docker.internal:8086\"\n",
                ""
            )
        );
        let out = remove(FIXTURE, "payment", &["10.0.0.5:9100"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace("[\"10.0.0.5:9100\", '10.0.0.6:9100']", "['10.0.0.6:9100']")
        );
        let out = remove(FIXTURE, "payment", &["10.0.0.6:9100"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "[\"10.0.0.5:9100\", '10.0.0.6:9100']",
                "[\"10.0.0.5:9100\"]"
            )
        );
        let out = remove(FIXTURE, "inventory", &["inventory-2:9100"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace("    - inventory-2:9100   # plain scalars\n", "")
        );
        let out = remove(FIXTURE, "shipping", &["ship-1:9100"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace("\"ship-1:9100\",   # eu\n      ", "")
        );
        let out = remove(FIXTURE, "shipping", &["ship-2:9100"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace("      \"ship-2:9100\",   # us\n", "")
        );
        let out = remove(&out.text, "shipping", &["ship-1:9100"]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "      \"ship-1:9100\",   # eu\n      \"ship-2:9100\",   # us\n",
                "         # eu\n"
            )
        );
        assert_eq!(jobs(&out.text)[3], ("shipping".to_string(), vec![]));
        for job in ["order", "payment", "inventory", "shipping"] {
            let view = jobs(&remove(FIXTURE, job, &[]).unwrap().text);
            assert!(view.iter().all(|(name, _)| name != job));
        }
    }

    #[test]
    fn removing_every_address_leaves_an_empty_list() {
        let all = ["host.docker.internal:8085", "host.docker.internal:8086"];
        let out = remove(FIXTURE, "order", &all).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "    targets:\n      - \"host.docker.internal:8085\"   # first instance\n      # between two targets\n      - \"host.docker.internal:8086\"\n",
                "    targets: []\n"
            )
        );
        assert_only_job_changed(FIXTURE, &out.text, "order");
        let out = remove(&out.text, "batch", &["batch:9091"]).unwrap();
        assert!(out.text.contains("{job: batch, targets: [], labels"));
        let out = remove(&out.text, "payment", &["10.0.0.6:9100", "10.0.0.5:9100"]).unwrap();
        assert!(out.text.contains("    targets: []   # flow list\n"));
        let mut want = fixture_view();
        want[0].1.clear();
        want[1].1.clear();
        want[4].1.clear();
        assert_eq!(jobs(&out.text), want);
    }

    #[test]
    fn missing_addresses_and_jobs_are_errors() {
        assert_eq!(
            remove(FIXTURE, "order", &["host.docker.internal:8085", "nope:1"]).unwrap_err(),
            EditError::NotFound {
                job: "order".into(),
                addr: "nope:1".into()
            }
        );
        assert_eq!(
            remove(FIXTURE, "nope", &[]).unwrap_err(),
            EditError::NoSuchJob { job: "nope".into() }
        );
        assert_eq!(
            remove("project: p\n", "nope", &["a:1"]).unwrap_err(),
            EditError::NoSuchJob { job: "nope".into() }
        );
    }

    #[test]
    fn removes_a_job_in_the_middle_with_its_attached_comments() {
        let out = remove(FIXTURE, "payment", &[]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "  # payment: a flow list with mixed quotes\n  - job: payment\n    targets: [\"10.0.0.5:9100\", '10.0.0.6:9100']   # flow list\n    scheme: https   # TLS only\n    # a commented-out setting of payment: timeout: 5s\n\n",
                ""
            )
        );
        let mut want = fixture_view();
        want.remove(1);
        assert_eq!(jobs(&out.text), want);
    }

    #[test]
    fn removes_the_first_and_the_last_job() {
        // The note separated from the first job by a blank line stays.
        let out = remove(FIXTURE, "order", &[]).unwrap();
        let start = FIXTURE.find("  # order: a block list").unwrap();
        let end = FIXTURE.find("  # payment:").unwrap();
        assert_eq!(
            out.text,
            format!("{}{}", &FIXTURE[..start], &FIXTURE[end..])
        );
        assert!(out.text.contains("  # A note about all jobs"));

        let out = remove(FIXTURE, "batch", &[]).unwrap();
        assert_eq!(
            out.text,
            FIXTURE.replace(
                "  - {job: batch, targets: [\"batch:9091\"], labels: {team: data}}   # a flow job\n",
                ""
            )
        );
        let mut want = fixture_view();
        want.pop();
        assert_eq!(jobs(&out.text), want);
    }

    #[test]
    fn removing_the_only_job_leaves_an_empty_list() {
        let text = "targets:   # jobs\n  # the one job\n  - job: a\n    targets: [\"a:1\"]\n\n# after\ndashboards: []\n";
        let out = remove(text, "a", &[]).unwrap();
        assert_eq!(
            out.text,
            "targets: []   # jobs\n\n# after\ndashboards: []\n"
        );
        assert_eq!(jobs(&out.text), view(&[]));
        // And a job can be added again.
        let out = add(&out.text, "b", &["b:1"]).unwrap();
        assert_eq!(
            out.text,
            "targets:   # jobs\n  - job: b\n    targets: [\"b:1\"]\n\n# after\ndashboards: []\n"
        );
        // All of the fixture's jobs, one by one.
        let mut text = FIXTURE.to_string();
        for job in ["shipping", "order", "batch", "inventory", "payment"] {
            text = remove(&text, job, &[]).unwrap().text;
        }
        assert!(text.contains("targets: []   # the jobs Prometheus scrapes\n"));
        assert_eq!(jobs(&text), view(&[]));
    }

    // ---- add_dashboard ----

    #[test]
    fn dashboards_are_appended_once() {
        let out = add_dashboard(FIXTURE, DashboardEntry::Bundled("rust-runtime".into())).unwrap();
        assert_eq!(
            out,
            FIXTURE.replace(
                "  - go-runtime   # bundled\n",
                "  - go-runtime   # bundled\n  - rust-runtime\n"
            )
        );
        assert_eq!(load_at(&out, "commented").dashboards.len(), 2);
        assert_eq!(
            add_dashboard(&out, DashboardEntry::Bundled("rust-runtime".into())).unwrap(),
            out
        );
        assert_eq!(
            add_dashboard(FIXTURE, DashboardEntry::Bundled("go-runtime".into())).unwrap(),
            FIXTURE
        );
        let file = DashboardEntry::File {
            path: "dashboards/orders.json".into(),
            folder: Some("Shop".into()),
        };
        let out = add_dashboard(FIXTURE, file.clone()).unwrap();
        assert!(out.ends_with(
            "  - go-runtime   # bundled\n  - file: dashboards/orders.json\n    folder: Shop\n  # more to come\n"
        ));
        let stack = load_at(&out, "full");
        assert_eq!(stack.dashboards[1].folder.as_deref(), Some("Shop"));
        assert_eq!(add_dashboard(&out, file).unwrap(), out);
        let other_folder = DashboardEntry::File {
            path: "./dashboards/orders.json".into(),
            folder: None,
        };
        assert!(matches!(
            add_dashboard(&out, other_folder),
            Err(EditError::DashboardConflict { .. })
        ));
    }

    #[test]
    fn dashboards_key_missing_empty_or_flow() {
        let go = || DashboardEntry::Bundled("go-runtime".into());
        assert_eq!(
            add_dashboard("project: p\n", go()).unwrap(),
            "project: p\ndashboards:\n  - go-runtime\n"
        );
        assert_eq!(
            add_dashboard("dashboards: []  # none\nproject: p\n", go()).unwrap(),
            "dashboards:  # none\n  - go-runtime\nproject: p\n"
        );
        assert_eq!(
            add_dashboard("dashboards:\n", go()).unwrap(),
            "dashboards:\n  - go-runtime\n"
        );
        let flow = "dashboards: [rust-runtime]  # flow\n";
        let out = add_dashboard(flow, go()).unwrap();
        assert_eq!(out, "dashboards: [rust-runtime, go-runtime]  # flow\n");
        let out = add_dashboard(
            &out,
            DashboardEntry::File {
                path: "dashboards/orders.json".into(),
                folder: Some("My Shop".into()),
            },
        )
        .unwrap();
        assert_eq!(
            out,
            "dashboards: [rust-runtime, go-runtime, {file: dashboards/orders.json, folder: My Shop}]  # flow\n"
        );
        assert_eq!(load_at(&out, "full").dashboards.len(), 3);
    }

    // ---- what is refused ----

    #[test]
    fn shapes_that_cannot_be_edited_are_refused_without_changes() {
        assert!(matches!(
            add("{targets: []}", "a", &["a:1"]),
            Err(EditError::Unsupported { .. })
        ));
        assert!(matches!(
            add("targets: [\n", "a", &["a:1"]),
            Err(EditError::Invalid { .. })
        ));
        assert!(matches!(
            add("targets: {a: 1}\n", "a", &["a:1"]),
            Err(EditError::Unsupported { .. })
        ));
        let anchored = "base: &t [\"a:1\"]\ntargets:\n  - job: a\n    targets: *t\n";
        assert!(matches!(
            add(anchored, "a", &["a:2"]),
            Err(EditError::Unsupported { .. })
        ));
        let block_alias = "base: &t\n  - \"a:1\"\ntargets:\n  - job: a\n    targets: *t\n";
        for result in [
            add(block_alias, "a", &["a:2"]),
            remove(block_alias, "a", &["a:1"]),
        ] {
            assert!(
                matches!(result, Err(EditError::Unsupported { .. })),
                "{result:?}"
            );
        }
        let block_scalar = "targets:\n  - job: a\n    path: |\n      /m\n";
        let path = JobSettings {
            path: Some("/x".into()),
            ..JobSettings::default()
        };
        assert!(matches!(
            add_targets(block_scalar, "a", &[], &path),
            Err(EditError::Unsupported { .. })
        ));
    }

    #[test]
    fn scalars_are_quoted_only_when_needed() {
        for (s, want) in [
            ("prod", "prod"),
            ("host:9100", "host:9100"),
            ("/metrics", "/metrics"),
            ("a b", "a b"),
            ("", "\"\""),
            ("yes", "\"yes\""),
            ("1", "\"1\""),
            ("1.5", "\"1.5\""),
            ("10.0.0.5:9100", "\"10.0.0.5:9100\""),
            ("a: b", "\"a: b\""),
            ("a #b", "\"a #b\""),
            ("#x", "\"#x\""),
            ("[::1]:80", "\"[::1]:80\""),
            ("x,y", "\"x,y\""),
            ("-x", "\"-x\""),
            (" pad", "\" pad\""),
            ("say \"hi\"\\", "say \"hi\"\\"),
            ("\"hi\"\\", "\"\\\"hi\\\"\\\\\""),
            ("line\nbreak", "\"line\\nbreak\""),
        ] {
            assert_eq!(yaml_scalar(s), want, "{s:?}");
            let parsed = yaml::parse(&format!("k: {want}\n")).unwrap();
            let Value::Map(entries) = parsed.value else {
                panic!()
            };
            assert_eq!(scalar(&entries[0].1), Some(s), "{want}");
        }
    }

    // ---- property ----

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
        }
    }

    #[test]
    fn random_edits_agree_with_a_model_and_keep_every_other_comment() {
        const JOBS: &[&str] = &[
            "order",
            "payment",
            "inventory",
            "shipping",
            "batch",
            "cache",
            "web.front",
        ];
        const ADDRS: &[&str] = &[
            "host.docker.internal:8085",
            "host.docker.internal:8086",
            "10.0.0.5:9100",
            "10.0.0.6:9100",
            "inventory-1:9100",
            "ship-2:9100",
            "batch:9091",
            "db.local:5432",
            "[::1]:9100",
        ];
        let fixture_comments = comments(FIXTURE);
        let job_comments: Vec<(&str, Vec<&str>)> = JOBS[..5]
            .iter()
            .map(|job| (*job, comments(&FIXTURE[job_lines(FIXTURE, job).unwrap()])))
            .collect();
        let head = &FIXTURE[..FIXTURE.find("\ntargets:").unwrap() + "\ntargets:".len()];
        let tail = &FIXTURE[FIXTURE.find("\n# dashboards").unwrap()..];
        for seed in 0..200u64 {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed + 1));
            let mut text = FIXTURE.to_string();
            let mut model = fixture_view();
            // Fixture jobs whose own comments may be gone: removed, or a target removed.
            let mut touched: BTreeSet<&str> = BTreeSet::new();
            for _ in 0..12 {
                let job = JOBS[rng.below(JOBS.len())];
                let at = model.iter().position(|(name, _)| name == job);
                let roll = rng.below(100);
                let (result, expected): (Result<Edit, EditError>, Result<View, EditError>);
                if roll < 50 {
                    let mut addrs = vec![ADDRS[rng.below(ADDRS.len())]];
                    let second = ADDRS[rng.below(ADDRS.len())];
                    if rng.below(3) == 0 && second != addrs[0] {
                        addrs.push(second);
                    }
                    result = add(&text, job, &addrs);
                    let mut next = model.clone();
                    expected = match at {
                        Some(i) => match addrs.iter().find(|a| model[i].1.contains(&a.to_string()))
                        {
                            Some(a) => Err(EditError::Duplicate {
                                job: job.into(),
                                addr: a.to_string(),
                            }),
                            None => {
                                next[i].1.extend(strings(&addrs));
                                Ok(next)
                            }
                        },
                        None => {
                            next.push((job.into(), strings(&addrs)));
                            Ok(next)
                        }
                    };
                } else if roll < 85 {
                    let addr = match at {
                        Some(i) if !model[i].1.is_empty() && rng.below(4) > 0 => {
                            model[i].1[rng.below(model[i].1.len())].clone()
                        }
                        _ => ADDRS[rng.below(ADDRS.len())].to_string(),
                    };
                    result = remove(&text, job, &[&addr]);
                    expected = match at {
                        None => Err(EditError::NoSuchJob { job: job.into() }),
                        Some(i) if !model[i].1.contains(&addr) => Err(EditError::NotFound {
                            job: job.into(),
                            addr,
                        }),
                        Some(i) => {
                            let mut next = model.clone();
                            next[i].1.retain(|a| *a != addr);
                            Ok(next)
                        }
                    };
                    touched.insert(job);
                } else {
                    result = remove(&text, job, &[]);
                    expected = match at {
                        None => Err(EditError::NoSuchJob { job: job.into() }),
                        Some(i) => {
                            let mut next = model.clone();
                            next.remove(i);
                            Ok(next)
                        }
                    };
                    touched.insert(job);
                }
                match (result, expected) {
                    (Ok(edit), Ok(next)) => {
                        assert_eq!(jobs(&edit.text), next, "seed {seed}:\n{}", edit.text);
                        assert_eq!(edit.created_job, at.is_none());
                        text = edit.text;
                        model = next;
                    }
                    (Err(e), Err(want)) => assert_eq!(e, want, "seed {seed}"),
                    (got, want) => panic!("seed {seed}: got {got:?}, want {want:?}\n{text}"),
                }
                assert!(text.starts_with(head), "seed {seed}: head changed\n{text}");
                assert!(text.ends_with(tail), "seed {seed}: tail changed\n{text}");
                let now = comments(&text);
                let mut rest = fixture_comments.iter();
                for c in &now {
                    assert!(
                        rest.any(|f| f == c),
                        "seed {seed}: comment {c:?} is new or out of order\n{text}"
                    );
                }
                for c in &fixture_comments {
                    let owned_by_touched = job_comments
                        .iter()
                        .any(|(job, cs)| touched.contains(job) && cs.contains(c));
                    assert!(
                        owned_by_touched || now.contains(c),
                        "seed {seed}: comment {c:?} is gone\n{text}"
                    );
                }
            }
        }
    }
}
