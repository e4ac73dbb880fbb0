//! The metric names a dashboard queries, and close names for the ones Prometheus does not have.
//!
//! An imported dashboard is usually written for another exporter version: `node_memory_MemTotal`
//! became `node_memory_MemTotal_bytes`, `node_cpu` became `node_cpu_seconds_total`. Its panels
//! then show "No data" without saying why. Listing the names it queries (a light PromQL scan, not
//! a parser: it only has to find selectors) lets `import-dashboard` say which are missing.

use std::collections::BTreeSet;

use serde_json::Value;

/// Aggregation operators: never metric names, whether followed by `(` or by `by (...)`.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LIST_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Other keywords (PromQL keywords are case-insensitive).
const KEYWORDS: [&str; 8] = [
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

/// Every metric name the dashboard's PromQL queries select: the `expr` of targets at any depth
/// (panels, legacy rows, collapsed rows, annotations) and the series of `label_values(...)` /
/// `query_result(...)` query variables. Queries of a datasource of another type (a Loki
/// target's `expr` is LogQL) are skipped, and so are names assembled from template variables
/// (`${prefix}_requests_total`), which are only known when the dashboard is viewed.
pub fn metric_names(dashboard: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    collect_exprs(dashboard, true, &mut names);
    if let Some(Value::Array(variables)) = dashboard.pointer("/templating/list") {
        for variable in variables {
            if variable.get("type").and_then(Value::as_str) != Some("query")
                || !queries_prometheus(variable, true)
            {
                continue;
            }
            let query = match variable.get("query") {
                Some(Value::String(query)) => query.as_str(),
                Some(Value::Object(query)) => query
                    .get("query")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                _ => "",
            };
            if let Some(expr) = variable_query_expr(query) {
                names.extend(promql_metric_names(expr));
            }
        }
    }
    names
}

/// Walks the JSON; `promql` says whether the nearest datasource above is Prometheus (or
/// unknown, as in legacy dashboards that name it by a free-form string).
fn collect_exprs(value: &Value, promql: bool, names: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            let promql = queries_prometheus(value, promql);
            if promql {
                if let Some(Value::String(expr)) = map.get("expr") {
                    names.extend(promql_metric_names(expr));
                }
            }
            for (key, child) in map {
                if key != "expr" {
                    collect_exprs(child, promql, names);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_exprs(item, promql, names)),
        _ => {}
    }
}

/// Whether an object's queries are PromQL, from its `datasource.type`; `inherited` when it has
/// none, or the pseudo-type `datasource` (`-- Mixed --`: each target names its own).
pub(super) fn queries_prometheus(object: &Value, inherited: bool) -> bool {
    match object.pointer("/datasource/type").and_then(Value::as_str) {
        Some("prometheus") => true,
        Some("datasource") | None => inherited,
        Some(_) => false,
    }
}

/// The PromQL inside a Prometheus query variable: the series of `label_values(series, label)`
/// and the expression of `query_result(expr)`. `label_values(label)`, `label_names()` and
/// `metrics(regex)` name no metric.
fn variable_query_expr(query: &str) -> Option<&str> {
    let query = query.trim();
    if let Some(args) = call_arguments(query, "label_values") {
        let comma = last_top_level_comma(args)?;
        return Some(&args[..comma]);
    }
    call_arguments(query, "query_result")
}

/// `name( args )` -> `args`.
fn call_arguments<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(name)?.trim_start();
    rest.strip_prefix('(')?.strip_suffix(')')
}

/// The byte offset of the last comma outside brackets and strings.
fn last_top_level_comma(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut i, mut depth, mut last) = (0, 0usize, None);
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => last = Some(i),
            _ => {}
        }
        i += 1;
    }
    last
}

