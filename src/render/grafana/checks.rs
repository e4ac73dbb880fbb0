//! Checks of rendered Grafana files against the rules in `shared/reference/formats.md`
//! (sections 1-3). Grafana cannot run here and ignores what it does not understand, so these
//! checks stand in for it: renderer tests and snapshot tests run [`check_tree`] on their output.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{DASHBOARDS_DIR, DASHBOARDS_MOUNT};
use crate::dashboards::is_valid_uid;
use crate::model::Duration;
use crate::render::RenderedFile;

const DATASOURCES_DIR: &str = "grafana/provisioning/datasources/";
const PROVIDERS_DIR: &str = "grafana/provisioning/dashboards/";
const ALERTING_DIR: &str = "grafana/provisioning/alerting/";
const EXPRESSIONS: &str = "__expr__";
/// Datasource uids Grafana itself provides.
const BUILTIN_DATASOURCES: [&str; 5] = [
    "grafana",
    "-- Grafana --",
    "-- Mixed --",
    "-- Dashboard --",
    EXPRESSIONS,
];

/// Every violation of the reference rules in the Grafana part of a rendered tree, as
/// `path: problem`. Files outside `grafana/` are ignored, so a whole tree can be passed.
pub(crate) fn check_tree(files: &[RenderedFile]) -> Vec<String> {
    let mut out = Vec::new();
    let mut datasources = Datasources::default();
    for file in files.iter().filter(|f| f.path.starts_with(DATASOURCES_DIR)) {
        check_datasources(file, &mut datasources, &mut out);
    }
    if datasources.defaults > 1 {
        out.push(format!(
            "{} datasources are marked isDefault; Grafana accepts one",
            datasources.defaults
        ));
    }

    let mut provider_dirs = BTreeSet::new();
    for file in files.iter().filter(|f| f.path.starts_with(PROVIDERS_DIR)) {
        check_providers(file, &mut provider_dirs, &mut out);
    }

    let mut dashboard_uids = BTreeSet::new();
    let dashboards_prefix = format!("{DASHBOARDS_DIR}/");
    for file in files
        .iter()
        .filter(|f| f.path.starts_with(&dashboards_prefix) && f.path.ends_with(".json"))
    {
        let dir = file.path[dashboards_prefix.len()..]
            .rsplit_once('/')
            .map(|(dir, _)| dir)
            .unwrap_or("");
        if !provider_dirs
            .iter()
            .any(|provided: &String| provided == dir || dir.starts_with(&format!("{provided}/")))
        {
            out.push(format!(
                "{}: no dashboard provider reads {DASHBOARDS_MOUNT}/{dir}",
                file.path
            ));
        }
        match serde_json::from_str::<Value>(file.text()) {
            Ok(json) => check_dashboard(
                &file.path,
                &json,
                &datasources,
                &mut dashboard_uids,
                &mut out,
            ),
            Err(err) => out.push(format!("{}: not JSON: {err}", file.path)),
        }
    }

    for file in files.iter().filter(|f| f.path.starts_with(ALERTING_DIR)) {
        check_alerting(file, &datasources, &mut out);
    }
    out
}

#[derive(Default)]
struct Datasources {
    uids: BTreeSet<String>,
    names: BTreeSet<String>,
    defaults: usize,
}

impl Datasources {
    fn knows(&self, uid_or_name: &str) -> bool {
        self.uids.contains(uid_or_name)
            || self.names.contains(uid_or_name)
            || BUILTIN_DATASOURCES.contains(&uid_or_name)
    }
}

