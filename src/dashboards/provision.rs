//! Preparing a dashboard for file provisioning: [`prepare`] substitutes the `__inputs`
//! placeholders Grafana's import API would, points datasource references at the provisioned
//! datasources, makes `le` / `quantile` selectors work on Prometheus 2 and 3 and checks the
//! title and uid.

use std::fmt;

use serde_json::Value;

use super::selectors::{rewrite_dashboard, SelectorRewrite};
use super::uid::{is_valid_uid, slug, stable_hash, MAX_UID_LEN};
use crate::model::PROMETHEUS_DATASOURCE_UID;

/// Why a dashboard cannot be provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareError {
    /// The dashboard JSON is not an object.
    NotAnObject,
    /// `title` is missing or empty: Grafana rejects such a dashboard.
    MissingTitle,
    /// `uid` is not 1-40 characters of `[a-zA-Z0-9_-]`.
    InvalidUid { uid: String },
    /// An `__inputs` datasource whose plugin type no provisioned datasource has.
    MissingDatasource { input: String, plugin_id: String },
}

impl PrepareError {
    /// What the user can do about it, for printing under the message.
    pub fn hint(&self) -> String {
        match self {
            PrepareError::NotAnObject => {
                "a dashboard file holds one JSON object, as exported by Grafana (Share > Export)".into()
            }
            PrepareError::MissingTitle => "set a non-empty \"title\" in the dashboard JSON".into(),
            PrepareError::InvalidUid { .. } => format!(
                "use at most {MAX_UID_LEN} letters, digits, `-` or `_`, or remove \"uid\" and monstack derives one from the title"
            ),
            PrepareError::MissingDatasource { plugin_id, .. } => format!(
                "add a datasource of type `{plugin_id}` under `datasources:` in monstack.yaml"
            ),
        }
    }
}

impl fmt::Display for PrepareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrepareError::NotAnObject => f.write_str("the dashboard is not a JSON object"),
            PrepareError::MissingTitle => f.write_str("the dashboard has no title"),
            PrepareError::InvalidUid { uid } => write!(
                f,
                "the dashboard uid `{uid}` is not valid: Grafana accepts at most {MAX_UID_LEN} characters of [a-zA-Z0-9_-]"
            ),
            PrepareError::MissingDatasource { input, plugin_id } => write!(
                f,
                "the dashboard input `{input}` needs a `{plugin_id}` datasource, and the stack has none"
            ),
        }
    }
}

impl std::error::Error for PrepareError {}

/// Makes a dashboard ready for file provisioning, which does no substitution of its own.
///
/// `datasources` are the stack's provisioned datasources as `(uid, plugin type)`, in order.
///
/// - `__inputs`: a datasource input becomes the uid of the first datasource of the same plugin
///   type (the provisioned Prometheus when the type is `prometheus` and the list has none); a
///   constant input becomes its `value`. Every `${NAME}` of an input is replaced in every string.
/// - `${DS_*}` references with no matching input (dashboards exported without `__inputs`) become
///   the Prometheus datasource uid.
/// - `__inputs` and `__requires` are removed, `id` is set to null.
/// - `le` / `quantile` matchers on integral values in PromQL queries (`quantile="1"`, which
///   Prometheus 3 stores as `"1.0"`) are rewritten to match both spellings
///   (`quantile=~"1|1[.]0"`, see [`rewrite_dashboard`]).
/// - `title` must be non-empty; a missing uid is derived from the title, an existing one checked.
///
/// Template-variable references such as `${datasource}` are left alone: Grafana resolves them
/// when the dashboard is viewed.
pub fn prepare(json: Value, datasources: &[(String, String)]) -> Result<Value, PrepareError> {
    prepare_with_rewrites(json, datasources).map(|(dashboard, _)| dashboard)
}