/// The metric names selected by one PromQL expression, in order of appearance (with repeats).
///
/// A bare identifier is a metric name unless it is a keyword, an aggregation, a function (it is
/// followed by `(`), part of a `by`/`without`/`on`/`ignoring`/`group_left`/`group_right` label
/// list, or glued to a template variable. Label matchers `{...}`, ranges and subqueries `[...]`,
/// strings, comments, numbers and durations are skipped; `{__name__="x"}` and Prometheus 3's
/// quoted `{"x"}` name `x`.
pub(crate) fn promql_metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // A label list is expected after `by`, `on`, ...: the next `(` opens it.
    let mut label_list_next = false;
    // Where the last template variable ended: an identifier starting there is glued to it.
    let mut variable_end = usize::MAX;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if label_list_next && c != b'(' {
            label_list_next = false;
        }
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(bytes, i),
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' if label_list_next => {
                label_list_next = false;
                i = skip_group(bytes, i, b'(', b')');
            }
            b'{' => {
                let end = skip_group(bytes, i, b'{', b'}');
                let inner_end = if end > i + 1 && bytes.get(end - 1) == Some(&b'}') {
                    end - 1
                } else {
                    end
                };
                out.extend(names_in_matchers(&expr[i + 1..inner_end]));
                i = end;
            }
            b'[' => {
                let legacy_variable = bytes.get(i + 1) == Some(&b'[');
                i = skip_group(bytes, i, b'[', b']');
                if legacy_variable {
                    // Grafana's old `[[name]]` variable syntax.
                    variable_end = i;
                }
            }
            b'$' => {
                i = skip_variable(bytes, i);
                variable_end = i;
            }
            b'0'..=b'9' | b'.' => {
                // Numbers, hex, exponents and durations (5m, 1h30m): one alphanumeric run.
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < bytes.len() && is_ident_char(bytes[i]) {
                    i += 1;
                }
                let word = &expr[start..i];
                let glued = start == variable_end || bytes.get(i) == Some(&b'$');
                let lower = word.to_ascii_lowercase();
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    label_list_next = true;
                    continue;
                }
                let next = bytes[i..].iter().find(|b| !b.is_ascii_whitespace());
                let is_call = next == Some(&b'(');
                if glued
                    || is_call
                    || KEYWORDS.contains(&lower.as_str())
                    || AGGREGATIONS.contains(&lower.as_str())
                {
                    continue;
                }
                out.push(word.to_string());
            }
            _ => i += 1,
        }
    }
    out
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// From the opening quote at `start` to just past the closing one (backslash escapes honoured,
/// none in backquoted raw strings); the end of the text when unclosed.
pub(super) fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// From `open` at `start` to just past its matching `close`, skipping strings inside.
pub(super) fn skip_group(bytes: &[u8], start: usize, open: u8, close: u8) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                i = skip_string(bytes, i);
                continue;
            }
            b if b == open => depth += 1,
            b if b == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// `$name`, `$__rate_interval`, `${name}`, `${name:format}`: past its end.
pub(super) fn skip_variable(bytes: &[u8], start: usize) -> usize {
    if bytes.get(start + 1) == Some(&b'{') {
        return skip_group(bytes, start + 1, b'{', b'}');
    }
    let mut i = start + 1;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    i
}

/// Metric names inside label matchers: `__name__="x"` and a bare quoted `"x"`.
fn names_in_matchers(inner: &str) -> Vec<String> {
    let bytes = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        // The label: an identifier or (Prometheus 3) a quoted name.
        let (label, quoted) = if matches!(bytes[i], b'"' | b'\'' | b'`') {
            let end = skip_string(bytes, i);
            (unquote(&inner[i..end]), true)
        } else {
            let start = i;
            while i < bytes.len() && is_ident_char(bytes[i]) {
                i += 1;
            }
            if start == i {
                // Not a matcher we understand (a template variable, say): skip to the next one.
                while i < bytes.len() && bytes[i] != b',' {
                    i = if matches!(bytes[i], b'"' | b'\'' | b'`') {
                        skip_string(bytes, i)
                    } else {
                        i + 1
                    };
                }
                continue;
            }
            (inner[start..i].to_string(), false)
        };
        if quoted {
            i = skip_string(bytes, i);
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let operator_start = i;
        while i < bytes.len() && matches!(bytes[i], b'=' | b'!' | b'~') {
            i += 1;
        }
        let operator = &inner[operator_start..i];
        if operator.is_empty() {
            if quoted && is_plain_metric_name(&label) {
                out.push(label);
            }
            continue;
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && matches!(bytes[i], b'"' | b'\'' | b'`') {
            let end = skip_string(bytes, i);
            let value = unquote(&inner[i..end]);
            if label == "__name__" && operator == "=" && is_plain_metric_name(&value) {
                out.push(value);
            }
            i = end;
        } else {
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
        }
    }
    out
}

fn unquote(quoted: &str) -> String {
    let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or("");
    inner.replace("\\\"", "\"").replace("\\'", "'")
}

/// A complete metric name, not a pattern or a template variable.
fn is_plain_metric_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('$') && !name.contains("[[")
}