fn parse_yaml(file: &RenderedFile, out: &mut Vec<String>) -> Option<Value> {
    match crate::manifest::yaml::from_str::<Value>(file.text()) {
        Ok(value) => {
            if value["apiVersion"] != 1 {
                out.push(format!(
                    "{}: apiVersion must be 1 (0 or missing selects the legacy schema)",
                    file.path
                ));
            }
            Some(value)
        }
        Err(err) => {
            out.push(format!("{}: not YAML: {err}", file.path));
            None
        }
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn check_datasources(file: &RenderedFile, found: &mut Datasources, out: &mut Vec<String>) {
    let Some(doc) = parse_yaml(file, out) else {
        return;
    };
    check_dollars_escaped(&file.path, "", &doc, out);
    let Some(list) = doc["datasources"].as_array() else {
        out.push(format!("{}: no `datasources` list", file.path));
        return;
    };
    for (i, ds) in list.iter().enumerate() {
        let at = format!("{}: datasources[{i}]", file.path);
        for key in ["name", "type", "uid"] {
            if str_field(ds, key).is_none() {
                out.push(format!("{at}: `{key}` is missing or empty"));
            }
        }
        if let Some(uid) = str_field(ds, "uid") {
            if !is_valid_uid(uid) {
                out.push(format!(
                    "{at}: uid `{uid}` is not 1-40 characters of [a-zA-Z0-9_-]"
                ));
            }
            if !found.uids.insert(uid.to_string()) {
                out.push(format!("{at}: uid `{uid}` is used twice"));
            }
        }
        if let Some(name) = str_field(ds, "name") {
            found.names.insert(name.to_string());
        }
        if ds["isDefault"] == true {
            found.defaults += 1;
        }
        if ds.get("secureJsonData").is_some() && !file.secret {
            out.push(format!(
                "{at}: has secureJsonData but the file is not written as a secret"
            ));
        }
        if ds["type"] == "influxdb" && ds["jsonData"]["version"] != "Flux" {
            check_influxdb_1(ds, &at, out);
        }
    }
}

/// InfluxDB 1.x (InfluxQL): the database in `jsonData.dbName`, `jsonData.httpMode` GET or
/// POST, the password in `secureJsonData.password` with its `user`, and an http(s) URL.
fn check_influxdb_1(ds: &Value, at: &str, out: &mut Vec<String>) {
    if str_field(&ds["jsonData"], "dbName").is_none() {
        out.push(format!("{at}: influxdb without jsonData.dbName"));
    }
    match ds["jsonData"]["httpMode"].as_str() {
        None | Some("GET") | Some("POST") => {}
        Some(other) => out.push(format!(
            "{at}: jsonData.httpMode `{other}` is not GET or POST"
        )),
    }
    if ds.get("password").is_some() || ds.get("basicAuthPassword").is_some() {
        out.push(format!(
            "{at}: a plain-text password field (Grafana wants secureJsonData)"
        ));
    }
    let password = str_field(&ds["secureJsonData"], "password").is_some();
    if password && str_field(ds, "user").is_none() {
        out.push(format!("{at}: secureJsonData.password without `user`"));
    }
    if !str_field(ds, "url").is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
    {
        out.push(format!("{at}: influxdb without an http(s) url"));
    }
}

fn check_providers(file: &RenderedFile, dirs: &mut BTreeSet<String>, out: &mut Vec<String>) {
    let Some(doc) = parse_yaml(file, out) else {
        return;
    };
    check_dollars_escaped(&file.path, "", &doc, out);
    let Some(list) = doc["providers"].as_array() else {
        out.push(format!("{}: no `providers` list", file.path));
        return;
    };
    let mut names = BTreeSet::new();
    for (i, provider) in list.iter().enumerate() {
        let at = format!("{}: providers[{i}]", file.path);
        match str_field(provider, "name") {
            Some(name) if !names.insert(name.to_string()) => {
                out.push(format!("{at}: name `{name}` is not unique"))
            }
            Some(_) => {}
            None => out.push(format!("{at}: `name` is missing")),
        }
        if provider.get("type").is_some_and(|t| t != "file") {
            out.push(format!("{at}: type must be `file`"));
        }
        let mount = format!("{DASHBOARDS_MOUNT}/");
        match str_field(&provider["options"], "path") {
            Some(path) => match path.strip_prefix(&mount) {
                Some(dir) if !dir.is_empty() => {
                    if !dirs.insert(dir.trim_end_matches('/').to_string()) {
                        out.push(format!("{at}: two providers read {path}"));
                    }
                }
                _ => out.push(format!(
                    "{at}: options.path `{path}` is not a directory under {DASHBOARDS_MOUNT}"
                )),
            },
            None => out.push(format!("{at}: options.path is missing")),
        }
    }
}

fn check_dashboard(
    path: &str,
    json: &Value,
    datasources: &Datasources,
    uids: &mut BTreeSet<String>,
    out: &mut Vec<String>,
) {
    if str_field(json, "title").is_none() {
        out.push(format!("{path}: no title (Grafana rejects the dashboard)"));
    }
    match json.get("uid").and_then(Value::as_str) {
        Some(uid) if is_valid_uid(uid) => {
            if !uids.insert(uid.to_string()) {
                out.push(format!(
                    "{path}: uid `{uid}` is used by another dashboard (Grafana locks both)"
                ));
            }
        }
        other => out.push(format!(
            "{path}: uid {other:?} is not 1-40 characters of [a-zA-Z0-9_-]"
        )),
    }
    if json.get("id").is_some_and(|id| !id.is_null()) {
        out.push(format!("{path}: id must be null"));
    }
    for key in ["__inputs", "__requires"] {
        if json.get(key).is_some() {
            out.push(format!(
                "{path}: `{key}` left in (file provisioning does not resolve it)"
            ));
        }
    }

    let variables: BTreeSet<&str> = json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let mut strings = Vec::new();
    collect_strings(json, &mut strings);
    for text in strings {
        for name in braced_references(text) {
            if name.starts_with("DS_") {
                out.push(format!(
                    "{path}: `${{{name}}}` is an unresolved export placeholder"
                ));
            } else if !name.starts_with("__") && !variables.contains(name) {
                out.push(format!(
                    "{path}: `${{{name}}}` refers to no template variable"
                ));
            }
        }
    }

    let mut refs = Vec::new();
    for panel in json["panels"].as_array().into_iter().flatten() {
        panel_datasources(panel, &mut refs);
    }
    for row in json["rows"].as_array().into_iter().flatten() {
        for panel in row["panels"].as_array().into_iter().flatten() {
            panel_datasources(panel, &mut refs);
        }
    }
    for variable in json["templating"]["list"].as_array().into_iter().flatten() {
        refs.push(("template variable", &variable["datasource"]));
    }
    for (what, reference) in refs {
        let uid = match reference {
            Value::Null => continue,
            Value::String(uid) => uid.as_str(),
            Value::Object(map) => match map.get("uid") {
                None | Some(Value::Null) => continue,
                Some(Value::String(uid)) => uid.as_str(),
                Some(other) => {
                    out.push(format!(
                        "{path}: {what} datasource uid {other} is not a string"
                    ));
                    continue;
                }
            },
            other => {
                out.push(format!(
                    "{path}: {what} datasource {other} is neither a uid nor a reference"
                ));
                continue;
            }
        };
        if let Some(variable) = variable_reference(uid) {
            if !variables.contains(variable) {
                out.push(format!(
                    "{path}: {what} datasource `{uid}` refers to no template variable"
                ));
            }
        } else if !datasources.knows(uid) {
            out.push(format!(
                "{path}: {what} datasource `{uid}` is not a provisioned datasource"
            ));
        }
    }
}

fn panel_datasources<'a>(panel: &'a Value, refs: &mut Vec<(&'static str, &'a Value)>) {
    refs.push(("panel", &panel["datasource"]));
    for target in panel["targets"].as_array().into_iter().flatten() {
        refs.push(("target", &target["datasource"]));
    }
    for nested in panel["panels"].as_array().into_iter().flatten() {
        panel_datasources(nested, refs);
    }
}

/// `$name`, `${name}`, `${name:format}`, `[[name]]` -> `name`.
fn variable_reference(text: &str) -> Option<&str> {
    if let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
        return Some(inner.split(':').next().unwrap_or(inner));
    }
    if let Some(inner) = text.strip_prefix("[[").and_then(|t| t.strip_suffix("]]")) {
        return Some(inner);
    }
    text.strip_prefix('$')
}

