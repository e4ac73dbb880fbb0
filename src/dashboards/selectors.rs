//! Selectors on `le` and `quantile` that match on Prometheus 2 and 3 alike.
//!
//! Prometheus 3 stores the `le` label of classic histogram buckets and the `quantile` label of
//! summaries in float form: what an exporter writes as `quantile="1"` or `le="10"` is stored as
//! `"1.0"`, `"10.0"`. Only integral values change (`0.5`, `2.5e-05`, `+Inf` and `1e+06` stay as
//! they are); Prometheus 2 stores the text as exported. So `go_gc_duration_seconds{quantile="1"}`
//! finds nothing on Prometheus 3, and `quantile="1.0"` finds nothing on Prometheus 2 scraping a
//! Go exporter.
//!
//! The form that matches both is a regex of the two spellings: [`both_forms`] gives
//! `quantile=~"1|1[.]0"`. The dot is written `[.]` because a bare `.` matches any character
//! (`le=~"5|5.0"` would also select the `500` bucket) and `\.` needs its backslash doubled in a
//! PromQL string and doubled again in JSON or YAML; `[.]` reads the same in PromQL, JSON, YAML
//! and Rust. [`rewrite_expr`] turns equality matchers (`=`, `!=`) on an integral value into
//! that form, and completes regex matchers that are plain alternations of numbers
//! (`le=~"1|2.5|5"`, as exported dashboards write bucket lists).

use serde_json::Value;

use super::promql::{queries_prometheus, skip_group, skip_string, skip_variable};

/// The labels Prometheus 3 writes in float form.
pub const FLOAT_FORM_LABELS: [&str; 2] = ["le", "quantile"];

/// One matcher [`rewrite_expr`] changed, as written before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRewrite {
    /// `quantile="1"`
    pub from: String,
    /// `quantile=~"1|1[.]0"`
    pub to: String,
}

/// The regex (without quotes) that matches an integral label value in both spellings:
/// `1` -> `1|1[.]0`.
pub fn both_forms(integer: &str) -> String {
    format!("{integer}|{integer}[.]0")
}

/// The integer a label value spells when Prometheus 2 and 3 write it differently: `1` and
/// `1.0` are `1`; `0.5`, `+Inf`, `1e+06`, `$q` are not integral. Integers of seven digits or
/// more are left out: Prometheus 3 writes them in exponent form (`1e+06`, as Go exporters do
/// already), which a `.0` spelling would not match either.
fn integral(value: &str) -> Option<&str> {
    let base = value.strip_suffix(".0").unwrap_or(value);
    let digits = base.strip_prefix('-').unwrap_or(base);
    let canonical = digits == "0" && base == digits
        || !digits.is_empty()
            && digits.len() <= 6
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit());
    canonical.then_some(base)
}

