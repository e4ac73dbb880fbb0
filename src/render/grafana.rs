//! Grafana provisioning: datasources, dashboard providers and dashboards, and unified alerting
//! (contact points, notification policies and, with `alerting.engine: grafana`, alert rules).
//!
//! Grafana cannot run where monstack is developed, and it reads provisioning files leniently
//! (a misspelt key is silently ignored), so these files follow the formats read from Grafana's
//! source (`shared/reference/formats.md`, sections 1-3) and are checked against them by
//! [`checks::check_tree`] in the tests.
//!
//! Grafana expands `$VAR` and `${VAR}` in most string values of provisioning YAML, so a literal
//! `$` (in a password, a URL, a Go template) is written `$$` wherever that expansion happens.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use super::RenderedFile;
use crate::dashboards::{is_valid_uid, slug, stable_hash, MAX_UID_LEN};
use crate::model::{
    AlertEngine, Channel, ChannelKind, Duration, Stack, AGENT, AGENT_PORT,
    ALERTMANAGER_DATASOURCE_UID, PROMETHEUS_DATASOURCE_UID,
};

#[cfg(test)]
#[path = "grafana_checks.rs"]
pub(crate) mod checks;

pub const DATASOURCES_FILE: &str = "grafana/provisioning/datasources/monstack.yaml";
pub const DASHBOARD_PROVIDERS_FILE: &str = "grafana/provisioning/dashboards/monstack.yaml";
pub const ALERTING_FILE: &str = "grafana/provisioning/alerting/monstack.yaml";
/// Where dashboard JSON files go, relative to `.monstack/`; mounted at [`DASHBOARDS_MOUNT`].
pub const DASHBOARDS_DIR: &str = "grafana/dashboards";
/// Where Grafana sees `.monstack/grafana/dashboards` inside its container.
pub const DASHBOARDS_MOUNT: &str = "/var/lib/grafana/dashboards";
/// Name of the contact point for alerts that name no channel.
pub const DEFAULT_CONTACT_POINT: &str = "monstack-default";
/// Rule group and folder holding the alert rules monstack provisions.
pub const RULE_GROUP: &str = "monstack";
pub const RULE_FOLDER: &str = "monstack";
/// Grafana evaluates rules on a 10s tick; a rule group interval must be a multiple of it
/// (`ValidateRuleGroupInterval` in ngalert, base interval default 10s).
const SCHEDULER_TICK_SECS: u64 = 10;
/// `datasourceUid` of server-side expressions.
const EXPRESSION_DATASOURCE_UID: &str = "__expr__";