/// Variable names in the `${...}` references of `text` (up to `:` or `.`, as in
/// `${var:csv}` and `${__field.labels.x}`).
fn braced_references(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        names.push(inner.split([':', '.']).next().unwrap_or(inner));
        rest = &after[end + 1..];
    }
    names
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| collect_strings(item, out)),
        _ => {}
    }
}

/// Grafana `$`-expands these strings: a literal `$` must be written `$$`.
fn check_dollars_escaped(path: &str, at: &str, value: &Value, out: &mut Vec<String>) {
    let mut strings = Vec::new();
    collect_strings(value, &mut strings);
    for text in strings {
        if has_unescaped_dollar(text) {
            out.push(format!(
                "{path}: {at}`{text}` has a `$` Grafana will expand (write `$$`)"
            ));
        }
    }
}

fn has_unescaped_dollar(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            if chars.peek() == Some(&'$') {
                chars.next();
            } else {
                return true;
            }
        }
    }
    false
}

fn check_alerting(file: &RenderedFile, datasources: &Datasources, out: &mut Vec<String>) {
    let Some(doc) = parse_yaml(file, out) else {
        return;
    };
    let path = &file.path;
    if !file.secret {
        out.push(format!(
            "{path}: holds webhook URLs and tokens but is not written as a secret"
        ));
    }

    let mut contact_points = BTreeSet::new();
    let mut receiver_uids = BTreeSet::new();
    for (i, point) in doc["contactPoints"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("contactPoints[{i}]");
        match str_field(point, "name") {
            Some(name) if !contact_points.insert(name.to_string()) => out.push(format!(
                "{path}: {at}: contact point `{name}` is defined twice"
            )),
            Some(_) => {}
            None => out.push(format!("{path}: {at}: `name` is missing")),
        }
        let receivers = point["receivers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if receivers.is_empty() {
            out.push(format!("{path}: {at}: no receivers"));
        }
        for (j, receiver) in receivers.iter().enumerate() {
            let at = format!("{at}.receivers[{j}]");
            match str_field(receiver, "uid") {
                Some(uid) if !is_valid_uid(uid) => out.push(format!(
                    "{path}: {at}: uid `{uid}` is not 1-40 characters of [a-zA-Z0-9_-]"
                )),
                Some(uid) if !receiver_uids.insert(uid.to_string()) => {
                    out.push(format!("{path}: {at}: uid `{uid}` is used twice"))
                }
                Some(_) => {}
                None => out.push(format!("{path}: {at}: `uid` is missing")),
            }
            let kind = str_field(receiver, "type").unwrap_or_default();
            let settings = &receiver["settings"];
            match settings.as_object() {
                Some(map) if !map.is_empty() => {}
                _ => out.push(format!("{path}: {at}: `settings` is missing or empty")),
            }
            let required: &[&str] = match kind {
                "email" => &["addresses"],
                "dingding" | "webhook" => &["url"],
                "slack" if settings.get("token").is_some() => &["recipient"],
                "slack" => &["url"],
                "" => {
                    out.push(format!("{path}: {at}: `type` is missing"));
                    &[]
                }
                _ => &[],
            };
            for key in required {
                if str_field(settings, key).is_none() {
                    out.push(format!(
                        "{path}: {at}: a {kind} receiver needs settings.{key}"
                    ));
                }
            }
            let has = |key: &str| str_field(settings, key).is_some_and(|v| !v.is_empty());
            if kind == "webhook"
                && has("authorization_credentials")
                && (has("username") || has("password"))
            {
                out.push(format!(
                    "{path}: {at}: a webhook takes username/password or authorization_*, not both"
                ));
            }
            check_dollars_escaped(path, &format!("{at}.settings: "), settings, out);
        }
    }

    for (i, policy) in doc["policies"].as_array().into_iter().flatten().enumerate() {
        check_route(
            path,
            &format!("policies[{i}]"),
            policy,
            &contact_points,
            true,
            out,
        );
    }

    for (i, group) in doc["groups"].as_array().into_iter().flatten().enumerate() {
        check_rule_group(path, &format!("groups[{i}]"), group, datasources, out);
    }
}