/// A regex value that is only `|`-separated number literals, with every integral one completed
/// by its other spelling; `None` when it is anything else or already complete.
fn completed_alternation(regex: &str) -> Option<String> {
    let alternatives: Vec<&str> = regex.split('|').collect();
    let numeric = |a: &str| {
        a.bytes().any(|b| b.is_ascii_digit())
            && a.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    };
    if !alternatives.iter().all(|a| numeric(a)) {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut changed = false;
    for alternative in &alternatives {
        match integral(alternative) {
            Some(base) if *alternative == base => {
                out.push(base.to_string());
                if !alternatives.contains(&format!("{base}.0").as_str()) {
                    out.push(format!("{base}[.]0"));
                    changed = true;
                }
            }
            Some(base) => {
                if !alternatives.contains(&base) {
                    out.push(base.to_string());
                    changed = true;
                }
                out.push(alternative.to_string());
            }
            None => out.push(alternative.to_string()),
        }
    }
    changed.then(|| out.join("|"))
}

/// Rewrites the `le` / `quantile` matchers of one PromQL expression that match only one
/// Prometheus version's spelling of an integral value:
///
/// - `quantile="1"`, `quantile="1.0"` -> `quantile=~"1|1[.]0"`; `!=` becomes `!~` alike;
/// - `le=~"1|2.5|5"` -> `le=~"1|1[.]0|2.5|5|5[.]0"` (regexes of plain number alternatives only).
///
/// Everything else is copied as it is: other labels, strings outside selectors, comments,
/// template variables, spacing and quote style. Returns the expression and what changed.
pub fn rewrite_expr(expr: &str) -> (String, Vec<SelectorRewrite>) {
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len());
    let mut rewrites = Vec::new();
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => i = skip_string(bytes, i),
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' => i = skip_variable(bytes, i),
            b'[' => i = skip_group(bytes, i, b'[', b']'),
            b'{' => {
                let end = skip_group(bytes, i, b'{', b'}');
                let inner_end = if end > i + 1 && bytes[end - 1] == b'}' {
                    end - 1
                } else {
                    end
                };
                for (range, replacement, rewrite) in matcher_rewrites(&expr[i + 1..inner_end]) {
                    out.push_str(&expr[copied..i + 1 + range.start]);
                    out.push_str(&replacement);
                    copied = i + 1 + range.end;
                    rewrites.push(rewrite);
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&expr[copied..]);
    (out, rewrites)
}

type Replacement = (std::ops::Range<usize>, String, SelectorRewrite);

/// The matchers inside one `{...}` to rewrite: the byte range from operator to closing quote,
/// its replacement, and the whole matcher before and after.
fn matcher_rewrites(inner: &str) -> Vec<Replacement> {
    let bytes = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_spaces = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let skip_to_comma = |mut i: usize| {
        while i < bytes.len() && bytes[i] != b',' {
            i = if matches!(bytes[i], b'"' | b'\'' | b'`') {
                skip_string(bytes, i)
            } else {
                i + 1
            };
        }
        i
    };
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        // The label: an identifier or (Prometheus 3) a quoted name.
        let label_start = i;
        let label = if matches!(bytes[i], b'"' | b'\'' | b'`') {
            i = skip_string(bytes, i);
            inner[label_start + 1..i.saturating_sub(1).max(label_start + 1)].to_string()
        } else {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if i == label_start {
                // Not a matcher (a template variable, say): on to the next one.
                i = skip_to_comma(i);
                continue;
            }
            inner[label_start..i].to_string()
        };
        i = skip_spaces(i);
        let operator_start = i;
        while i < bytes.len() && matches!(bytes[i], b'=' | b'!' | b'~') {
            i += 1;
        }
        let operator = &inner[operator_start..i];
        i = skip_spaces(i);
        if operator.is_empty() || i >= bytes.len() || !matches!(bytes[i], b'"' | b'\'' | b'`') {
            i = skip_to_comma(i);
            continue;
        }
        let value_start = i;
        i = skip_string(bytes, i);
        let quote = bytes[value_start] as char;
        let closed = i > value_start + 1 && bytes[i - 1] as char == quote;
        if !closed || !FLOAT_FORM_LABELS.contains(&label.as_str()) {
            continue;
        }
        let value = &inner[value_start + 1..i - 1];
        let replacement = match operator {
            "=" | "!=" => integral(value).map(|base| {
                let regex_operator = if operator == "=" { "=~" } else { "!~" };
                (regex_operator, both_forms(base))
            }),
            "=~" | "!~" => completed_alternation(value).map(|regex| (operator, regex)),
            _ => None,
        };
        let Some((new_operator, regex)) = replacement else {
            continue;
        };
        let between = &inner[operator_start + operator.len()..value_start];
        let text = format!("{new_operator}{between}{quote}{regex}{quote}");
        let from = inner[label_start..i].to_string();
        let to = format!("{}{text}", &inner[label_start..operator_start]);
        out.push((operator_start..i, text, SelectorRewrite { from, to }));
    }
    out
}

