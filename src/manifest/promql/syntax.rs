//! Placing a syntax error. For most syntax errors promql-parser says only "invalid promql
//! query", with no position; this looks at the scanned tokens for the mistakes people make
//! (`sum by (job) up`, `up x`, `1 +`, `sum(up) by job`, `()`, a missing comma between label
//! matchers) and says where and how to fix it. Anything else stays a plain "syntax error".

use super::functions::AGGREGATIONS;
use super::messages::position;
use super::scan::{Kind, Token, OPERATOR_WORDS};
use super::PromqlError;

/// Operators that need an operand on both sides.
const BINARY: &[&str] = &[
    "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless", "atan2",
];

/// A token, with two-character operators (`==`, `!=`, `>=`, `<=`, `=~`, `!~`) joined.
struct Lexeme<'a> {
    kind: Kind,
    text: String,
    at: usize,
    /// The original token, for words.
    word: Option<&'a str>,
}

fn lexemes(tokens: &[Token]) -> Vec<Lexeme<'_>> {
    let mut out: Vec<Lexeme> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if let Some(last) = out.last_mut() {
            let joined = format!("{}{}", last.text, t.text);
            let adjacent = last.at + last.text.len() == t.at;
            if adjacent
                && t.kind == Kind::Punct
                && matches!(joined.as_str(), "==" | "!=" | ">=" | "<=" | "=~" | "!~")
            {
                last.text = joined;
                continue;
            }
        }
        out.push(Lexeme {
            kind: t.kind,
            text: t.text.clone(),
            at: t.at,
            word: (t.kind == Kind::Word).then_some(t.text.as_str()),
        });
    }
    out
}

fn lower(l: &Lexeme) -> String {
    l.text.to_ascii_lowercase()
}

fn is_keyword(l: &Lexeme) -> bool {
    l.kind == Kind::Word && OPERATOR_WORDS.contains(&lower(l).as_str())
}

/// Whether `l` can end an operand (`up`, `1`, `"a"`, `)`, `]`, `}`).
fn ends_operand(l: &Lexeme) -> bool {
    match l.kind {
        Kind::Word => !is_keyword(l),
        Kind::Number | Kind::Str => true,
        Kind::Punct => matches!(l.text.as_str(), ")" | "]" | "}"),
    }
}

/// Whether `l` can only start an operand (`up`, `1`, `"a"`).
fn starts_operand(l: &Lexeme) -> bool {
    match l.kind {
        Kind::Word => !is_keyword(l),
        Kind::Number | Kind::Str => true,
        Kind::Punct => false,
    }
}

fn is_binary(l: &Lexeme) -> bool {
    let text = lower(l);
    BINARY.contains(&text.as_str())
}

/// Keywords that cannot start an expression (unlike `by`, `offset` or `sum`, which are metric
/// names there).
const NEVER_FIRST: &[&str] = &[
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "atan2",
];

