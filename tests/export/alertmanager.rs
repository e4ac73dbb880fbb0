//! The exported AlertmanagerConfig turned back into alertmanager.yml form the way the operator
//! merges it (receivers named `<namespace>/<object>/<receiver>`, the object's route under the
//! root route with a `namespace` matcher and `continue: true`, Secret references resolved),
//! then `amtool check-config` and `amtool config routes test` on it.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Map, Value as Json};

use super::{every_fixture, export, run_ok, Exported};
use crate::support::testsupport::{self, pinned};

/// `authPassword` -> `auth_password`; `requireTLS` -> `require_tls`; `apiURL` -> `api_url`.
fn snake(key: &str) -> String {
    match key {
        "requireTLS" => return "require_tls".into(),
        "apiURL" => return "api_url".into(),
        "urlSecret" => return "url".into(),
        _ => {}
    }
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A receiver's fields in alertmanager.yml form, `{name, key}` references read from `secrets`.
fn convert(value: &Json, secrets: &BTreeMap<String, BTreeMap<String, String>>) -> Json {
    match value {
        Json::Object(map)
            if map.len() == 2 && map.contains_key("name") && map.contains_key("key") =>
        {
            let name = map["name"].as_str().unwrap();
            let key = map["key"].as_str().unwrap();
            let secret = secrets
                .get(name)
                .and_then(|s| s.get(key))
                .unwrap_or_else(|| panic!("Secret {name} has no key {key}"));
            Json::String(secret.clone())
        }
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (snake(k), convert(v, secrets)))
                .collect::<Map<_, _>>(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(|v| convert(v, secrets)).collect()),
        other => other.clone(),
    }
}

fn matcher(m: &Json) -> String {
    let value = m["value"]
        .as_str()
        .unwrap()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    // No matchType is equality, as the operator reads it.
    let op = m["matchType"].as_str().unwrap_or("=");
    format!("{}{op}\"{value}\"", m["name"].as_str().unwrap())
}

fn route(route: &Json, prefix: &str) -> Json {
    let mut out = Map::new();
    out.insert(
        "receiver".into(),
        json!(format!("{prefix}{}", route["receiver"].as_str().unwrap())),
    );
    for (from, to) in [
        ("groupBy", "group_by"),
        ("groupWait", "group_wait"),
        ("groupInterval", "group_interval"),
        ("repeatInterval", "repeat_interval"),
        ("continue", "continue"),
    ] {
        if let Some(value) = route.get(from) {
            out.insert(to.into(), value.clone());
        }
    }
    if let Some(matchers) = route["matchers"].as_array() {
        out.insert(
            "matchers".into(),
            json!(matchers.iter().map(matcher).collect::<Vec<_>>()),
        );
    }
    if let Some(children) = route["routes"].as_array() {
        out.insert(
            "routes".into(),
            json!(children
                .iter()
                .map(|c| self::route(c, prefix))
                .collect::<Vec<_>>()),
        );
    }
    Json::Object(out)
}

/// alertmanager.yml as the operator would generate it from this export alone.
pub fn alertmanager_yml(exported: &Exported) -> Option<Json> {
    let secrets: BTreeMap<String, BTreeMap<String, String>> = exported
        .of_kind("Secret")
        .into_iter()
        .map(|(_, s)| {
            let data = s["stringData"].as_object().unwrap();
            (
                s["metadata"]["name"].as_str().unwrap().to_string(),
                data.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
            )
        })
        .collect();
    let configs = exported.of_kind("AlertmanagerConfig");
    let (_, config) = configs.first()?;
    let namespace = config["metadata"]["namespace"].as_str().unwrap();
    let prefix = format!(
        "{namespace}/{}/",
        config["metadata"]["name"].as_str().unwrap()
    );
    let mut top = route(&config["spec"]["route"], &prefix);
    let matchers = top["matchers"].as_array_mut().unwrap();
    matchers.insert(0, json!(format!("namespace=\"{namespace}\"")));
    top["continue"] = json!(true);
    let mut receivers = vec![json!({"name": "null"})];
    for receiver in config["spec"]["receivers"].as_array().unwrap() {
        let mut converted = convert(receiver, &secrets);
        converted["name"] = json!(format!("{prefix}{}", receiver["name"].as_str().unwrap()));
        receivers.push(converted);
    }
    Some(json!({
        "route": {"receiver": "null", "group_by": ["namespace"], "routes": [top]},
        "receivers": receivers,
    }))
}

#[test]
fn alertmanager_config_receivers_pass_amtool_and_route_like_alertmanager_yml() {
    let Some(amtool) = pinned(testsupport::AMTOOL) else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for exported in every_fixture() {
        let Some(config) = alertmanager_yml(&exported) else {
            continue;
        };
        let path = temp.path().join(format!("{}.yml", exported.name));
        std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
        let out = run_ok(
            Command::new(&amtool).arg("check-config").arg(&path),
            &format!("amtool check-config of {}", exported.name),
        );
        assert!(!out.contains("WARNING"), "{out}");
        checked += 1;
    }
    assert!(
        checked >= 1,
        "too few AlertmanagerConfigs to prove anything: {checked}"
    );

    // Where alerts go, by amtool's own routing.
    let full = export("full", &[]);
    let path = temp.path().join("routes.yml");
    std::fs::write(
        &path,
        serde_yaml::to_string(&alertmanager_yml(&full).unwrap()).unwrap(),
    )
    .unwrap();
    let routes = |labels: &[&str]| {
        run_ok(
            Command::new(&amtool)
                .args(["config", "routes", "test", "--config.file"])
                .arg(&path)
                .args(labels),
            "amtool config routes test",
        )
        // amtool's own warnings go to stderr, after the answer.
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
    };
    let ours = ["namespace=monitoring", "monstack_project=shop"];
    assert_eq!(
        routes(&[&ours[..], &["alertname=TooManyGoroutines"]].concat()),
        "monitoring/shop-channels/ops-mail,monitoring/shop-channels/ops-ding"
    );
    assert_eq!(
        routes(&[&ours[..], &["alertname=OrderDown"]].concat()),
        "monitoring/shop-channels/monstack-default"
    );
    // The cluster's other alerts in the namespace are not monstack's to deliver.
    assert_eq!(
        routes(&["namespace=monitoring", "alertname=KubePodCrashLooping"]),
        "null"
    );
}
