//! Problems found in a manifest, each pointing at `file:line:col` with the offending line, a
//! caret and a hint. Collected, never thrown one at a time: a user fixes everything in one go.

use std::fmt;

use crate::manifest::yaml::Pos;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

/// Every problem of one manifest, with the source text for showing the lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// The manifest path as the user named it (`monstack.yaml`, `-f deploy/m.yaml`).
    pub file: String,
    pub source: String,
    pub items: Vec<Diagnostic>,
    /// Positions of values whose interpolation failed.
    pub poisoned: Vec<Pos>,
}

impl Diagnostics {
    pub fn new(file: impl Into<String>, source: impl Into<String>) -> Diagnostics {
        Diagnostics {
            file: file.into(),
            source: source.into(),
            items: Vec::new(),
            poisoned: Vec::new(),
        }
    }

    /// Records a problem. A value that already failed interpolation (an unset `${VAR}`) is
    /// poisoned: follow-on complaints about its content are not shown.
    pub fn error(&mut self, pos: Pos, message: impl Into<String>, hint: Option<String>) {
        if self.poisoned.contains(&pos) {
            return;
        }
        self.items.push(Diagnostic {
            pos,
            message: shorten(message.into(), MAX_MESSAGE_CHARS),
            hint,
        });
    }

    /// Records a problem with a value and suppresses later complaints about the same value.
    pub fn poison(&mut self, pos: Pos, message: impl Into<String>, hint: Option<String>) {
        self.error(pos, message, hint);
        self.poisoned.push(pos);
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sorted by position, duplicates (same place, same message) removed.
    pub fn sorted(mut self) -> Diagnostics {
        self.items.sort_by_key(|d| (d.pos.line, d.pos.col));
        self.items
            .dedup_by(|a, b| a.pos == b.pos && a.message == b.message);
        self
    }

    /// The `file:line:col: message` headlines alone, one per problem.
    pub fn headlines(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|d| format!("{}:{}:{}: {}", self.file, d.pos.line, d.pos.col, d.message))
            .collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(
                f,
                "{}:{}:{}: {}",
                self.file, d.pos.line, d.pos.col, d.message
            )?;
            if let Some(line) = self.source.lines().nth(d.pos.line.saturating_sub(1)) {
                let number = d.pos.line.to_string();
                let pad = " ".repeat(number.len());
                let line = mask_secret_values(line);
                let (line, col) = window(&line, d.pos.col);
                writeln!(f, " {number} | {line}")?;
                let caret_at: String = line
                    .chars()
                    .take(col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, " {pad} | {caret_at}^")?;
            }
            if let Some(hint) = &d.hint {
                writeln!(f, "  hint: {hint}")?;
            }
        }
        let n = self.items.len();
        write!(
            f,
            "{} problem{} in {}",
            n,
            if n == 1 { "" } else { "s" },
            self.file
        )
    }
}

/// A message quotes the offending value; a value of megabytes would drown the terminal.
const MAX_MESSAGE_CHARS: usize = 400;
/// How much of a source line is shown around the caret.
const LINE_WINDOW_CHARS: usize = 120;

/// `text` cut in the middle to at most about `max` characters.
fn shorten(text: String, max: usize) -> String {
    let len = text.chars().count();
    if len <= max {
        return text;
    }
    let head: String = text.chars().take(max * 3 / 4).collect();
    let tail: String = text.chars().skip(len - max / 4).collect();
    format!("{head}...({} characters)...{tail}", len - max)
}

/// The part of `line` shown under a headline, and where column `col` is in it: the whole line
/// when it is short, else a window around the column, with `…` where it was cut. Control
/// characters (a NUL, an escape sequence) are shown as `�`, never sent to the terminal.
fn window(line: &str, col: usize) -> (String, usize) {
    let visible = |c: char| {
        if c.is_control() && c != '\t' {
            '\u{fffd}'
        } else {
            c
        }
    };
    let len = line.chars().count();
    if len <= LINE_WINDOW_CHARS {
        return (line.chars().map(visible).collect(), col);
    }
    let start = col
        .saturating_sub(1 + LINE_WINDOW_CHARS / 2)
        .min(len - LINE_WINDOW_CHARS);
    let mut shown = String::new();
    let mut col = col - start;
    if start > 0 {
        shown.push('…');
        col += 1;
    }
    shown.extend(
        line.chars()
            .skip(start)
            .take(LINE_WINDOW_CHARS)
            .map(visible),
    );
    if start + LINE_WINDOW_CHARS < len {
        shown.push('…');
    }
    (shown, col)
}

/// Whether a key names a secret value (not a file holding one: `password_file` is a path).
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.ends_with("_file") || key.ends_with("-file") {
        return false;
    }
    [
        "password",
        "secret",
        "token",
        "authorization",
        "api_key",
        "api-key",
        "apikey",
        "credential",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// A source line with the values of secret-named keys (`password: x`, `{token: "x"}`,
/// `Authorization: Bearer x`) starred out, character for character so the caret still points
/// where it did. The secrets of a manifest that does not validate are not registered for
/// redaction yet, and its lines are shown.
fn mask_secret_values(line: &str) -> String {
    // Masked values are skipped whole and `*` is no delimiter, so one buffer serves both
    // reading and starring.
    let mut chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != ':' || chars.get(i + 1).is_some_and(|c| !c.is_whitespace()) {
            i += 1;
            continue;
        }
        // The key before the colon: back to a delimiter, quotes dropped.
        let mut start = i;
        while start > 0 && !matches!(chars[start - 1], ' ' | '\t' | '{' | ',' | '[') {
            start -= 1;
        }
        let key: String = chars[start..i]
            .iter()
            .filter(|c| !matches!(c, '"' | '\''))
            .collect();
        let mut j = i + 1;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if !is_secret_key(&key) || j >= chars.len() {
            i += 1;
            continue;
        }
        // The value: a quoted string, or up to `,` `}` ` #` or the end.
        let end = match chars[j] {
            quote @ ('"' | '\'') => {
                j += 1;
                let mut k = j;
                while k < chars.len() && chars[k] != quote {
                    k += if chars[k] == '\\' { 2 } else { 1 };
                }
                k.min(chars.len())
            }
            '{' | '[' | '&' | '*' | '|' | '>' => {
                i = j;
                continue;
            }
            _ => {
                let mut k = j;
                while k < chars.len()
                    && !matches!(chars[k], ',' | '}' | ']')
                    && !(chars[k] == '#' && chars[k - 1].is_whitespace())
                {
                    k += 1;
                }
                while k > j && chars[k - 1].is_whitespace() {
                    k -= 1;
                }
                k
            }
        };
        for c in &mut chars[j..end] {
            *c = '*';
        }
        i = end.max(i + 1);
    }
    chars.into_iter().collect()
}

