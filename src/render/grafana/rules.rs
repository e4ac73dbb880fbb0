//! Grafana-managed alert rules, for `alerting.engine: grafana`: each Prometheus alert as a
//! Grafana rule in one rule group.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::dashboards::{slug, stable_hash, MAX_UID_LEN};
use crate::model::{Duration, Stack, PROMETHEUS_DATASOURCE_UID};

/// Rule group and folder holding the alert rules monstack provisions.
pub const RULE_GROUP: &str = "monstack";
pub const RULE_FOLDER: &str = "monstack";
/// Grafana evaluates rules on a 10s tick; a rule group interval must be a multiple of it
/// (`ValidateRuleGroupInterval` in ngalert, base interval default 10s).
const SCHEDULER_TICK_SECS: u64 = 10;
/// `datasourceUid` of server-side expressions.
const EXPRESSION_DATASOURCE_UID: &str = "__expr__";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RuleGroup {
    org_id: u32,
    name: String,
    folder: String,
    interval: String,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    uid: String,
    title: String,
    condition: &'static str,
    #[serde(rename = "for")]
    for_: String,
    no_data_state: &'static str,
    exec_err_state: &'static str,
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    data: Vec<RuleQuery>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleQuery {
    ref_id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    relative_time_range: Option<RelativeTimeRange>,
    datasource_uid: String,
    model: QueryModel,
}

#[derive(Serialize)]
struct RelativeTimeRange {
    from: u64,
    to: u64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum QueryModel {
    Prometheus(PrometheusQuery),
    Reduce(ReduceExpression),
    Threshold(ThresholdExpression),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PrometheusQuery {
    ref_id: &'static str,
    expr: String,
    instant: bool,
    interval_ms: u64,
    max_data_points: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReduceExpression {
    ref_id: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    expression: &'static str,
    reducer: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThresholdExpression {
    ref_id: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    expression: &'static str,
    conditions: Vec<ThresholdCondition>,
}

#[derive(Serialize)]
struct ThresholdCondition {
    evaluator: Evaluator,
}

#[derive(Serialize)]
struct Evaluator {
    #[serde(rename = "type")]
    kind: &'static str,
    params: Vec<f64>,
}

/// The rule group holding every alert of the stack, the built-in pack included.
pub(super) fn group(stack: &Stack) -> RuleGroup {
    let mut rule_uids = BTreeSet::new();
    let builtin = crate::render::rules::builtin_alerts(stack);
    let rules = stack
        .alerts
        .iter()
        .chain(&builtin)
        .map(|alert| rule(alert, &mut rule_uids))
        .collect();
    RuleGroup {
        org_id: 1,
        name: RULE_GROUP.into(),
        folder: RULE_FOLDER.into(),
        interval: rule_group_interval(stack.prometheus.evaluation_interval).to_string(),
        rules,
    }
}

/// A Prometheus alert as a Grafana rule: query A (the alert expression, instant), B = last value
/// of each series, C = "B is any finite number". A Prometheus alert fires for every series its
/// expression returns; the always-true threshold on C reproduces exactly that.
fn rule(alert: &crate::model::Alert, used: &mut BTreeSet<String>) -> Rule {
    let base = format!(
        "monstack-{}",
        slug(&alert.name, MAX_UID_LEN - "monstack-".len())
    );
    let uid = if used.contains(&base) {
        format!(
            "monstack-{}-{:08x}",
            slug(&alert.name, MAX_UID_LEN - 18),
            stable_hash(&alert.name) as u32
        )
    } else {
        base
    };
    used.insert(uid.clone());

    // Rule labels are `$`-expanded by Grafana's provisioning (annotations are not).
    let mut labels: BTreeMap<String, String> = alert
        .labels
        .iter()
        .map(|(key, value)| (key.clone(), value.replace('$', "$$")))
        .collect();
    labels.insert("severity".into(), alert.severity.replace('$', "$$"));

    let mut annotations = BTreeMap::new();
    if let Some(summary) = &alert.summary {
        annotations.insert("summary".to_string(), grafana_template(summary));
    }
    if let Some(description) = &alert.description {
        annotations.insert("description".to_string(), grafana_template(description));
    }

    Rule {
        uid,
        title: alert.name.clone(),
        condition: "C",
        for_: alert.for_.to_string(),
        no_data_state: "OK",
        exec_err_state: "Error",
        labels,
        annotations,
        data: vec![
            RuleQuery {
                ref_id: "A",
                relative_time_range: Some(RelativeTimeRange { from: 600, to: 0 }),
                datasource_uid: PROMETHEUS_DATASOURCE_UID.into(),
                model: QueryModel::Prometheus(PrometheusQuery {
                    ref_id: "A",
                    expr: alert.expr.clone(),
                    instant: true,
                    interval_ms: 1000,
                    max_data_points: 43200,
                }),
            },
            RuleQuery {
                ref_id: "B",
                relative_time_range: None,
                datasource_uid: EXPRESSION_DATASOURCE_UID.into(),
                model: QueryModel::Reduce(ReduceExpression {
                    ref_id: "B",
                    kind: "reduce",
                    expression: "A",
                    reducer: "last",
                }),
            },
            RuleQuery {
                ref_id: "C",
                relative_time_range: None,
                datasource_uid: EXPRESSION_DATASOURCE_UID.into(),
                model: QueryModel::Threshold(ThresholdExpression {
                    ref_id: "C",
                    kind: "threshold",
                    expression: "B",
                    conditions: vec![ThresholdCondition {
                        evaluator: Evaluator {
                            kind: "within_range",
                            params: vec![f64::MIN, f64::MAX],
                        },
                    }],
                }),
            },
        ],
    }
}

/// Prometheus' `$value` in an alert template is `$values.B.Value` in Grafana (B = the reduce
/// expression). `$labels` means the same in both.
fn grafana_template(text: &str) -> String {
    const VALUE: &str = "$value";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(VALUE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + VALUE.len()..];
        let continues_identifier = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(if continues_identifier {
            VALUE
        } else {
            "$values.B.Value"
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The evaluation interval rounded up to Grafana's 10s scheduler tick (15s -> 20s).
fn rule_group_interval(evaluation_interval: Duration) -> Duration {
    let secs = evaluation_interval.as_millis().div_ceil(1000);
    Duration::from_secs(secs.div_ceil(SCHEDULER_TICK_SECS).max(1) * SCHEDULER_TICK_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::grafana::render;
    use crate::render::grafana::tests::{file, yaml};
    use crate::render::grafana::ALERTING_FILE;
    use crate::render::testkit;

    #[test]
    fn grafana_engine_rules() {
        let files = render(&testkit::full_grafana_engine()).unwrap();
        let alerting = yaml(file(&files, ALERTING_FILE));
        let group = &alerting["groups"][0];
        assert_eq!(group["orgId"], 1);
        assert_eq!(group["name"], "monstack");
        assert_eq!(group["folder"], "monstack");
        assert_eq!(
            group["interval"], "20s",
            "15s rounded up to Grafana's 10s tick"
        );
        let rule = &group["rules"][0];
        assert_eq!(rule["uid"], "monstack-toomanygoroutines");
        assert_eq!(rule["title"], "TooManyGoroutines");
        assert_eq!(rule["condition"], "C");
        assert_eq!(rule["for"], "5m");
        assert_eq!(rule["noDataState"], "OK");
        assert_eq!(rule["execErrState"], "Error");
        assert_eq!(rule["labels"], serde_json::json!({"severity": "warning"}));
        assert_eq!(
            rule["annotations"]["summary"],
            "{{ $labels.instance }} runs {{ $values.B.Value }} goroutines",
            "annotations are not $-expanded: no escaping"
        );
        assert_eq!(
            rule["data"],
            serde_json::json!([
                {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0}, "datasourceUid": "prometheus",
                 "model": {"refId": "A", "expr": "avg_over_time(go_goroutines{job=\"order\"}[1m]) > 8",
                           "instant": true, "intervalMs": 1000, "maxDataPoints": 43200}},
                {"refId": "B", "datasourceUid": "__expr__",
                 "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last"}},
                {"refId": "C", "datasourceUid": "__expr__",
                 "model": {"refId": "C", "type": "threshold", "expression": "B",
                           "conditions": [{"evaluator": {"type": "within_range",
                                                         "params": [-1.7976931348623157e308, 1.7976931348623157e308]}}]}},
            ])
        );
        let second = &group["rules"][1];
        assert_eq!(
            second["labels"],
            serde_json::json!({"severity": "critical", "team": "shop"})
        );
        assert_eq!(
            second["annotations"]["description"],
            "No successful scrape for a minute."
        );
        assert!(rendered_params_are_floats(
            file(&files, ALERTING_FILE).text()
        ));
    }

    /// Grafana reads YAML with go-yaml; the threshold bounds must stay plain floats in its syntax.
    fn rendered_params_are_floats(text: &str) -> bool {
        text.contains("- -1.7976931348623157e+308") || text.contains("- -1.7976931348623157e308")
    }

    #[test]
    fn value_templates() {
        assert_eq!(grafana_template("{{ $value }}"), "{{ $values.B.Value }}");
        assert_eq!(
            grafana_template("{{$value|humanize}} {{ $values.B }}"),
            "{{$values.B.Value|humanize}} {{ $values.B }}"
        );
        assert_eq!(
            grafana_template("{{ $value_x }} $value"),
            "{{ $value_x }} $values.B.Value"
        );
    }

    #[test]
    fn rule_group_intervals_are_multiples_of_the_tick() {
        for (eval, want) in [
            ("15s", "20s"),
            ("10s", "10s"),
            ("1m", "1m"),
            ("500ms", "10s"),
            ("1m5s", "1m10s"),
        ] {
            assert_eq!(
                rule_group_interval(Duration::parse(eval).unwrap()).to_string(),
                want,
                "{eval}"
            );
        }
    }
}
