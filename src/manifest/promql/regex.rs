//! Label matcher regexps (`=~`, `!~`) as Go's `regexp/syntax` reads them, which is what
//! Prometheus uses; promql-parser compiles them with the Rust `regex` crate instead. The two
//! dialects differ both ways: Go accepts `\Qa.b\E`, `[[:foo]`, `[a[b]`, `\01`, `(?)`,
//! `(?<3n>x)`, duplicate group names and `\p{^Greek}`, which Rust refuses; Rust accepts `a**`,
//! `(?x)`, `\p{Letter}`, `[a--b]`, `a{1001}` and `\e`, which Go refuses; and some text means
//! different things (`\<` is a literal in Go and a word boundary in Rust, `[a&&b]` a set of
//! three characters in Go and an intersection in Rust).
//!
//! [`translate`] parses a regexp by Go's rules (a port of the parts of `regexp/syntax`'s
//! `parse.go` that decide validity) and writes the same pattern in Rust syntax, so the crate
//! sees an equivalent regexp: it compiles it and decides whether the matcher matches the empty
//! string exactly as Prometheus would.

use super::unicode_names::GO_UNICODE_CLASS_NAMES;

const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Go's limit on `{n,m}` counts, alone and multiplied through nesting.
const MAX_REPEAT: u32 = 1000;

/// The Rust spelling of Go regexp `re`, or Go's complaint about it (e.g. "invalid nested
/// repetition operator: `**`").
pub(super) fn translate(re: &str) -> Result<String, String> {
    let mut t = Translator {
        c: re.chars().collect(),
        i: 0,
        out: String::with_capacity(re.len() + 8),
        depth: 0,
        flags_at: None,
    };
    t.run()?;
    check_repeat_sizes(&t.out)?;
    Ok(t.out)
}

struct Translator {
    c: Vec<char>,
    i: usize,
    out: String,
    depth: usize,
    /// Where in `out` a run of flag groups (`(?i)`) that came right after the last item starts:
    /// a repetition after them repeats that item in Go, so it is written before them.
    flags_at: Option<usize>,
}

/// A character as a Rust regexp literal that means the character itself anywhere, inside a
/// class or not.
fn literal(c: char) -> String {
    if c.is_ascii_alphanumeric() {
        c.to_string()
    } else {
        format!("\\x{{{:X}}}", c as u32)
    }
}

fn quote(chars: &[char]) -> String {
    format!("`{}`", chars.iter().collect::<String>())
}

