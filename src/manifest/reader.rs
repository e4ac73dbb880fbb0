//! Reading the positioned YAML tree against the [`spec`](super::spec) tables: type checks,
//! unknown keys with "did you mean", missing required keys. Every problem is recorded and
//! reading goes on, so one run reports everything.

use super::diagnostics::{closest, Diagnostics};
use super::spec::{Section, Ty};
use crate::manifest::yaml::{Node, Pos, Value};
use crate::model::Duration;

pub struct Reader {
    pub diagnostics: Diagnostics,
}

/// A mapping that passed the key checks of its section.
pub struct Obj<'n> {
    pub node: &'n Node,
    section: &'static Section,
    entries: &'n [(Node, Node)],
}

impl<'n> Obj<'n> {
    /// The value of a key the section declares; `key: ~` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        debug_assert!(
            self.section.field(key).is_some(),
            "{key} is not declared in {}",
            self.section.what
        );
        self.entries
            .iter()
            .find(|(k, _)| scalar_text(k) == Some(key))
            .map(|(_, v)| v)
            .filter(|v| v.value != Value::Null)
    }

    /// Position of a key itself (for "duplicate job name" pointing at the name).
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _)| scalar_text(k) == Some(key))
            .map(|(k, _)| k.pos)
    }

    /// Whether the section has this key at all (the agent's has no `image`).
    pub fn declares(&self, key: &str) -> bool {
        self.section.field(key).is_some()
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn pos(&self) -> Pos {
        self.node.pos
    }
}