pub fn render(stack: &Stack) -> anyhow::Result<Vec<RenderedFile>> {
    if !stack.grafana.enabled {
        return Ok(Vec::new());
    }
    let mut files = vec![datasources(stack)?];
    files.extend(dashboards(stack)?);
    files.extend(alerting(stack)?);
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// Datasources

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DatasourcesFile {
    api_version: u32,
    datasources: Vec<DatasourceEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DatasourceEntry {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    uid: String,
    access: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    is_default: bool,
    editable: bool,
    #[serde(skip_serializing_if = "Map::is_empty")]
    json_data: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secure_json_data: Option<SecureJsonData>,
}

#[derive(Serialize)]
struct SecureJsonData {
    password: String,
}

fn datasources(stack: &Stack) -> anyhow::Result<RenderedFile> {
    let extra_defaults: Vec<&str> = stack
        .datasources
        .iter()
        .filter(|ds| ds.is_default)
        .map(|ds| ds.name.as_str())
        .collect();
    if extra_defaults.len() > 1 {
        anyhow::bail!(
            "datasources {} are all marked default; Grafana accepts one default datasource",
            extra_defaults.join(", ")
        );
    }

    let mut entries = vec![DatasourceEntry {
        name: "Prometheus".into(),
        kind: "prometheus".into(),
        uid: PROMETHEUS_DATASOURCE_UID.into(),
        access: "proxy".into(),
        url: format!("http://{}:9090", crate::model::PROMETHEUS),
        database: None,
        user: None,
        is_default: extra_defaults.is_empty(),
        editable: false,
        json_data: json_map([
            ("httpMethod", "POST".into()),
            ("prometheusType", "Prometheus".into()),
            (
                "timeInterval",
                stack.prometheus.scrape_interval.to_string().into(),
            ),
        ]),
        secure_json_data: None,
    }];
    if stack.alertmanager.is_some() {
        entries.push(DatasourceEntry {
            name: "Alertmanager".into(),
            kind: "alertmanager".into(),
            uid: ALERTMANAGER_DATASOURCE_UID.into(),
            access: "proxy".into(),
            url: format!("http://{}:9093", crate::model::ALERTMANAGER),
            database: None,
            user: None,
            is_default: false,
            editable: false,
            json_data: json_map([
                ("implementation", "prometheus".into()),
                ("handleGrafanaManagedAlerts", false.into()),
            ]),
            secure_json_data: None,
        });
    }
    for ds in &stack.datasources {
        let mut json_data = ds.json_data.clone();
        if ds.kind == "influxdb" {
            if let Some(database) = &ds.database {
                json_data
                    .entry("dbName")
                    .or_insert_with(|| database.clone().into());
            }
        }
        entries.push(DatasourceEntry {
            name: ds.name.clone(),
            kind: ds.kind.clone(),
            uid: ds.uid.clone(),
            access: ds.access.clone(),
            url: ds.url.clone(),
            database: ds.database.clone(),
            user: ds.user.clone(),
            is_default: ds.is_default,
            editable: false,
            json_data,
            secure_json_data: ds
                .password
                .clone()
                .map(|password| SecureJsonData { password }),
        });
    }

    let has_password = entries.iter().any(|entry| entry.secure_json_data.is_some());
    let file = DatasourcesFile {
        api_version: 1,
        datasources: entries,
    };
    let text = expanded_yaml(&file).context("rendering Grafana datasources")?;
    Ok(if has_password {
        RenderedFile::secret(DATASOURCES_FILE, text)
    } else {
        RenderedFile::new(DATASOURCES_FILE, text)
    })
}

// ---------------------------------------------------------------------------------------------
// Dashboards

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DashboardProvidersFile {
    api_version: u32,
    providers: Vec<DashboardProvider>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DashboardProvider {
    name: String,
    org_id: u32,
    folder: String,
    #[serde(rename = "type")]
    kind: &'static str,
    disable_deletion: bool,
    allow_ui_updates: bool,
    update_interval_seconds: u32,
    options: ProviderOptions,
}

#[derive(Serialize)]
struct ProviderOptions {
    path: String,
}

/// Where the dashboards of one Grafana folder live.
struct FolderDir {
    /// Folder title; `None` = General.
    folder: Option<String>,
    /// Directory under [`DASHBOARDS_DIR`].
    dir: String,
    provider: String,
}

/// One directory and provider per distinct folder: General first, then folders by title.
/// Directory names are slugs, made unique when two titles slug alike.
fn folder_dirs(stack: &Stack) -> Vec<FolderDir> {
    let folders: BTreeSet<Option<&str>> = stack
        .dashboards
        .iter()
        .map(|d| d.folder.as_deref())
        .collect();
    let mut used = BTreeSet::new();
    let mut dirs = Vec::new();
    for folder in folders {
        let (dir, provider) = match folder {
            None => ("general".to_string(), "monstack".to_string()),
            Some(title) => {
                let base = slug(title, 40);
                let mut dir = if base.is_empty() {
                    format!("folder-{:08x}", stable_hash(title) as u32)
                } else {
                    base
                };
                if used.contains(&dir) {
                    dir = format!("{}-{:08x}", slug(&dir, 31), stable_hash(title) as u32);
                }
                let provider = format!("monstack-{dir}");
                (dir, provider)
            }
        };
        used.insert(dir.clone());
        dirs.push(FolderDir {
            folder: folder.map(str::to_string),
            dir,
            provider,
        });
    }
    dirs
}

fn dashboards(stack: &Stack) -> anyhow::Result<Vec<RenderedFile>> {
    let dirs = folder_dirs(stack);
    let providers = dirs
        .iter()
        .map(|d| DashboardProvider {
            name: d.provider.clone(),
            org_id: 1,
            folder: d.folder.clone().unwrap_or_default(),
            kind: "file",
            disable_deletion: false,
            allow_ui_updates: false,
            update_interval_seconds: 10,
            options: ProviderOptions {
                path: format!("{DASHBOARDS_MOUNT}/{}", d.dir),
            },
        })
        .collect();
    let file = DashboardProvidersFile {
        api_version: 1,
        providers,
    };
    let mut files = vec![RenderedFile::new(
        DASHBOARD_PROVIDERS_FILE,
        expanded_yaml(&file).context("rendering dashboard providers")?,
    )];

    for dashboard in &stack.dashboards {
        let dir = dirs
            .iter()
            .find(|d| d.folder == dashboard.folder)
            .map(|d| d.dir.as_str())
            .expect("folder_dirs covers every dashboard's folder");
        let mut text = serde_json::to_string_pretty(&dashboard.json)
            .with_context(|| format!("rendering dashboard {}", dashboard.source))?;
        text.push('\n');
        files.push(RenderedFile::new(
            format!("{DASHBOARDS_DIR}/{dir}/{}", dashboard.file_name),
            text,
        ));
    }
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// Alerting

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertingFile {
    api_version: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    contact_points: Vec<ContactPoint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    policies: Vec<Policy>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<RuleGroup>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContactPoint {
    org_id: u32,
    name: String,
    receivers: Vec<Receiver>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Receiver {
    uid: String,
    #[serde(rename = "type")]
    kind: &'static str,
    /// Expanded by Grafana: every string in it is `$`-escaped.
    settings: Map<String, Value>,
    disable_resolve_message: bool,
}

/// The notification policy tree of org 1. Policy keys are snake_case in Grafana's format.
#[derive(Serialize)]
struct Policy {
    #[serde(rename = "orgId")]
    org_id: u32,
    receiver: String,
    group_by: Vec<String>,
    group_wait: String,
    group_interval: String,
    repeat_interval: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
}

#[derive(Serialize)]
struct Route {
    receiver: String,
    matchers: Vec<String>,
    #[serde(rename = "continue")]
    continue_matching: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleGroup {
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

fn alerting(stack: &Stack) -> anyhow::Result<Option<RenderedFile>> {
    let grafana_rules = stack.alerting.engine == AlertEngine::Grafana && !stack.alerts.is_empty();
    if stack.channels.is_empty() && !grafana_rules {
        return Ok(None);
    }
    if stack
        .channels
        .iter()
        .any(|c| c.name == DEFAULT_CONTACT_POINT)
    {
        anyhow::bail!("the channel name `{DEFAULT_CONTACT_POINT}` is reserved for monstack's default Grafana contact point");
    }

    let mut uids = BTreeSet::new();
    let mut contact_points: Vec<ContactPoint> = stack
        .channels
        .iter()
        .map(|channel| ContactPoint {
            org_id: 1,
            name: channel.name.clone(),
            receivers: vec![receiver(channel, receiver_uid(&channel.name, &mut uids))],
        })
        .collect();
    if !stack.alerting.default_notify.is_empty() {
        let receivers = stack
            .alerting
            .default_notify
            .iter()
            .map(|name| {
                let channel = channel_named(stack, name)?;
                Ok(receiver(
                    channel,
                    receiver_uid(&format!("{name}-default"), &mut uids),
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        contact_points.push(ContactPoint {
            org_id: 1,
            name: DEFAULT_CONTACT_POINT.into(),
            receivers,
        });
    }

    let policies = match stack.channels.first() {
        None => vec![],
        Some(first) => vec![policy(stack, first)?],
    };

    let groups = if grafana_rules {
        let mut rule_uids = BTreeSet::new();
        let rules = stack
            .alerts
            .iter()
            .map(|alert| rule(alert, &mut rule_uids))
            .collect();
        vec![RuleGroup {
            org_id: 1,
            name: RULE_GROUP.into(),
            folder: RULE_FOLDER.into(),
            interval: rule_group_interval(stack.prometheus.evaluation_interval).to_string(),
            rules,
        }]
    } else {
        vec![]
    };

    let file = AlertingFile {
        api_version: 1,
        contact_points,
        policies,
        groups,
    };
    let text = crate::manifest::yaml::to_string(&file).context("rendering Grafana alerting")?;
    Ok(Some(RenderedFile::secret(ALERTING_FILE, text)))
}

fn channel_named<'a>(stack: &'a Stack, name: &str) -> anyhow::Result<&'a Channel> {
    stack
        .channels
        .iter()
        .find(|c| c.name == name)
        .with_context(|| format!("internal error: alerting refers to the unknown channel `{name}`"))
}

/// A contact point receiver uid: `base` when Grafana accepts it and it is unused, otherwise a
/// slug of it with a hash, so that every receiver uid is valid and unique.
fn receiver_uid(base: &str, used: &mut BTreeSet<String>) -> String {
    let uid = if is_valid_uid(base) && !used.contains(base) {
        base.to_string()
    } else {
        format!(
            "{}-{:08x}",
            slug(base, MAX_UID_LEN - 9),
            stable_hash(base) as u32
        )
        .trim_start_matches('-')
        .to_string()
    };
    used.insert(uid.clone());
    uid
}

fn receiver(channel: &Channel, uid: String) -> Receiver {
    let (kind, settings) = match &channel.kind {
        ChannelKind::Email { to } => ("email", json_map([("addresses", to.join(";").into())])),
        ChannelKind::DingTalk {
            url,
            secret: None,
            keyword,
            ..
        } => {
            let mut settings = json_map([("url", url.clone().into()), ("msgType", "link".into())]);
            // A robot with a keyword drops every message that lacks it.
            if let Some(keyword) = keyword {
                settings.insert(
                    "title".into(),
                    format!("{keyword} {{{{ template \"default.title\" . }}}}").into(),
                );
            }
            ("dingding", settings)
        }
        // Grafana's dingding notifier cannot sign requests: the monstack agent relays and signs.
        ChannelKind::DingTalk {
            secret: Some(_), ..
        } => (
            "webhook",
            json_map([
                (
                    "url",
                    format!("http://{AGENT}:{AGENT_PORT}/dingtalk/{}", channel.name).into(),
                ),
                ("httpMethod", "POST".into()),
            ]),
        ),
        ChannelKind::Webhook { url, max_alerts } => {
            let mut settings =
                json_map([("url", url.clone().into()), ("httpMethod", "POST".into())]);
            if *max_alerts != 0 {
                settings.insert("maxAlerts".into(), (*max_alerts).into());
            }
            ("webhook", settings)
        }
        ChannelKind::Slack {
            url,
            channel: recipient,
            username,
        } => {
            let mut settings = json_map([("url", url.clone().into())]);
            if let Some(recipient) = recipient {
                settings.insert("recipient".into(), recipient.clone().into());
            }
            if let Some(username) = username {
                settings.insert("username".into(), username.clone().into());
            }
            ("slack", settings)
        }
    };
    let Value::Object(settings) = escape_dollars(Value::Object(settings)) else {
        unreachable!()
    };
    Receiver {
        uid,
        kind,
        settings,
        disable_resolve_message: !channel.send_resolved,
    }
}

/// The policy tree: alerts that name channels go to those channels (one child route per
/// channel, `continue` so an alert reaches all of its channels); the rest fall to the root,
/// which delivers to `alerting.default_notify`. The same routing as the Alertmanager config.
fn policy(stack: &Stack, first_channel: &Channel) -> anyhow::Result<Policy> {
    let receiver = if stack.alerting.default_notify.is_empty() {
        first_channel.name.clone()
    } else {
        DEFAULT_CONTACT_POINT.to_string()
    };

    let mut group_by = vec!["grafana_folder".to_string()];
    for label in &stack.alerting.group_by {
        if !group_by.contains(label) {
            group_by.push(label.clone());
        }
    }
    // `...` (group by every label) cannot be combined with other labels.
    if group_by.iter().any(|label| label == "...") {
        group_by = vec!["...".to_string()];
    }

    let mut routes = Vec::new();
    for channel in &stack.channels {
        let alerts: Vec<&str> = stack
            .alerts
            .iter()
            .filter(|alert| alert.notify.contains(&channel.name))
            .map(|alert| alert.name.as_str())
            .collect();
        if !alerts.is_empty() {
            routes.push(Route {
                receiver: channel.name.clone(),
                matchers: vec![format!("alertname=~\"{}\"", alerts.join("|"))],
                continue_matching: true,
            });
        }
    }
    for alert in &stack.alerts {
        for name in &alert.notify {
            channel_named(stack, name)?;
        }
    }

    Ok(Policy {
        org_id: 1,
        receiver,
        group_by,
        group_wait: stack.alerting.group_wait.to_string(),
        group_interval: stack.alerting.group_interval.to_string(),
        repeat_interval: stack.alerting.repeat_interval.to_string(),
        routes,
    })
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

// ---------------------------------------------------------------------------------------------
// Helpers

fn json_map<const N: usize>(entries: [(&str, Value); N]) -> Map<String, Value> {
    entries
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

/// YAML for a provisioning file whose every string value Grafana `$`-expands.
fn expanded_yaml<T: Serialize>(file: &T) -> anyhow::Result<String> {
    let value = serde_json::to_value(file)?;
    crate::manifest::yaml::to_string(&escape_dollars(value))
}

/// `$` -> `$$` in every string value (not in keys, which Grafana does not expand).
fn escape_dollars(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(text.replace('$', "$$")),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_dollars).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, escape_dollars(value)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::checks::check_tree;
    use super::*;
    use crate::model::{Dashboard, DashboardSource, Datasource};
    use crate::render::testkit;

    fn file<'a>(files: &'a [RenderedFile], path: &str) -> &'a RenderedFile {
        files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path} in {:?}", paths(files)))
    }

    fn paths(files: &[RenderedFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    fn yaml(file: &RenderedFile) -> Value {
        crate::manifest::yaml::from_str(file.text()).unwrap()
    }

    fn dashboard(folder: Option<&str>, file_name: &str, json: Value) -> Dashboard {
        Dashboard {
            source: DashboardSource::Bundled(file_name.into()),
            folder: folder.map(str::to_string),
            file_name: file_name.into(),
            json,
        }
    }

    fn go_runtime() -> Value {
        crate::dashboards::prepare(crate::dashboards::bundled("go-runtime").unwrap(), &[]).unwrap()
    }

    /// The stacks of the testkit, with dashboards, and with `$` in every place one can hide.
    fn stacks() -> Vec<(&'static str, Stack)> {
        let mut full = testkit::full();
        full.dashboards = vec![
            dashboard(None, "go-runtime.json", go_runtime()),
            dashboard(Some("Shop / Orders"), "go-runtime.json", {
                let mut json = go_runtime();
                json["uid"] = "orders-go".into();
                json
            }),
        ];
        let mut grafana = testkit::full_grafana_engine();
        grafana.dashboards = full.dashboards.clone();
        let mut dollars = testkit::full_grafana_engine();
        dollars.channels.push(Channel {
            name: "hook-dollar".into(),
            send_resolved: false,
            kind: ChannelKind::Webhook {
                url: "https://hooks.example.com/$token/{{ $labels.job }}".into(),
                max_alerts: 5,
            },
        });
        dollars.datasources[0].password = Some("pa$$word$1".into());
        dollars.datasources[0].user = Some("$reader".into());
        dollars.alerts[0].notify.push("hook-dollar".into());
        vec![
            ("minimal", testkit::minimal()),
            ("full", full),
            ("full_grafana_engine", grafana),
            ("dollars", dollars),
        ]
    }

    #[test]
    fn rendered_trees_follow_the_reference() {
        for (name, stack) in stacks() {
            let files = render(&stack).unwrap();
            let violations = check_tree(&files);
            assert!(violations.is_empty(), "{name}:\n{}", violations.join("\n"));
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        for (name, stack) in stacks() {
            assert_eq!(render(&stack).unwrap(), render(&stack).unwrap(), "{name}");
        }
    }

    #[test]
    fn minimal_stack_has_prometheus_and_no_alerting() {
        let files = render(&testkit::minimal()).unwrap();
        assert_eq!(paths(&files), [DATASOURCES_FILE, DASHBOARD_PROVIDERS_FILE]);
        let datasources = file(&files, DATASOURCES_FILE);
        assert!(!datasources.secret);
        assert_eq!(
            datasources.text(),
            "apiVersion: 1
datasources:
- name: Prometheus
  type: prometheus
  uid: prometheus
  access: proxy
  url: http://prometheus:9090
  isDefault: true
  editable: false
  jsonData:
    httpMethod: POST
    prometheusType: Prometheus
    timeInterval: 15s
"
        );
        assert_eq!(
            file(&files, DASHBOARD_PROVIDERS_FILE).text(),
            "apiVersion: 1\nproviders: []\n"
        );
    }

    #[test]
    fn datasources_of_the_full_stack() {
        let files = render(&testkit::full()).unwrap();
        let ds = yaml(file(&files, DATASOURCES_FILE));
        let list = ds["datasources"].as_array().unwrap();
        let names: Vec<&str> = list.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Prometheus", "Alertmanager", "Influx"]);
        assert_eq!(
            list[1]["jsonData"],
            serde_json::json!({"implementation": "prometheus", "handleGrafanaManagedAlerts": false})
        );
        assert_eq!(list[1]["url"], "http://alertmanager:9093");
        assert_eq!(list[2]["jsonData"]["dbName"], "metric");
        assert_eq!(list[2]["database"], "metric");
        assert!(
            !file(&files, DATASOURCES_FILE).secret,
            "no datasource has a password"
        );
    }

    #[test]
    fn an_extra_default_datasource_takes_over_and_passwords_make_the_file_secret() {
        let mut stack = testkit::full();
        stack.datasources.push(Datasource {
            name: "Logs".into(),
            kind: "loki".into(),
            uid: "loki".into(),
            url: "http://loki:3100".into(),
            access: "proxy".into(),
            database: None,
            user: Some("grafana".into()),
            password: Some("pa$$".into()),
            is_default: true,
            json_data: json_map([("maxLines", 1000.into())]),
        });
        let files = render(&stack).unwrap();
        let rendered = file(&files, DATASOURCES_FILE);
        assert!(rendered.secret);
        let ds = yaml(rendered);
        let list = ds["datasources"].as_array().unwrap();
        assert_eq!(list[0]["isDefault"], false);
        assert_eq!(list[3]["isDefault"], true);
        assert_eq!(
            list[3]["secureJsonData"]["password"], "pa$$$$",
            "every $ is doubled"
        );
        assert_eq!(list[3]["jsonData"]["maxLines"], 1000);

        stack.datasources[0].is_default = true;
        let err = render(&stack).unwrap_err().to_string();
        assert!(err.contains("Influx") && err.contains("Logs"), "{err}");
    }

    #[test]
    fn dashboards_go_to_one_provider_per_folder() {
        let mut stack = testkit::minimal();
        stack.dashboards = vec![
            dashboard(
                Some("Shop / Orders"),
                "orders.json",
                serde_json::json!({"uid": "o", "title": "O"}),
            ),
            dashboard(None, "go-runtime.json", go_runtime()),
            dashboard(
                Some("General"),
                "g.json",
                serde_json::json!({"uid": "g", "title": "G"}),
            ),
            dashboard(
                Some("Shop / Orders"),
                "more.json",
                serde_json::json!({"uid": "m", "title": "M"}),
            ),
        ];
        let files = render(&stack).unwrap();
        let providers = yaml(file(&files, DASHBOARD_PROVIDERS_FILE));
        let summary: Vec<(String, String, String)> = providers["providers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["type"], "file");
                assert_eq!(p["disableDeletion"], false);
                assert_eq!(p["allowUiUpdates"], false);
                assert_eq!(p["updateIntervalSeconds"], 10);
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["folder"].as_str().unwrap().to_string(),
                    p["options"]["path"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let general_dir = format!("general-{:08x}", stable_hash("General") as u32);
        assert_eq!(
            summary,
            [
                (
                    "monstack".into(),
                    "".into(),
                    "/var/lib/grafana/dashboards/general".into()
                ),
                (
                    format!("monstack-{general_dir}"),
                    "General".into(),
                    format!("/var/lib/grafana/dashboards/{general_dir}")
                ),
                (
                    "monstack-shop-orders".into(),
                    "Shop / Orders".into(),
                    "/var/lib/grafana/dashboards/shop-orders".into()
                ),
            ]
        );
        let dashboard_paths: Vec<&str> = paths(&files)
            .into_iter()
            .filter(|p| p.starts_with("grafana/dashboards/"))
            .collect();
        assert_eq!(
            dashboard_paths,
            [
                "grafana/dashboards/shop-orders/orders.json".to_string(),
                "grafana/dashboards/general/go-runtime.json".to_string(),
                format!("grafana/dashboards/{general_dir}/g.json"),
                "grafana/dashboards/shop-orders/more.json".to_string(),
            ]
        );
        let go = file(&files, "grafana/dashboards/general/go-runtime.json");
        assert!(go.text().ends_with("}\n"));
        assert_eq!(
            serde_json::from_str::<Value>(go.text()).unwrap(),
            go_runtime()
        );
        assert!(check_tree(&files).is_empty(), "{:?}", check_tree(&files));
    }

    #[test]
    fn contact_points_per_channel_kind() {
        let files = render(&testkit::full()).unwrap();
        let rendered = file(&files, ALERTING_FILE);
        assert!(rendered.secret);
        let alerting = yaml(rendered);
        assert!(
            alerting.get("groups").is_none(),
            "Prometheus evaluates the rules"
        );
        let points = alerting["contactPoints"].as_array().unwrap();
        let receiver = |name: &str| {
            points
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no {name}"))["receivers"][0]
                .clone()
        };
        assert_eq!(
            receiver("ops-mail"),
            serde_json::json!({"uid": "ops-mail", "type": "email",
                "settings": {"addresses": "ops@example.com;oncall@example.com"}, "disableResolveMessage": false})
        );
        assert_eq!(
            receiver("ops-ding"),
            serde_json::json!({"uid": "ops-ding", "type": "webhook",
                "settings": {"url": "http://agent:8060/dingtalk/ops-ding", "httpMethod": "POST"},
                "disableResolveMessage": false})
        );
        assert_eq!(
            receiver("hook"),
            serde_json::json!({"uid": "hook", "type": "webhook",
                "settings": {"url": "http://alert-sink:8080/hook", "httpMethod": "POST"}, "disableResolveMessage": false})
        );
        assert_eq!(
            receiver("chat"),
            serde_json::json!({"uid": "chat", "type": "slack",
                "settings": {"url": "https://hooks.slack.com/services/T0/B0/XXXX", "recipient": "#ops"},
                "disableResolveMessage": true})
        );
        let default = points
            .iter()
            .find(|p| p["name"] == DEFAULT_CONTACT_POINT)
            .unwrap();
        let uids: Vec<&str> = default["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["uid"].as_str().unwrap())
            .collect();
        assert_eq!(
            uids,
            [
                "ops-mail-default",
                "ops-ding-default",
                "hook-default",
                "chat-default"
            ]
        );
        assert_eq!(default["receivers"][3]["type"], "slack");
    }

    #[test]
    fn unsigned_dingtalk_is_native_and_keeps_its_keyword() {
        let mut stack = testkit::full();
        if let ChannelKind::DingTalk {
            secret, keyword, ..
        } = &mut stack.channels[1].kind
        {
            *secret = None;
            *keyword = Some("alert".into());
        }
        let files = render(&stack).unwrap();
        let alerting = yaml(file(&files, ALERTING_FILE));
        let ding = &alerting["contactPoints"][1]["receivers"][0];
        assert_eq!(ding["type"], "dingding");
        assert_eq!(
            ding["settings"]["url"],
            "https://oapi.dingtalk.com/robot/send?access_token=abc123"
        );
        assert_eq!(ding["settings"]["msgType"], "link");
        assert_eq!(
            ding["settings"]["title"],
            "alert {{ template \"default.title\" . }}"
        );
    }

    #[test]
    fn policies_route_like_alertmanager() {
        let files = render(&testkit::full()).unwrap();
        let alerting = yaml(file(&files, ALERTING_FILE));
        assert_eq!(
            alerting["policies"],
            serde_json::json!([{
                "orgId": 1,
                "receiver": "monstack-default",
                "group_by": ["grafana_folder", "alertname", "job"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
                "routes": [
                    {"receiver": "ops-mail", "matchers": ["alertname=~\"TooManyGoroutines\""], "continue": true},
                    {"receiver": "ops-ding", "matchers": ["alertname=~\"TooManyGoroutines\""], "continue": true},
                ],
            }])
        );

        let mut stack = testkit::full();
        stack.alerting.default_notify.clear();
        stack.alerts[1].notify = vec!["ops-mail".into()];
        let files = render(&stack).unwrap();
        let alerting = yaml(file(&files, ALERTING_FILE));
        assert_eq!(
            alerting["policies"][0]["receiver"], "ops-mail",
            "no default channels: the first channel"
        );
        assert_eq!(
            alerting["policies"][0]["routes"][0]["matchers"][0],
            "alertname=~\"TooManyGoroutines|OrderDown\""
        );
        let names: Vec<&str> = alerting["contactPoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(!names.contains(&DEFAULT_CONTACT_POINT), "{names:?}");
        assert!(check_tree(&files).is_empty(), "{:?}", check_tree(&files));
    }

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
    fn alert_rules_without_channels_still_provision() {
        let mut stack = testkit::full_grafana_engine();
        stack.channels.clear();
        stack.alerting.default_notify.clear();
        for alert in &mut stack.alerts {
            alert.notify.clear();
        }
        let files = render(&stack).unwrap();
        let alerting = yaml(file(&files, ALERTING_FILE));
        assert!(alerting.get("contactPoints").is_none() && alerting.get("policies").is_none());
        assert_eq!(alerting["groups"][0]["rules"].as_array().unwrap().len(), 2);
        assert!(check_tree(&files).is_empty(), "{:?}", check_tree(&files));

        stack.alerting.engine = AlertEngine::Alertmanager;
        assert!(!paths(&render(&stack).unwrap()).contains(&ALERTING_FILE));
    }

    #[test]
    fn dollars_are_escaped_where_grafana_expands_them() {
        let stacks = stacks();
        let stack = &stacks
            .iter()
            .find(|(name, _)| *name == "dollars")
            .unwrap()
            .1;
        let files = render(stack).unwrap();
        let ds = yaml(file(&files, DATASOURCES_FILE));
        assert_eq!(
            ds["datasources"][2]["secureJsonData"]["password"],
            "pa$$$$word$$1"
        );
        assert_eq!(ds["datasources"][2]["user"], "$$reader");
        let alerting = yaml(file(&files, ALERTING_FILE));
        let hook = alerting["contactPoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "hook-dollar")
            .unwrap();
        assert_eq!(
            hook["receivers"][0]["settings"]["url"],
            "https://hooks.example.com/$$token/{{ $$labels.job }}"
        );
        assert_eq!(hook["receivers"][0]["settings"]["maxAlerts"], 5);
        assert_eq!(hook["receivers"][0]["disableResolveMessage"], true);
    }

    #[test]
    fn uids_stay_valid_and_unique() {
        let mut stack = testkit::full_grafana_engine();
        let long = "A".repeat(45);
        stack.alerts[0].name = long.clone();
        stack.alerts[1].name = long.to_lowercase();
        stack.alerts[0].notify.clear();
        stack.channels[2].name = "a-rather-long-channel-name-for-the-webhook".into();
        stack.alerting.default_notify[2] = stack.channels[2].name.clone();
        let files = render(&stack).unwrap();
        let violations = check_tree(&files);
        assert!(violations.is_empty(), "{violations:?}");
        let alerting = yaml(file(&files, ALERTING_FILE));
        let rules = alerting["groups"][0]["rules"].as_array().unwrap();
        assert_ne!(rules[0]["uid"], rules[1]["uid"]);
    }

    #[test]
    fn reserved_channel_name_is_refused() {
        let mut stack = testkit::full();
        stack.channels[0].name = DEFAULT_CONTACT_POINT.into();
        assert!(render(&stack).unwrap_err().to_string().contains("reserved"));
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