/// The index of the `(` matching the `)` at `close`.
fn opening(lx: &[Lexeme], close: usize) -> Option<usize> {
    let mut depth = 0;
    for i in (0..=close).rev() {
        match lx[i].text.as_str() {
            ")" => depth += 1,
            "(" => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether the `(` at `open` starts a label list (`by (`, `on (`, ...).
fn is_label_list(lx: &[Lexeme], open: usize) -> bool {
    open > 0
        && lx[open - 1].kind == Kind::Word
        && matches!(
            lower(&lx[open - 1]).as_str(),
            "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
        )
}

/// The index of the `)` matching the `(` at `open`.
fn closing(lx: &[Lexeme], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, l) in lx.iter().enumerate().skip(open) {
        match l.text.as_str() {
            "(" => depth += 1,
            ")" => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn error(message: String, hint: Option<String>) -> Option<PromqlError> {
    Some(PromqlError { message, hint })
}

fn short(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Problems with the modifiers at lexeme `i`: `@` and `offset` without a value, a second
/// `by`/`without` clause, something other than names in a label list.
fn modifier_problem(lx: &[Lexeme], i: usize, source: &str) -> Option<PromqlError> {
    let l = &lx[i];
    let word = lower(l);
    let after_operand = i > 0 && ends_operand(&lx[i - 1]);
    let value = |k: usize| {
        let k = if lx
            .get(k)
            .is_some_and(|n| matches!(n.text.as_str(), "+" | "-"))
        {
            k + 1
        } else {
            k
        };
        lx.get(k)
    };
    if l.text == "@" {
        let n = value(i + 1);
        let ok = n.is_none_or(|n| {
            n.kind == Kind::Number || matches!(lower(n).as_str(), "start" | "end" | "inf" | "nan")
        });
        if !ok {
            return error(
                format!(
                    "`@` {} needs a Unix timestamp, start() or end()",
                    position(source, l.at)
                ),
                Some("as in `up @ 1609746000` or `rate(up[5m] @ end())`".to_string()),
            );
        }
    }
    if word == "offset" && l.kind == Kind::Word && after_operand {
        let n = value(i + 1);
        if n.is_some_and(|n| n.kind != Kind::Number && !matches!(lower(n).as_str(), "inf" | "nan"))
        {
            return error(
                format!("`offset` {} needs a duration", position(source, l.at)),
                Some("as in `up offset 5m`; Prometheus 3.5 has no expressions there".to_string()),
            );
        }
    }
    if matches!(word.as_str(), "by" | "without")
        && l.kind == Kind::Word
        && i > 0
        && lx[i - 1].text == ")"
    {
        // `sum(up) by (a) without (b)`, `sum by (a) (up) by (a)`.
        let open = opening(lx, i - 1)?;
        let second = is_label_list(lx, open)
            || (open > 0
                && lx[open - 1].text == ")"
                && opening(lx, open - 1).is_some_and(|o| is_label_list(lx, o)));
        if second {
            return error(
                format!("a second `{}` clause {}", l.text, position(source, l.at)),
                Some("an aggregation takes one `by (...)` or `without (...)`".to_string()),
            );
        }
    }
    if l.text == "(" && is_label_list(lx, i) {
        let close = closing(lx, i)?;
        if let Some(bad) = lx[i + 1..close]
            .iter()
            .find(|t| !(matches!(t.kind, Kind::Word | Kind::Str) || t.text == ","))
        {
            return error(
                format!(
                    "`{}` {} is not a label name",
                    bad.text,
                    position(source, bad.at)
                ),
                Some("label lists look like (job, instance)".to_string()),
            );
        }
    }
    None
}

/// Where and what the syntax error is, if it is one of the usual mistakes.
pub(super) fn diagnose(source: &str, tokens: &[Token]) -> Option<PromqlError> {
    let lx = lexemes(tokens);
    if lx.is_empty() {
        return error("the expression is empty".to_string(), None);
    }
    let at = |l: &Lexeme| position(source, l.at);
    let first = &lx[0];
    let first_word = lower(first);
    if (first.kind == Kind::Word && NEVER_FIRST.contains(&first_word.as_str()))
        || (is_binary(first) && !matches!(first.text.as_str(), "+" | "-"))
    {
        let hint = match first_word.as_str() {
            "bool" => "`bool` follows a comparison, as in `up > bool 0`",
            "on" | "ignoring" | "group_left" | "group_right" => {
                "vector matching goes right after a binary operator, as in `a + on(job) b`"
            }
            _ => "a binary operator needs an operand on each side",
        };
        return error(
            format!("the expression cannot start with `{}`", first.text),
            Some(hint.to_string()),
        );
    }
    let mut braces = 0i32;
    for (i, l) in lx.iter().enumerate() {
        let next = lx.get(i + 1);
        match l.text.as_str() {
            "{" => braces += 1,
            "}" => braces -= 1,
            _ => {}
        }
        let word = lower(l);
        if let Some(e) = modifier_problem(&lx, i, source) {
            return Some(e);
        }
        // `sum by (job) up`: the argument must be in parentheses.
        let aggregation = l
            .word
            .is_some_and(|w| AGGREGATIONS.contains(&w) || w.starts_with("limit"));
        if aggregation
            && next.is_some_and(|n| matches!(lower(n).as_str(), "by" | "without"))
            && lx.get(i + 2).is_some_and(|n| n.text == "(")
        {
            if let Some(close) = closing(&lx, i + 2) {
                let after = lx.get(close + 1);
                if after.is_none_or(|a| a.text != "(") {
                    let head = &source[l.at..lx[close].at + 1];
                    let rest = after.map(|a| short(&source[a.at..])).unwrap_or_default();
                    let hint = if rest.is_empty() {
                        format!("write {head} (<expression>)")
                    } else {
                        format!("write {head} ({rest})")
                    };
                    return error(
                        format!("`{head}` must be followed by its argument in parentheses"),
                        Some(hint),
                    );
                }
            }
        }
        // `sum(up) by job`: label lists are parenthesised.
        if matches!(word.as_str(), "by" | "without" | "on" | "ignoring")
            && l.kind == Kind::Word
            && braces == 0
            && i > 0
            && next.is_none_or(|n| n.text != "(")
        {
            let example = if matches!(word.as_str(), "by" | "without") {
                format!("sum(up) {word} (job)")
            } else {
                format!("a + {word}(job) b")
            };
            return error(
                format!(
                    "`{}` {} must be followed by label names in parentheses",
                    l.text,
                    at(l)
                ),
                Some(format!("as in {example}")),
            );
        }
        // `1 +`: an operator at the end.
        if next.is_none() && (is_binary(l) || matches!(word.as_str(), "bool" | ",")) {
            let hint = match word.as_str() {
                "bool" => "add the right-hand side, as in `up > bool 0`".to_string(),
                "," => "remove the trailing comma".to_string(),
                op => format!("add the right-hand side, as in `up {op} 1`"),
            };
            return error(
                format!("the expression ends after `{}`", l.text),
                Some(hint),
            );
        }
        let Some(n) = next else {
            continue;
        };
        // `up + * 1`: two binary operators in a row (a sign may follow an operator).
        if is_binary(l) && is_binary(n) && !matches!(n.text.as_str(), "+" | "-") {
            return error(
                format!("unexpected `{}` after `{}` {}", n.text, l.text, at(n)),
                Some(format!("`{}` needs an operand on each side", n.text)),
            );
        }
        // `"my.metric"{job="a"}`: a quoted name goes inside the braces.
        if braces == 0 && l.kind == Kind::Str && n.text == "{" {
            return error(
                format!("unexpected `{{` after the string {} {}", l.text, at(n)),
                Some(format!(
                    "a quoted metric name goes inside the braces: {{{}, ...}}",
                    l.text
                )),
            );
        }
        // `inf{job="x"}`: Inf and NaN are numbers, not names.
        if matches!(word.as_str(), "inf" | "nan") && matches!(n.text.as_str(), "{" | "[") {
            return error(
                format!("`{}` is a number, not a metric name {}", l.text, at(l)),
                Some(format!("select it by name: {{__name__=\"{}\"}}", l.text)),
            );
        }
        // `up x`: two operands without an operator (inside braces: two matchers, no comma).
        let in_braces_word = braces > 0 && n.kind == Kind::Word;
        if ends_operand(l) && (starts_operand(n) || in_braces_word) {
            let hint = if braces > 0 {
                "separate label matchers with commas: {job=\"a\", instance=\"b\"}".to_string()
            } else if l.kind == Kind::Punct {
                format!("an operator is missing before `{}`", n.text)
            } else {
                format!(
                    "put an operator between them, as in `{} + {}` or `{} and {}`",
                    l.text, n.text, l.text, n.text
                )
            };
            return error(
                format!(
                    "unexpected `{}` after `{}` {}",
                    short(&n.text),
                    short(&l.text),
                    at(n)
                ),
                Some(hint),
            );
        }
        // `()`: empty parentheses that are not a call.
        if l.text == "(" && n.text == ")" && (i == 0 || lx[i - 1].kind != Kind::Word) {
            return error(format!("empty parentheses {}", at(l)), None);
        }
    }
    None
}