fn check_route(
    path: &str,
    at: &str,
    route: &Value,
    contact_points: &BTreeSet<String>,
    root: bool,
    out: &mut Vec<String>,
) {
    match str_field(route, "receiver") {
        Some(receiver) if !contact_points.contains(receiver) => out.push(format!(
            "{path}: {at}: receiver `{receiver}` is not a contact point"
        )),
        Some(_) => {}
        None if root => out.push(format!("{path}: {at}: the root policy needs a receiver")),
        None => {}
    }
    if root && (route.get("matchers").is_some() || route.get("object_matchers").is_some()) {
        out.push(format!(
            "{path}: {at}: the root policy cannot have matchers"
        ));
    }
    for matcher in route["matchers"].as_array().into_iter().flatten() {
        let ok = matcher.as_str().is_some_and(|m| {
            ["=~", "!~", "!=", "="].iter().any(|op| {
                m.split_once(op).is_some_and(|(name, value)| {
                    !name.trim().is_empty()
                        && value.trim().starts_with('"')
                        && value.trim().ends_with('"')
                })
            })
        });
        if !ok {
            out.push(format!(
                "{path}: {at}: matcher {matcher} is not `label<op>\"value\"`"
            ));
        }
    }
    for (i, child) in route["routes"].as_array().into_iter().flatten().enumerate() {
        check_route(
            path,
            &format!("{at}.routes[{i}]"),
            child,
            contact_points,
            false,
            out,
        );
    }
}

