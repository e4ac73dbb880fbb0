//! The first pass over an expression, before the crate parses it: a small lexer (strings,
//! comments, numbers, words, punctuation) that fixes the crate's input where its lexer differs
//! from Prometheus 3.5's, and rejects what only Prometheus' lexer rejects. It also keeps the
//! tokens, with positions, for the messages about syntax errors the crate cannot place.
//!
//! Rewritten (accepted by Prometheus, refused by the crate): backtick raw strings with
//! backslashes, `1_000`, `0e0`/`01e3`, `up[.5]`, `up[+5m]`, `offset 0s`, `offset NaN`, `a:b`
//! and `anchored`/`smoothed` in grouping lists, `anchored`/`smoothed` as metric names, and label
//! matcher regexps (translated from Go to Rust syntax by [`super::regex`]).
//! Rejected (accepted by the crate, refused by Prometheus): see [`super::numbers`] and
//! [`super::regex`], and nesting beyond [`super::MAX_NESTING`].

use super::numbers::{self, Place};
use super::{messages, regex, PromqlError, MAX_NESTING};

/// What the crate parses, and what the messages need to know about the source.
pub(super) struct Prepared {
    /// The source with the rewrites applied.
    pub text: String,
    /// `text` with each unary `+` replaced by `-`, if there is one: the crate drops unary plus
    /// without checking its operand, and unary minus has the same typing rules.
    pub unary_plus_as_minus: Option<String>,
    /// The tokens of the original source.
    pub tokens: Vec<Token>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    /// An identifier or keyword (`up`, `by`, `sum`, `job:rate5m`).
    Word,
    /// A number or duration (`1`, `0x1f`, `5m`).
    Number,
    /// A quoted string, quotes included.
    Str,
    /// One punctuation character.
    Punct,
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub kind: Kind,
    pub text: String,
    /// Byte offset in the original source.
    pub at: usize,
}

/// A problem found while scanning, at a byte offset of the source.
pub(super) struct ScanError {
    at: usize,
    message: String,
    hint: Option<String>,
}

impl ScanError {
    fn new(at: usize, message: impl Into<String>, hint: Option<String>) -> ScanError {
        ScanError {
            at,
            message: message.into(),
            hint,
        }
    }

    pub(super) fn into_error(self, source: &str) -> PromqlError {
        let at = messages::position(source, self.at);
        let message = if self.message.contains("{at}") {
            self.message.replace("{at}", &at)
        } else {
            format!("{} {at}", self.message)
        };
        PromqlError {
            message,
            hint: self.hint,
        }
    }
}

/// What the previous token lets come next.
#[derive(PartialEq, Clone, Copy)]
enum Prev {
    Start,
    /// An operator, an opening bracket, a comma, or an operator keyword.
    Operator,
    /// Something with a value: identifier, number, string, closing bracket.
    Operand,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Keywords after which an operand comes (so a following `+` or `-` is unary); the same words
/// never start or end an operand (`syntax` places errors by them).
pub(super) const OPERATOR_WORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "atan2",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Keywords followed by a parenthesised list of label names.
const GROUPING_WORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Words the crate reserves (Prometheus 3.7 modifiers) but 3.5 reads as plain names.
const LATER_KEYWORDS: &[&str] = &["anchored", "smoothed"];

struct Scanner<'a> {
    source: &'a str,
    chars: Vec<char>,
    /// Byte offset of each char, plus the source length at the end.
    offsets: Vec<usize>,
    i: usize,
    out: String,
    alt: String,
    has_unary_plus: bool,
    prev: Prev,
    place: Place,
    brackets: i64,
    nesting: usize,
    unary_run: usize,
    grouping_pending: bool,
    in_grouping: bool,
    tokens: Vec<Token>,
}

/// Scans `source`, returning the crate's input or the first problem only Prometheus' lexer
/// would find.
pub(super) fn prepare(source: &str) -> Result<Prepared, ScanError> {
    let mut offsets: Vec<usize> = source.char_indices().map(|(o, _)| o).collect();
    offsets.push(source.len());
    let mut s = Scanner {
        source,
        chars: source.chars().collect(),
        offsets,
        i: 0,
        out: String::with_capacity(source.len()),
        alt: String::with_capacity(source.len()),
        has_unary_plus: false,
        prev: Prev::Start,
        place: Place::Plain,
        brackets: 0,
        nesting: 0,
        unary_run: 0,
        grouping_pending: false,
        in_grouping: false,
        tokens: Vec::new(),
    };
    s.run()?;
    Ok(Prepared {
        unary_plus_as_minus: s.has_unary_plus.then_some(s.alt),
        text: s.out,
        tokens: s.tokens,
    })
}

