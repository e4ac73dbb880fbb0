//! `prometheus: {mode: agent}`, the edge profile: Prometheus only scrapes and forwards to
//! `remote_write`. Everything that needs local queries (rules, alerts, Grafana and its
//! dashboards, Alertmanager) belongs to the central stack, and saying so here beats a
//! Prometheus that refuses its configuration at `up`.

use crate::manifest::reader::{scalar_text, Obj, Reader};
use crate::manifest::yaml::{Node, Pos, Value};
use crate::model::Prometheus;

/// Where the sections that cannot run on an agent go instead.
const CENTRAL: &str =
    "it belongs in the manifest of the central stack that receives this agent's samples";

/// Reports everything an agent-mode manifest asks for that an agent cannot do.
pub(super) fn check(
    r: &mut Reader,
    m: &Obj,
    prometheus_node: Option<&Node>,
    prometheus: &Prometheus,
) {
    let mode_pos = prometheus_node
        .and_then(|n| key_pos(n, "mode"))
        .unwrap_or(m.pos());
    if prometheus.remote_write.is_empty() && !has_entries(prometheus_node, "remote_write") {
        r.error(
            mode_pos,
            "`mode: agent` sends every sample to `remote_write`, and there is none",
            Some(
                "add `remote_write: [{url: https://central.example.com:9090/api/v1/write}]`".into(),
            ),
        );
    }
    for (key, why) in [
        (
            "retention",
            "an agent keeps samples only until they are sent",
        ),
        (
            "retention_size",
            "an agent keeps samples only until they are sent",
        ),
        ("evaluation_interval", "an agent evaluates no rules"),
        (
            "remote_write_receiver",
            "an agent accepts no samples from others",
        ),
    ] {
        if let Some(pos) = prometheus_node.and_then(|n| key_pos(n, key)) {
            r.error(
                pos,
                format!("`{key}` has no meaning in agent mode: {why}"),
                Some("remove it, or use `mode: server`".into()),
            );
        }
    }
    let needs_queries: [(&str, &str); 7] = [
        ("alerts", "alert rules are evaluated by a Prometheus server"),
        (
            "channels",
            "alerts are delivered by the central stack's Alertmanager",
        ),
        (
            "smtp",
            "alerts are delivered by the central stack's Alertmanager",
        ),
        ("alertmanager", "an agent sends no alerts"),
        ("dashboards", "Grafana needs a Prometheus it can query"),
        ("datasources", "Grafana needs a Prometheus it can query"),
        (
            "influxdb",
            "an edge host runs only what collects and forwards samples",
        ),
    ];
    for (key, why) in needs_queries {
        if let Some(pos) = m.key_pos(key).filter(|_| m.has(key)) {
            // `alertmanager: false`, `influxdb: false`: only says what an agent does anyway.
            if matches!(key, "alertmanager" | "influxdb")
                && m.get(key).and_then(scalar_text) == Some("false")
            {
                continue;
            }
            r.error(
                pos,
                format!("`{key}` cannot be used with `prometheus.mode: agent`: {why}"),
                Some(format!("remove it here; {CENTRAL}")),
            );
        }
    }
    if let Some(node) = m.get("grafana") {
        if scalar_text(node) != Some("false") {
            let pos = m.key_pos("grafana").unwrap_or(node.pos);
            r.error(
                pos,
                "`grafana` cannot run with `prometheus.mode: agent`: an agent answers no queries",
                Some(format!(
                    "remove it (an agent stack has no Grafana); {CENTRAL}"
                )),
            );
        }
    }
    if let Some(node) = m.get("alerting") {
        // `alerting: {builtin: false}` only says what an agent does anyway.
        let only_builtin_off = match &node.value {
            Value::Map(entries) => entries
                .iter()
                .all(|(k, v)| scalar_text(k) == Some("builtin") && scalar_text(v) == Some("false")),
            _ => false,
        };
        if !only_builtin_off {
            let pos = m.key_pos("alerting").unwrap_or(node.pos);
            r.error(pos, "`alerting` cannot be used with `prometheus.mode: agent`: an agent evaluates no rules, the built-in alerts included", Some(format!("remove it; {CENTRAL}, whose built-in TargetDown alert also sees this host's `up` series")));
        }
    }
}

fn key_pos(node: &Node, key: &str) -> Option<Pos> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, v)| scalar_text(k) == Some(key) && v.value != Value::Null)
            .map(|(k, _)| k.pos),
        _ => None,
    }
}

/// Whether `key` holds a non-empty list (whose entries then have their own errors if any).
fn has_entries(node: Option<&Node>, key: &str) -> bool {
    let Some(Value::Map(entries)) = node.map(|n| &n.value) else {
        return false;
    };
    entries.iter().any(|(k, v)| {
        scalar_text(k) == Some(key) && matches!(&v.value, Value::Seq(items) if !items.is_empty())
    })
}
