//! Unit tests of [`super::check`]: the messages and hints, the limits, the rewrites, and the
//! tables. The verdicts themselves are pinned against promtool by `corpus_test.rs`.

use super::functions::{AGGREGATIONS, EXPERIMENTAL_IN_3_5, FUNCTIONS, NOT_IN_3_5};
use super::{check, PromqlError, MAX_EXPR_BYTES, MAX_NESTING};

fn err(expr: &str) -> PromqlError {
    match check(expr) {
        Ok(()) => panic!("{expr:?} was accepted"),
        Err(e) => e,
    }
}

fn hint(expr: &str) -> String {
    err(expr)
        .hint
        .unwrap_or_else(|| panic!("{expr:?}: no hint"))
}

#[track_caller]
fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{text:?} does not contain {part:?}");
}

#[test]
fn valid_expressions_pass() {
    for expr in [
        "up",
        "rate(http_requests_total{job=\"api\"}[5m])",
        "sum by (job) (rate(x[5m])) / on (job) group_left sum by (job) (y)",
        "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
        "up == 0 unless on(job) (sum by (job) (up) == 0)",
        "max_over_time(rate(up[5m])[30m:1m] offset 1h)",
        "up{job=~`\\d+`} @ end()",
        "up\n  # a comment\n  > 0",
        "absent(up{job=\"x\"})",
        "up{job=\"$job\"}",
    ] {
        assert_eq!(check(expr), Ok(()), "{expr}");
    }
}

#[test]
fn the_usual_mistakes_are_explained() {
    let e = err("up x");
    assert_eq!(e.message, "unexpected `x` after `up` at column 4");
    assert_contains(&e.hint.unwrap(), "`up + x`");

    let e = err("rate(up)");
    assert_eq!(
        e.message,
        "`rate` expects a range vector argument, got an instant vector at column 1"
    );
    assert_eq!(e.hint.as_deref(), Some("write rate(up[5m])"));
    assert_eq!(
        hint("quantile_over_time(0.9, up{job=\"a\"})"),
        "write quantile_over_time(0.9, up{job=\"a\"}[5m])"
    );

    let e = err("sum by (job) up");
    assert_eq!(
        e.message,
        "`sum by (job)` must be followed by its argument in parentheses"
    );
    assert_eq!(e.hint.as_deref(), Some("write sum by (job) (up)"));

    let e = err("1 +");
    assert_eq!(e.message, "the expression ends after `+`");

    let e = err("up[5x]");
    assert_eq!(e.message, "bad number or duration `5x` at column 4");
    assert_contains(&e.hint.unwrap(), "ms, s, m, h, d, w, y");

    let e = err("{}");
    assert_contains(&e.message, "needs a metric name or a matcher");
    assert_contains(&e.hint.unwrap(), "{job=~\".+\"}");

    assert_eq!(hint("topk(up, 3)"), "write topk(3, up)");
    assert_contains(
        &err("sum(up) by job").message,
        "`by` at column 9 must be followed by label names",
    );
    assert_contains(
        &err("up{job=\"a\" instance=\"b\"}").hint.unwrap(),
        "separate label matchers with commas",
    );
    assert_contains(&hint("absent(up[5m])"), "absent_over_time");
    assert_contains(&err("sum(rate(up[5m])").message, "never closed");
    assert_eq!(err("").message, "the expression is empty");
    assert_eq!(err("  # just a comment").message, "the expression is empty");
}

#[test]
fn unknown_functions_get_a_suggestion() {
    let e = err("nonexistent_func(up)");
    assert_eq!(e.message, "unknown function `nonexistent_func` at column 1");
    assert_contains(&e.hint.unwrap(), "prometheus.io/docs");

    assert_eq!(hint("rat(up[5m])"), "did you mean `rate`?");
    assert_eq!(
        hint("sum_over_tim(up[5m])"),
        "did you mean `sum_over_time`?"
    );
    assert_eq!(
        hint("histogram_quantil(0.9, x)"),
        "did you mean `histogram_quantile`?"
    );
    assert_contains(
        &hint("holt_winters(up[5m], 0.5, 0.5)"),
        "double_exponential_smoothing",
    );

    let e = err("up + first_over_time(up[5m])");
    assert_eq!(
        e.message,
        "unknown function `first_over_time` at column 6: Prometheus 3.5 does not have it"
    );
    let e = err("limitk(2, up)");
    assert_eq!(
        e.message,
        "`limitk` at column 1 is experimental in Prometheus 3.5"
    );
    assert_contains(
        &e.hint.unwrap(),
        "--enable-feature=promql-experimental-functions",
    );
    assert_contains(&err("info(up)").message, "experimental");
}