/// Applies [`rewrite_expr`] to every PromQL expression of a dashboard: the `expr` of targets at
/// any depth (panels, rows, annotations) and the `query` (and its display copy `definition`)
/// of query variables. Queries of datasources of another type (a Loki target's LogQL) are left
/// alone. Returns what changed, in order; a variable's `definition` is not counted again.
pub fn rewrite_dashboard(dashboard: &mut Value) -> Vec<SelectorRewrite> {
    let mut rewrites = Vec::new();
    rewrite_exprs(dashboard, true, &mut rewrites);
    if let Some(Value::Array(variables)) = dashboard.pointer_mut("/templating/list") {
        for variable in variables {
            if variable.get("type").and_then(Value::as_str) != Some("query")
                || !queries_prometheus(variable, true)
            {
                continue;
            }
            match variable.get_mut("query") {
                Some(Value::String(query)) => rewrites.extend(rewrite_in_place(query)),
                Some(Value::Object(query)) => {
                    if let Some(Value::String(query)) = query.get_mut("query") {
                        rewrites.extend(rewrite_in_place(query));
                    }
                }
                _ => {}
            }
            if let Some(Value::String(definition)) = variable.get_mut("definition") {
                rewrite_in_place(definition);
            }
        }
    }
    rewrites
}

fn rewrite_in_place(text: &mut String) -> Vec<SelectorRewrite> {
    let (rewritten, rewrites) = rewrite_expr(text);
    if !rewrites.is_empty() {
        *text = rewritten;
    }
    rewrites
}

fn rewrite_exprs(value: &mut Value, promql: bool, rewrites: &mut Vec<SelectorRewrite>) {
    let promql = queries_prometheus(value, promql);
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(expr) if key == "expr" => {
                        if promql {
                            rewrites.extend(rewrite_in_place(expr));
                        }
                    }
                    _ => rewrite_exprs(child, promql, rewrites),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_exprs(item, promql, rewrites)),
        _ => {}
    }
}

/// One line for the user about what [`rewrite_dashboard`] changed, `None` when nothing:
/// `rewrote 2 selectors for Prometheus 3 (quantile="1" -> quantile=~"1|1[.]0")`, with the
/// distinct rewrites in order (the first three, then how many more).
pub fn rewrites_summary(rewrites: &[SelectorRewrite]) -> Option<String> {
    if rewrites.is_empty() {
        return None;
    }
    let mut distinct: Vec<&SelectorRewrite> = Vec::new();
    for rewrite in rewrites {
        if !distinct.contains(&rewrite) {
            distinct.push(rewrite);
        }
    }
    let mut examples: Vec<String> = distinct
        .iter()
        .take(3)
        .map(|r| format!("{} -> {}", r.from, r.to))
        .collect();
    if distinct.len() > 3 {
        examples.push(format!("and {} more", distinct.len() - 3));
    }
    let count = rewrites.len();
    let noun = if count == 1 { "selector" } else { "selectors" };
    Some(format!(
        "rewrote {count} {noun} for Prometheus 3 ({})",
        examples.join(", ")
    ))
}