/// Name parts that only state a unit or a counter, which exporters add or change between
/// versions (`node_memory_MemTotal` -> `node_memory_MemTotal_bytes`).
const UNIT_PARTS: [&str; 17] = [
    "total",
    "seconds",
    "milliseconds",
    "microseconds",
    "nanoseconds",
    "ms",
    "bytes",
    "kbytes",
    "kilobytes",
    "celsius",
    "hertz",
    "ratio",
    "percent",
    "joules",
    "watts",
    "volts",
    "amperes",
];

/// The part of a histogram or summary series after its family name.
const SERIES_SUFFIXES: [&str; 3] = ["bucket", "sum", "count"];

/// Splits a name into (stem without unit parts, unit parts, series suffix), lower-cased.
fn name_parts(name: &str) -> (String, Vec<String>, Option<String>) {
    let lower = name.to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.split('_').collect();
    let mut suffix = None;
    if parts.len() > 1 && SERIES_SUFFIXES.contains(parts.last().expect("non-empty")) {
        suffix = parts.pop().map(str::to_string);
    }
    let mut units = Vec::new();
    while parts.len() > 1 && UNIT_PARTS.contains(parts.last().expect("non-empty")) {
        units.push(parts.pop().expect("non-empty").to_string());
    }
    (parts.join("_"), units, suffix)
}

/// A name from `available` that `missing` most likely became, for a "did you mean" hint.
///
/// First the same name with different unit parts (`node_cpu` -> `node_cpu_seconds_total`,
/// `x_microseconds_count` -> `x_seconds_count`), preferring a candidate that keeps the units
/// `missing` had and adds the fewest; then a misspelling: at most a quarter of the part after
/// the `_`-separated prefix both names share differs.
pub fn suggest(missing: &str, available: &BTreeSet<String>) -> Option<String> {
    let (stem, units, suffix) = name_parts(missing);
    let same_stem = available
        .iter()
        .filter(|candidate| candidate.as_str() != missing)
        .filter_map(|candidate| {
            let (c_stem, c_units, c_suffix) = name_parts(candidate);
            (c_stem == stem && c_suffix == suffix).then(|| {
                let lost = units.iter().filter(|u| !c_units.contains(u)).count();
                let added = c_units.iter().filter(|u| !units.contains(u)).count();
                ((lost, added, candidate.len()), candidate)
            })
        })
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    if let Some((_, candidate)) = same_stem {
        return Some(candidate.clone());
    }

    // Misspellings: compared past their common `_`-separated prefix, so that two long names of
    // one exporter (`node_netstat_TcpExt_TCPHPHits`, `node_netstat_TcpExt_TCPTimeouts`) are not
    // "close" just because they share most of their length.
    let lower = missing.to_ascii_lowercase();
    available
        .iter()
        .filter(|candidate| candidate.as_str() != missing)
        .filter_map(|candidate| {
            let candidate_lower = candidate.to_ascii_lowercase();
            let (a, b) = past_common_prefix(&lower, &candidate_lower);
            let limit = (a.len().max(b.len()) / 4).max(1);
            if a.len().abs_diff(b.len()) > limit {
                return None;
            }
            let distance = strsim::osa_distance(a, b);
            (distance <= limit).then_some((distance, candidate))
        })
        .min()
        .map(|(_, candidate)| candidate.clone())
}

