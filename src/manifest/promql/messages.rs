//! Words for what is wrong. The crate's messages are terse ("expected type matrix in call to
//! function 'rate', got vector") and its syntax errors carry no text at all ("invalid promql
//! query"); this module says the same in the terms the Prometheus docs use, points at the
//! place when it can find it among the scanned tokens, and adds a fix for the usual mistakes.

use super::functions::{self, AGGREGATIONS};
use super::numbers::MAX_DURATION_SECS;
use super::rules::Problem;
use super::scan::{Kind, Token};
use super::PromqlError;

const FUNCTIONS_DOC: &str = "https://prometheus.io/docs/prometheus/latest/querying/functions/";
const TEMPLATE_HINT: &str = "alert and recording rules are evaluated by Prometheus, which has no \
variables ($var, ${var}, Grafana's $__rate_interval): write the value itself, e.g. [5m]";
const DURATION_HINT: &str =
    "durations are whole numbers with units ms, s, m, h, d, w, y in that order: 5m, 1h30m, 100ms";

/// "at column 7", or "at line 2, column 3" for a multi-line expression (1-based, in characters).
pub(super) fn position(source: &str, at: usize) -> String {
    let before = &source[..at.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    if source.contains('\n') {
        format!("at line {line}, column {column}")
    } else {
        format!("at column {column}")
    }
}

fn error(message: impl Into<String>, hint: Option<String>) -> PromqlError {
    PromqlError {
        message: message.into(),
        hint,
    }
}

fn at_token(message: &str, source: &str, token: Option<&Token>) -> String {
    match token {
        Some(t) => format!("{message} {}", position(source, t.at)),
        None => message.to_string(),
    }
}

/// "a range vector", "an instant vector", ... for the crate's type names.
fn a_type(name: &str) -> &'static str {
    match name {
        "matrix" => "a range vector",
        "vector" => "an instant vector",
        "scalar" => "a scalar",
        "string" => "a string",
        _ => "nothing",
    }
}

/// The crate's error `raw`, worded for a user of `source`.
pub(super) fn from_parser(raw: &str, source: &str, tokens: &[Token]) -> PromqlError {
    if raw == "invalid promql query" {
        return syntax(source, tokens);
    }
    if raw.starts_with("no expression found in input") {
        return error("the expression is empty", None);
    }
    if let Some(name) = quoted_after(raw, "unknown function with name ") {
        return unknown_function(&name, source, tokens);
    }
    if let Some(rest) = raw.strip_prefix("expected type ") {
        if let Some(e) = type_error(rest, source, tokens) {
            return e;
        }
    }
    if raw.contains("argument(s) in call to '") {
        return arity(raw, source, tokens);
    }
    if raw.contains("for aggregate expression") {
        return aggregate_arity(raw, source, tokens);
    }
    if raw.starts_with("unexpected character") && raw.ends_with("'$'") {
        return error(
            "`$` variables are not PromQL",
            Some(TEMPLATE_HINT.to_string()),
        );
    }
    if let Some(token) = raw.strip_prefix("bad number or duration syntax: ") {
        let place = tokens.iter().find(|t| t.text == token);
        return error(
            at_token(&format!("bad number or duration `{token}`"), source, place),
            Some(DURATION_HINT.to_string()),
        );
    }
    let (message, hint) = reword(raw);
    error(message, hint.map(str::to_string))
}

