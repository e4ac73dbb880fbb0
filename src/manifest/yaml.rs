//! The one module that parses and writes YAML.
//!
//! serde_yaml is archived upstream: everything YAML goes through here so it can be swapped for a
//! maintained fork with the same API. Reading the manifest needs positions for every value (errors
//! point at `file:line:col`), which serde_yaml does not expose, so manifests are read into a
//! [`Node`] tree by yaml-rust2's event parser; everything else uses serde_yaml.

use serde::Serialize;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
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
}

/// Parses one YAML document into a positioned tree. An empty document is `Value::Null`.
/// Anchors and aliases are resolved by copying the anchored node.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder {
        text,
        stack: Vec::new(),
        root: None,
        anchors: Vec::new(),
        error: None,
        char_to_byte: CharToByte::new(text),
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        return Err(SyntaxError {
            pos: builder.pos(e.marker()),
            message: e.info().to_string(),
        });
    }
    if let Some(error) = builder.error {
        return Err(error);
    }
    Ok(builder.root.unwrap_or(Node {
        pos: Pos {
            line: 1,
            col: 1,
            offset: 0,
        },
        value: Value::Null,
    }))
}

/// Serialises a value as YAML (used for every rendered YAML file).
pub fn to_string<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_yaml::to_string(value)?)
}

/// Deserialises YAML text with serde (for YAML read back from services, not manifests).
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    Ok(serde_yaml::from_str(text)?)
}

/// yaml-rust2 markers count characters; error messages want bytes for slicing the source.
struct CharToByte {
    ascii: bool,
    offsets: Vec<usize>,
}

impl CharToByte {
    fn new(text: &str) -> CharToByte {
        let ascii = text.is_ascii();
        let offsets = if ascii {
            Vec::new()
        } else {
            text.char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect()
        };
        CharToByte { ascii, offsets }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.ascii {
            char_index
        } else {
            self.offsets
                .get(char_index)
                .copied()
                .unwrap_or(*self.offsets.last().unwrap_or(&0))
        }
    }
}

enum Open {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

struct Builder<'a> {
    text: &'a str,
    stack: Vec<Open>,
    root: Option<Node>,
    anchors: Vec<(usize, Node)>,
    error: Option<SyntaxError>,
    char_to_byte: CharToByte,
}

impl Builder<'_> {
    fn pos(&self, mark: &Marker) -> Pos {
        let offset = self.char_to_byte.byte(mark.index()).min(self.text.len());
        // The column is counted from the start of the line, in characters.
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line: mark.line(),
            col: self.text[line_start..offset].chars().count() + 1,
            offset,
        }
    }

    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Open::Map(map, _, pending_key)) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    if let Value::Map(entries) = &mut map.value {
                        if let Value::Scalar { text, .. } = &key.value {
                            let duplicate = entries.iter().any(|(k, _)| {
                                matches!(&k.value, Value::Scalar { text: t, .. } if t == text)
                            });
                            if duplicate && self.error.is_none() {
                                self.error = Some(SyntaxError {
                                    pos: key.pos,
                                    message: format!("duplicate key `{text}`"),
                                });
                            }
                        }
                        entries.push((key, node));
                    }
                }
            },
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let pos = self.pos(&mark);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                let is_null = !quoted
                    && tag.is_none()
                    && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
                let value = if is_null {
                    Value::Null
                } else {
                    Value::Scalar { text, quoted }
                };
                let node = Node { pos, value };
                self.remember(anchor, &node);
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Open::Seq(
                    Node {
                        pos,
                        value: Value::Seq(Vec::new()),
                    },
                    anchor,
                ));
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Open::Map(
                    Node {
                        pos,
                        value: Value::Map(Vec::new()),
                    },
                    anchor,
                    None,
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, anchor) = match self.stack.pop() {
                    Some(Open::Seq(node, anchor)) | Some(Open::Map(node, anchor, _)) => {
                        (node, anchor)
                    }
                    None => return,
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
                self.remember(anchor, &node);
                self.push_value(node);
            }
            Event::Alias(id) => {
                let found = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n.clone());
                match found {
                    Some(mut node) => {
                        node.pos = pos;
                        self.push_value(node);
                    }
                    None => {
                        if self.error.is_none() {
                            self.error = Some(SyntaxError {
                                pos,
                                message: "unknown alias".into(),
                            });
                        }
                        self.push_value(Node {
                            pos,
                            value: Value::Null,
                        });
                    }
                }
            }
            Event::DocumentStart if self.root.is_some() && self.error.is_none() => {
                self.error = Some(SyntaxError {
                    pos,
                    message: "a manifest holds one YAML document; found a second `---`".into(),
                });
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
}