#[test]
fn template_variables_are_not_promql() {
    for expr in [
        "rate(up[$__rate_interval])",
        "up{job=$job}",
        "${var}",
        "sum by ($label) (up)",
    ] {
        let e = err(expr);
        assert_contains(&e.message, "`$` variables are not PromQL");
        assert_contains(&e.hint.unwrap(), "no variables");
    }
}

#[test]
fn positions_count_lines_and_characters() {
    assert_eq!(
        err("up\n  + x y").message,
        "unexpected `y` after `x` at line 2, column 7"
    );
    // Columns count characters, not bytes.
    assert_eq!(
        err("{\"ü\"} x").message,
        "unexpected `x` after `}` at column 7"
    );
    assert_contains(&err("up offset 1e400").message, "at column 11");
}

#[test]
fn display_shows_the_hint() {
    let e = PromqlError::new("unknown function `x`").hint("did you mean `y`?");
    assert_eq!(
        e.to_string(),
        "unknown function `x` (hint: did you mean `y`?)"
    );
    assert_eq!(PromqlError::new("m").to_string(), "m");
}

#[test]
fn panicking_inputs_are_errors() {
    // promql-parser panics converting these to a Duration.
    for expr in [
        "up offset 1e20",
        "up offset Inf",
        "up offset -Inf",
        "up[1e20]",
        "up[5m:1e20]",
    ] {
        assert!(check(expr).is_err(), "{expr}");
    }
    assert_eq!(check("up offset NaN"), Ok(()));
    assert_eq!(check("up offset -nan"), Ok(()));
    // `offset` as a metric name is not a modifier.
    assert_eq!(check("offset - Inf"), Ok(()));
}

#[test]
fn prometheus_lexer_rules_are_followed() {
    for ok in [
        "1_000",
        "0e0",
        "01e3",
        "0x_1F",
        "up[.5]",
        "up[+1m]",
        "up offset -0s",
        "sum by (a:b) (up)",
        "anchored",
        "sum(smoothed)",
        "up{job=`raw\\string`}",
    ] {
        assert_eq!(check(ok), Ok(()), "{ok}");
    }
    for bad in [
        "1__0",
        "1e400",
        "up[0]",
        "up[293y]",
        "up @ 1e20",
        "+\"a\"",
        "+up[5m]",
        "up[5m] anchored",
    ] {
        assert!(check(bad).is_err(), "{bad}");
    }
}

