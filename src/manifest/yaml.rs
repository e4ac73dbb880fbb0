//! The one module that parses and writes YAML.
//!
//! serde_yaml is archived upstream: everything YAML goes through here so it can be swapped for a
//! maintained fork with the same API. Reading the manifest needs positions for every value (errors
//! point at `file:line:col`), which serde_yaml does not expose, so manifests are read into a
//! [`Node`] tree by yaml-rust2's event parser; everything else uses serde_yaml.

use std::collections::HashMap;

use serde::Serialize;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in the source: 1-based line and column, and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Any scalar, with whether it was quoted (a quoted `"8080"` is a string, a plain `8080` is
    /// whatever it looks like).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in source order; duplicate keys are reported by the parser.
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Scalar { .. } => "a single value",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
    /// Advice when there is better than "check the indentation".
    pub hint: Option<String>,
}

/// How many values (scalars, lists, mappings) one manifest may hold, an alias counting as every
/// value it copies. A large real manifest holds a few thousand; a 1 KB alias bomb ("billion
/// laughs") would expand to billions.
pub const MAX_VALUES: usize = 200_000;
/// How much scalar text the values may hold once aliases are expanded.
pub const MAX_TEXT_BYTES: usize = 32 * 1024 * 1024;
/// How deeply lists and mappings may nest. A manifest needs six levels; a tree 100,000 levels
/// deep would overflow the stack of every recursive walk over it (even dropping it).
pub const MAX_DEPTH: usize = 64;

/// Parses one YAML document into a positioned tree. An empty document is `Value::Null`.
/// Anchors and aliases are resolved by copying the anchored node, within [`MAX_VALUES`] and
/// [`MAX_TEXT_BYTES`]; nesting is limited to [`MAX_DEPTH`]. A second document, control
/// characters (NUL among them), tags and merge keys are errors: each would otherwise change
/// the meaning of the file without a word. A UTF-8 byte order mark is skipped.
///
/// The parse stops at the first problem: past a limit, going on is what the limit prevents.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    if let Some(error) = forbidden_character(text) {
        return Err(error);
    }
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut builder = Builder {
        cursor: Cursor::new(text, bom),
        stack: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        error: None,
        total: Weight::default(),
        documents: 0,
    };
    // Pulling events one at a time (instead of `Parser::load`, which recurses once per level of
    // nesting) keeps the parser off the call stack and lets the builder stop it.
    let mut parser = Parser::new_from_str(&text[bom..]);
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            // yaml-rust2 gives up on flow collections (`[[[...`) nested 256 deep, before the
            // builder sees level MAX_DEPTH: the same problem, said the same way.
            Err(e) if e.info() == "recursion limit exceeded" => {
                let pos = builder.pos(e.marker());
                return Err(too_deep(pos));
            }
            Err(e) => {
                let hint = e.info().contains("tab").then(|| {
                    "YAML indents with spaces, never tabs: replace the tabs on this line".into()
                });
                return Err(SyntaxError {
                    pos: builder.pos(e.marker()),
                    message: e.info().to_string(),
                    hint,
                });
            }
        };
        if event == Event::StreamEnd {
            break;
        }
        builder.on_event(event, mark);
        if let Some(error) = builder.error {
            return Err(error);
        }
    }
    Ok(builder.root.unwrap_or(Node {
        pos: Pos {
            line: 1,
            col: 1,
            offset: bom,
        },
        value: Value::Null,
    }))
}

fn too_deep(pos: Pos) -> SyntaxError {
    SyntaxError {
        pos,
        message: format!("lists and mappings nest deeper than {MAX_DEPTH} levels"),
        hint: Some("a manifest needs a handful of levels; this one is damaged or hostile".into()),
    }
}

/// The 1-based line and column (in characters) of a byte offset, for problems found outside
/// the parser (a byte that is not UTF-8, a control character).
pub fn pos_at(text: &str, offset: usize) -> Pos {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let mut line_start = before.rfind('\n').map_or(0, |i| i + 1);
    if line_start == 0 && before.starts_with('\u{feff}') {
        line_start = 3;
    }
    Pos {
        line: before.matches('\n').count() + 1,
        col: text[line_start..offset].chars().count() + 1,
        offset,
    }
}