pub fn scalar_text(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

impl Reader {
    pub fn error(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<Option<String>>) {
        self.diagnostics.error(pos, message, hint.into());
    }

    /// Checks that `node` is a mapping whose keys all belong to `section`, and that its required
    /// keys are there.
    pub fn object<'n>(&mut self, node: &'n Node, section: &'static Section) -> Option<Obj<'n>> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                format!(
                    "{} must be a mapping, found {}",
                    capitalise(section.what),
                    node.kind_name()
                ),
                Some(format!(
                    "expected keys: {}",
                    section.names().collect::<Vec<_>>().join(", ")
                )),
            );
            return None;
        };
        for (key, _) in entries {
            let Some(name) = scalar_text(key) else {
                self.error(key.pos, "keys must be plain names", None);
                continue;
            };
            if section.field(name).is_none() {
                let hint = match closest(name, section.names()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!(
                        "{} accepts: {}",
                        section.what,
                        section.names().collect::<Vec<_>>().join(", ")
                    ),
                };
                self.error(
                    key.pos,
                    format!("unknown field `{name}` in {}", section.what),
                    Some(hint),
                );
            }
        }
        let obj = Obj {
            node,
            section,
            entries,
        };
        for field in section.fields.iter().filter(|f| f.required) {
            if !obj
                .entries
                .iter()
                .any(|(k, v)| scalar_text(k) == Some(field.name) && v.value != Value::Null)
            {
                self.error(
                    node.pos,
                    format!(
                        "{} is missing the required field `{}`",
                        capitalise(section.what),
                        field.name
                    ),
                    Some(field.doc.to_string()),
                );
            }
        }
        Some(obj)
    }

    /// Any scalar, as text. Numbers and booleans are accepted as their text (`password: 1234`).
    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.error(
                    node.pos,
                    format!(
                        "`{what}` must be a single value, found {}",
                        node.kind_name()
                    ),
                    None,
                );
                None
            }
        }
    }

    pub fn opt_string(&mut self, obj: &Obj, key: &str) -> Option<String> {
        obj.get(key).and_then(|n| self.string(n, key))
    }

    /// A string that must not be empty after interpolation.
    pub fn non_empty(&mut self, obj: &Obj, key: &str) -> Option<String> {
        let node = obj.get(key)?;
        let text = self.string(node, key)?;
        if text.trim().is_empty() {
            self.error(node.pos, format!("`{key}` is empty"), None);
            return None;
        }
        Some(text)
    }

    pub fn int(&mut self, node: &Node, what: &str, min: i64, max: i64) -> Option<i64> {
        let text = self.string(node, what)?;
        match text.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(n) => {
                self.error(
                    node.pos,
                    format!("`{what}` is {n}, outside {min}..={max}"),
                    None,
                );
                None
            }
            Err(_) => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a whole number, found `{text}`"),
                    None,
                );
                None
            }
        }
    }

    pub fn port(&mut self, node: &Node, what: &str) -> Option<u16> {
        let text = self.string(node, what)?;
        match text.trim().parse::<i64>() {
            Ok(n) if (1..=65535).contains(&n) => Some(n as u16),
            Ok(n) => {
                self.error(
                    node.pos,
                    format!("port {n} is out of range"),
                    Some("ports are 1 to 65535".into()),
                );
                None
            }
            Err(_) => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a port number, found `{text}`"),
                    None,
                );
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        let text = self.string(node, what)?;
        match text.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            other => {
                self.error(
                    node.pos,
                    format!("`{what}` must be true or false, found `{other}`"),
                    Some("YAML 1.2 booleans are `true` and `false` (not yes/no/on/off)".into()),
                );
                None
            }
        }
    }

    pub fn opt_bool(&mut self, obj: &Obj, key: &str, default: bool) -> bool {
        obj.get(key)
            .and_then(|n| self.bool(n, key))
            .unwrap_or(default)
    }

    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = self.string(node, what)?;
        match Duration::parse(text.trim()) {
            Ok(d) => Some(d),
            Err(reason) => {
                self.error(
                    node.pos,
                    format!("`{what}` is not a valid duration: {reason}"),
                    Some(
                        "durations look like `15s`, `1m30s`, `2h`, `15d` (units: ms s m h d w y)"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    pub fn opt_duration(&mut self, obj: &Obj, key: &str) -> Option<Duration> {
        obj.get(key).and_then(|n| self.duration(n, key))
    }

    pub fn enumeration(&mut self, node: &Node, what: &str, ty: &Ty) -> Option<String> {
        let Ty::Enum(values) = ty else {
            return self.string(node, what);
        };
        let text = self.string(node, what)?;
        if values.contains(&text.as_str()) {
            return Some(text);
        }
        let hint = match closest(&text, values.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("one of: {}", values.join(", ")),
        };
        self.error(node.pos, format!("`{what}` cannot be `{text}`"), Some(hint));
        None
    }

    /// A list of scalars, each with its position.
    pub fn string_list(&mut self, node: &Node, what: &str) -> Option<Vec<(String, Pos)>> {
        match &node.value {
            Value::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    if let Some(text) = self.string(item, what) {
                        out.push((text, item.pos));
                    }
                }
                Some(out)
            }
            Value::Scalar { text, .. } => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a list"),
                    Some(format!("write `{what}: [{text}]`")),
                );
                None
            }
            _ => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a list, found {}", node.kind_name()),
                    None,
                );
                None
            }
        }
    }

    /// A mapping of names to scalar values: (name, name position, value, value position).
    pub fn string_map(
        &mut self,
        node: &Node,
        what: &str,
    ) -> Option<Vec<(String, Pos, String, Pos)>> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                format!("`{what}` must be a mapping, found {}", node.kind_name()),
                None,
            );
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let (Some(key), Some(value)) = (self.string(k, what), self.string(v, what)) else {
                continue;
            };
            out.push((key, k.pos, value, v.pos));
        }
        Some(out)
    }

    /// The items of a list (empty list for `key: []`).
    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => items,
            _ => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a list, found {}", node.kind_name()),
                    None,
                );
                &[]
            }
        }
    }
}

/// Converts a YAML subtree into JSON (for `json_data`), guessing scalar types as YAML does.
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Scalar { text, quoted: true } => J::String(text.clone()),
        Value::Scalar {
            text,
            quoted: false,
        } => match text.as_str() {
            "true" => J::Bool(true),
            "false" => J::Bool(false),
            t => t
                .parse::<i64>()
                .map(J::from)
                .ok()
                .or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(J::Number)
                })
                .unwrap_or_else(|| J::String(t.to_string())),
        },
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (scalar_text(k).unwrap_or_default().to_string(), to_json(v)))
                .collect(),
        ),
    }
}

pub fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
