//! The alerting file: contact points, notification policies and, with
//! `alerting.engine: grafana`, the alert rules, in one provisioning file.

use anyhow::Context;
use serde::Serialize;

use super::contact_points::{self, ContactPoint};
use super::policies::{self, Policy};
use super::rules::{self, RuleGroup};
use crate::model::{AlertEngine, Stack};
use crate::render::RenderedFile;

pub const ALERTING_FILE: &str = "grafana/provisioning/alerting/monstack.yaml";

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

pub(super) fn alerting(stack: &Stack) -> anyhow::Result<Option<RenderedFile>> {
    let grafana_rules = stack.alerting.engine == AlertEngine::Grafana && !stack.alerts.is_empty();
    if stack.channels.is_empty() && !grafana_rules {
        return Ok(None);
    }
    let contact_points = contact_points::contact_points(stack)?;
    let policies = policies::policies(stack)?;
    let groups = if grafana_rules {
        vec![rules::group(stack)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::grafana::checks::check_tree;
    use crate::render::grafana::render;
    use crate::render::grafana::tests::{file, paths, yaml};
    use crate::render::testkit;

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
        // The two alerts of the stack and the built-in pack.
        let builtin = crate::render::rules::builtin_alerts(&stack).len();
        assert!(builtin > 0);
        assert_eq!(
            alerting["groups"][0]["rules"].as_array().unwrap().len(),
            2 + builtin
        );
        assert!(check_tree(&files).is_empty(), "{:?}", check_tree(&files));

        stack.alerting.engine = AlertEngine::Alertmanager;
        assert!(!paths(&render(&stack).unwrap()).contains(&ALERTING_FILE));
    }
}