/// Messages that need no context, reworded.
fn reword(raw: &str) -> (String, Option<&'static str>) {
    let fixed = |m: &str, h: Option<&'static str>| (m.to_string(), h);
    match raw {
        "vector selector must contain at least one non-empty matcher" => fixed(
            "a selector needs a metric name or a matcher that does not match the empty string",
            Some("name the metric (`up{job=\"x\"}`), or match a non-empty value: {job=~\".+\"}"),
        ),
        "binary expression must contain only scalar and instant vector types" => fixed(
            "operators work on scalars and instant vectors only, not on range vectors or strings",
            Some("turn a range into an instant vector first, e.g. rate(x[5m]) > 0"),
        ),
        "comparisons between scalars must use BOOL modifier" => fixed(
            "comparing two scalars needs `bool`",
            Some("write `1 == bool 1`; the result is 1 or 0"),
        ),
        "vector matching only allowed between vectors" => fixed(
            "on(...)/ignoring(...) need instant vectors on both sides",
            None,
        ),
        "ranges only allowed for vector selectors" => fixed(
            "a range `[...]` can only follow a metric selector",
            Some("for any other expression use a subquery: (expr)[5m:1m]"),
        ),
        "unclosed left parenthesis" => fixed("a `(` is never closed", None),
        "bool modifier can only be used on comparison operators" => fixed(
            "`bool` can only follow a comparison (==, !=, >, <, >=, <=)",
            Some("as in `up > bool 0`"),
        ),
        "subquery is only allowed on vector, got matrix instead" => fixed(
            "a subquery `[range:step]` needs an instant vector, got a range vector",
            Some("apply a range function first: max_over_time(rate(x[5m])[1h:1m])"),
        ),
        "unexpected end of input inside braces" => fixed("a `{` is never closed", None),
        "unexpected end of input inside brackets" => fixed("a `[` is never closed", None),
        "unexpected end of input in offset, expected duration" => fixed(
            "`offset` needs a duration",
            Some("as in `up offset 5m`"),
        ),
        "unexpected end of input in @, expected timestamp" => fixed(
            "`@` needs a Unix timestamp, start() or end()",
            Some("as in `up @ 1609746000` or `up @ end()`"),
        ),
        "trailing commas not allowed in function call args" => {
            fixed("trailing comma in a function call", None)
        }
        super::PANIC_MESSAGE => (
            format!("a duration is out of range (the largest is {MAX_DURATION_SECS:.0} seconds)"),
            Some(DURATION_HINT),
        ),
        _ if raw.starts_with("offset modifier must be preceded by") => fixed(
            "`offset` must follow a selector or a subquery",
            Some("as in `up offset 5m` or `rate(up[5m] offset 5m)`"),
        ),
        _ if raw.starts_with("@ modifier must be preceded by") => fixed(
            "`@` must follow a selector or a subquery",
            Some("as in `up @ 1609746000` or `rate(up[5m] @ end())`"),
        ),
        _ if raw.starts_with("no grouping allowed for '") => fixed(
            "`and`, `or` and `unless` match many-to-many, so group_left/group_right cannot follow them",
            None,
        ),
        _ if raw.starts_with("set operator '") => fixed(
            "`and`, `or` and `unless` work on instant vectors, not on scalars",
            Some("compare instead, e.g. `up > 0`, or use vector(1) for a constant vector"),
        ),
        _ if raw.starts_with("not a valid duration string: ") => (
            format!("bad duration `{}`", &raw["not a valid duration string: ".len()..]),
            Some(DURATION_HINT),
        ),
        _ if raw.starts_with("ParseFloatError. ") => (
            format!(
                "bad number `{}`",
                raw["ParseFloatError. ".len()..].split(' ').next().unwrap_or_default()
            ),
            None,
        ),
        _ if raw.starts_with("metric name must not be set twice") => fixed(
            &raw.replace('\'', "`"),
            Some("name the metric once: up{job=\"a\"} or {__name__=\"up\", job=\"a\"}"),
        ),
        _ if raw.starts_with("unknown escape sequence") => fixed(
            &raw.replace('\'', "`"),
            Some("in \"...\" and '...' a backslash starts an escape: write \\\\ for a backslash (\"\\\\d+\"), or use a raw `...` string"),
        ),
        _ if raw.starts_with("unterminated quoted string ") => (
            format!("a string opened with {} is never closed", &raw["unterminated quoted string ".len()..]),
            None,
        ),
        _ if raw.starts_with("unexpected character after '.'") => fixed(
            &raw.replace('\'', "`"),
            Some("quote names with dots: {\"my.metric\"}"),
        ),
        _ if raw.starts_with("unary expression only allowed") => fixed(
            "a sign (`-x`, `+x`) only applies to scalars and instant vectors",
            None,
        ),
        _ if raw.starts_with("unexpected character: ") => fixed(
            &raw.replace('\'', "`"),
            Some("names may use ASCII letters, digits, `_` and `:`; quote any other name: {\"my.metric\"}"),
        ),
        _ if raw.contains("inside braces") || raw.contains("in label matching") => fixed(
            &raw.replace('\'', "`"),
            Some("label matchers look like {job=\"api\", code=~\"5..\"}"),
        ),
        _ if raw.contains("inside brackets") => fixed(
            &raw.replace('\'', "`"),
            Some("a range is one duration, [5m], a subquery two, [30m:1m]; Prometheus 3.5 has no arithmetic or step() there"),
        ),
        // Go's rules passed (see `regex`), so this is the Rust engine's compiled-size limit.
        _ if raw.starts_with("illegal regex for ") => fixed(
            "a label matcher's regular expression is too large for monstack to check (the Rust regex engine's size limit); Prometheus may accept it",
            Some("simplify it, e.g. with smaller repetition counts"),
        ),
        _ => (raw.replace('\'', "`"), None),
    }
}