/// YAML text is printable: tab, line breaks and everything from the space up, but no other
/// control character. yaml-rust2 takes a NUL for the end of the input and would silently drop
/// whatever follows it.
fn forbidden_character(text: &str) -> Option<SyntaxError> {
    let (offset, c) = text.char_indices().find(|&(_, c)| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{85}'))
            || matches!(c, '\u{fffe}' | '\u{ffff}')
    })?;
    let name = match c {
        '\0' => "a NUL byte".to_string(),
        c => format!("the control character U+{:04X}", c as u32),
    };
    Some(SyntaxError {
        pos: pos_at(text, offset),
        message: format!("{name} in the text; YAML allows no control characters"),
        hint: Some(
            "the file is binary or damaged: save it as plain UTF-8 text (a tab is fine)".into(),
        ),
    })
}

/// Serialises a value as YAML (used for every rendered YAML file).
pub fn to_string<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_yaml::to_string(value)?)
}

/// Deserialises YAML text with serde (for YAML read back from services, not manifests).
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    Ok(serde_yaml::from_str(text)?)
}

/// yaml-rust2 marks positions by character index; this walks to each mark from the previous
/// one. Events arrive in (nearly) source order, so a whole parse walks the text about once,
/// however long its lines, with no table per character or per line.
struct Cursor<'a> {
    text: &'a str,
    /// Where yaml-rust2's index 0 is (after a byte order mark).
    origin: usize,
    chars: usize,
    byte: usize,
    line: usize,
    line_start: usize,
    col: usize,
}

impl Cursor<'_> {
    fn new(text: &str, origin: usize) -> Cursor<'_> {
        Cursor {
            text,
            origin,
            chars: 0,
            byte: origin,
            line: 1,
            line_start: origin,
            col: 1,
        }
    }

    fn seek(&mut self, char_index: usize) -> Pos {
        while self.chars < char_index {
            let Some(c) = self.text[self.byte..].chars().next() else {
                break;
            };
            self.byte += c.len_utf8();
            self.chars += 1;
            if c == '\n' {
                self.line += 1;
                self.line_start = self.byte;
                self.col = 1;
            } else {
                self.col += 1;
            }
        }
        while self.chars > char_index {
            let Some(c) = self.text[..self.byte].chars().next_back() else {
                break;
            };
            self.byte -= c.len_utf8();
            self.chars -= 1;
            if c == '\n' {
                self.line -= 1;
                let before = &self.text[self.origin..self.byte];
                self.line_start = before
                    .rfind('\n')
                    .map_or(self.origin, |i| self.origin + i + 1);
                self.col = self.text[self.line_start..self.byte].chars().count() + 1;
            } else {
                self.col -= 1;
            }
        }
        Pos {
            line: self.line,
            col: self.col,
            offset: self.byte,
        }
    }
}

/// What a subtree costs: its values and the bytes of its scalars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Weight {
    values: usize,
    text: usize,
}

impl Weight {
    fn minus(self, earlier: Weight) -> Weight {
        Weight {
            values: self.values - earlier.values,
            text: self.text - earlier.text,
        }
    }
}

/// A list or mapping whose end has not come yet.
struct Open {
    /// `Value::Seq` or `Value::Map`, filled as the children arrive.
    node: Node,
    anchor: usize,
    /// [`Builder::total`] just after this collection was counted.
    before: Weight,
    /// How many levels the deepest child so far spans (a scalar spans none).
    tallest: usize,
    /// A mapping's key waiting for its value.
    pending_key: Option<Node>,
    /// A mapping's keys so far, with where: finding a duplicate must not cost a scan.
    keys: HashMap<String, Pos>,
}

/// What an alias copies.
struct Anchored {
    node: Node,
    weight: Weight,
    height: usize,
}

struct Builder<'a> {
    cursor: Cursor<'a>,
    stack: Vec<Open>,
    root: Option<Node>,
    anchors: HashMap<usize, Anchored>,
    error: Option<SyntaxError>,
    /// Everything built so far, aliases counted by what they copy.
    total: Weight,
    documents: usize,
}

