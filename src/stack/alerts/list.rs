//! `alert list`: Prometheus' rules and the active alerts, from Alertmanager when the stack
//! routes through it, else Prometheus' own list.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;

use super::get_json;
use crate::clients;
use crate::error::{Error, Result};
use crate::model::{AlertEngine, Stack};

#[derive(Debug, Serialize)]
pub struct RuleRow {
    pub group: String,
    pub name: String,
    /// `inactive`, `pending`, `firing` (alerting rules) or `-` (recording rules).
    pub state: String,
    pub health: String,
    pub last_error: String,
}

#[derive(Debug, Serialize)]
pub struct AlertRow {
    pub name: String,
    pub severity: String,
    /// Alertmanager: `active`, `suppressed`; Prometheus: `firing`, `pending`.
    pub state: String,
    pub since: String,
    pub receivers: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
}

#[derive(Debug, Serialize)]
pub struct Listing {
    pub rules: Vec<RuleRow>,
    /// From Alertmanager when the stack runs it, else Prometheus' firing and pending alerts.
    pub alerts_from: &'static str,
    pub alerts: Vec<AlertRow>,
}

/// The rules and alerts of a running stack.
pub async fn list(stack: &Stack) -> Result<Listing> {
    super::refuse_agent_mode(stack)?;
    let client = clients::http_client()?;
    let prom = &stack.prometheus.service;
    let prom_url = crate::model::host_url(prom.bind, prom.port);
    let rules_json = get_json(&client, &format!("{prom_url}/api/v1/rules"))
        .await
        .map_err(|e| {
            Error::usage(
                format!("Prometheus does not answer: {e:#}"),
                Some("start the stack with `monstack up`".to_string()),
            )
        })?;
    let rules = rule_rows(&rules_json);
    let (alerts_from, alerts) = match (&stack.alertmanager, stack.alerting.engine) {
        (Some(am), AlertEngine::Alertmanager) => {
            let url = crate::model::host_url(am.bind, am.port);
            let body = get_json(&client, &format!("{url}/api/v2/alerts"))
                .await
                .context("listing Alertmanager's alerts")?;
            ("alertmanager", alertmanager_rows(&body))
        }
        _ => {
            let body = get_json(&client, &format!("{prom_url}/api/v1/alerts"))
                .await
                .context("listing Prometheus' alerts")?;
            ("prometheus", prometheus_rows(&body))
        }
    };
    Ok(Listing {
        rules,
        alerts_from,
        alerts,
    })
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn rule_rows(body: &Value) -> Vec<RuleRow> {
    let mut rows = Vec::new();
    for group in body["data"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            rows.push(RuleRow {
                group: text(&group["name"]),
                name: text(&rule["name"]),
                state: rule["state"].as_str().unwrap_or("-").to_string(),
                health: text(&rule["health"]),
                last_error: text(&rule["lastError"]),
            });
        }
    }
    rows
}

/// Labels worth a column of their own are taken out; the rest are shown as `k=v`.
fn other_labels(labels: &Value) -> BTreeMap<String, String> {
    labels
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !["alertname", "severity"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), text(v)))
        .collect()
}

fn alertmanager_rows(body: &Value) -> Vec<AlertRow> {
    body.as_array()
        .into_iter()
        .flatten()
        .map(|a| AlertRow {
            name: text(&a["labels"]["alertname"]),
            severity: text(&a["labels"]["severity"]),
            state: text(&a["status"]["state"]),
            since: text(&a["startsAt"]),
            receivers: a["receivers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| text(&r["name"]))
                .collect(),
            labels: other_labels(&a["labels"]),
            summary: text(&a["annotations"]["summary"]),
        })
        .collect()
}

fn prometheus_rows(body: &Value) -> Vec<AlertRow> {
    body["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| AlertRow {
            name: text(&a["labels"]["alertname"]),
            severity: text(&a["labels"]["severity"]),
            state: text(&a["state"]),
            since: text(&a["activeAt"]),
            receivers: vec![],
            labels: other_labels(&a["labels"]),
            summary: text(&a["annotations"]["summary"]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_rows_come_from_the_apis() {
        let rules = json!({"status": "success", "data": {"groups": [{"name": "monstack", "rules": [
            {"name": "OrderDown", "state": "firing", "health": "ok", "type": "alerting"},
            {"name": "Broken", "state": "inactive", "health": "err", "lastError": "bad", "type": "alerting"}
        ]}]}});
        let rows = rule_rows(&rules);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].last_error, "bad");
        let alerts = json!([{"labels": {"alertname": "OrderDown", "severity": "critical", "job": "order"},
            "annotations": {"summary": "down"}, "status": {"state": "active"},
            "startsAt": "2026-01-01T00:00:00Z", "receivers": [{"name": "monstack-default"}]}]);
        let rows = alertmanager_rows(&alerts);
        assert_eq!(rows[0].receivers, ["monstack-default"]);
        assert_eq!(
            rows[0].labels,
            BTreeMap::from([("job".to_string(), "order".to_string())])
        );
    }
}
