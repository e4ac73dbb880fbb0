//! The channels as an `AlertmanagerConfig` (monitoring.coreos.com/v1alpha1), with the routing of
//! `alertmanager.yml`: one receiver per channel, a root receiver `monstack-default` joining the
//! default channels, and one child route per channel for the alerts that name it
//! (`alertname=~"A|B"`, `continue: true`).
//!
//! Secrets (the SMTP password, webhook and Slack URLs) are references to one Secret the export
//! writes beside it. DingTalk goes through the agent's relay in the cluster, as on Docker. The
//! route matches `monstack_project` (every exported rule carries it), so these channels get the
//! stack's alerts and none of the cluster's. `monstack alert test`'s routes do not carry over.

use std::collections::BTreeMap;

use serde::Serialize;

use super::objects::{Object, SecretBody, SecretKey, Spec};
use super::{Cluster, Rendered, PROJECT_ALERT_LABEL};
use crate::model::{AlertEngine, Channel, ChannelKind};
use crate::render::alertmanager::DEFAULT_RECEIVER;

#[derive(Serialize)]
struct AlertmanagerConfigSpec {
    route: Route,
    receivers: Vec<Receiver>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Route {
    receiver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat_interval: Option<String>,
    matchers: Vec<Matcher>,
    #[serde(rename = "continue", skip_serializing_if = "std::ops::Not::not")]
    continue_: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Matcher {
    name: String,
    value: String,
    /// `None` is equality, the default: a bare `=` is YAML 1.1's value tag, which PyYAML-based
    /// tools refuse to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    match_type: Option<&'static str>,
}

#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct Receiver {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    email_configs: Vec<EmailConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    webhook_configs: Vec<WebhookConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    slack_configs: Vec<SlackConfig>,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct EmailConfig {
    to: String,
    from: String,
    smarthost: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_password: Option<SecretKey>,
    #[serde(rename = "requireTLS")]
    require_tls: bool,
    send_resolved: bool,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct WebhookConfig {
    /// Only the agent's relay, which holds no token.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url_secret: Option<SecretKey>,
    #[serde(skip_serializing_if = "is_zero")]
    max_alerts: u32,
    send_resolved: bool,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct SlackConfig {
    #[serde(rename = "apiURL")]
    api_url: SecretKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    send_resolved: bool,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// The AlertmanagerConfig and its Secret; nothing without channels or with the Grafana engine
/// (Grafana then delivers, see `grafana.rs`).
pub(super) fn objects(cluster: &Cluster) -> anyhow::Result<Vec<Rendered>> {
    let stack = cluster.stack;
    if stack.alerting.engine != AlertEngine::Alertmanager || stack.channels.is_empty() {
        return Ok(vec![]);
    }
    let secret_name = cluster.name("alertmanager");
    let mut secrets = BTreeMap::new();
    let mut channel_receivers = Vec::new();
    for channel in &stack.channels {
        channel_receivers.push(receiver(cluster, channel, &secret_name, &mut secrets)?);
    }

    let mut default = Receiver {
        name: DEFAULT_RECEIVER.into(),
        ..Receiver::default()
    };
    for receiver in &channel_receivers {
        if stack.alerting.default_notify.contains(&receiver.name) {
            default
                .email_configs
                .extend(receiver.email_configs.iter().cloned());
            default
                .webhook_configs
                .extend(receiver.webhook_configs.iter().cloned());
            default
                .slack_configs
                .extend(receiver.slack_configs.iter().cloned());
        }
    }
    let routes = stack
        .channels
        .iter()
        .filter_map(|channel| {
            let alerts: Vec<&str> = stack
                .alerts
                .iter()
                .filter(|alert| alert.notify.contains(&channel.name))
                .map(|alert| alert.name.as_str())
                .collect();
            (!alerts.is_empty()).then(|| Route {
                receiver: channel.name.clone(),
                // Alert names are [A-Za-z0-9_]: nothing to escape in the regex.
                matchers: vec![Matcher {
                    name: "alertname".into(),
                    value: alerts.join("|"),
                    match_type: Some("=~"),
                }],
                continue_: true,
                ..Route::default()
            })
        })
        .collect();
    let alerting = &stack.alerting;
    let route = Route {
        receiver: DEFAULT_RECEIVER.into(),
        group_by: alerting.group_by.clone(),
        group_wait: Some(alerting.group_wait.to_string()),
        group_interval: Some(alerting.group_interval.to_string()),
        repeat_interval: Some(alerting.repeat_interval.to_string()),
        matchers: vec![Matcher {
            name: PROJECT_ALERT_LABEL.into(),
            value: stack.project.clone(),
            match_type: None,
        }],
        continue_: false,
        routes,
    };
    let mut receivers = vec![default];
    receivers.extend(channel_receivers);

    let mut out = vec![Rendered::new(&Object {
        api_version: "monitoring.coreos.com/v1alpha1",
        kind: "AlertmanagerConfig",
        metadata: cluster.meta(cluster.name("channels")),
        body: Spec {
            spec: AlertmanagerConfigSpec { route, receivers },
        },
    })?];
    if !secrets.is_empty() {
        out.push(Rendered::new(&Object {
            api_version: "v1",
            kind: "Secret",
            metadata: cluster.meta(secret_name),
            body: SecretBody::opaque(secrets),
        })?);
    }
    Ok(out)
}

fn receiver(
    cluster: &Cluster,
    channel: &Channel,
    secret_name: &str,
    secrets: &mut BTreeMap<String, String>,
) -> anyhow::Result<Receiver> {
    let mut secret = |key: String, value: &str| {
        secrets.insert(key.clone(), value.to_string());
        SecretKey {
            name: secret_name.to_string(),
            key,
        }
    };
    let mut receiver = Receiver {
        name: channel.name.clone(),
        ..Receiver::default()
    };
    let send_resolved = channel.send_resolved;
    match &channel.kind {
        ChannelKind::Email { to } => {
            let Some(smtp) = &cluster.stack.smtp else {
                anyhow::bail!(
                    "internal error: email channel {} without smtp",
                    channel.name
                );
            };
            receiver.email_configs.push(EmailConfig {
                to: to.join(", "),
                from: smtp.from.clone(),
                smarthost: smtp.smarthost.clone(),
                auth_username: smtp.username.clone(),
                auth_password: smtp
                    .password
                    .as_deref()
                    .map(|p| secret("smtp-password".into(), p)),
                require_tls: smtp.require_tls,
                send_resolved,
            });
        }
        ChannelKind::Webhook { url, max_alerts } => {
            receiver.webhook_configs.push(WebhookConfig {
                url: None,
                url_secret: Some(secret(format!("{}-url", channel.name), url)),
                max_alerts: *max_alerts,
                send_resolved,
            });
        }
        ChannelKind::Slack {
            url,
            channel: slack_channel,
            username,
        } => {
            receiver.slack_configs.push(SlackConfig {
                api_url: secret(format!("{}-url", channel.name), url),
                channel: slack_channel.clone(),
                username: username.clone(),
                send_resolved,
            });
        }
        // Alertmanager has no DingTalk receiver: the agent relays (and signs) for it.
        ChannelKind::DingTalk { .. } => {
            receiver.webhook_configs.push(WebhookConfig {
                url: Some(format!("{}/dingtalk/{}", cluster.agent_url(), channel.name)),
                url_secret: None,
                max_alerts: 0,
                send_resolved,
            });
        }
    }
    Ok(receiver)
}