impl Translator {
    fn peek(&self, k: usize) -> Option<char> {
        self.c.get(self.i + k).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(k, ch)| self.peek(k) == Some(ch))
    }

    fn rest_from(&self, k: usize) -> String {
        quote(&self.c[k.min(self.c.len())..])
    }

    fn run(&mut self) -> Result<(), String> {
        // Where the previous item started, if it was a repetition operator.
        let mut last_repeat = None;
        while let Some(ch) = self.peek(0) {
            let start = self.i;
            let mut repeat = None;
            let mut flags = None;
            match ch {
                '(' => {
                    let at = self.out.len();
                    if self.group()? {
                        flags = Some(self.flags_at.unwrap_or(at));
                    }
                }
                ')' => {
                    if self.depth == 0 {
                        return Err(format!("unexpected ): {}", quote(&self.c)));
                    }
                    self.depth -= 1;
                    self.out.push(')');
                    self.i += 1;
                }
                '[' => self.class()?,
                '*' | '+' | '?' => {
                    self.i += 1;
                    self.repeat_suffix(last_repeat, ch.to_string())?;
                    repeat = Some(start);
                }
                '{' => match self.counted_repeat()? {
                    Some(text) => {
                        self.repeat_suffix(last_repeat, text)?;
                        repeat = Some(start);
                    }
                    None => {
                        // Not a valid repeat: Go reads `{` as a literal.
                        self.out.push_str("\\{");
                        self.i += 1;
                    }
                },
                '\\' => self.escape()?,
                ']' | '}' => {
                    self.out.push_str(&literal(ch));
                    self.i += 1;
                }
                _ => {
                    self.out.push(ch);
                    self.i += 1;
                }
            }
            last_repeat = repeat;
            self.flags_at = flags;
        }
        if self.depth > 0 {
            return Err(format!("missing closing ): {}", quote(&self.c)));
        }
        Ok(())
    }

    /// After a repetition operator (already consumed, `op` its text): an optional `?` for
    /// non-greedy, and Go's rule that repetitions do not stack (`a**`, `a*{2}`; `previous` is
    /// where the item before started if it was a repetition).
    fn repeat_suffix(&mut self, previous: Option<usize>, op: String) -> Result<(), String> {
        let lazy = self.peek(0) == Some('?');
        if lazy {
            self.i += 1;
        }
        if let Some(previous) = previous {
            return Err(format!(
                "invalid nested repetition operator: {}",
                quote(&self.c[previous..self.i])
            ));
        }
        let op = if lazy { format!("{op}?") } else { op };
        match self.flags_at {
            Some(at) => self.out.insert_str(at, &op),
            None => self.out.push_str(&op),
        }
        Ok(())
    }

    /// `{n}`, `{n,}` or `{n,m}` at the cursor (Go: no leading zeros, counts up to 1000);
    /// consumes it and returns its text, or `None` (nothing consumed) if it is not a repeat.
    fn counted_repeat(&mut self) -> Result<Option<String>, String> {
        let start = self.i;
        let mut k = self.i + 1;
        let number = |k: &mut usize| -> Option<u64> {
            let s = *k;
            if !self.c.get(s).is_some_and(char::is_ascii_digit) {
                return None;
            }
            if self.c[s] == '0' && self.c.get(s + 1).is_some_and(char::is_ascii_digit) {
                return None;
            }
            let mut n: u64 = 0;
            while self.c.get(*k).is_some_and(char::is_ascii_digit) {
                n = (n * 10 + self.c[*k].to_digit(10).unwrap_or(0) as u64).min(u64::MAX / 100);
                *k += 1;
            }
            Some(n)
        };
        let Some(min) = number(&mut k) else {
            return Ok(None);
        };
        let max = if self.c.get(k) == Some(&',') {
            k += 1;
            if self.c.get(k) == Some(&'}') {
                None
            } else {
                match number(&mut k) {
                    Some(m) => Some(m),
                    None => return Ok(None),
                }
            }
        } else {
            Some(min)
        };
        if self.c.get(k) != Some(&'}') {
            return Ok(None);
        }
        k += 1;
        let text: String = self.c[start..k].iter().collect();
        let too_big = min > MAX_REPEAT as u64 || max.is_some_and(|m| m > MAX_REPEAT as u64);
        if too_big || max.is_some_and(|m| min > m) {
            return Err(format!("invalid repeat count: `{text}`"));
        }
        self.i = k;
        Ok(Some(text))
    }

    /// `(`, `(?P<name>`, `(?<name>`, `(?flags)`, `(?flags:`; `true` for a flags-only group.
    fn group(&mut self) -> Result<bool, String> {
        let start = self.i;
        if self.peek(1) != Some('?') {
            self.depth += 1;
            self.out.push('(');
            self.i += 1;
            return Ok(false);
        }
        let named = (self.starts_with("(?P<") && self.c.len() - start > 4)
            || (self.starts_with("(?<")
                && self.c.len() - start > 3
                && !matches!(self.peek(3), Some('=' | '!')));
        if named {
            let begin = if self.peek(2) == Some('P') { 4 } else { 3 };
            let Some(end) = self.c[start..].iter().position(|&c| c == '>') else {
                return Err(format!("invalid named capture: {}", self.rest_from(start)));
            };
            let name = &self.c[start + begin..start + end];
            if name.is_empty() || !name.iter().all(|c| c.is_ascii_alphanumeric() || *c == '_') {
                return Err(format!(
                    "invalid named capture: {}",
                    quote(&self.c[start..start + end + 1])
                ));
            }
            // Rust wants names to start with a letter and be unique; Go does not. The name
            // does not change what matches.
            self.depth += 1;
            self.out.push('(');
            self.i = start + end + 1;
            return Ok(false);
        }
        let mut k = start + 2;
        let mut negated = false;
        let mut saw_flag = false;
        while let Some(&c) = self.c.get(k) {
            k += 1;
            match c {
                'i' | 'm' | 's' | 'U' => saw_flag = true,
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                ':' | ')' if !negated || saw_flag => {
                    let flags: String = self.c[start + 2..k - 1].iter().collect();
                    if c == ':' {
                        self.depth += 1;
                        self.out.push_str(&format!("(?{flags}:"));
                    } else if !flags.is_empty() {
                        self.out.push_str(&format!("(?{flags})"));
                    }
                    self.i = k;
                    return Ok(c == ')');
                }
                _ => break,
            }
        }
        Err(format!(
            "invalid or unsupported Perl syntax: {}",
            quote(&self.c[start..k.min(self.c.len())])
        ))
    }

    /// A backslash outside a class.
    fn escape(&mut self) -> Result<(), String> {
        match self.peek(1) {
            None => Err("trailing backslash at end of expression".to_string()),
            Some('Q') => {
                // \Q...\E: literals up to \E or the end.
                let from = self.i + 2;
                let mut k = from;
                while k < self.c.len() && !(self.c[k] == '\\' && self.c.get(k + 1) == Some(&'E')) {
                    k += 1;
                }
                for &c in &self.c[from..k] {
                    self.out.push_str(&literal(c));
                }
                self.i = (k + 2).min(self.c.len());
                Ok(())
            }
            Some(c @ ('A' | 'b' | 'B' | 'z' | 'd' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                self.out.push('\\');
                self.out.push(c);
                self.i += 2;
                Ok(())
            }
            Some('p' | 'P') => {
                let class = self.unicode_class()?;
                self.out.push_str(&class);
                Ok(())
            }
            Some(_) => {
                let c = self.single_escape()?;
                self.out.push_str(&literal(c));
                Ok(())
            }
        }
    }

    /// Go's `parseEscape`: octal, `\x`, C escapes and escaped punctuation, at the cursor (a
    /// backslash); consumes it and returns the character.
    fn single_escape(&mut self) -> Result<char, String> {
        let start = self.i;
        let bad = |t: &Translator, end: usize| {
            Err(format!(
                "invalid escape sequence: {}",
                quote(&t.c[start..end.min(t.c.len())])
            ))
        };
        let Some(c) = self.peek(1) else {
            return Err("trailing backslash at end of expression".to_string());
        };
        self.i += 2;
        let is_octal = |c: Option<&char>| c.is_some_and(|c| ('0'..='7').contains(c));
        match c {
            '1'..='7' if !is_octal(self.c.get(self.i)) => bad(self, self.i),
            '0'..='7' => {
                let mut r = c.to_digit(8).unwrap_or(0);
                for _ in 1..3 {
                    if !is_octal(self.c.get(self.i)) {
                        break;
                    }
                    r = r * 8 + self.c[self.i].to_digit(8).unwrap_or(0);
                    self.i += 1;
                }
                Ok(char::from_u32(r).unwrap_or('\u{FFFD}'))
            }
            'x' => {
                if self.peek(0) == Some('{') {
                    let mut k = self.i + 1;
                    let mut r: u32 = 0;
                    while let Some(d) = self.c.get(k).and_then(|c| c.to_digit(16)) {
                        r = r.saturating_mul(16).saturating_add(d);
                        k += 1;
                    }
                    if k == self.i + 1 || self.c.get(k) != Some(&'}') || r > 0x10FFFF {
                        return bad(self, k + 1);
                    }
                    self.i = k + 1;
                    Ok(char::from_u32(r).unwrap_or('\u{FFFD}'))
                } else {
                    let hi = self.peek(0).and_then(|c| c.to_digit(16));
                    let lo = self.peek(1).and_then(|c| c.to_digit(16));
                    match (hi, lo) {
                        (Some(h), Some(l)) => {
                            self.i += 2;
                            Ok(char::from_u32(h * 16 + l).unwrap_or('\u{FFFD}'))
                        }
                        _ => bad(self, self.i + 2),
                    }
                }
            }
            'a' => Ok('\u{7}'),
            'f' => Ok('\u{c}'),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            't' => Ok('\t'),
            'v' => Ok('\u{b}'),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
            _ => bad(self, self.i),
        }
    }

    /// `\pX`, `\p{Name}`, `\PX`, `\P{^Name}` at the cursor, with Go's names.
    fn unicode_class(&mut self) -> Result<String, String> {
        let start = self.i;
        let mut negated = self.peek(1) == Some('P');
        let name: String = if self.peek(2) == Some('{') {
            let Some(end) = self.c[start..].iter().position(|&c| c == '}') else {
                return Err(format!(
                    "invalid character class range: {}",
                    self.rest_from(start)
                ));
            };
            self.i = start + end + 1;
            self.c[start + 3..start + end].iter().collect()
        } else {
            self.i = (start + 3).min(self.c.len());
            self.c[start + 2..self.i].iter().collect()
        };
        let name = match name.strip_prefix('^') {
            Some(rest) => {
                negated = !negated;
                rest.to_string()
            }
            None => name,
        };
        if !GO_UNICODE_CLASS_NAMES.contains(&name.as_str()) {
            return Err(format!(
                "invalid character class range: {} (not a Unicode class name Go knows)",
                quote(&self.c[start..self.i])
            ));
        }
        if name == "Cs" {
            // Surrogates, which Rust's classes cannot hold: they never occur in a valid string,
            // so `\p{Cs}` matches nothing and `\P{Cs}` anything.
            return Ok(if negated {
                r"[\x00-\x{10FFFF}]"
            } else {
                r"[^\x00-\x{10FFFF}]"
            }
            .to_string());
        }
        Ok(format!("\\{}{{{name}}}", if negated { 'P' } else { 'p' }))
    }

    /// A bracketed class at the cursor, by Go's `parseClass`.
    fn class(&mut self) -> Result<(), String> {
        let whole = self.i;
        self.i += 1;
        self.out.push('[');
        if self.peek(0) == Some('^') {
            self.out.push('^');
            self.i += 1;
        }
        let missing = |t: &Translator| format!("missing closing ]: {}", quote(&t.c[whole..]));
        let mut first = true;
        loop {
            match self.peek(0) {
                None => return Err(missing(self)),
                Some(']') if !first => break,
                _ => {}
            }
            first = false;
            if self.starts_with("[:") && self.c.len() - self.i > 2 {
                let rest: String = self.c[self.i + 2..].iter().collect();
                if let Some(end) = rest.find(":]") {
                    let name = &rest[..end];
                    if !POSIX_CLASSES.contains(&name.strip_prefix('^').unwrap_or(name)) {
                        return Err(format!("invalid character class range: `[:{name}:]`"));
                    }
                    self.out.push_str(&format!("[:{name}:]"));
                    self.i += 2 + name.chars().count() + 2;
                    continue;
                }
            }
            if self.peek(0) == Some('\\') {
                match self.peek(1) {
                    Some('p' | 'P') => {
                        let class = self.unicode_class()?;
                        self.out.push_str(&class);
                        continue;
                    }
                    Some(c @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                        self.out.push('\\');
                        self.out.push(c);
                        self.i += 2;
                        continue;
                    }
                    _ => {}
                }
            }
            let range_start = self.i;
            let Some(lo) = self.class_char() else {
                return Err(missing(self));
            };
            let lo = lo?;
            let mut hi = lo;
            if self.peek(0) == Some('-') && self.peek(1).is_some_and(|c| c != ']') {
                self.i += 1;
                hi = match self.class_char() {
                    Some(hi) => hi?,
                    None => return Err(missing(self)),
                };
                if hi < lo {
                    return Err(format!(
                        "invalid character class range: {}",
                        quote(&self.c[range_start..self.i])
                    ));
                }
            }
            self.out.push_str(&literal(lo));
            if hi != lo {
                self.out.push('-');
                self.out.push_str(&literal(hi));
            }
        }
        self.i += 1;
        self.out.push(']');
        Ok(())
    }

    /// One class character (Go's `parseClassChar`): `None` at the end of input.
    fn class_char(&mut self) -> Option<Result<char, String>> {
        let c = self.peek(0)?;
        if c == '\\' {
            return Some(self.single_escape());
        }
        self.i += 1;
        Some(Ok(c))
    }
}

