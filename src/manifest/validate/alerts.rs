//! When alerts fire and whom they notify: `alerting:` (the engine, default channels, grouping)
//! and `alerts:` (the rules), with a cheap check of their PromQL.

use std::collections::HashMap;

use super::values::{read_labels, valid_label_name};
use crate::manifest::diagnostics::closest;
use crate::manifest::reader::Reader;
use crate::manifest::spec;
use crate::manifest::yaml::Node;
use crate::model::{Alert, AlertEngine, Alerting, Duration, Prometheus};

/// Checks a list of channel names; returns the valid ones.
fn read_channel_refs(r: &mut Reader, node: &Node, what: &str, channels: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, pos) in r.string_list(node, what).unwrap_or_default() {
        if !channels.contains(&name.as_str()) {
            let hint = match closest(&name, channels.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None if channels.is_empty() => "define it under `channels:`".to_string(),
                None => format!("defined channels: {}", channels.join(", ")),
            };
            r.error(pos, format!("undefined channel `{name}`"), Some(hint));
        } else if out.contains(&name) {
            r.error(pos, format!("channel `{name}` is listed twice"), None);
        } else {
            out.push(name);
        }
    }
    out
}

pub(super) fn read_alerting(
    r: &mut Reader,
    node: Option<&Node>,
    channels: &[&str],
    prometheus: &Option<Prometheus>,
) -> Alerting {
    let _ = prometheus;
    let mut alerting = Alerting {
        engine: AlertEngine::Alertmanager,
        default_notify: channels.iter().map(|c| c.to_string()).collect(),
        group_by: vec!["alertname".into(), "job".into()],
        group_wait: Duration::from_secs(30),
        group_interval: Duration::from_secs(300),
        repeat_interval: Duration::from_secs(4 * 3600),
        builtin: true,
    };
    let Some(obj) = node.and_then(|n| r.object(n, &spec::ALERTING)) else {
        return alerting;
    };
    if let Some(n) = obj.get("engine") {
        if r.enumeration(n, "engine", &spec::ALERTING.field("engine").unwrap().ty)
            .as_deref()
            == Some("grafana")
        {
            alerting.engine = AlertEngine::Grafana;
        }
    }
    if let Some(n) = obj.get("notify") {
        alerting.default_notify = read_channel_refs(r, n, "notify", channels);
    }
    if let Some(n) = obj.get("group_by") {
        let labels = r.string_list(n, "group_by").unwrap_or_default();
        for (label, pos) in &labels {
            if label != "..." && !valid_label_name(label) {
                r.error(
                    *pos,
                    format!("invalid label name `{label}` in `group_by`"),
                    Some("`...` groups by every label".into()),
                );
            }
        }
        alerting.group_by = labels.into_iter().map(|(l, _)| l).collect();
    }
    for (key, slot) in [
        ("group_wait", &mut alerting.group_wait),
        ("group_interval", &mut alerting.group_interval),
        ("repeat_interval", &mut alerting.repeat_interval),
    ] {
        if let Some(d) = r.opt_duration(&obj, key) {
            *slot = d;
        }
    }
    if let Some(builtin) = obj.get("builtin").and_then(|n| r.bool(n, "builtin")) {
        alerting.builtin = builtin;
    }
    alerting
}