/// [`prepare`], also returning the selectors it rewrote for Prometheus 3, for the user to be
/// told ([`super::rewrites_summary`]).
pub fn prepare_with_rewrites(
    json: Value,
    datasources: &[(String, String)],
) -> Result<(Value, Vec<SelectorRewrite>), PrepareError> {
    let Value::Object(mut dashboard) = json else {
        return Err(PrepareError::NotAnObject);
    };

    let mut inputs: Vec<(String, String)> = Vec::new();
    if let Some(Value::Array(list)) = dashboard.get("__inputs") {
        for input in list {
            let name = input
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() {
                continue;
            }
            match input.get("type").and_then(Value::as_str) {
                Some("datasource") => {
                    let plugin_id = input
                        .get("pluginId")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let uid = datasources
                        .iter()
                        .find(|(_, kind)| kind == plugin_id)
                        .map(|(uid, _)| uid.clone())
                        // Prometheus is always provisioned, whether or not the caller listed it.
                        .or_else(|| {
                            (plugin_id == "prometheus")
                                .then(|| PROMETHEUS_DATASOURCE_UID.to_string())
                        })
                        .ok_or_else(|| PrepareError::MissingDatasource {
                            input: name.to_string(),
                            plugin_id: plugin_id.to_string(),
                        })?;
                    inputs.push((name.to_string(), uid));
                }
                Some("constant") => {
                    let value = match input.get("value") {
                        Some(Value::String(text)) => text.clone(),
                        Some(Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    };
                    inputs.push((name.to_string(), value));
                }
                // Grafana's import knows only these two kinds; anything else stays literal.
                _ => {}
            }
        }
    }
    // shift_remove keeps the remaining keys in their order (remove would swap the last in).
    dashboard.shift_remove("__inputs");
    dashboard.shift_remove("__requires");

    for value in dashboard.values_mut() {
        substitute(value, &inputs);
        retarget_unknown_uids(value, datasources);
    }

    dashboard.insert("id".into(), Value::Null);

    let title = dashboard
        .get("title")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    if title.is_empty() {
        return Err(PrepareError::MissingTitle);
    }
    match dashboard.get("uid") {
        None | Some(Value::Null) => {
            let uid = uid_from_title(title);
            dashboard.insert("uid".into(), Value::String(uid));
        }
        Some(Value::String(uid)) if uid.is_empty() => {
            let uid = uid_from_title(title);
            dashboard.insert("uid".into(), Value::String(uid));
        }
        Some(Value::String(uid)) if is_valid_uid(uid) => {}
        Some(Value::String(uid)) => return Err(PrepareError::InvalidUid { uid: uid.clone() }),
        Some(other) => {
            return Err(PrepareError::InvalidUid {
                uid: other.to_string(),
            })
        }
    }
    let mut dashboard = Value::Object(dashboard);
    let rewrites = rewrite_dashboard(&mut dashboard);
    Ok((dashboard, rewrites))
}

/// Uids Grafana itself provides, never rewritten.
const BUILT_IN_DATASOURCE_UIDS: [&str; 5] = [
    "grafana",
    "-- Grafana --",
    "-- Mixed --",
    "-- Dashboard --",
    "__expr__",
];

/// Datasource references `{"type": T, "uid": U}` to a uid that exists only on the exporter's
/// Grafana (`"uid": "000000001"`) would fail with "datasource not found": point them at the
/// provisioned datasource of the same type. Template variables (`$x`, `${x}`) are left alone.
fn retarget_unknown_uids(value: &mut Value, datasources: &[(String, String)]) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(reference)) = map.get_mut("datasource") {
                let kind = reference
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let uid = reference
                    .get("uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let known = uid.is_empty()
                    || uid.starts_with('$')
                    || BUILT_IN_DATASOURCE_UIDS.contains(&uid)
                    || uid == PROMETHEUS_DATASOURCE_UID
                    || datasources.iter().any(|(u, _)| u == uid);
                if !known {
                    let replacement = datasources
                        .iter()
                        .find(|(_, k)| *k == kind)
                        .map(|(u, _)| u.clone())
                        .or_else(|| {
                            (kind == "prometheus").then(|| PROMETHEUS_DATASOURCE_UID.to_string())
                        });
                    if let Some(replacement) = replacement {
                        reference.insert("uid".into(), Value::String(replacement));
                    }
                }
            }
            for child in map.values_mut() {
                retarget_unknown_uids(child, datasources);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|child| retarget_unknown_uids(child, datasources)),
        _ => {}
    }
}

/// The uid given to a dashboard that has none: a slug of the title, or (for a title with no
/// ASCII letters, such as one in Chinese) `dashboard-` and a hash of it.
fn uid_from_title(title: &str) -> String {
    let uid = slug(title, MAX_UID_LEN);
    if uid.is_empty() {
        format!("dashboard-{:016x}", stable_hash(title))
    } else {
        uid
    }
}