impl Builder<'_> {
    fn pos(&mut self, mark: &Marker) -> Pos {
        self.cursor.seek(mark.index())
    }

    fn fail(&mut self, pos: Pos, message: impl Into<String>, hint: Option<String>) {
        if self.error.is_none() {
            self.error = Some(SyntaxError {
                pos,
                message: message.into(),
                hint,
            });
        }
    }

    /// Counts `weight` more of the tree; false (and an error at `pos`) past a limit.
    fn charge(&mut self, weight: Weight, pos: Pos, alias: bool) -> bool {
        let values = self.total.values.saturating_add(weight.values);
        let text = self.total.text.saturating_add(weight.text);
        if values <= MAX_VALUES && text <= MAX_TEXT_BYTES {
            self.total = Weight { values, text };
            return true;
        }
        let limit = if values > MAX_VALUES {
            format!("{MAX_VALUES} values")
        } else {
            format!("{} MiB of text", MAX_TEXT_BYTES >> 20)
        };
        if alias {
            self.fail(
                pos,
                format!("this alias expands the manifest past {limit}"),
                Some(
                    "aliases that copy aliases multiply (an \"alias bomb\"): copy less, or write the values out"
                        .into(),
                ),
            );
        } else {
            self.fail(
                pos,
                format!("the manifest holds more than {limit}"),
                Some("a manifest this large is a mistake; keep it to what the stack needs".into()),
            );
        }
        false
    }

    fn fail_tag(&mut self, pos: Pos, tag: &Tag) {
        let shown = match tag.handle.as_str() {
            "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
            handle => format!("{handle}{}", tag.suffix),
        };
        self.fail(
            pos,
            format!("YAML tags such as `{shown}` are not supported in a manifest"),
            Some("remove the tag; to make a value text, quote it".into()),
        );
    }

    /// Adds a finished node, `height` levels of lists and mappings, to the tree.
    fn push_value(&mut self, node: Node, height: usize) {
        if let Err((pos, message, hint)) = self.insert(node, height) {
            self.fail(pos, message, Some(hint));
        }
    }

    /// Puts a finished node where it belongs: the root, the open list, or the open mapping (as
    /// its next key, or as the value of the pending key).
    fn insert(&mut self, node: Node, height: usize) -> Result<(), (Pos, String, String)> {
        let Some(open) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        open.tallest = open.tallest.max(height);
        match &mut open.node.value {
            Value::Seq(items) => items.push(node),
            Value::Map(entries) => match open.pending_key.take() {
                None => {
                    if matches!(&node.value, Value::Scalar { text, quoted: false } if text == "<<")
                    {
                        return Err((
                            node.pos,
                            "merge keys (`<<`) are not supported in a manifest".into(),
                            "YAML 1.2 has no merge keys: write the keys out, or alias a whole value (`labels: *common`)"
                                .into(),
                        ));
                    }
                    open.pending_key = Some(node);
                }
                Some(key) => {
                    if let Value::Scalar { text, .. } = &key.value {
                        if let Some(first) = open.keys.get(text) {
                            return Err((
                                key.pos,
                                format!("duplicate key `{text}`"),
                                format!("`{text}` is first given at line {}", first.line),
                            ));
                        }
                        open.keys.insert(text.clone(), key.pos);
                    }
                    entries.push((key, node));
                }
            },
            Value::Null | Value::Scalar { .. } => unreachable!("only collections are open"),
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node, weight: Weight, height: usize) {
        if anchor > 0 {
            let node = node.clone();
            self.anchors.insert(
                anchor,
                Anchored {
                    node,
                    weight,
                    height,
                },
            );
        }
    }

    /// Opens a list or mapping (`value`) unless a tag or the depth forbids it.
    fn open_collection(&mut self, pos: Pos, anchor: usize, tag: Option<Tag>, value: Value) {
        if let Some(tag) = tag {
            return self.fail_tag(pos, &tag);
        }
        if self.stack.len() >= MAX_DEPTH {
            self.error.get_or_insert(too_deep(pos));
            return;
        }
        if !self.charge(Weight { values: 1, text: 0 }, pos, false) {
            return;
        }
        self.stack.push(Open {
            node: Node { pos, value },
            anchor,
            before: self.total,
            tallest: 0,
            pending_key: None,
            keys: HashMap::new(),
        });
    }

    fn on_event(&mut self, event: Event, mark: Marker) {
        let pos = self.pos(&mark);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let mut quoted = !matches!(style, TScalarStyle::Plain);
                match tag {
                    None => {}
                    // `!!str 8080` is the text "8080", as a quoted value is.
                    Some(tag) if tag.handle == "tag:yaml.org,2002:" && tag.suffix == "str" => {
                        quoted = true
                    }
                    Some(tag) => return self.fail_tag(pos, &tag),
                }
                let weight = Weight {
                    values: 1,
                    text: text.len(),
                };
                if !self.charge(weight, pos, false) {
                    return;
                }
                let is_null =
                    !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
                let value = if is_null {
                    Value::Null
                } else {
                    Value::Scalar { text, quoted }
                };
                let node = Node { pos, value };
                self.remember(anchor, &node, weight, 0);
                self.push_value(node, 0);
            }
            Event::SequenceStart(anchor, tag) => {
                self.open_collection(pos, anchor, tag, Value::Seq(Vec::new()))
            }
            Event::MappingStart(anchor, tag) => {
                self.open_collection(pos, anchor, tag, Value::Map(Vec::new()))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(Open {
                    mut node,
                    anchor,
                    before,
                    tallest,
                    ..
                }) = self.stack.pop()
                else {
                    return;
                };
                // A block mapping's start event is marked at its first `:`; point at its first
                // key instead, where a reader looks.
                if let Value::Map(entries) = &node.value {
                    if let Some((first_key, _)) = entries.first() {
                        if first_key.pos.offset < node.pos.offset {
                            node.pos = first_key.pos;
                        }
                    }
                }
                // `before` was taken after the collection itself was counted.
                let mut weight = self.total.minus(before);
                weight.values += 1;
                self.remember(anchor, &node, weight, tallest + 1);
                self.push_value(node, tallest + 1);
            }
            Event::Alias(id) => {
                let Some(&Anchored { weight, height, .. }) = self.anchors.get(&id) else {
                    return self.fail(pos, "unknown alias", None);
                };
                // Aliases of aliases nest one level deeper each: `b: &b [*a]`, `c: &c [*b]`...
                if self.stack.len() + height > MAX_DEPTH {
                    self.error.get_or_insert(too_deep(pos));
                    return;
                }
                // Counted before copying: the copy is what an alias bomb is made of.
                if !self.charge(weight, pos, true) {
                    return;
                }
                let mut node = self.anchors[&id].node.clone();
                node.pos = pos;
                self.push_value(node, height);
            }
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(
                        pos,
                        "a manifest holds one YAML document; found a second one",
                        Some(
                            "everything after this `---` would be ignored: merge the documents, or remove the `---`"
                                .into(),
                        ),
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &Node) -> (usize, usize) {
        (node.pos.line, node.pos.col)
    }

    #[test]
    fn positions_are_one_based_and_point_at_values() {
        let root = parse("a: 1\nlist:\n  - x: \"q\"\n    y: [1, 2]\n").unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        assert_eq!(at(&entries[0].0), (1, 1));
        assert_eq!(at(&entries[0].1), (1, 4));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        let Value::Map(item) = &items[0].value else {
            panic!()
        };
        assert_eq!(at(&item[0].0), (3, 5));
        assert_eq!(
            item[0].1.value,
            Value::Scalar {
                text: "q".into(),
                quoted: true
            }
        );
        assert_eq!(at(&item[1].0), (4, 5));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let root = parse("# héllo wörld\nnäme: ö\n").unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        assert_eq!(at(&entries[0].1), (2, 7));
        assert_eq!(
            &"# héllo wörld\nnäme: ö\n"[entries[0].1.pos.offset..],
            "ö\n"
        );
    }

    #[test]
    fn duplicate_keys_and_bad_syntax_are_errors_with_positions() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((err.pos.line, err.pos.col), (3, 1));
        assert!(err.message.contains("duplicate key `a`"));
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
    }

    #[test]
    fn aliases_copy_the_anchored_node_and_nulls_are_recognised() {
        let root = parse("a: &x {k: v}\nb: *x\nc: ~\nd:\n").unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        assert_eq!(entries[0].1.value, entries[1].1.value);
        assert_eq!(entries[2].1.value, Value::Null);
        assert_eq!(entries[3].1.value, Value::Null);
    }

    /// Nine anchors of nine aliases each: 9^9 (387 million) strings once expanded.
    fn billion_laughs(open: &str, close: &str, item: impl Fn(usize, &str) -> String) -> String {
        let mut text = "l0: &l0 \"lol\"\n".to_string();
        for level in 1..=9 {
            let prev = format!("*l{}", level - 1);
            let items: Vec<String> = (0..9).map(|i| item(i, &prev)).collect();
            text.push_str(&format!(
                "l{level}: &l{level} {open}{}{close}\n",
                items.join(", ")
            ));
        }
        text
    }

    #[test]
    fn an_alias_bomb_stops_at_the_alias_that_passes_the_limit() {
        let lists = billion_laughs("[", "]", |_, prev| prev.to_string());
        let maps = billion_laughs("{", "}", |i, prev| format!("k{i}: {prev}"));
        for text in [lists, maps] {
            let started = std::time::Instant::now();
            let err = parse(&text).unwrap_err();
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
            assert!(
                err.message
                    .contains("alias expands the manifest past 200000 values"),
                "{err:?}"
            );
            // l5 holds 9^5 = 59049 strings: the fourth copy of it, in l6, is one too many.
            assert_eq!(err.pos.line, 7, "{err:?}");
            assert_eq!(&text[err.pos.offset..err.pos.offset + 3], "*l5");
        }
    }

    #[test]
    fn aliases_of_large_text_count_their_bytes() {
        let big = "x".repeat(1 << 20);
        let aliases = vec!["*a"; 40].join(", ");
        let err = parse(&format!("a: &a \"{big}\"\nb: [{aliases}]\n")).unwrap_err();
        assert!(err.message.contains("32 MiB of text"), "{}", err.message);
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn a_second_document_is_an_error_at_its_start() {
        let err = parse("project: a\n---\nproject: b\n").unwrap_err();
        assert_eq!((err.pos.line, err.pos.col), (2, 1));
        assert!(err.message.contains("one YAML document"), "{err:?}");
        // One document that starts with `---` (or ends with `...`) is one document.
        assert!(parse("---\nproject: a\n...\n").is_ok());
    }

    #[test]
    fn control_characters_are_errors_where_they_are() {
        let err = parse("a: 1\nproject: sh\0op\nb: 2\n").unwrap_err();
        assert_eq!((err.pos.line, err.pos.col), (2, 12));
        assert!(err.message.contains("a NUL byte"), "{err:?}");
        let err = parse("a: \"\x1b[31m\"\n").unwrap_err();
        assert!(err.message.contains("U+001B"), "{err:?}");
        // Tabs and CRLF line ends are text.
        assert!(parse("a: \"x\ty\"\r\nb: 2\r\n").is_ok());
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_offsets_stay_in_the_original_text() {
        let text = "\u{feff}project: a\nbind: b\n";
        let root = parse(text).unwrap();
        let Value::Map(entries) = &root.value else {
            panic!("{root:?}")
        };
        assert_eq!(
            entries[0].0.value,
            Value::Scalar {
                text: "project".into(),
                quoted: false
            }
        );
        assert_eq!(at(&entries[0].0), (1, 1));
        assert_eq!(at(&entries[1].1), (2, 7));
        assert_eq!(&text[entries[1].1.pos.offset..], "b\n");
        assert_eq!(parse("\u{feff}").unwrap().value, Value::Null);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let flow = format!("x: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let block: String = (0..100_000)
            .map(|i| format!("{}- \n", " ".repeat(i % 200)))
            .collect();
        let nested_maps: String = (0..1000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        for text in [flow, block, nested_maps] {
            let started = std::time::Instant::now();
            let err = parse(&text).unwrap_err();
            assert!(err.message.contains("deeper than 64 levels"), "{err:?}");
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
        let nested_maps: String = (0..100).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let err = parse(&nested_maps).unwrap_err();
        assert_eq!(err.pos.line, 65, "{err:?}");
        assert!(err.message.contains("deeper than 64 levels"), "{err:?}");
    }

    #[test]
    fn aliases_of_aliases_cannot_nest_past_the_depth_limit() {
        // Each line one level deeper than the last, at a few bytes a level.
        let mut text = "l0: &l0 [x]\n".to_string();
        for i in 1..100_000 {
            text.push_str(&format!("l{i}: &l{i} [*l{}]\n", i - 1));
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("deeper than 64 levels"), "{err:?}");
        assert_eq!(err.pos.line, 64, "{err:?}");
        assert_eq!(&text[err.pos.offset..err.pos.offset + 4], "*l62");
        // Up to the limit it is an ordinary tree.
        let shallow: String = (0..63)
            .map(|i| match i {
                0 => "l0: &l0 [x]\n".to_string(),
                i => format!("l{i}: &l{i} [*l{}]\n", i - 1),
            })
            .collect();
        assert!(parse(&shallow).is_ok());
    }

    #[test]
    fn a_tab_in_the_indentation_says_to_use_spaces() {
        for text in [
            "prometheus:\n\tport: 9091\n",
            "targets:\n  - job: api\n\t targets: []\n",
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.pos.line, 2, "{err:?}");
            assert!(err.hint.unwrap().contains("never tabs"));
        }
        // A tab inside a quoted value is text.
        assert!(parse("a: \"x\ty\"\n").is_ok());
    }

    #[test]
    fn tags_are_refused_except_str() {
        for (text, tag) in [
            ("a: !!binary aGVsbG8=\n", "`!!binary`"),
            ("a: !foo bar\n", "`!foo`"),
            ("a: !!map {b: 1}\n", "`!!map`"),
            ("a: !<tag:example.com,2000:x> 1\n", "tag:example.com"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.message.contains(tag), "{text}: {err:?}");
            assert_eq!(err.pos.line, 1);
        }
        let root = parse("a: !!str 8080\n").unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        assert_eq!(
            entries[0].1.value,
            Value::Scalar {
                text: "8080".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn merge_keys_are_refused_and_a_quoted_one_is_a_plain_key() {
        let err = parse("base: &b {x: 1}\njob:\n  <<: *b\n  y: 2\n").unwrap_err();
        assert_eq!((err.pos.line, err.pos.col), (3, 3));
        assert!(err.message.contains("merge keys"), "{err:?}");
        assert!(parse("a: {\"<<\": 1}\n").is_ok());
    }

    #[test]
    fn a_duplicate_key_names_the_line_of_the_first() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.hint.as_deref(), Some("`a` is first given at line 1"));
        // Finding duplicates among many keys does not scan the map for each key.
        let many: String = (0..90_000).map(|i| format!("k{i}: v\n")).collect();
        let started = std::time::Instant::now();
        assert!(parse(&many).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn positions_on_a_very_long_line_are_exact_and_cheap() {
        let items: Vec<String> = (0..100_000).map(|i| format!("ü{i}")).collect();
        let text = format!("list: [{}]\nnext: [1, 2\n", items.join(", "));
        let started = std::time::Instant::now();
        let err = parse(&text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(err.pos.line, 3, "{err:?}");
        let root = parse(&format!("list: [{}]\n", items.join(", "))).unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        let Value::Seq(list) = &entries[0].1.value else {
            panic!()
        };
        let last = list.last().unwrap();
        let expected_col = "list: [".len()
            + items[..99_999]
                .iter()
                .map(|i| i.chars().count() + 2)
                .sum::<usize>()
            + 1;
        assert_eq!(at(last), (1, expected_col));
        assert!(text[last.pos.offset..].starts_with("ü99999]"));
    }

    #[test]
    fn pos_at_counts_characters_from_the_line_start() {
        let text = "a: ü\nbé: x";
        let at = pos_at(text, text.find('x').unwrap());
        assert_eq!((at.line, at.col), (2, 5));
        assert_eq!(pos_at("\u{feff}a", 4).col, 2);
    }
}
