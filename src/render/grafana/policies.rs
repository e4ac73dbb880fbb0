//! The notification policy tree: the same routing as the Alertmanager config.

use serde::Serialize;

use super::contact_points::{channel_named, DEFAULT_CONTACT_POINT};
use crate::model::{Channel, Stack};

/// The notification policy tree of org 1. Policy keys are snake_case in Grafana's format.
#[derive(Serialize)]
pub(super) struct Policy {
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

/// The policies of org 1: none without channels, else one tree rooted at the default receiver.
pub(super) fn policies(stack: &Stack) -> anyhow::Result<Vec<Policy>> {
    Ok(match stack.channels.first() {
        None => vec![],
        Some(first) => vec![policy(stack, first)?],
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::grafana::checks::check_tree;
    use crate::render::grafana::render;
    use crate::render::grafana::tests::{file, yaml};
    use crate::render::grafana::ALERTING_FILE;
    use crate::render::testkit;

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
}
