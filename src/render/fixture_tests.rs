//! Snapshot tests of the whole rendered tree for the manifest fixtures in
//! `tests/fixtures/manifests/` (minimal, the full example, the Grafana engine), loaded through
//! the real manifest loader, plus the Grafana reference checks on each.

use std::path::{Path, PathBuf};

use crate::manifest::{self, Source};
use crate::model::Stack;

pub const FIXTURES: [&str; 6] = [
    "minimal",
    "full",
    "grafana-engine",
    "exporters",
    "remote-write",
    "edge",
];

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(name)
}

/// Loads a fixture with a fixed environment, so secrets in the snapshots are stable.
pub fn load_fixture(name: &str) -> Stack {
    let dir = fixture_dir(name);
    let text = std::fs::read_to_string(dir.join("monstack.yaml")).unwrap();
    let env = |var: &str| match var {
        "DINGTALK_WEBHOOK" => {
            Some("https://oapi.dingtalk.com/robot/send?access_token=T0KEN".to_string())
        }
        "SLACK_WEBHOOK" => Some("https://hooks.slack.com/services/T0/B0/XXXX".to_string()),
        "SMTP_PASSWORD" => Some("smtp-pass".to_string()),
        _ => None,
    };
    let source = Source {
        text: &text,
        display_name: "monstack.yaml",
        root: &dir,
    };
    let mut stack =
        manifest::load(&source, &env).unwrap_or_else(|d| panic!("fixture {name}:\n{d}"));
    stack.root = PathBuf::from("/project");
    stack
}