/// The equality matchers (`=`, `!=`) on `le` or `quantile` with an integral value in a text,
/// PromQL or not (documentation, a rule file, JSON with its quotes unescaped): what works on only
/// one Prometheus version. For tests that keep monstack's own files clean.
pub fn single_form_selectors(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for label in FLOAT_FORM_LABELS {
        for (start, _) in text.match_indices(label) {
            let word_start = start == 0 || {
                let b = bytes[start - 1];
                !(b.is_ascii_alphanumeric() || b == b'_')
            };
            if !word_start {
                continue;
            }
            let after_label = text[start + label.len()..].trim_start();
            let Some(after_operator) = after_label
                .strip_prefix("!=")
                .or_else(|| after_label.strip_prefix('='))
            else {
                continue;
            };
            if after_operator.starts_with(['~', '=']) {
                continue;
            }
            let quoted = after_operator.trim_start();
            let Some(quote) = quoted.chars().next().filter(|c| "\"'`".contains(*c)) else {
                continue;
            };
            let Some(length) = quoted[1..].find(quote) else {
                continue;
            };
            if integral(&quoted[1..1 + length]).is_some() {
                let end = text.len() - quoted.len() + length + 2;
                found.push((start, text[start..end].to_string()));
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, selector)| selector).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rewritten(expr: &str) -> String {
        rewrite_expr(expr).0
    }

    #[test]
    fn integral_values_are_told_apart() {
        for (value, base) in [
            ("1", Some("1")),
            ("1.0", Some("1")),
            ("0", Some("0")),
            ("0.0", Some("0")),
            ("10", Some("10")),
            ("-1", Some("-1")),
            ("999999", Some("999999")),
            ("1000000", None),
            ("0.5", None),
            ("0.99", None),
            ("2.5e-05", None),
            ("1e+06", None),
            ("+Inf", None),
            ("NaN", None),
            ("01", None),
            ("-0", None),
            ("", None),
            (".0", None),
            ("$q", None),
            ("1.00", None),
        ] {
            assert_eq!(integral(value), base, "{value:?}");
        }
    }

    #[test]
    fn equality_matchers_on_integral_values_match_both_spellings() {
        assert_eq!(
            rewritten(r#"go_gc_duration_seconds{job=~"$job", quantile="1"}"#),
            r#"go_gc_duration_seconds{job=~"$job", quantile=~"1|1[.]0"}"#
        );
        assert_eq!(rewritten(r#"x{quantile="0"}"#), r#"x{quantile=~"0|0[.]0"}"#);
        assert_eq!(
            rewritten(r#"x{quantile="1.0"}"#),
            r#"x{quantile=~"1|1[.]0"}"#
        );
        assert_eq!(
            rewritten(r#"sum(rate(h_bucket{le="10"}[5m]))"#),
            r#"sum(rate(h_bucket{le=~"10|10[.]0"}[5m]))"#
        );
        assert_eq!(
            rewritten(r#"h_bucket{le!="5"}"#),
            r#"h_bucket{le!~"5|5[.]0"}"#
        );
        // Spacing and quote style are kept.
        assert_eq!(
            rewritten("x{ quantile = \"1\" , le != '2' }"),
            "x{ quantile =~ \"1|1[.]0\" , le !~ '2|2[.]0' }"
        );
        assert_eq!(rewritten("x{quantile=`1`}"), "x{quantile=~`1|1[.]0`}");
        // Prometheus 3's quoted label names.
        assert_eq!(
            rewritten(r#"{"my.metric", "quantile"="1"}"#),
            r#"{"my.metric", "quantile"=~"1|1[.]0"}"#
        );
        // Every selector of the expression.
        assert_eq!(
            rewritten(r#"a{quantile="1"} / on(job) b{le="1", job="x"} or c{quantile="0.5"}"#),
            r#"a{quantile=~"1|1[.]0"} / on(job) b{le=~"1|1[.]0", job="x"} or c{quantile="0.5"}"#
        );
    }

    #[test]
    fn what_changed_is_reported_as_written() {
        let (_, rewrites) = rewrite_expr(r#"x{quantile = "1"} + y{le!="0"}"#);
        assert_eq!(
            rewrites,
            [
                SelectorRewrite {
                    from: r#"quantile = "1""#.into(),
                    to: r#"quantile =~ "1|1[.]0""#.into()
                },
                SelectorRewrite {
                    from: r#"le!="0""#.into(),
                    to: r#"le!~"0|0[.]0""#.into()
                },
            ]
        );
    }

    #[test]
    fn everything_else_is_left_alone() {
        for expr in [
            // Values Prometheus 3 keeps as they are.
            r#"x{quantile="0.5"}"#,
            r#"x{quantile="0.99"}"#,
            r#"h_bucket{le="+Inf"}"#,
            r#"h_bucket{le="2.5e-05"}"#,
            r#"h_bucket{le="1e+06"}"#,
            // Template variables and other labels.
            r#"x{quantile="$quantile"}"#,
            r#"x{le=~"$le"}"#,
            r#"x{code="1", mode="1", ale="1", le_x="1", quantiles="1"}"#,
            // Such text in other labels' values, in strings outside selectors, in comments.
            r#"x{note="quantile=\"1\"", path='le="5"'}"#,
            r#"label_replace(x, "dst", "quantile=\"1\"", "src", "le=\"1\"")"#,
            "x # quantile=\"1\"\n",
            // Already both forms; regexes that are not plain lists of numbers.
            r#"x{quantile=~"1|1[.]0"}"#,
            r#"x{quantile=~"1|1.0"}"#,
            r#"x{quantile!~"0|0[.]0"}"#,
            r#"h_bucket{le=~"1(\\.0)?"}"#,
            r#"h_bucket{le=~".*"}"#,
            // Not PromQL selectors at all.
            r#"histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))"#,
            r#"rate(x[$__rate_interval]) ${le} [[quantile]]"#,
            r#"x{quantile="1"#,
            "",
        ] {
            let (out, rewrites) = rewrite_expr(expr);
            assert_eq!(out, expr);
            assert!(rewrites.is_empty(), "{expr}: {rewrites:?}");
        }
    }

    #[test]
    fn regex_lists_of_numbers_get_the_other_spelling_of_integers() {
        // As in grafana.com's Unbound dashboard.
        assert_eq!(
            rewritten(r#"h_bucket{le=~"0.5|1|2|4|64"}"#),
            r#"h_bucket{le=~"0.5|1|1[.]0|2|2[.]0|4|4[.]0|64|64[.]0"}"#
        );
        assert_eq!(
            rewritten(r#"h_bucket{le!~"1.0|2.5"}"#),
            r#"h_bucket{le!~"1|1.0|2.5"}"#
        );
        assert_eq!(rewritten(r#"x{le=~"0.5|0.25"}"#), r#"x{le=~"0.5|0.25"}"#);
    }

    #[test]
    fn rewriting_is_idempotent() {
        for expr in [
            r#"x{quantile="1", le!='5'} + y{le=~"1|2.5|10"}"#,
            r#"x{ quantile = "0.0" }"#,
        ] {
            let once = rewritten(expr);
            assert_ne!(once, expr);
            let (twice, rewrites) = rewrite_expr(&once);
            assert_eq!(twice, once);
            assert!(rewrites.is_empty(), "{rewrites:?}");
        }
    }

    #[test]
    fn dashboards_are_rewritten_in_every_promql_query_and_only_there() {
        let mut dashboard = json!({
            "title": "T",
            "description": "quantile=\"1\" stays in prose",
            "panels": [
                {"datasource": {"type": "prometheus", "uid": "p"},
                 "targets": [{"expr": "x{quantile=\"1\"}", "legendFormat": "quantile=\"1\""},
                             {"expr": "{app=\"a\"} |= `quantile=\"1\"`", "datasource": {"type": "loki", "uid": "l"}}]},
                {"type": "row", "panels": [{"targets": [{"expr": "h_bucket{le=\"10\"}"}]}]},
            ],
            "rows": [{"panels": [{"targets": [{"expr": "y{quantile=\"0\"}"}]}]}],
            "annotations": {"list": [{"expr": "z{le!=\"1\"}"}]},
            "templating": {"list": [
                {"type": "query", "name": "a", "query": "label_values(x{quantile=\"1\"}, job)",
                 "definition": "label_values(x{quantile=\"1\"}, job)"},
                {"type": "query", "name": "b", "query": {"query": "query_result(x{le=\"1\"})", "refId": "B"}},
                {"type": "custom", "name": "c", "query": "quantile=\"1\""},
                {"type": "query", "name": "d", "datasource": {"type": "loki"}, "query": "x{quantile=\"1\"}"},
            ]},
        });
        let rewrites = rewrite_dashboard(&mut dashboard);
        assert_eq!(rewrites.len(), 6, "{rewrites:?}");
        let q1 = "quantile=~\"1|1[.]0\"";
        assert_eq!(
            dashboard["panels"][0]["targets"][0]["expr"],
            format!("x{{{q1}}}")
        );
        assert_eq!(
            dashboard["panels"][0]["targets"][0]["legendFormat"],
            "quantile=\"1\""
        );
        assert_eq!(
            dashboard["panels"][0]["targets"][1]["expr"],
            "{app=\"a\"} |= `quantile=\"1\"`"
        );
        assert_eq!(
            dashboard["panels"][1]["panels"][0]["targets"][0]["expr"],
            "h_bucket{le=~\"10|10[.]0\"}"
        );
        assert_eq!(
            dashboard["rows"][0]["panels"][0]["targets"][0]["expr"],
            "y{quantile=~\"0|0[.]0\"}"
        );
        assert_eq!(
            dashboard["annotations"]["list"][0]["expr"],
            "z{le!~\"1|1[.]0\"}"
        );
        let variables = &dashboard["templating"]["list"];
        assert_eq!(
            variables[0]["query"],
            format!("label_values(x{{{q1}}}, job)")
        );
        assert_eq!(variables[0]["definition"], variables[0]["query"]);
        assert_eq!(
            variables[1]["query"]["query"],
            "query_result(x{le=~\"1|1[.]0\"})"
        );
        assert_eq!(variables[2]["query"], "quantile=\"1\"");
        assert_eq!(variables[3]["query"], "x{quantile=\"1\"}");
        assert_eq!(dashboard["description"], "quantile=\"1\" stays in prose");
        assert!(rewrite_dashboard(&mut dashboard).is_empty());
    }

    #[test]
    fn the_summary_names_the_rewrites() {
        let rewrite = |from: &str, to: &str| SelectorRewrite {
            from: from.into(),
            to: to.into(),
        };
        assert_eq!(rewrites_summary(&[]), None);
        let q = rewrite("quantile=\"1\"", "quantile=~\"1|1[.]0\"");
        assert_eq!(
            rewrites_summary(std::slice::from_ref(&q)).unwrap(),
            "rewrote 1 selector for Prometheus 3 (quantile=\"1\" -> quantile=~\"1|1[.]0\")"
        );
        assert_eq!(
            rewrites_summary(&[q.clone(), q.clone()]).unwrap(),
            "rewrote 2 selectors for Prometheus 3 (quantile=\"1\" -> quantile=~\"1|1[.]0\")"
        );
        let many: Vec<_> = (0..5)
            .map(|n| {
                rewrite(
                    &format!("le=\"{n}\""),
                    &format!("le=~\"{}\"", both_forms(&n.to_string())),
                )
            })
            .collect();
        assert_eq!(
            rewrites_summary(&many).unwrap(),
            "rewrote 5 selectors for Prometheus 3 (le=\"0\" -> le=~\"0|0[.]0\", le=\"1\" -> le=~\"1|1[.]0\", le=\"2\" -> le=~\"2|2[.]0\", and 2 more)"
        );
    }

    #[test]
    fn single_form_selectors_are_found_in_any_text() {
        assert_eq!(
            single_form_selectors(
                "x{quantile=\"1\"} y{le != '10'} z{quantile=\"1.0\"} and prose: quantile 1"
            ),
            ["quantile=\"1\"", "le != '10'", "quantile=\"1.0\""]
        );
        for clean in [
            "x{quantile=~\"1|1[.]0\"}",
            "x{quantile=\"0.5\", le=\"+Inf\"}",
            "x{ale=\"1\", le_bucket=\"1\"}",
            "x{le==\"1\"}",
            "quantile = 1",
        ] {
            assert!(single_form_selectors(clean).is_empty(), "{clean}");
        }
    }

    /// monstack's own queries and examples select `le` and `quantile` in the form that works on
    /// Prometheus 2 and 3: the bundled dashboards, the built-in rules and their promtool tests,
    /// the README, the starter manifest and the fixture manifests.
    #[test]
    fn monstacks_own_files_use_the_form_for_both_versions() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![
            root.join("README.md"),
            root.join("assets/monstack.yaml"),
            root.join("src/render/rules.rs"),
        ];
        let mut add_dir = |dir: &str| {
            let mut stack = vec![root.join(dir)];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|e| {
                        ["json", "yaml", "yml"].contains(&e.to_str().unwrap_or(""))
                    }) {
                        files.push(path);
                    }
                }
            }
        };
        add_dir("dashboards");
        add_dir("tests/fixtures/rules");
        add_dir("tests/fixtures/manifests");
        assert!(files.len() > 10, "{files:?}");
        let mut problems = Vec::new();
        for path in &files {
            // Quotes escaped in JSON, YAML and Rust strings count as quotes.
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .replace("\\\"", "\"");
            for selector in single_form_selectors(&text) {
                problems.push(format!("{}: {selector}", path.display()));
            }
        }
        assert!(
            problems.is_empty(),
            "selectors that work on only one Prometheus version (write {}):\n{}",
            both_forms("N"),
            problems.join("\n")
        );
    }
}