#[test]
fn regexps_follow_go() {
    for ok in [
        r#"up{job=~"\\Qa.b\\E"}"#,
        r#"up{job=~"[[:foo]"}"#,
        r#"up{job=~"[a[b]"}"#,
        r#"up{job=~"\\01"}"#,
        r#"up{job=~"(?)x"}"#,
        r#"up{job=~"(?<3n>a)"}"#,
        r#"up{job=~"(?P<n>a)(?P<n>b)"}"#,
        r#"up{job=~"\\p{^Greek}"}"#,
        r#"up{job=~"[\\d-z]"}"#,
        r#"up{job=~"a{,5}"}"#,
        r#"up{job=~"\\p{Cs}"}"#,
        r#"{job=~"\\Qab\\E"}"#,
    ] {
        assert_eq!(check(ok), Ok(()), "{ok}");
    }
    for bad in [
        r#"up{job=~"a**"}"#,
        r#"up{job=~"(?x)a"}"#,
        r#"up{job=~"\\p{Letter}"}"#,
        r#"up{job=~"[a--b]"}"#,
        r#"up{job=~"a{1001}"}"#,
        r#"up{job=~"(a{100}){100}"}"#,
        r#"up{job=~"\\e"}"#,
        r#"up{job=~"\\1"}"#,
        r#"up{job=~"a)(b"}"#,
        r#"up{job=~"(?P<a.b>x)"}"#,
        // Matches the empty string, so the selector matches everything.
        r#"{job=~"\\Q\\E"}"#,
    ] {
        assert!(check(bad).is_err(), "{bad}");
    }
    let e = err(r#"up{job=~"a**"}"#);
    assert_eq!(
        e.message,
        "invalid regular expression \"a**\" at column 9: invalid nested repetition operator: `**`"
    );
    assert_contains(&e.hint.unwrap(), "RE2");
}

#[test]
fn newer_syntax_is_refused() {
    assert_contains(&err("up + fill(0) up").message, "fill()");
    assert_contains(
        &err("up{job=\"a\" or job=\"b\"}").message,
        "`or` between label matchers",
    );
    assert_contains(&err("sum by (\"\") (up)").message, "empty label name");
}

#[test]
fn limits_are_enforced_with_a_clear_message() {
    let padded = format!("{}up", " ".repeat(MAX_EXPR_BYTES - 2));
    assert_eq!(check(&padded), Ok(()));
    let e = err(&format!("{padded} "));
    assert_eq!(
        e.message,
        format!(
            "the expression is {} bytes long; monstack checks at most 64 KiB",
            MAX_EXPR_BYTES + 1
        )
    );
    assert!(e.hint.is_some());

    let deep = format!("{}up", "-".repeat(MAX_NESTING + 1));
    assert_contains(&err(&deep).message, "nests deeper than");
    let deep = format!(
        "{}up{}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    assert_contains(&err(&deep).message, "nests deeper than");
}

/// The limits keep the crate's recursion within a test thread's stack (2 MiB) in a debug build.
#[test]
fn the_deepest_and_longest_accepted_inputs_do_not_overflow() {
    let n = MAX_NESTING;
    let nested = |open: &str, close: &str, levels: usize| {
        format!("{}up{}", open.repeat(levels), close.repeat(levels))
    };
    for expr in [
        format!("{}up", "-".repeat(n)),
        nested("(", ")", n),
        nested("abs(", ")", n),
        nested("sum(", ")", n),
        nested("-(", ")", n / 2),
        nested("sum(-", ")", n / 2),
        nested("sum(abs(", "))", n / 2),
        nested("sum by (a) (-(", "))", n / 3),
        nested("topk(1, -max_over_time(", "[5m:]))", n / 3),
        nested("(up + -", ")", n / 2),
        format!("up{}", " + up".repeat((MAX_EXPR_BYTES - 2) / 5)),
        format!("up{}", " - -up".repeat((MAX_EXPR_BYTES - 2) / 6)),
    ] {
        assert!(expr.len() <= MAX_EXPR_BYTES);
        assert_eq!(check(&expr), Ok(()), "{}...", &expr[..40]);
    }
}

/// The tables name functions the crate knows: a typo would make a rule silently never apply.
#[test]
fn function_tables_name_real_functions() {
    for name in FUNCTIONS
        .iter()
        .chain(NOT_IN_3_5)
        .chain(EXPERIMENTAL_IN_3_5)
    {
        if matches!(*name, "limitk" | "limit_ratio") {
            continue;
        }
        let raw =
            promql_parser::parser::parse(&format!("{name}(1, 2, 3, 4, 5, 6, 7, 8)")).unwrap_err();
        assert!(!raw.contains("unknown function"), "{name}: {raw}");
    }
    for name in AGGREGATIONS {
        assert!(
            promql_parser::parser::parse(&format!("{name}(up)")).is_ok()
                || matches!(*name, "topk" | "bottomk" | "quantile" | "count_values"),
            "{name}"
        );
    }
    assert!(
        FUNCTIONS.windows(2).all(|w| w[0] < w[1]),
        "FUNCTIONS is sorted"
    );
    assert!(FUNCTIONS
        .iter()
        .all(|f| !NOT_IN_3_5.contains(f) && !EXPERIMENTAL_IN_3_5.contains(f)));
}