impl Scanner<'_> {
    fn emit(&mut self, text: &str) {
        self.out.push_str(text);
        self.alt.push_str(text);
    }

    fn slice(&self, from: usize, to: usize) -> &str {
        &self.source[self.offsets[from]..self.offsets[to]]
    }

    fn token(&mut self, kind: Kind, from: usize, to: usize) {
        let text = self.slice(from, to).to_string();
        self.tokens.push(Token {
            kind,
            text,
            at: self.offsets[from],
        });
    }

    fn operand(&mut self) {
        self.prev = Prev::Operand;
        self.unary_run = 0;
    }

    fn run(&mut self) -> Result<(), ScanError> {
        while self.i < self.chars.len() {
            let c = self.chars[self.i];
            if c.is_whitespace() {
                self.emit(&c.to_string());
                self.i += 1;
                continue;
            }
            if c == '#' {
                let start = self.i;
                while self.i < self.chars.len() && self.chars[self.i] != '\n' {
                    self.i += 1;
                }
                let comment = self.slice(start, self.i).to_string();
                self.emit(&comment);
                continue;
            }
            if c != '(' {
                self.grouping_pending = false;
            }
            let place = std::mem::replace(&mut self.place, Place::Plain);
            match c {
                '"' | '\'' | '`' => self.string(c)?,
                _ if c.is_ascii_digit()
                    || (c == '.'
                        && self.chars.get(self.i + 1).is_some_and(char::is_ascii_digit)) =>
                {
                    self.number(place)?
                }
                _ if is_ident_start(c) && !(c == ':' && self.brackets > 0) => self.word(place)?,
                '+' | '-' => self.sign(c, place)?,
                _ => self.punct(c)?,
            }
        }
        Ok(())
    }

    fn string(&mut self, quote: char) -> Result<(), ScanError> {
        let start = self.i;
        let mut j = self.i + 1;
        while j < self.chars.len() && self.chars[j] != quote {
            if self.chars[j] == '\\' && quote != '`' {
                j += 1;
            }
            j += 1;
        }
        let end = (j + 1).min(self.chars.len());
        self.i = end;
        self.token(Kind::Str, start, end);
        self.operand();
        let literal = self.slice(start, end).to_string();
        let Some(value) = unquote(&literal) else {
            // Unterminated or a bad escape: the crate says which.
            self.emit(&literal);
            return Ok(());
        };
        let n = self.tokens.len();
        let is_regex = n >= 3
            && self.tokens[n - 2].text == "~"
            && matches!(self.tokens[n - 3].text.as_str(), "=" | "!")
            && self.tokens[n - 3].kind == Kind::Punct;
        if is_regex {
            let rust = regex::translate(&value).map_err(|e| {
                ScanError::new(
                    self.offsets[start],
                    format!("invalid regular expression {literal} {{at}}: {e}"),
                    Some(
                        "label matchers use Go's RE2 syntax (https://github.com/google/re2/wiki/Syntax); \
                         in double quotes a backslash is written twice, as in \"\\\\d+\""
                            .to_string(),
                    ),
                )
            })?;
            if rust != value || quote == '`' {
                self.emit(&requote(&rust));
            } else {
                self.emit(&literal);
            }
        } else if quote == '`' {
            // The crate processes escapes in raw strings.
            self.emit(&requote(&value));
        } else {
            self.emit(&literal);
        }
        Ok(())
    }

    fn number(&mut self, place: Place) -> Result<(), ScanError> {
        let start = self.i;
        let end = numbers::token_end(&self.chars, start);
        let token = self.slice(start, end).to_string();
        self.i = end;
        self.token(Kind::Number, start, end);
        let place = if self.brackets > 0 {
            Place::Range
        } else {
            place
        };
        let mut rewritten = numbers::check(&token, place)
            .map_err(|p| ScanError::new(self.offsets[start], p.message, p.hint))?;
        if place == Place::Range && token.starts_with('.') {
            // `up[.5]`: the crate's bracket lexer wants a leading digit.
            rewritten = Some(format!("0{}", rewritten.as_deref().unwrap_or(&token)));
        }
        if place == Place::Offset && numbers::duration_secs(&token) == Some(0.0) {
            // `offset 0s`: the crate refuses zero durations here.
            rewritten = Some("0".to_string());
        }
        self.emit(rewritten.as_deref().unwrap_or(&token));
        self.operand();
        Ok(())
    }

    fn word(&mut self, place: Place) -> Result<(), ScanError> {
        let start = self.i;
        while self.i < self.chars.len() && is_ident_char(self.chars[self.i]) {
            self.i += 1;
        }
        let word = self.slice(start, self.i).to_string();
        self.token(Kind::Word, start, self.i);
        let lower = word.to_ascii_lowercase();
        let later_keyword = LATER_KEYWORDS.contains(&lower.as_str());
        if self.in_grouping && (word.contains(':') || later_keyword) {
            // `sum by (a:b)` is fine in Prometheus, an error in the crate.
            self.emit(&format!("\"{word}\""));
        } else if later_keyword && self.prev != Prev::Operand && !self.next_is('(') {
            // A metric or label named `anchored`: any other name has the same validity.
            self.emit(&format!("_{word}"));
        } else if place == Place::Offset && lower == "nan" {
            // Prometheus reads `offset NaN` as no offset; the crate panics.
            self.emit("0");
        } else if place == Place::Offset && lower == "inf" {
            return Err(ScanError::new(
                self.offsets[start],
                format!("offset `{word}` is out of range"),
                None,
            ));
        } else {
            self.emit(&word);
        }
        self.grouping_pending = GROUPING_WORDS.contains(&lower.as_str()) && !self.in_grouping;
        // `offset` where an operand is due is a metric name (`offset - 1`).
        let modifier = lower == "offset" && self.prev == Prev::Operand;
        self.place = if modifier {
            Place::Offset
        } else {
            Place::Plain
        };
        if lower == "offset" && !modifier {
            self.operand();
        } else if OPERATOR_WORDS.contains(&lower.as_str()) && !self.in_grouping {
            self.prev = Prev::Operator;
        } else {
            self.operand();
        }
        Ok(())
    }

    /// Whether the next non-space character is `c`.
    fn next_is(&self, c: char) -> bool {
        self.chars[self.i..]
            .iter()
            .find(|ch| !ch.is_whitespace())
            .is_some_and(|ch| *ch == c)
    }

    fn sign(&mut self, c: char, place: Place) -> Result<(), ScanError> {
        let start = self.i;
        self.token(Kind::Punct, start, start + 1);
        self.i += 1;
        let unary = self.prev != Prev::Operand;
        let previous = self.out.trim_end().chars().last();
        if c == '+' && self.brackets > 0 && matches!(previous, Some('[' | ':')) {
            // `up[+5m]` is fine in Prometheus, an error in the crate.
            return Ok(());
        }
        if unary {
            self.unary_run += 1;
            self.check_nesting(start)?;
        }
        if c == '+' && unary && place == Place::Plain {
            self.out.push('+');
            self.alt.push('-');
            self.has_unary_plus = true;
        } else {
            self.emit(&c.to_string());
        }
        self.prev = Prev::Operator;
        // A sign right after `offset` or `@` keeps its place.
        self.place = place;
        Ok(())
    }

    fn punct(&mut self, c: char) -> Result<(), ScanError> {
        let start = self.i;
        self.token(Kind::Punct, start, start + 1);
        self.i += 1;
        match c {
            '(' | '[' | '{' => {
                if c == '(' && self.grouping_pending {
                    self.in_grouping = true;
                }
                if c == '[' {
                    self.brackets += 1;
                }
                self.grouping_pending = false;
                self.nesting += 1;
                self.check_nesting(start)?;
                self.prev = Prev::Operator;
            }
            ')' | ']' | '}' => {
                if c == ']' {
                    self.brackets -= 1;
                }
                self.nesting = self.nesting.saturating_sub(1);
                if c == ')' && self.in_grouping {
                    // After `by (...)` or `on (...)` comes an operand.
                    self.in_grouping = false;
                    self.prev = Prev::Operator;
                } else {
                    self.operand();
                }
            }
            _ => self.prev = Prev::Operator,
        }
        if c == '@' {
            self.place = Place::At;
        }
        self.emit(&c.to_string());
        Ok(())
    }

    fn check_nesting(&self, at: usize) -> Result<(), ScanError> {
        if self.nesting + self.unary_run > MAX_NESTING {
            return Err(ScanError::new(
                self.offsets[at],
                format!("the expression nests deeper than {MAX_NESTING} levels"),
                Some("split it into recording rules".to_string()),
            ));
        }
        Ok(())
    }
}

/// The value of a PromQL string literal (Go's `strconv.Unquote` rules), `None` if it is not a
/// complete, valid one.
pub(super) fn unquote(literal: &str) -> Option<String> {
    let quote = literal.chars().next()?;
    let body = literal.strip_prefix(quote)?.strip_suffix(quote)?;
    if literal.len() < 2 {
        return None;
    }
    if quote == '`' {
        return Some(body.to_string());
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote || c == '\n' {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let simple = match e {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            _ if e == quote => Some(e),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            continue;
        }
        let (digits, radix) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => return None,
        };
        let mut text = if radix == 8 {
            e.to_string()
        } else {
            String::new()
        };
        for _ in 0..digits {
            text.push(chars.next()?);
        }
        let value = u32::from_str_radix(&text, radix).ok()?;
        if radix == 8 || e == 'x' {
            // Go: a byte. Only ASCII bytes make a valid UTF-8 string on their own.
            if value > 0x7f {
                return None;
            }
        }
        out.push(char::from_u32(value)?);
    }
    Some(out)
}

/// `value` as a double-quoted literal the crate reads back to `value`.
fn requote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}