/// "did you mean" for a misspelt name: the closest candidate when it is close enough.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&wrong_lower, &c.to_lowercase()),
                c,
            )
        })
        .filter(|(distance, c)| *distance <= (c.len().max(wrong.len()) / 3).max(1) + 1)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest that fails validation has not registered its secrets for redaction: the
    /// values of secret-named keys are starred out in the lines shown, the rest kept.
    #[test]
    fn secret_values_in_a_shown_line_are_starred_out() {
        for (line, shown) in [
            (
                "influxdb: {password: SEKRIT7}",
                "influxdb: {password: *******}",
            ),
            (
                "  admin_password: \"SEK RIT\"  # old",
                "  admin_password: \"*******\"  # old",
            ),
            (
                "      basic_auth: {username: u, password: SEKRIT, pasword: x}",
                "      basic_auth: {username: u, password: ******, pasword: x}",
            ),
            (
                "    token: 'S3', server: \"consul:0\"",
                "    token: '**', server: \"consul:0\"",
            ),
            (
                "      headers: {Authorization: \"Bearer SEKRIT\", X-Api-Key: k3y}",
                "      headers: {Authorization: \"*************\", X-Api-Key: ***}",
            ),
            (
                "    password_file: secrets/pw",
                "    password_file: secrets/pw",
            ),
            ("    secret: [x]", "    secret: [x]"),
            ("  url: http://h:1/x", "  url: http://h:1/x"),
        ] {
            assert_eq!(mask_secret_values(line), shown, "{line}");
        }
        let mut d = Diagnostics::new("monstack.yaml", "influxdb: {password: SEKRIT7}\n");
        d.error(
            Pos {
                line: 1,
                col: 22,
                offset: 21,
            },
            "the InfluxDB `password` is too weak",
            None,
        );
        let text = d.to_string();
        assert!(!text.contains("SEKRIT7"), "{text}");
        assert!(
            text.contains(" | influxdb: {password: *******}\n"),
            "{text}"
        );
        assert!(text.contains("\n   |                      ^"), "{text}");
    }

    #[test]
    fn shows_line_caret_and_hint() {
        let mut d = Diagnostics::new("monstack.yaml", "a: 1\ntargets:\n  - jbo: x\n");
        d.error(
            Pos {
                line: 3,
                col: 5,
                offset: 0,
            },
            "unknown field `jbo`",
            Some("did you mean `job`?".into()),
        );
        let text = d.to_string();
        assert_eq!(
            text,
            "monstack.yaml:3:5: unknown field `jbo`\n 3 |   - jbo: x\n   |     ^\n  hint: did you mean `job`?\n1 problem in monstack.yaml"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        let known = ["job", "targets", "path", "interval", "labels"];
        assert_eq!(closest("jbo", known), Some("job"));
        assert_eq!(closest("intervall", known), Some("interval"));
        assert_eq!(closest("label", known), Some("labels"));
        assert_eq!(closest("zzzzzz", known), None);
    }

    #[test]
    fn a_long_line_is_shown_around_the_caret_and_control_characters_are_not_sent() {
        let line = format!("a: [{}x]", "1, ".repeat(100_000));
        let col = line.find('x').unwrap() + 1;
        let mut d = Diagnostics::new("m.yaml", format!("{line}\nb: \"\u{1b}[2J\"\n"));
        let pos = |line, col| Pos {
            line,
            col,
            offset: 0,
        };
        d.error(pos(1, col), "here", None);
        d.error(pos(2, 4), "value", None);
        let text = d.to_string();
        assert!(text.len() < 1000, "{} bytes", text.len());
        let lines: Vec<&str> = text.lines().collect();
        // The caret is under the `x`, in the window of the line that is shown.
        let shown = lines[1].split_once(" | ").unwrap().1;
        let caret = lines[2].split_once(" | ").unwrap().1.chars().count();
        assert_eq!(shown.chars().nth(caret - 1), Some('x'), "{shown}");
        assert!(shown.starts_with('…') && shown.ends_with(']'), "{shown}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(lines[5].contains("\"\u{fffd}[2J\""), "{text:?}");
    }

    #[test]
    fn a_message_quoting_a_huge_value_is_shortened() {
        let mut d = Diagnostics::new("m.yaml", "");
        let value = "v".repeat(1_000_000);
        d.error(
            Pos::default(),
            format!("invalid name `{value}` (at most 48)"),
            None,
        );
        let message = &d.items[0].message;
        assert!(message.chars().count() < 500, "{}", message.len());
        assert!(message.starts_with("invalid name `vvv"));
        assert!(message.ends_with("` (at most 48)"));
    }
}