/// `x` in `<prefix>'x'`.
fn quoted_after(raw: &str, prefix: &str) -> Option<String> {
    let rest = raw.strip_prefix(prefix)?;
    Some(rest.trim_matches(|c| c == '\'' || c == '"').to_string())
}

/// The index of the first `name(` among the tokens.
fn find_call(tokens: &[Token], name: &str) -> Option<usize> {
    (0..tokens.len()).find(|&i| {
        tokens[i].kind == Kind::Word
            && tokens[i].text == name
            && tokens.get(i + 1).is_some_and(|t| t.text == "(")
    })
}

/// Token index ranges of the top-level arguments of the call at `call` (`name` `(` ...).
fn call_args(tokens: &[Token], call: usize) -> Vec<(usize, usize)> {
    let mut args = Vec::new();
    let mut depth = 0;
    let mut start = call + 2;
    for (i, t) in tokens.iter().enumerate().skip(call + 1) {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 {
                    if start < i {
                        args.push((start, i));
                    }
                    break;
                }
            }
            "," if depth == 1 => {
                args.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    args
}

/// The source text of tokens `from..to`.
fn text<'a>(source: &'a str, tokens: &[Token], from: usize, to: usize) -> &'a str {
    let end = tokens[to - 1].at + tokens[to - 1].text.len();
    &source[tokens[from].at..end]
}

fn unknown_function(name: &str, source: &str, tokens: &[Token]) -> PromqlError {
    let place = find_call(tokens, name).map(|i| &tokens[i]);
    let hint = match (functions::replacement(name), functions::closest(name)) {
        (Some(why), _) => why.to_string(),
        (None, Some(close)) => format!("did you mean `{close}`?"),
        (None, None) => format!("the functions are listed at {FUNCTIONS_DOC}"),
    };
    error(
        at_token(&format!("unknown function `{name}`"), source, place),
        Some(hint),
    )
}