fn check_rule_group(
    path: &str,
    at: &str,
    group: &Value,
    datasources: &Datasources,
    out: &mut Vec<String>,
) {
    for key in ["name", "folder", "interval"] {
        if str_field(group, key).is_none() {
            out.push(format!("{path}: {at}: `{key}` is required"));
        }
    }
    if let Some(interval) = str_field(group, "interval") {
        match Duration::parse(interval) {
            Ok(d) if d.as_millis() > 0 && d.as_millis() % 10_000 == 0 => {}
            _ => out.push(format!(
                "{path}: {at}: interval `{interval}` is not a multiple of Grafana's 10s scheduler tick"
            )),
        }
    }
    let mut uids = BTreeSet::new();
    for (i, rule) in group["rules"].as_array().into_iter().flatten().enumerate() {
        let at = format!("{at}.rules[{i}]");
        match str_field(rule, "uid") {
            Some(uid) if !is_valid_uid(uid) => out.push(format!(
                "{path}: {at}: uid `{uid}` is not 1-40 characters of [a-zA-Z0-9_-]"
            )),
            Some(uid) if !uids.insert(uid.to_string()) => {
                out.push(format!("{path}: {at}: uid `{uid}` is used twice"))
            }
            Some(_) => {}
            None => out.push(format!("{path}: {at}: `uid` is missing")),
        }
        if str_field(rule, "title").is_none() {
            out.push(format!("{path}: {at}: `title` is missing"));
        }
        match str_field(rule, "for") {
            Some(text) if Duration::parse(text).is_err() => {
                out.push(format!("{path}: {at}: `for: {text}` is not a duration"))
            }
            Some(_) => {}
            None => out.push(format!("{path}: {at}: `for` must always be written")),
        }
        for (key, states) in [
            ("noDataState", ["NoData", "Alerting", "OK"]),
            ("execErrState", ["Alerting", "Error", "OK"]),
        ] {
            if let Some(state) = rule.get(key) {
                if !states.iter().any(|s| state == s) {
                    out.push(format!(
                        "{path}: {at}: {key} {state} is not one of {states:?}"
                    ));
                }
            }
        }
        check_dollars_escaped(path, &format!("{at}.labels: "), &rule["labels"], out);

        let data = rule["data"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if data.is_empty() {
            out.push(format!("{path}: {at}: no data"));
        }
        let mut ref_ids = BTreeSet::new();
        for (j, query) in data.iter().enumerate() {
            let at = format!("{at}.data[{j}]");
            let Some(ref_id) = str_field(query, "refId") else {
                out.push(format!("{path}: {at}: `refId` is missing"));
                continue;
            };
            let datasource = str_field(query, "datasourceUid").unwrap_or_default();
            if datasource == EXPRESSIONS {
                let expression = str_field(&query["model"], "expression").unwrap_or_default();
                if !ref_ids.contains(expression) {
                    out.push(format!(
                        "{path}: {at}: expression `{expression}` is not an earlier refId"
                    ));
                }
                if ![
                    "reduce",
                    "threshold",
                    "math",
                    "resample",
                    "classic_conditions",
                ]
                .contains(&str_field(&query["model"], "type").unwrap_or_default())
                {
                    out.push(format!(
                        "{path}: {at}: unknown expression type {}",
                        query["model"]["type"]
                    ));
                }
            } else {
                if !datasources.uids.contains(datasource) {
                    out.push(format!("{path}: {at}: datasourceUid `{datasource}` is not a provisioned datasource"));
                }
                let range = &query["relativeTimeRange"];
                match (range["from"].as_u64(), range["to"].as_u64()) {
                    (Some(from), Some(to)) if from > to => {}
                    _ => out.push(format!(
                        "{path}: {at}: a query needs relativeTimeRange {{from, to}} with from > to (\"invalid relative time range\")"
                    )),
                }
            }
            if query["model"].get("refId").is_some_and(|id| id != ref_id) {
                out.push(format!(
                    "{path}: {at}: model.refId differs from refId `{ref_id}`"
                ));
            }
            ref_ids.insert(ref_id.to_string());
        }
        match str_field(rule, "condition") {
            Some(condition) if !ref_ids.contains(condition) => out.push(format!(
                "{path}: {at}: condition `{condition}` is not a refId of the data"
            )),
            Some(_) => {}
            None => out.push(format!("{path}: {at}: `condition` is missing")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml_file(path: &str, text: &str, secret: bool) -> RenderedFile {
        RenderedFile {
            path: path.into(),
            contents: text.as_bytes().to_vec(),
            secret,
        }
    }

    #[test]
    fn dollar_escaping() {
        assert!(!has_unescaped_dollar("a$$b$$$$"));
        assert!(has_unescaped_dollar("a$b"));
        assert!(has_unescaped_dollar("a$$$"));
    }

    #[test]
    fn violations_are_reported() {
        let files = vec![
            yaml_file(
                "grafana/provisioning/datasources/x.yaml",
                "apiVersion: 1\ndatasources:\n- {name: P, type: prometheus, uid: p, isDefault: true}\n- {name: Q, type: loki, uid: q, isDefault: true, secureJsonData: {password: a$b}}\n",
                false,
            ),
            yaml_file(
                "grafana/provisioning/dashboards/x.yaml",
                "apiVersion: 1\nproviders:\n- {name: a, type: file, options: {path: /var/lib/grafana/dashboards/general}}\n",
                false,
            ),
            yaml_file(
                "grafana/dashboards/other/d.json",
                r#"{"id": 3, "uid": "x y", "title": "", "__inputs": [],
                    "templating": {"list": [{"name": "ds", "type": "datasource"}]},
                    "panels": [{"datasource": {"uid": "${DS_P}"}, "targets": [{"datasource": {"uid": "nope"}}]},
                               {"datasource": "$ds", "title": "${missing} ${__interval} ${ds:raw}"}]}"#,
                false,
            ),
            yaml_file(
                "grafana/provisioning/alerting/x.yaml",
                "apiVersion: 1
contactPoints:
- name: a
  receivers:
  - {uid: a, type: webhook, settings: {url: 'http://x/$y'}}
  - {uid: a, type: email, settings: {}}
  - {uid: w, type: webhook, settings: {url: 'http://x', username: u, password: p,
     authorization_scheme: Bearer, authorization_credentials: t}}
policies:
- {receiver: b, routes: [{receiver: c, matchers: ['alertname']}]}
groups:
- name: g
  folder: f
  interval: 15s
  rules:
  - uid: r
    title: R
    condition: D
    data:
    - {refId: A, datasourceUid: p, model: {expr: up}}
    - {refId: B, datasourceUid: __expr__, model: {type: reduce, expression: Z}}
",
                false,
            ),
        ];
        let violations = check_tree(&files).join("\n");
        for expected in [
            "2 datasources are marked isDefault",
            "has secureJsonData but the file is not written as a secret",
            "`a$b` has a `$`",
            "no dashboard provider reads /var/lib/grafana/dashboards/other",
            "no title",
            "uid Some(\"x y\")",
            "id must be null",
            "`__inputs` left in",
            "`${DS_P}` is an unresolved export placeholder",
            "`${missing}` refers to no template variable",
            "target datasource `nope` is not a provisioned datasource",
            "panel datasource `${DS_P}` refers to no template variable",
            "not written as a secret",
            "settings: `http://x/$y`",
            "username/password or authorization_*, not both",
            "uid `a` is used twice",
            "settings` is missing or empty",
            "receiver `b` is not a contact point",
            "receiver `c` is not a contact point",
            "matcher \"alertname\"",
            "interval `15s` is not a multiple",
            "`for` must always be written",
            "needs relativeTimeRange",
            "expression `Z` is not an earlier refId",
            "condition `D` is not a refId",
        ] {
            assert!(
                violations.contains(expected),
                "missing `{expected}` in:\n{violations}"
            );
        }
        assert!(
            !violations.contains("${__interval}") && !violations.contains("${ds:raw}"),
            "{violations}"
        );
        assert!(!violations.contains("`$ds`"), "{violations}");
    }

    /// The checker itself against real dashboards: once prepared they must pass.
    #[test]
    fn prepared_fixture_dashboards_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/exported-dashboards");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            println!("skipping: fixture directory {} is missing", dir.display());
            return;
        };
        let mut files = vec![
            yaml_file(
                "grafana/provisioning/datasources/x.yaml",
                "apiVersion: 1\ndatasources:\n- {name: Prometheus, type: prometheus, uid: prometheus, isDefault: true}\n",
                false,
            ),
            yaml_file(
                "grafana/provisioning/dashboards/x.yaml",
                "apiVersion: 1\nproviders:\n- {name: a, type: file, options: {path: /var/lib/grafana/dashboards/general}}\n",
                false,
            ),
        ];
        let mut names: Vec<_> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        for path in names {
            let json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let prepared = crate::dashboards::prepare(json, &[]).unwrap();
            let name = path.file_name().unwrap().to_str().unwrap();
            files.push(RenderedFile::new(
                format!("grafana/dashboards/general/{name}"),
                serde_json::to_string_pretty(&prepared).unwrap(),
            ));
        }
        // unbound-full.json was exported with two targets still pointing at its author's own
        // datasource (uid 000000001): prepare() must retarget those to the provisioned one.
        let violations = check_tree(&files);
        assert!(violations.is_empty(), "{}", violations.join("\n"));
    }
}