/// Replaces placeholders in every string value (object keys are left alone, as Grafana's
/// import does).
fn substitute(value: &mut Value, inputs: &[(String, String)]) {
    match value {
        Value::String(text) if text.contains("${") => *text = substitute_str(text, inputs),
        Value::Array(items) => items.iter_mut().for_each(|item| substitute(item, inputs)),
        Value::Object(map) => map.values_mut().for_each(|item| substitute(item, inputs)),
        _ => {}
    }
}

/// `${NAME}` -> the input's value when NAME is an input, the Prometheus uid when NAME starts with
/// `DS_`; anything else (template variables, `${__rate_interval}`, `${var:csv}`) stays.
fn substitute_str(text: &str, inputs: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        let replacement = inputs
            .iter()
            .find(|(input, _)| input == name)
            .map(|(_, value)| value.as_str())
            .or_else(|| (is_ds_placeholder(name)).then_some(PROMETHEUS_DATASOURCE_UID));
        match replacement {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `DS_PROMETHEUS`, `DS_LOCALHOST`: the names Grafana's export gives datasource inputs.
fn is_ds_placeholder(name: &str) -> bool {
    name.strip_prefix("DS_").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboards::{bundled, bundled_names};
    use serde_json::json;

    fn stack_datasources() -> Vec<(String, String)> {
        vec![
            ("prometheus".to_string(), "prometheus".to_string()),
            ("alertmanager".to_string(), "alertmanager".to_string()),
            ("influx".to_string(), "influxdb".to_string()),
        ]
    }

    #[test]
    fn every_bundled_dashboard_is_ready_for_provisioning() {
        for name in bundled_names() {
            let json = bundled(name).unwrap();
            let prepared = prepare(json.clone(), &stack_datasources()).unwrap();
            // Bundled dashboards are written ready to provision: prepare changes nothing.
            assert_eq!(prepared, json, "{name}");
            assert_eq!(json["id"], Value::Null, "{name}");
            assert!(is_valid_uid(json["uid"].as_str().unwrap()), "{name}");
        }
    }

    #[test]
    fn datasource_inputs_become_provisioned_uids() {
        let json = json!({
            "__inputs": [
                {"name": "DS_PROM", "type": "datasource", "pluginId": "prometheus"},
                {"name": "DS_INFLUX", "type": "datasource", "pluginId": "influxdb"},
            ],
            "__requires": [{"type": "datasource", "id": "prometheus"}],
            "id": 42,
            "title": "Orders",
            "uid": "orders",
            "panels": [
                {"datasource": "${DS_PROM}", "targets": [{"expr": "up", "datasource": {"type": "prometheus", "uid": "${DS_PROM}"}}]},
                {"datasource": {"type": "influxdb", "uid": "${DS_INFLUX}"}, "title": "from ${DS_INFLUX} and ${datasource}"},
            ],
        });
        let prepared = prepare(json, &stack_datasources()).unwrap();
        assert_eq!(
            prepared,
            json!({
                "id": null,
                "title": "Orders",
                "uid": "orders",
                "panels": [
                    {"datasource": "prometheus", "targets": [{"expr": "up", "datasource": {"type": "prometheus", "uid": "prometheus"}}]},
                    {"datasource": {"type": "influxdb", "uid": "influx"}, "title": "from influx and ${datasource}"},
                ],
            })
        );
    }

    #[test]
    fn missing_datasource_type_names_the_input() {
        let json = json!({
            "__inputs": [{"name": "DS_LOGS", "type": "datasource", "pluginId": "loki"}],
            "title": "Logs",
            "panels": [{"datasource": {"type": "loki", "uid": "${DS_LOGS}"}}],
        });
        let err = prepare(json, &stack_datasources()).unwrap_err();
        assert_eq!(
            err,
            PrepareError::MissingDatasource {
                input: "DS_LOGS".into(),
                plugin_id: "loki".into()
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("DS_LOGS") && message.contains("loki"),
            "{message}"
        );
        assert!(err.hint().contains("loki"));
    }

    #[test]
    fn prometheus_inputs_resolve_even_without_a_listed_datasource() {
        let json = json!({
            "__inputs": [{"name": "DS_P", "type": "datasource", "pluginId": "prometheus"}],
            "title": "P",
            "panels": [{"datasource": "${DS_P}"}],
        });
        let prepared = prepare(json, &[]).unwrap();
        assert_eq!(
            prepared["panels"][0]["datasource"],
            PROMETHEUS_DATASOURCE_UID
        );
    }

    #[test]
    fn constant_inputs_are_substituted() {
        let json = json!({
            "__inputs": [
                {"name": "VAR_ENV", "type": "constant", "value": "prod"},
                {"name": "VAR_SHARDS", "type": "constant", "value": 3},
            ],
            "title": "Shards in ${VAR_ENV}",
            "panels": [{"targets": [{"expr": "up{env=\"${VAR_ENV}\"} * ${VAR_SHARDS}"}]}],
            "templating": {"list": [{"name": "env", "type": "constant", "query": "${VAR_ENV}"}]},
        });
        let prepared = prepare(json, &stack_datasources()).unwrap();
        assert_eq!(prepared["title"], "Shards in prod");
        assert_eq!(
            prepared["panels"][0]["targets"][0]["expr"],
            "up{env=\"prod\"} * 3"
        );
        assert_eq!(prepared["templating"]["list"][0]["query"], "prod");
        assert_eq!(prepared["uid"], "shards-in-prod");
    }

    #[test]
    fn ds_references_without_inputs_go_to_prometheus() {
        let json = json!({
            "title": "Apache",
            "panels": [{"datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, "title": "${ds_lower} ${DS_} $DS_X ${DS_UNCLOSED"}],
        });
        let prepared = prepare(json, &[]).unwrap();
        assert_eq!(prepared["panels"][0]["datasource"]["uid"], "prometheus");
        // Lower-case names are template variables; `${DS_}`, `$DS_X` and unclosed braces are not
        // export placeholders.
        assert_eq!(
            prepared["panels"][0]["title"],
            "${ds_lower} ${DS_} $DS_X ${DS_UNCLOSED"
        );
    }

    #[test]
    fn template_variables_are_left_for_grafana() {
        let json = json!({
            "title": "T",
            "uid": "t",
            "panels": [{"datasource": {"type": "prometheus", "uid": "${datasource}"},
                        "targets": [{"expr": "rate(x[$__rate_interval]) ${__interval} ${job:regex}"}]}],
        });
        let prepared = prepare(json.clone(), &[]).unwrap();
        let mut expected = json;
        expected["id"] = Value::Null;
        assert_eq!(prepared, expected);
    }

    #[test]
    fn uid_and_title_rules() {
        assert_eq!(
            prepare(json!([]), &[]).unwrap_err(),
            PrepareError::NotAnObject
        );
        assert_eq!(
            prepare(json!({"uid": "x"}), &[]).unwrap_err(),
            PrepareError::MissingTitle
        );
        assert_eq!(
            prepare(json!({"title": "  "}), &[]).unwrap_err(),
            PrepareError::MissingTitle
        );
        let long = "x".repeat(41);
        assert_eq!(
            prepare(json!({"title": "T", "uid": long}), &[]).unwrap_err(),
            PrepareError::InvalidUid { uid: long.clone() }
        );
        assert!(matches!(
            prepare(json!({"title": "T", "uid": "a b"}), &[]),
            Err(PrepareError::InvalidUid { .. })
        ));
        assert!(matches!(
            prepare(json!({"title": "T", "uid": 7}), &[]),
            Err(PrepareError::InvalidUid { .. })
        ));
        assert_eq!(
            prepare(json!({"title": "T", "uid": "A_b-9"}), &[]).unwrap()["uid"],
            "A_b-9"
        );

        let uid = |title: &str| {
            prepare(json!({"title": title}), &[]).unwrap()["uid"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(uid("Node Exporter Full (old)"), "node-exporter-full-old");
        assert_eq!(uid("  Orders / Payments  "), "orders-payments");
        let long_title = uid(&"Very long dashboard title ".repeat(4));
        assert!(
            long_title.len() <= MAX_UID_LEN && !long_title.ends_with('-'),
            "{long_title}"
        );
        let chinese = uid("订单监控");
        assert!(is_valid_uid(&chinese), "{chinese}");
        assert_eq!(chinese, uid("订单监控"), "derived uids are deterministic");
        assert_ne!(chinese, uid("支付监控"));
    }

    /// Real dashboards exported from Grafana and published on grafana.com.
    #[test]
    fn real_world_fixtures_prepare_cleanly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/exported-dashboards");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            println!("skipping: fixture directory {} is missing", dir.display());
            return;
        };
        let mut paths: Vec<_> = entries
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            let json: Value = serde_json::from_str(&text).unwrap();
            let had_inputs = json.get("__inputs").is_some();
            let prepared = prepare(json, &stack_datasources())
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            let out = serde_json::to_string(&prepared).unwrap();
            assert!(!out.contains("${DS_"), "{}: ${{DS_ left", path.display());
            assert!(
                !out.contains("__inputs") && !out.contains("__requires"),
                "{}",
                path.display()
            );
            assert_eq!(prepared["id"], Value::Null);
            assert!(
                is_valid_uid(prepared["uid"].as_str().unwrap()),
                "{}",
                path.display()
            );
            let rewrites =
                prepare_with_rewrites(serde_json::from_str(&text).unwrap(), &stack_datasources())
                    .unwrap()
                    .1;
            let name = path.file_name().unwrap().to_str().unwrap();
            if name == "unbound-full.json" {
                // Its bucket list `le=~"...|0.524288|1|2|4|8|16|32|64"`.
                assert_eq!(rewrites.len(), 1, "{name}: {rewrites:?}");
                assert!(
                    rewrites[0].to.contains(
                        "|0.524288|1|1[.]0|2|2[.]0|4|4[.]0|8|8[.]0|16|16[.]0|32|32[.]0|64|64[.]0\""
                    ),
                    "{rewrites:?}"
                );
            } else {
                assert!(rewrites.is_empty(), "{name}: {rewrites:?}");
            }
            let mut again = prepared.clone();
            assert!(crate::dashboards::rewrite_dashboard(&mut again).is_empty());
            println!("{}: ok (had __inputs: {had_inputs})", path.display());
        }
    }

    #[test]
    fn selectors_are_rewritten_for_prometheus_3_and_reported() {
        let json = json!({
            "__inputs": [{"name": "DS_P", "type": "datasource", "pluginId": "prometheus"}],
            "title": "GC",
            "panels": [{"datasource": {"type": "prometheus", "uid": "${DS_P}"},
                        "targets": [{"expr": "go_gc_duration_seconds{quantile=\"1\"}"},
                                    {"expr": "go_gc_duration_seconds{quantile=\"0.5\"}"},
                                    {"expr": "sum(rate(h_bucket{le = \"1\"}[5m]))"}]}],
        });
        let (prepared, rewrites) = prepare_with_rewrites(json.clone(), &[]).unwrap();
        let targets = &prepared["panels"][0]["targets"];
        assert_eq!(
            targets[0]["expr"],
            "go_gc_duration_seconds{quantile=~\"1|1[.]0\"}"
        );
        assert_eq!(
            targets[1]["expr"],
            "go_gc_duration_seconds{quantile=\"0.5\"}"
        );
        assert_eq!(
            targets[2]["expr"],
            "sum(rate(h_bucket{le =~ \"1|1[.]0\"}[5m]))"
        );
        assert_eq!(
            crate::dashboards::rewrites_summary(&rewrites).unwrap(),
            "rewrote 2 selectors for Prometheus 3 (quantile=\"1\" -> quantile=~\"1|1[.]0\", le = \"1\" -> le =~ \"1|1[.]0\")"
        );
        // prepare does the same, and a prepared dashboard has nothing left to rewrite.
        assert_eq!(prepare(json, &[]).unwrap(), prepared);
        assert!(prepare_with_rewrites(prepared, &[]).unwrap().1.is_empty());
    }

    #[test]
    fn references_to_an_exporters_own_datasource_uid_are_retargeted() {
        let json = serde_json::json!({
            "title": "x",
            "panels": [{"datasource": {"type": "prometheus", "uid": "000000001"},
                        "targets": [{"datasource": {"type": "loki", "uid": "abc"}},
                                    {"datasource": {"type": "prometheus", "uid": "${datasource}"}},
                                    {"datasource": {"type": "datasource", "uid": "-- Mixed --"}}]}]
        });
        let prepared = prepare(json, &[("logs".into(), "loki".into())]).unwrap();
        let panel = &prepared["panels"][0];
        assert_eq!(panel["datasource"]["uid"], "prometheus");
        assert_eq!(panel["targets"][0]["datasource"]["uid"], "logs");
        assert_eq!(panel["targets"][1]["datasource"]["uid"], "${datasource}");
        assert_eq!(panel["targets"][2]["datasource"]["uid"], "-- Mixed --");
    }
}