/// The tree as one reviewable text: every file with its path and mode. Bundled dashboards are
/// large and have their own tests, so they appear as a line with their size.
fn snapshot_text(stack: &Stack) -> String {
    let tree = super::render(stack).unwrap();
    let mut out = String::new();
    for dir in &tree.dirs {
        out.push_str(&format!("=== {dir}/ (directory)\n"));
    }
    for file in &tree.files {
        let mode = format!("{:04o}", crate::files::mode_for(file.secret));
        out.push_str(&format!("=== {} ({mode})\n", file.path));
        let bundled = stack.dashboards.iter().any(|d| {
            matches!(d.source, crate::model::DashboardSource::Bundled(_))
                && file.path.ends_with(&format!("/{}", d.file_name))
        });
        if bundled {
            out.push_str(&format!(
                "<bundled dashboard, {} bytes>\n",
                file.contents.len()
            ));
        } else {
            out.push_str(file.text());
            if !file.text().ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn rendered_trees_match_their_snapshots() {
    for name in FIXTURES {
        let stack = load_fixture(name);
        insta::assert_snapshot!(format!("tree-{name}"), snapshot_text(&stack));
    }
}

#[test]
fn rendering_is_deterministic() {
    for name in FIXTURES {
        let a = super::render(&load_fixture(name)).unwrap();
        let b = super::render(&load_fixture(name)).unwrap();
        assert_eq!(a, b, "{name} renders differently twice");
    }
}

#[test]
fn rendered_grafana_files_follow_the_reference() {
    for name in FIXTURES {
        let tree = super::render(&load_fixture(name)).unwrap();
        let violations = super::grafana::checks::check_tree(&tree.files);
        assert!(violations.is_empty(), "{name}:\n{}", violations.join("\n"));
    }
}

/// The two engines side by side: the same alert gives the same expression, `for`, labels,
/// annotations and receivers in Prometheus rules + Alertmanager and in Grafana.
#[test]
fn both_engines_agree_on_every_alert() {
    let am = load_fixture("grafana-engine");
    let mut am_stack = am.clone();
    am_stack.alerting.engine = crate::model::AlertEngine::Alertmanager;
    am_stack.alertmanager = Some(crate::model::Service {
        image: "prom/alertmanager".into(),
        bind: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        port: 9093,
    });
    let am_tree = super::render(&am_stack).unwrap();
    let gf_tree = super::render(&am).unwrap();

    let rules: serde_yaml::Value = serde_yaml::from_str(
        am_tree
            .get("prometheus/rules/monstack-alerts.yml")
            .unwrap()
            .text(),
    )
    .unwrap();
    let alerting: serde_yaml::Value = serde_yaml::from_str(
        gf_tree
            .get("grafana/provisioning/alerting/monstack.yaml")
            .unwrap()
            .text(),
    )
    .unwrap();
    let routes: serde_yaml::Value =
        serde_yaml::from_str(am_tree.get("alertmanager/alertmanager.yml").unwrap().text()).unwrap();

    // The built-in pack goes to Grafana as well: compare it alert by alert too.
    let builtin: serde_yaml::Value = serde_yaml::from_str(
        am_tree
            .get("prometheus/rules/monstack-builtin.yml")
            .unwrap()
            .text(),
    )
    .unwrap();
    // (The Alertmanager variant also runs Alertmanager, so its pack has Alertmanager's rules,
    // which the Grafana stack lacks: compare the rules both have.)
    let builtin_alerts = crate::render::rules::builtin_alerts(&am);
    assert!(!builtin_alerts.is_empty());
    let mut prom_rules = rules["groups"][0]["rules"].as_sequence().unwrap().clone();
    let builtin_rules: Vec<serde_yaml::Value> = builtin["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|r| {
            builtin_alerts
                .iter()
                .any(|a| r["alert"].as_str() == Some(&a.name))
        })
        .cloned()
        .collect();
    assert_eq!(builtin_alerts.len(), builtin_rules.len());
    prom_rules.extend(builtin_rules);
    let grafana_rules = alerting["groups"][0]["rules"].as_sequence().unwrap();
    assert_eq!(prom_rules.len(), am.alerts.len() + builtin_alerts.len());
    assert_eq!(grafana_rules.len(), prom_rules.len());
    for alert in am.alerts.iter().chain(&builtin_alerts) {
        let p = prom_rules
            .iter()
            .find(|r| r["alert"].as_str() == Some(&alert.name))
            .unwrap();
        let g = grafana_rules
            .iter()
            .find(|r| r["title"].as_str() == Some(&alert.name))
            .unwrap();
        let query = g["data"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|d| d["refId"] == "A")
            .unwrap();
        assert_eq!(
            p["expr"], query["model"]["expr"],
            "{}: expression",
            alert.name
        );
        assert_eq!(p["for"], g["for"], "{}: for", alert.name);
        assert_eq!(p["labels"], g["labels"], "{}: labels", alert.name);
        let grafana_summary = g["annotations"]["summary"]
            .as_str()
            .unwrap()
            .replace("$values.B.Value", "$value");
        assert_eq!(
            p["annotations"]["summary"].as_str().unwrap(),
            grafana_summary,
            "{}: summary",
            alert.name
        );

        // Receivers: the channels an alert reaches are the same in both routing trees.
        let am_receivers = receivers_for(&routes["route"], &alert.name, "matchers", |m| {
            m.as_str().unwrap().to_string()
        });
        let gf_receivers = receivers_for(&alerting["policies"][0], &alert.name, "matchers", |m| {
            m.as_str().unwrap().to_string()
        });
        assert_eq!(am_receivers, gf_receivers, "{}: receivers", alert.name);
        let expected: Vec<String> = if alert.notify.is_empty() {
            vec!["monstack-default".into()]
        } else {
            alert.notify.clone()
        };
        assert_eq!(am_receivers, expected, "{}: receivers", alert.name);
    }
}

/// Which receivers a routing tree (Alertmanager route or Grafana policy) sends `alertname` to:
/// children matching `alertname=~"A|B"`, or the root's receiver when none matches.
fn receivers_for(
    root: &serde_yaml::Value,
    alertname: &str,
    key: &str,
    matcher: impl Fn(&serde_yaml::Value) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    for route in root["routes"].as_sequence().cloned().unwrap_or_default() {
        let matches = route[key]
            .as_sequence()
            .unwrap()
            .iter()
            .map(&matcher)
            .any(|m| {
                let names = m.trim_start_matches("alertname=~").trim_matches('"');
                names.split('|').any(|n| n == alertname)
            });
        if matches {
            out.push(route["receiver"].as_str().unwrap().to_string());
        }
    }
    if out.is_empty() {
        out.push(root["receiver"].as_str().unwrap().to_string());
    }
    out
}
