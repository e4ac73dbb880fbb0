//! PromQL validation that agrees with Prometheus 3.5: [`check`] accepts exactly the expressions
//! `promtool check rules` of Prometheus 3.5 (default features) accepts, and says what is wrong
//! with the others in words a user can act on.
//!
//! Why not just the `promql-parser` crate: it follows a different Prometheus (newer syntax,
//! experimental functions on, Rust instead of Go regexps, looser number and duration rules), it
//! reports syntax errors as a bare "invalid promql query" without a position, and it panics on
//! some inputs (`up offset 1e20`). So the crate sits in the middle of three layers:
//!
//! 1. `scan` (with `numbers` and `regex`): a small lexer over the source that rewrites what
//!    the crate mis-reads but Prometheus accepts (backtick raw strings, `1_000`, `0e0`,
//!    `sum by (a:b)`, `anchored`/`smoothed` as metric names, `offset NaN`, Go regexps translated
//!    to Rust ones) and rejects what only Prometheus' lexer rejects (`1e400`, durations past
//!    Go's `time.Duration`, `@` timestamps past 2^63 s, zero ranges, regexps Go's
//!    `regexp/syntax` refuses: `a**`, `(?x)`, `\p{Letter}`, `[a--b]`, `a{1001}`, ...).
//!    Unary `+`, which the crate drops unchecked, is type-checked by also parsing a copy with
//!    `-` in its place.
//! 2. The crate's parser, with panics turned into errors.
//! 3. `rules`: AST rules the crate does not have: functions absent from or experimental in 3.5
//!    (`functions`), `limitk`/`limit_ratio`, `fill()` modifiers, `or` inside braces, empty
//!    grouping labels.
//!
//! `messages` turns the result into a [`PromqlError`]: the crate's wording made readable,
//! "did you mean" for unknown functions, a fix for the usual mistakes (`rate(up)`,
//! `sum by (job) up`, `up x`, `1 +`, `$var`), and a column where one is known; `syntax`
//! places the syntax errors the crate reports without a position.
//!
//! Expressions over [`MAX_EXPR_BYTES`] or nested deeper than [`MAX_NESTING`] are refused up
//! front: the crate's parser is quadratic and recursive, and no rule needs that much.
//!
//! Measured agreement: the committed corpus (151 expressions, `corpus_test.rs`) and, during
//! development, 575 survey expressions, 362 inputs from Prometheus 3.5.3's `parse_test.go`, 1155
//! real-world alert expressions, 140k mutated expressions and 12k generated regexps, each
//! compared with promtool 3.5.3: every disagreement left is one of these known differences:
//! - the two limits above (promtool has none);
//! - Prometheus' lexer ignores a lone letter after a space inside `[...]` (`up[5 m]` is accepted
//!   there); here it is an error;
//! - regexps: the Rust engine's compiled-size limit refuses a few huge ones Go accepts
//!   (`[.\D]{1000}`), with a message that says so, and refuses groups nested deeper than 250
//!   (Go allows 1000);
//! - `promql-experimental-functions` is not modelled: monstack does not enable it, so
//!   experimental functions are always errors.
//!
//! Pure code: no I/O, no global state beyond a panic hook that silences the crate's panics on
//! the thread that is checking.

mod functions;
mod messages;
mod numbers;
mod regex;
mod rules;
mod scan;
mod syntax;
mod unicode_names;

#[cfg(test)]
mod corpus_test;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::fmt;
use std::sync::Once;

/// The longest expression checked (64 KiB). The crate's parser takes seconds near this size on
/// pathological input; real rules are a few hundred bytes.
pub const MAX_EXPR_BYTES: usize = 64 * 1024;

/// The deepest nesting checked: open brackets of any kind plus the unary operators before an
/// operand. The crate's code is recursive: in a debug build on a 2 MiB thread stack (a test
/// thread, a tokio worker) some shapes overflow from about 1100 levels (`sum(-sum(-...`), so
/// this keeps a wide margin. Real rules nest a few levels.
pub const MAX_NESTING: usize = 256;

/// Why an expression is not valid PromQL for Prometheus 3.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromqlError {
    /// What is wrong, starting lower-case, e.g. "unknown function `nonexistent_func`".
    pub message: String,
    /// How to fix it, when there is something better to say than the message.
    pub hint: Option<String>,
}

impl PromqlError {
    fn new(message: impl Into<String>) -> PromqlError {
        PromqlError {
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> PromqlError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for PromqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PromqlError {}

/// Checks a regular expression as Prometheus (Go's RE2 syntax) reads it, for relabel rules:
/// `Err` carries Go's complaint.
pub fn check_regex(re: &str) -> Result<(), String> {
    regex::translate(re).map(|_| ())
}

/// Checks one PromQL expression (a rule's `expr`) the way Prometheus 3.5 does when it loads
/// rules: `Ok(())` exactly when `promtool check rules` (3.5, default features) accepts it, but
/// for the few differences the module documentation lists.
pub fn check(expr: &str) -> Result<(), PromqlError> {
    if expr.len() > MAX_EXPR_BYTES {
        return Err(PromqlError::new(format!(
            "the expression is {} bytes long; monstack checks at most {} KiB",
            expr.len(),
            MAX_EXPR_BYTES / 1024
        ))
        .hint("split it into recording rules and combine their results"));
    }
    let prepared = scan::prepare(expr).map_err(|e| e.into_error(expr))?;
    let ast = parse_guarded(&prepared.text)
        .map_err(|raw| messages::from_parser(&raw, expr, &prepared.tokens))?;
    if let Some(variant) = &prepared.unary_plus_as_minus {
        parse_guarded(variant)
            .map_err(|raw| messages::from_parser(&raw, expr, &prepared.tokens))?;
    }
    rules::check(&ast).map_err(|problem| messages::from_rule(problem, expr, &prepared.tokens))
}

/// The crate's message when it panicked. Its only known panic is converting a huge or NaN
/// offset or range to a `Duration`, which [`scan`] already refuses or rewrites.
const PANIC_MESSAGE: &str = "duration out of range";

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// `promql_parser::parser::parse` with panics turned into an error. A panic hook installed once
/// (chaining to the previous one) stays silent while this thread is inside the parser, so a
/// panic there prints nothing and panics elsewhere print as before.
fn parse_guarded(text: &str) -> Result<promql_parser::parser::Expr, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|quiet| quiet.set(true));
    let result = std::panic::catch_unwind(|| promql_parser::parser::parse(text));
    QUIET.with(|quiet| quiet.set(false));
    result.unwrap_or_else(|_| Err(PANIC_MESSAGE.to_string()))
}
