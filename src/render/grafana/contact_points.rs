//! Contact points: one per channel, plus the default one that delivers to
//! `alerting.default_notify`. Receiver settings are `$`-expanded by Grafana.
//!
//! A DingTalk channel with a signing secret is a webhook to the monstack agent, which relays
//! only requests with its relay token: the webhook sends it (`authorization_credentials`, one
//! of the webhook's secure settings: Grafana stores it encrypted and never shows it back).

use std::collections::BTreeSet;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use super::expand::{escape_dollars, json_map};
use crate::dashboards::{is_valid_uid, slug, stable_hash, MAX_UID_LEN};
use crate::model::{Channel, ChannelKind, Stack, AGENT, AGENT_PORT};

/// Name of the contact point for alerts that name no channel.
pub const DEFAULT_CONTACT_POINT: &str = "monstack-default";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContactPoint {
    org_id: u32,
    name: String,
    receivers: Vec<Receiver>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Receiver {
    uid: String,
    #[serde(rename = "type")]
    kind: &'static str,
    /// Expanded by Grafana: every string in it is `$`-escaped.
    settings: Map<String, Value>,
    disable_resolve_message: bool,
}

/// The contact points of org 1: each channel's, then the default one when
/// `alerting.default_notify` names channels.
pub(super) fn contact_points(stack: &Stack) -> anyhow::Result<Vec<ContactPoint>> {
    if stack
        .channels
        .iter()
        .any(|c| c.name == DEFAULT_CONTACT_POINT)
    {
        anyhow::bail!("the channel name `{DEFAULT_CONTACT_POINT}` is reserved for monstack's default Grafana contact point");
    }

    let relay_token = crate::render::agent::relay_token(stack);
    let relay_token = relay_token.as_deref();
    let mut uids = BTreeSet::new();
    let mut contact_points: Vec<ContactPoint> = stack
        .channels
        .iter()
        .map(|channel| ContactPoint {
            org_id: 1,
            name: channel.name.clone(),
            receivers: vec![receiver(
                channel,
                receiver_uid(&channel.name, &mut uids),
                relay_token,
            )],
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
                    relay_token,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        contact_points.push(ContactPoint {
            org_id: 1,
            name: DEFAULT_CONTACT_POINT.into(),
            receivers,
        });
    }
    Ok(contact_points)
}

pub(super) fn channel_named<'a>(stack: &'a Stack, name: &str) -> anyhow::Result<&'a Channel> {
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

/// `relay_token`: the agent's (see [`crate::render::agent::relay_token`]), for the channels it
/// relays.
fn receiver(channel: &Channel, uid: String, relay_token: Option<&str>) -> Receiver {
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
        } => {
            let mut settings = json_map([
                (
                    "url",
                    format!("http://{AGENT}:{AGENT_PORT}/dingtalk/{}", channel.name).into(),
                ),
                ("httpMethod", "POST".into()),
            ]);
            // Every stack with a DingTalk channel has a token; without one the agent refuses.
            if let Some(token) = relay_token {
                settings.insert("authorization_scheme".into(), "Bearer".into());
                settings.insert("authorization_credentials".into(), token.into());
            }
            ("webhook", settings)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::grafana::render;
    use crate::render::grafana::tests::{file, yaml};
    use crate::render::grafana::ALERTING_FILE;
    use crate::render::testkit;

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
        let token = crate::render::agent::relay_token(&testkit::full()).unwrap();
        assert_eq!(
            receiver("ops-ding"),
            serde_json::json!({"uid": "ops-ding", "type": "webhook",
                "settings": {"url": "http://agent:8060/dingtalk/ops-ding", "httpMethod": "POST",
                             "authorization_scheme": "Bearer", "authorization_credentials": token},
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
    fn webhooks_to_the_agent_carry_its_relay_token_in_a_secret_file() {
        let stack = testkit::full_grafana_engine();
        let token = crate::render::agent::relay_token(&stack).unwrap();
        let files = render(&stack).unwrap();
        let rendered = file(&files, ALERTING_FILE);
        assert!(rendered.secret, "it holds the relay token");
        let alerting = yaml(rendered);
        let relayed: Vec<&serde_json::Value> = alerting["contactPoints"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["receivers"].as_array().unwrap())
            .filter(|r| {
                r["settings"]["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("http://agent:8060/dingtalk/"))
            })
            .collect();
        // The channel's own contact point and its receiver in the default one.
        assert_eq!(relayed.len(), 2, "{alerting:#}");
        for receiver in relayed {
            assert_eq!(receiver["settings"]["authorization_scheme"], "Bearer");
            assert_eq!(receiver["settings"]["authorization_credentials"], token);
        }
        // Other webhooks get nothing of it.
        let hook = &alerting["contactPoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "hook")
            .unwrap()["receivers"][0];
        assert!(hook["settings"].get("authorization_credentials").is_none());
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
    fn reserved_channel_name_is_refused() {
        let mut stack = testkit::full();
        stack.channels[0].name = DEFAULT_CONTACT_POINT.into();
        assert!(render(&stack).unwrap_err().to_string().contains("reserved"));
    }
}