pub(super) fn read_alerts(r: &mut Reader, node: &Node, channels: &[&str]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in r.list(node, "alerts") {
        let Some(obj) = r.object(item, &spec::ALERT) else {
            continue;
        };
        let name = r.non_empty(&obj, "name").unwrap_or_default();
        if let Some(n) = obj.get("name") {
            if !name.is_empty() {
                if !valid_label_name(&name) {
                    r.error(
                        n.pos,
                        format!("invalid alert name `{name}`"),
                        Some("use letters, digits and `_`, e.g. `HighErrorRate`".into()),
                    );
                } else if let Some(line) = seen.get(&name) {
                    r.error(
                        n.pos,
                        format!("duplicate alert name `{name}`"),
                        Some(format!("`{name}` is already defined at line {line}")),
                    );
                } else {
                    seen.insert(name.clone(), n.pos.line);
                }
            }
        }
        let expr = r.non_empty(&obj, "expr").unwrap_or_default();
        if let Some(n) = obj.get("expr") {
            if let Err(problem) = check_brackets(&expr) {
                r.error(n.pos, format!("`expr` is not valid PromQL: {problem}"), Some("quote expressions containing `{` or `:` in YAML: expr: 'up{job=\"x\"} == 0'".into()));
            } else if !expr.trim().is_empty() {
                // Parsed as Prometheus 3.5 parses rules: an expression it would refuse must
                // not reach a running Prometheus (which would then crash-loop or keep the
                // rejected rule file on disk).
                if let Err(problem) = crate::manifest::promql::check(&expr) {
                    r.error(
                        n.pos,
                        format!("`expr` is not valid PromQL: {}", problem.message),
                        problem.hint,
                    );
                }
            }
        }
        let for_ = r.opt_duration(&obj, "for").unwrap_or(Duration(0));
        let severity = match obj.get("severity") {
            Some(n) => {
                let s = r.string(n, "severity").unwrap_or_default();
                if s.trim().is_empty() {
                    r.error(
                        n.pos,
                        "`severity` is empty",
                        Some("e.g. `warning` or `critical`".into()),
                    );
                }
                s
            }
            None => "warning".into(),
        };
        let summary = r.opt_string(&obj, "summary");
        let description = r.opt_string(&obj, "description");
        let labels = obj
            .get("labels")
            .map(|n| read_labels(r, n, "labels"))
            .unwrap_or_default();
        if let Some(n) = obj.get("labels") {
            for reserved in ["severity", "alertname"] {
                if labels.contains_key(reserved) {
                    r.error(
                        n.pos,
                        format!("label `{reserved}` is set by monstack"),
                        Some(if reserved == "severity" {
                            "use the alert's `severity:` field".into()
                        } else {
                            "the alert's `name` is its alertname".to_string()
                        }),
                    );
                }
            }
        }
        let notify = obj
            .get("notify")
            .map(|n| read_channel_refs(r, n, "notify", channels))
            .unwrap_or_default();
        alerts.push(Alert {
            name,
            expr,
            for_,
            severity,
            summary,
            description,
            labels,
            notify,
        });
    }
    alerts
}

/// A cheap sanity check of PromQL (the full grammar is checked by Prometheus on load):
/// brackets balanced and strings closed.
pub fn check_brackets(expr: &str) -> Result<(), String> {
    let mut stack = Vec::new();
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let quote = c;
                loop {
                    match chars.next() {
                        None => return Err(format!("unclosed string starting with {quote}")),
                        Some('\\') if quote != '`' => {
                            chars.next();
                        }
                        Some(q) if q == quote => break,
                        Some(_) => {}
                    }
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Err(format!("unexpected `{c}`"));
                }
            }
            '#' => break,
            _ => {}
        }
    }
    match stack.last() {
        Some(open) => Err(format!("unclosed `{open}`")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_brackets;

    #[test]
    fn balanced_promql_passes_and_brackets_in_strings_and_comments_do_not_count() {
        for expr in [
            "up{job=\"x\"} == 0",
            "rate(http_requests_total[5m]) > 1",
            "sum by (job) (rate(errors_total[1m]))",
            "label_replace(up, \"a\", \"}\", \"b\", \"(.*\")",
            "up{a=\"\\\"(\"}",
            "up{a='['}",
            "up{a=`\\`}",
            "up # (unbalanced in a comment",
        ] {
            assert_eq!(check_brackets(expr), Ok(()), "{expr}");
        }
    }

    #[test]
    fn unbalanced_brackets_and_open_strings_are_named() {
        for (expr, problem) in [
            ("up{job=\"x\"", "unclosed `{`"),
            ("rate(x[5m)", "unexpected `)`"),
            ("up)", "unexpected `)`"),
            ("(up", "unclosed `(`"),
            ("up{job=\"x}", "unclosed string starting with \""),
            ("up{job='x}", "unclosed string starting with '"),
        ] {
            assert_eq!(check_brackets(expr), Err(problem.to_string()), "{expr}");
        }
    }
}
