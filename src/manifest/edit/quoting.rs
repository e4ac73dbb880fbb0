//! New scalars written into the manifest: plain when YAML reads them back as the same string,
//! else quoted, or quoted like a neighbouring item of the same list.

use crate::manifest::yaml::{Node, Value};

/// A scalar as YAML writes it: plain when that reads back as the same string, else
/// double-quoted.
pub(super) fn yaml_scalar(s: &str) -> String {
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

pub(super) fn double_quoted(s: &str) -> String {
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
pub(super) fn quote_like(text: &str, model: Option<&Node>, s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::yaml_scalar;
    use crate::manifest::edit::tree::scalar;
    use crate::manifest::yaml::{self, Value};

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
}