/// `rest` is the crate's message after "expected type ": `<expected> in <context>, got <actual>`.
fn type_error(rest: &str, source: &str, tokens: &[Token]) -> Option<PromqlError> {
    let (expected, rest) = rest.split_once(" in ")?;
    let (context, actual) = rest.rsplit_once(", got ")?;
    if let Some(name) = quoted_after(context, "call to function ") {
        let call = find_call(tokens, &name);
        let message = format!(
            "`{name}` expects {} argument, got {}",
            a_type(expected),
            a_type(actual)
        );
        let hint = match (expected, actual) {
            ("matrix", "vector") => Some(range_hint(&name, call, source, tokens)),
            ("vector", "matrix") if name == "absent" => {
                Some("for a range use absent_over_time(x[5m]), or drop the `[...]`".to_string())
            }
            ("vector", "matrix") => Some(format!(
                "drop the `[...]`, or apply a range function first: {name}(rate(x[5m]))"
            )),
            ("scalar", "vector") => {
                Some("write a number, or scalar(...) of a single-series expression".to_string())
            }
            ("vector", "scalar") => {
                Some("vector(1) makes an instant vector of a number".to_string())
            }
            ("string", _) => Some("write a quoted string, e.g. \"job\"".to_string()),
            _ => Some(format!(
                "check the order of the arguments: {FUNCTIONS_DOC}#{name}"
            )),
        };
        let place = call.map(|i| &tokens[i]);
        return Some(error(at_token(&message, source, place), hint));
    }
    if context == "aggregation expression" {
        let agg = tokens
            .iter()
            .position(|t| t.kind == Kind::Word && AGGREGATIONS.contains(&t.text.as_str()));
        let name = agg.map_or("the aggregation", |i| tokens[i].text.as_str());
        let place = agg.map(|i| &tokens[i]);
        let (message, hint) = match name {
            "topk" | "bottomk" | "quantile" | "limitk" | "limit_ratio" => (
                format!("`{name}` takes a number and an instant vector, got {} where {} belongs", a_type(actual), a_type(expected)),
                Some(swapped(name, agg, source, tokens).unwrap_or_else(|| format!("as in {name}(3, up)"))),
            ),
            "count_values" => (
                format!("`{name}` takes the name of its output label and an instant vector, got {} where {} belongs", a_type(actual), a_type(expected)),
                Some(format!("as in {name}(\"value\", up)")),
            ),
            _ if actual == "matrix" => (
                format!("`{name}` aggregates an instant vector, got a range vector"),
                Some(format!("apply a range function first: {name}(rate(x[5m]))")),
            ),
            _ => (
                format!("`{name}` aggregates an instant vector, got {}", a_type(actual)),
                (actual == "scalar").then(|| format!("vector(...) makes an instant vector of a number: {name}(vector(1))")),
            ),
        };
        return Some(error(at_token(&message, source, place), hint));
    }
    None
}

/// "write `rate(up[5m])`" for `rate(up)`, from the argument that is a bare selector.
fn range_hint(name: &str, call: Option<usize>, source: &str, tokens: &[Token]) -> String {
    let generic = format!(
        "`{name}` needs a range: a selector with a duration, as in {name}(up[5m]), or a subquery, as in {name}((expr)[5m:1m])"
    );
    let Some(call) = call else {
        return generic;
    };
    let args = call_args(tokens, call);
    let bare = args.iter().position(|&(from, to)| {
        tokens[from].kind == Kind::Word
            && (to == from + 1 || tokens[from + 1].text == "{")
            && !tokens[from..to]
                .iter()
                .any(|t| t.text == "[" || t.text == "(")
    });
    let Some(k) = bare else {
        return generic;
    };
    let written: Vec<String> = args
        .iter()
        .enumerate()
        .map(|(j, &(from, to))| {
            let t = text(source, tokens, from, to);
            if j == k {
                format!("{t}[5m]")
            } else {
                t.to_string()
            }
        })
        .collect();
    format!("write {name}({})", written.join(", "))
}

/// `topk(3, up)` for `topk(up, 3)`.
fn swapped(name: &str, agg: Option<usize>, source: &str, tokens: &[Token]) -> Option<String> {
    let call = agg.filter(|&i| tokens.get(i + 1).is_some_and(|t| t.text == "("))?;
    let args = call_args(tokens, call);
    let [(a, b), (c, d)] = args.as_slice() else {
        return None;
    };
    Some(format!(
        "write {name}({}, {})",
        text(source, tokens, *c, *d),
        text(source, tokens, *a, *b)
    ))
}

