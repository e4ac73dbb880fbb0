//! Grafana through kube-prometheus-stack's sidecars, which provision what labelled ConfigMaps
//! and Secrets hold:
//! - each dashboard: a ConfigMap labelled `grafana_dashboard: "1"`, its folder in the
//!   `grafana_folder` annotation (the sidecar's `folderAnnotation`);
//! - the extra datasources: a ConfigMap labelled `grafana_datasource: "1"` (a Secret when one
//!   has a password). Prometheus and Alertmanager are the chart's own, with the same uids
//!   (`prometheus`, `alertmanager`) the dashboards and rules refer to;
//! - with `alerting.engine: grafana`, the alerting file (contact points, policies, rules): a
//!   Secret labelled `grafana_alert: "1"`.
//!
//! The provisioning files are render's own, so Grafana's `$` expansion is escaped as on Docker.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_yaml::Value;

use super::objects::{ConfigMapBody, Object, SecretBody};
use super::{Cluster, Rendered};
use crate::model::{AlertEngine, ALERTMANAGER_DATASOURCE_UID, PROMETHEUS_DATASOURCE_UID};
use crate::render::grafana::{ALERTING_FILE, DATASOURCES_FILE};

pub const DASHBOARD_LABEL: &str = "grafana_dashboard";
pub const FOLDER_ANNOTATION: &str = "grafana_folder";
pub const DATASOURCE_LABEL: &str = "grafana_datasource";
pub const ALERT_LABEL: &str = "grafana_alert";

/// What one ConfigMap may hold (etcd's object limit, less room for the metadata).
const MAX_CONFIGMAP_BYTES: usize = 1_000_000;

pub(super) fn objects(cluster: &Cluster, notes: &mut Vec<String>) -> anyhow::Result<Vec<Rendered>> {
    let stack = cluster.stack;
    if !stack.grafana.enabled {
        return Ok(vec![]);
    }
    let rendered = crate::render::grafana::render(stack)?;
    let mut out = Vec::new();
    for dashboard in &stack.dashboards {
        let uid = dashboard.json["uid"]
            .as_str()
            .unwrap_or(&dashboard.file_name);
        let mut text = serde_json::to_string_pretty(&dashboard.json)
            .with_context(|| format!("rendering dashboard {}", dashboard.source))?;
        text.push('\n');
        anyhow::ensure!(
            text.len() <= MAX_CONFIGMAP_BYTES,
            "dashboard {} is {} bytes, more than a ConfigMap holds ({MAX_CONFIGMAP_BYTES})",
            dashboard.source,
            text.len()
        );
        let mut meta = cluster.meta(cluster.name(&format!("dashboard-{uid}")));
        meta.labels.insert(DASHBOARD_LABEL.into(), "1".into());
        if let Some(folder) = &dashboard.folder {
            if folder.contains('/') {
                notes.push(format!(
                    "dashboard {}: the sidecar reads the folder `{folder}` as nested directories",
                    dashboard.source
                ));
            }
            meta.annotations
                .insert(FOLDER_ANNOTATION.into(), folder.clone());
        }
        out.push(Rendered::new(&Object {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: meta,
            body: ConfigMapBody {
                data: BTreeMap::from([(dashboard.file_name.clone(), text)]),
            },
        })?);
    }

    let file_key = format!("monstack-{}.yaml", cluster.prefix);
    if let Some((document, secret)) = extra_datasources(&rendered)? {
        let text = crate::manifest::yaml::to_string(&document)?;
        out.push(provisioning(
            cluster,
            "datasources",
            DATASOURCE_LABEL,
            BTreeMap::from([(file_key.clone(), text)]),
            secret,
        )?);
    }
    if stack.alerting.engine == AlertEngine::Grafana {
        if let Some(file) = rendered.iter().find(|f| f.path == ALERTING_FILE) {
            let mut document: Value = crate::manifest::yaml::from_str(file.text())?;
            point_relay_urls_at_the_agent(cluster, &mut document);
            let text = crate::manifest::yaml::to_string(&document)?;
            out.push(provisioning(
                cluster,
                "grafana-alerting",
                ALERT_LABEL,
                BTreeMap::from([(file_key, text)]),
                true,
            )?);
        }
    }
    Ok(out)
}

/// A ConfigMap or Secret the sidecar with `label` provisions.
fn provisioning(
    cluster: &Cluster,
    part: &str,
    label: &str,
    data: BTreeMap<String, String>,
    secret: bool,
) -> anyhow::Result<Rendered> {
    let mut meta = cluster.meta(cluster.name(part));
    meta.labels.insert(label.into(), "1".into());
    if secret {
        Rendered::new(&Object {
            api_version: "v1",
            kind: "Secret",
            metadata: meta,
            body: SecretBody::opaque(data),
        })
    } else {
        Rendered::new(&Object {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: meta,
            body: ConfigMapBody { data },
        })
    }
}

/// Render's datasources file without the Prometheus and Alertmanager entries (the chart
/// provisions those), and whether what is left holds a password. `None` when nothing is left.
fn extra_datasources(
    rendered: &[crate::render::RenderedFile],
) -> anyhow::Result<Option<(Value, bool)>> {
    let Some(file) = rendered.iter().find(|f| f.path == DATASOURCES_FILE) else {
        return Ok(None);
    };
    let mut document: Value = crate::manifest::yaml::from_str(file.text())?;
    let Some(list) = document
        .get_mut("datasources")
        .and_then(Value::as_sequence_mut)
    else {
        anyhow::bail!("internal error: {DATASOURCES_FILE} has no datasources list");
    };
    list.retain(|ds| {
        let uid = ds.get("uid").and_then(Value::as_str);
        // The stack's InfluxDB is not exported, so neither is its datasource.
        uid != Some(PROMETHEUS_DATASOURCE_UID)
            && uid != Some(ALERTMANAGER_DATASOURCE_UID)
            && uid != Some(crate::model::INFLUXDB_DATASOURCE_UID)
    });
    if list.is_empty() {
        return Ok(None);
    }
    let secret = list.iter().any(|ds| ds.get("secureJsonData").is_some());
    Ok(Some((document, secret)))
}

/// Render's contact points reach the agent as `http://agent:8060/...` on the stack's network;
/// in the cluster the agent is a Service of its own name.
fn point_relay_urls_at_the_agent(cluster: &Cluster, document: &mut Value) {
    let docker = format!(
        "http://{}:{}/",
        crate::model::AGENT,
        crate::model::AGENT_PORT
    );
    let cluster_url = format!("{}/", cluster.agent_url());
    let points = document
        .get_mut("contactPoints")
        .and_then(Value::as_sequence_mut);
    for point in points.into_iter().flatten() {
        let receivers = point.get_mut("receivers").and_then(Value::as_sequence_mut);
        for receiver in receivers.into_iter().flatten() {
            if let Some(url) = receiver.get_mut("settings").and_then(|s| s.get_mut("url")) {
                if let Some(path) = url.as_str().and_then(|u| u.strip_prefix(&docker)) {
                    *url = Value::String(format!("{cluster_url}{path}"));
                }
            }
        }
    }
}
