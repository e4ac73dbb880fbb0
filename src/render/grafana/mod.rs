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
//!
//! One module per provisioning kind: `datasources`, `dashboards` (providers and dashboard
//! files) and `alerting` (one file of `contact_points`, `policies` and Grafana-managed `rules`);
//! `expand` holds the `$`-escaping they share. This module only gathers their files and
//! re-exports the paths others use.

mod alerting;
mod contact_points;
mod dashboards;
mod datasources;
mod expand;
mod policies;
mod rules;

#[cfg(test)]
pub(crate) mod checks;

use super::RenderedFile;
use crate::model::Stack;

pub use alerting::ALERTING_FILE;
pub use contact_points::DEFAULT_CONTACT_POINT;
pub use dashboards::{DASHBOARDS_DIR, DASHBOARDS_MOUNT, DASHBOARD_PROVIDERS_FILE};
pub use datasources::DATASOURCES_FILE;
pub use rules::{RULE_FOLDER, RULE_GROUP};

/// Grafana's provisioning. With `grafana: false`, dashboards and datasources the manifest
/// lists are still rendered (for a Grafana elsewhere, or for later; the loader warns), but no
/// alerting.
pub fn render(stack: &Stack) -> anyhow::Result<Vec<RenderedFile>> {
    if !stack.grafana.enabled && stack.dashboards.is_empty() && stack.datasources.is_empty() {
        return Ok(Vec::new());
    }
    let mut files = vec![datasources::datasources(stack)?];
    files.extend(dashboards::dashboards(stack)?);
    if stack.grafana.enabled {
        files.extend(alerting::alerting(stack)?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::checks::check_tree;
    use super::*;
    use crate::model::{Channel, ChannelKind, Dashboard, DashboardSource};
    use crate::render::testkit;

    pub(super) fn file<'a>(files: &'a [RenderedFile], path: &str) -> &'a RenderedFile {
        files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path} in {:?}", paths(files)))
    }

    pub(super) fn paths(files: &[RenderedFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    pub(super) fn yaml(file: &RenderedFile) -> Value {
        crate::manifest::yaml::from_str(file.text()).unwrap()
    }

    pub(super) fn dashboard(folder: Option<&str>, file_name: &str, json: Value) -> Dashboard {
        Dashboard {
            source: DashboardSource::Bundled(file_name.into()),
            folder: folder.map(str::to_string),
            file_name: file_name.into(),
            json,
        }
    }

    pub(super) fn go_runtime() -> Value {
        crate::dashboards::prepare(crate::dashboards::bundled("go-runtime").unwrap(), &[]).unwrap()
    }

    /// The stacks of the testkit, with dashboards, and with `$` in every place one can hide.
    pub(super) fn stacks() -> Vec<(&'static str, Stack)> {
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
}