fn arity(raw: &str, source: &str, tokens: &[Token]) -> PromqlError {
    let name = raw
        .split("call to '")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_default()
        .to_string();
    let count = raw
        .strip_prefix("expected ")
        .and_then(|r| r.split(" in call").next())
        .unwrap_or_default()
        .replace("argument(s)", "arguments");
    let count = if count.split(' ').rev().nth(1) == Some("1") {
        count.replace("arguments", "argument")
    } else {
        count
    };
    let got = raw.rsplit("got ").next().unwrap_or_default();
    let place = find_call(tokens, &name).map(|i| &tokens[i]);
    error(
        at_token(&format!("`{name}` takes {count}, got {got}"), source, place),
        Some(format!("see {FUNCTIONS_DOC}#{name}")),
    )
}

/// "wrong number of arguments for aggregate expression provided, expected 2, got 1" and "no
/// arguments for aggregate expression 'count' provided".
fn aggregate_arity(raw: &str, source: &str, tokens: &[Token]) -> PromqlError {
    let agg = tokens.iter().find(|t| {
        t.kind == Kind::Word
            && (AGGREGATIONS.contains(&t.text.as_str()) || t.text.starts_with("limit"))
    });
    let name = agg.map_or("the aggregation", |t| t.text.as_str());
    let example = match name {
        "topk" | "bottomk" | "limitk" => format!("{name}(3, up)"),
        "quantile" => "quantile(0.9, up)".to_string(),
        "limit_ratio" => "limit_ratio(0.5, up)".to_string(),
        "count_values" => "count_values(\"value\", up)".to_string(),
        _ => format!("{name}(up)"),
    };
    let message = match raw.split_once("expected ") {
        Some((_, counts)) => format!("`{name}` takes {}", counts.replace("got", "arguments, got")),
        None => format!("`{name}` needs an argument"),
    };
    error(
        at_token(&message, source, agg),
        Some(format!("as in {example}")),
    )
}

/// A rule problem from [`super::rules`], worded.
pub(super) fn from_rule(problem: Problem, source: &str, tokens: &[Token]) -> PromqlError {
    let place = |name: &str| {
        tokens
            .iter()
            .find(|t| t.kind == Kind::Word && t.text == name)
            .map(|t| position(source, t.at))
            .map_or(String::new(), |p| format!(" {p}"))
    };
    match problem {
        Problem::NotIn35(name) => error(
            format!(
                "unknown function `{name}`{}: Prometheus 3.5 does not have it",
                place(&name)
            ),
            functions::replacement(&name).map(str::to_string),
        ),
        Problem::Experimental(name) => {
            let extra = functions::replacement(&name).map_or(String::new(), |r| format!("; {r}"));
            error(
                format!("`{name}`{} is experimental in Prometheus 3.5", place(&name)),
                Some(format!(
                    "it needs --enable-feature=promql-experimental-functions, which monstack does not set{extra}"
                )),
            )
        }
        Problem::Fill => error(
            "fill(), fill_left() and fill_right() are not in Prometheus 3.5",
            Some("use `or` to supply missing series, e.g. (a + b) or a".to_string()),
        ),
        Problem::OrMatchers => error(
            "`or` between label matchers is not in Prometheus 3.5",
            Some("use a regexp, {job=~\"a|b\"}, or `or` between two selectors".to_string()),
        ),
        Problem::EmptyLabel => error("an empty label name \"\" in a label list", None),
    }
}

/// A syntax error the crate did not describe: the tokens show the usual mistakes.
fn syntax(source: &str, tokens: &[Token]) -> PromqlError {
    super::syntax::diagnose(source, tokens)
        .unwrap_or_else(|| error("syntax error", Some(SYNTAX_HINT.to_string())))
}

const SYNTAX_HINT: &str = "check that brackets pair up, that an operator stands between two \
operands, and that `by (...)` comes right after the aggregation or after its parentheses";