/// The parts of `a` and `b` after their longest common prefix that ends with `_`.
fn past_common_prefix<'a, 'b>(a: &'a str, b: &'b str) -> (&'a str, &'b str) {
    let mut cut = 0;
    for (i, (x, y)) in a.bytes().zip(b.bytes()).enumerate() {
        if x != y {
            break;
        }
        if x == b'_' {
            cut = i + 1;
        }
    }
    (&a[cut..], &b[cut..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(expr: &str) -> Vec<String> {
        promql_metric_names(expr)
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn selectors_functions_and_label_matchers() {
        assert_eq!(
            names(
                r#"rate(apache_accesses_total{job="$job", instance="$instance"}[$__rate_interval])"#
            ),
            ["apache_accesses_total"]
        );
        assert_eq!(
            names(
                r#"sum by (mode)(irate(node_cpu{mode='irq',instance=~"$node:$port",job=~"$job"}[5m])) * 100"#
            ),
            ["node_cpu"]
        );
        // A label matcher value that looks like a metric, and a string with braces.
        assert_eq!(names(r#"up{job="node_exporter", x="a{b}c"} == 1"#), ["up"]);
        assert_eq!(
            names("time() - process_start_time_seconds"),
            ["process_start_time_seconds"]
        );
        assert_eq!(names("vector(1) + scalar(foo)"), ["foo"]);
    }

    #[test]
    fn label_lists_after_grouping_keywords_are_not_metrics() {
        assert_eq!(
            names("histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[5m])) by (le, job))"),
            ["http_request_duration_seconds_bucket"]
        );
        assert_eq!(
            names("sum without (instance, cpu) (rate(node_cpu_seconds_total[1m]))"),
            ["node_cpu_seconds_total"]
        );
        assert_eq!(
            names("a * on (instance) group_left (nodename) node_uname_info"),
            ["a", "node_uname_info"]
        );
        // group_left without a list: the next parenthesis is an expression again.
        assert_eq!(
            names("a * ignoring(job) group_left sum(b) by(x)"),
            ["a", "b"]
        );
        assert_eq!(
            names("x and on() y unless z or BOOL_metric"),
            ["x", "y", "z", "BOOL_metric"]
        );
        assert_eq!(names("x > bool 0 AND y"), ["x", "y"]);
        // Aggregations followed by `by` before their parenthesis.
        assert_eq!(
            names("topk by (job) (5, count_values without() (\"v\", build_info))"),
            ["build_info"]
        );
    }

    #[test]
    fn durations_numbers_offsets_and_subqueries() {
        assert_eq!(
            names("max_over_time(rate(x_total[5m])[1h:30s] offset 1d) / 1e3 + 0x1F - .5 + Inf"),
            ["x_total"]
        );
        assert_eq!(names("y @ 1609746000 > NaN"), ["y"]);
        assert_eq!(names("z @ end() offset -5m"), ["z"]);
        assert_eq!(names("rate(w[1h30m])"), ["w"]);
    }

    #[test]
    fn template_variables_and_grafana_macros() {
        assert_eq!(
            names("rate(a[$__rate_interval]) + rate(b[${__interval}]) + rate(c[[[interval]]])"),
            ["a", "b", "c"]
        );
        // Names built from variables are only known when viewed.
        assert_eq!(
            names("${prefix}_requests_total + node_$x + [[p]]_up"),
            Vec::<String>::new()
        );
        assert_eq!(names("topk($limit, d) > $threshold"), ["d"]);
        assert_eq!(names("sum(e) by ($group)"), ["e"]);
    }

    #[test]
    fn strings_comments_and_name_matchers() {
        assert_eq!(
            names(
                "label_replace(up, \"dst\", \"$1\", \"instance\", \"(.*):.*\") # not_a_metric\n+ f"
            ),
            ["up", "f"]
        );
        assert_eq!(names(r#"{__name__="g_total", job="j"}"#), ["g_total"]);
        assert_eq!(names(r#"{__name__=~"g_.*"}"#), Vec::<String>::new());
        assert_eq!(names(r#"{"my.metric", job="j"}"#), ["my.metric"]);
        assert_eq!(names(r#"h{job="a\"b", x=`raw\`}"#), ["h"]);
        assert_eq!(
            names("job:http_requests:rate5m"),
            ["job:http_requests:rate5m"]
        );
    }

    #[test]
    fn a_dashboards_names_come_from_every_query_place() {
        let dashboard = json!({
            "title": "t",
            "annotations": {"list": [{"datasource": {"type": "prometheus", "uid": "prometheus"}, "expr": "changes(ann_total[1m]) > 0"}]},
            "rows": [{"panels": [{"targets": [{"expr": "legacy_row_metric"}]}]}],
            "panels": [
                {"type": "row", "panels": [{"targets": [{"expr": "collapsed_metric", "refId": "A"}]}]},
                {"datasource": {"type": "loki", "uid": "logs"}, "targets": [{"expr": "{job=\"x\"} |= \"error\" | json"}]},
                {"datasource": {"type": "datasource", "uid": "-- Mixed --"}, "targets": [
                    {"datasource": {"type": "prometheus", "uid": "${datasource}"}, "expr": "mixed_prom"},
                    {"datasource": {"type": "loki", "uid": "logs"}, "expr": "sum(count_over_time({app=\"a\"}[1m]))"},
                ]},
            ],
            "templating": {"list": [
                {"type": "query", "name": "job", "query": "label_values(var_metric, job)"},
                {"type": "query", "name": "i", "query": {"query": "label_values(var_obj{job=\"$job\"}, instance)", "refId": "x"}},
                {"type": "query", "name": "l", "query": "label_values(job)"},
                {"type": "query", "name": "q", "query": "query_result(topk(5, var_result))"},
                {"type": "query", "name": "m", "query": "metrics(node_.*)"},
                {"type": "custom", "name": "c", "query": "not_a_metric"},
                {"type": "datasource", "name": "ds", "query": "prometheus"},
            ]},
        });
        assert_eq!(
            metric_names(&dashboard),
            set(&[
                "ann_total",
                "collapsed_metric",
                "legacy_row_metric",
                "mixed_prom",
                "var_metric",
                "var_obj",
                "var_result"
            ])
        );
    }

    #[test]
    fn suggestions_follow_unit_and_counter_renames() {
        let available = set(&[
            "node_memory_MemTotal_bytes",
            "node_memory_MemFree_bytes",
            "node_cpu_seconds_total",
            "node_cpu_guest_seconds_total",
            "node_boot_time_seconds",
            "node_network_receive_bytes_total",
            "node_network_receive_packets_total",
            "http_request_duration_seconds_count",
            "http_request_duration_seconds_sum",
            "process_cpu_seconds_total",
            "go_goroutines",
        ]);
        let s = |name: &str| suggest(name, &available);
        assert_eq!(
            s("node_memory_MemTotal").as_deref(),
            Some("node_memory_MemTotal_bytes")
        );
        assert_eq!(s("node_cpu").as_deref(), Some("node_cpu_seconds_total"));
        assert_eq!(
            s("node_boot_time").as_deref(),
            Some("node_boot_time_seconds")
        );
        assert_eq!(
            s("node_network_receive_bytes").as_deref(),
            Some("node_network_receive_bytes_total")
        );
        assert_eq!(
            s("http_request_duration_microseconds_count").as_deref(),
            Some("http_request_duration_seconds_count")
        );
        // Misspellings fall back to the edit distance.
        assert_eq!(s("go_gorutines").as_deref(), Some("go_goroutines"));
        assert_eq!(s("nginx_connections_active"), None);
        // Long names of one exporter are not close just because they share a long prefix.
        let netstat = set(&[
            "node_netstat_TcpExt_TCPTimeouts",
            "node_netstat_Udp_NoPorts",
        ]);
        assert_eq!(suggest("node_netstat_TcpExt_TCPHPHits", &netstat), None);
        assert_eq!(suggest("node_netstat_UdpLite_NoPorts", &netstat), None);
        assert_eq!(
            suggest("node_netstat_TcpExt_TCPTimeout", &netstat).as_deref(),
            Some("node_netstat_TcpExt_TCPTimeouts")
        );
        // A name that exists is no suggestion for itself.
        assert_eq!(suggest("go_goroutines", &set(&["go_goroutines"])), None);
    }

    /// The real exported dashboards: every panel's query yields names, none of them a keyword,
    /// function or label.
    #[test]
    fn real_world_fixtures_yield_plausible_names() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/exported-dashboards");
        let Ok(text) = std::fs::read_to_string(dir.join("node-exporter-full.json")) else {
            println!("skipping: fixture directory {} is missing", dir.display());
            return;
        };
        let json: Value = serde_json::from_str(&text).unwrap();
        let names = metric_names(&json);
        assert!(names.len() > 100, "{}", names.len());
        for name in &names {
            assert!(
                name.starts_with("node_") || name.starts_with("process_") || name == "up",
                "unexpected name {name}"
            );
        }
        assert!(names.contains("node_memory_MemTotal_bytes"));
        assert!(names.contains("node_uname_info"));

        // The old dashboard against a node_exporter whose metrics the new one shows: the names
        // renamed in node_exporter 0.16 are found again.
        let old_text = std::fs::read_to_string(dir.join("node-exporter-full-old.json")).unwrap();
        let old = metric_names(&serde_json::from_str(&old_text).unwrap());
        for (missing, renamed) in [
            ("node_memory_MemTotal", "node_memory_MemTotal_bytes"),
            ("node_cpu", "node_cpu_seconds_total"),
            ("node_boot_time", "node_boot_time_seconds"),
            ("node_filesystem_free", "node_filesystem_free_bytes"),
            (
                "node_network_receive_bytes",
                "node_network_receive_bytes_total",
            ),
        ] {
            assert!(
                old.contains(missing) && !names.contains(missing),
                "{missing}"
            );
            assert_eq!(suggest(missing, &names).as_deref(), Some(renamed));
        }
    }
}