/// Go's `repeatIsValid`: counted repetitions multiplied through nesting stay within 1000.
/// Runs on the translated (Rust) pattern, whose structure is the same.
fn check_repeat_sizes(rust: &str) -> Result<(), String> {
    use regex_syntax::ast::parse::ParserBuilder;
    let ast = ParserBuilder::new()
        .build()
        .parse(rust)
        .map_err(|e| e.kind().to_string())?;
    within(&ast, MAX_REPEAT)
}

fn within(ast: &regex_syntax::ast::Ast, budget: u32) -> Result<(), String> {
    use regex_syntax::ast::{Ast, RepetitionKind, RepetitionRange};
    match ast {
        Ast::Repetition(r) => {
            let mut budget = budget;
            if let RepetitionKind::Range(range) = &r.op.kind {
                let (min, max) = match *range {
                    RepetitionRange::Exactly(k) => (k, Some(k)),
                    RepetitionRange::AtLeast(k) => (k, None),
                    RepetitionRange::Bounded(a, b) => (a, Some(b)),
                };
                if max == Some(0) {
                    return Ok(());
                }
                let m = max.unwrap_or(min);
                if m > budget {
                    return Err(
                        "invalid repeat count (nested counted repetitions exceed 1000)".into(),
                    );
                }
                budget = budget.checked_div(m).unwrap_or(budget);
            }
            within(&r.ast, budget)
        }
        Ast::Group(g) => within(&g.ast, budget),
        Ast::Alternation(a) => a.asts.iter().try_for_each(|x| within(x, budget)),
        Ast::Concat(c) => c.asts.iter().try_for_each(|x| within(x, budget)),
        _ => Ok(()),
    }
}
