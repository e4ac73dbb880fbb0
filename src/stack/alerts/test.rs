//! `alert test`: a synthetic alert through the real path (Alertmanager's API, its routes, the
//! receivers, the agent for DingTalk), waited on until every channel has an outcome.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use serde::Deserialize;
use serde_json::{json, Value};

use super::outcome::{agent_status, integration_counts, settle, settle_dingtalk, REASON_GRACE};
use super::{get_json, Outcome};
use crate::clients;
use crate::clients::logfmt::{rfc3339, since};
use crate::error::{Error, Result};
use crate::model::{AlertEngine, ChannelKind, Stack};
use crate::output::Printer;
use crate::render::alertmanager::{TEST_ALERTNAME, TEST_CHANNEL_LABEL, TEST_ID_LABEL};
use crate::stack::containers;
use crate::stack::docker::Engine;

/// How long `alert test` waits for every outcome: the test routes' group wait (1s), then up to
/// ~10s of retries for a failing channel, plus room for the agent's own retries to DingTalk.
const TEST_DEADLINE: Duration = Duration::from_secs(31);
const POLL: Duration = Duration::from_millis(500);
/// How much of Alertmanager's log is searched for failures.
const LOG_LINES: usize = 3000;

/// One channel's outcome, as `monstack alert test` reports it.
pub struct ChannelResult {
    pub channel: String,
    pub kind: &'static str,
    pub outcome: Outcome,
}

pub(super) struct ChannelUnderTest {
    pub(super) name: String,
    pub(super) kind: &'static str,
    /// Alertmanager's integration: DingTalk channels are webhooks to the agent.
    pub(super) integration: &'static str,
    pub(super) outcome: Outcome,
    /// Alertmanager gave the notification to the agent (DingTalk only).
    pub(super) reached_agent: bool,
    /// The agent's counters before the test (DingTalk only); `Err` says why there are none.
    pub(super) agent_before: Option<std::result::Result<AgentStatus, String>>,
    /// The last failed attempt Alertmanager logged, for a channel that never settles.
    pub(super) last_attempt_error: Option<String>,
    /// When Alertmanager's counter first said it gave up, while its reason is awaited.
    pub(super) failure_counted_at: Option<Instant>,
}

/// The agent's `GET /dingtalk/<channel>/status`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct AgentStatus {
    #[serde(default)]
    pub(super) sent: u64,
    #[serde(default)]
    pub(super) failed: u64,
    #[serde(default)]
    pub(super) last_error: Option<String>,
}

/// Sends a synthetic alert to each named channel (default: every channel), waits for each
/// outcome and resolves the alert.
pub async fn test(
    stack: &Stack,
    names: &[String],
    printer: &Printer,
) -> Result<Vec<ChannelResult>> {
    super::refuse_agent_mode(stack)?;
    let Some(am) = &stack.alertmanager else {
        return Err(Error::usage(
            "`alert test` sends through Alertmanager, which this stack does not run",
            Some("add `alertmanager: {}` to monstack.yaml".to_string()),
        ));
    };
    if stack.alerting.engine != AlertEngine::Alertmanager {
        return Err(Error::usage(
            "with `alerting.engine: grafana` Grafana sends the notifications",
            Some("use Grafana's contact point test".to_string()),
        ));
    }
    let mut channels = choose_channels(stack, names)?;
    let client = clients::http_client()?;
    let am_url = crate::model::host_url(am.bind, am.port);
    let alertmanager = clients::Alertmanager::new(&client, &am_url);
    if !alertmanager.ready().await.unwrap_or(false) {
        return Err(Error::usage(
            format!("Alertmanager does not answer at {am_url}"),
            Some("start the stack with `monstack up`".to_string()),
        ));
    }
    check_test_routes(&client, &am_url, &channels).await?;
    let agent_url = stack
        .agent
        .as_ref()
        .map(|a| crate::model::host_url(a.bind, a.port));
    let relay_token = crate::render::agent::relay_token(stack);
    for channel in channels.iter_mut().filter(|c| c.kind == "dingtalk") {
        channel.agent_before = Some(match &agent_url {
            Some(url) => agent_status(&client, url, relay_token.as_deref(), &channel.name).await,
            None => Err("the stack has no agent".to_string()),
        });
    }

    let id = test_id();
    let started_wall = SystemTime::now();
    let before = integration_counts(&client, &am_url).await?;
    let engine = Engine::connect().await;
    let container = containers::container_name(&stack.project, crate::model::ALERTMANAGER);
    let alerts: Vec<Value> = channels
        .iter()
        .map(|c| test_alert(&id, &c.name, None))
        .collect();
    post_alerts(&client, &am_url, &alerts).await?;
    printer.status(
        "Sent",
        &format!(
            "{TEST_ALERTNAME} ({TEST_ID_LABEL}={id}) to {}",
            channels
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    let started = Instant::now();
    loop {
        let logs = match &engine {
            Ok(engine) => engine
                .logs_tail(&container, LOG_LINES)
                .await
                .map(|lines| since(&lines, started_wall)),
            Err(e) => Err(anyhow!("{e:#}")),
        };
        let after = integration_counts(&client, &am_url).await?;
        settle(
            &mut channels,
            &before,
            &after,
            logs.as_deref(),
            Instant::now(),
        );
        for channel in channels
            .iter_mut()
            .filter(|c| c.kind == "dingtalk" && c.outcome == Outcome::Pending)
        {
            settle_dingtalk(
                &client,
                agent_url.as_deref(),
                relay_token.as_deref(),
                channel,
            )
            .await;
        }
        if channels.iter().all(|c| c.outcome != Outcome::Pending) {
            break;
        }
        if started.elapsed() >= TEST_DEADLINE {
            // A failure counted too late for its reason's grace: the counter's reason now.
            settle(
                &mut channels,
                &before,
                &after,
                logs.as_deref(),
                Instant::now() + REASON_GRACE,
            );
            for channel in channels
                .iter_mut()
                .filter(|c| c.outcome == Outcome::Pending)
            {
                let mut reason = format!("no outcome within {}s", TEST_DEADLINE.as_secs());
                if let Some(error) = &channel.last_attempt_error {
                    reason += &format!(" (last attempt: {error})");
                } else if channel.reached_agent {
                    reason += " (Alertmanager handed it to the agent; the agent reported nothing)";
                }
                channel.outcome = Outcome::Failed(reason);
            }
            break;
        }
        tokio::time::sleep(POLL).await;
    }

    // Resolve the synthetic alerts: channels with send_resolved get a "resolved" message.
    let resolved: Vec<Value> = channels
        .iter()
        .map(|c| test_alert(&id, &c.name, Some(SystemTime::now())))
        .collect();
    if let Err(e) = post_alerts(&client, &am_url, &resolved).await {
        printer.warn(&format!(
            "resolving the test alert: {e:#} (it expires in 5m)"
        ));
    }

    Ok(channels
        .into_iter()
        .map(|c| ChannelResult {
            channel: c.name,
            kind: c.kind,
            outcome: c.outcome,
        })
        .collect())
}

pub(super) fn choose_channels(stack: &Stack, names: &[String]) -> Result<Vec<ChannelUnderTest>> {
    if stack.channels.is_empty() {
        return Err(Error::usage(
            "the manifest has no channels to test",
            Some("add one under `channels:`".to_string()),
        ));
    }
    let known: Vec<&str> = stack.channels.iter().map(|c| c.name.as_str()).collect();
    for name in names {
        if !known.contains(&name.as_str()) {
            let hint = match crate::manifest::diagnostics::closest(name, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("channels: {}", known.join(", ")),
            };
            return Err(Error::usage(
                format!("unknown channel `{name}`"),
                Some(hint),
            ));
        }
    }
    Ok(stack
        .channels
        .iter()
        .filter(|c| names.is_empty() || names.contains(&c.name))
        .map(|c| ChannelUnderTest {
            name: c.name.clone(),
            kind: c.kind.kind_name(),
            integration: match c.kind {
                ChannelKind::Email { .. } => "email",
                ChannelKind::Slack { .. } => "slack",
                ChannelKind::Webhook { .. } | ChannelKind::DingTalk { .. } => "webhook",
            },
            outcome: Outcome::Pending,
            reached_agent: false,
            agent_before: None,
            last_attempt_error: None,
            failure_counted_at: None,
        })
        .collect())
}

/// A stack started by an older monstack has no test routes: the alert would go nowhere.
pub(super) async fn check_test_routes(
    client: &reqwest::Client,
    am_url: &str,
    channels: &[ChannelUnderTest],
) -> Result<()> {
    let status: Value = get_json(client, &format!("{am_url}/api/v2/status"))
        .await
        .context("reading Alertmanager's configuration")?;
    let config = status["config"]["original"].as_str().unwrap_or_default();
    let missing: Vec<&str> = channels
        .iter()
        .filter(|c| !config.contains(&format!("{TEST_CHANNEL_LABEL}=\"{}\"", c.name)))
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::usage(
            format!(
                "the running Alertmanager has no test route for {}",
                missing.join(", ")
            ),
            Some("run `monstack up` to apply the manifest first".to_string()),
        ));
    }
    Ok(())
}

pub(super) fn test_id() -> String {
    let mut buf = [0u8; 6];
    if getrandom::fill(&mut buf).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        buf.copy_from_slice(&nanos.to_le_bytes()[..6]);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn test_alert(id: &str, channel: &str, ends_at: Option<SystemTime>) -> Value {
    let mut alert = json!({
        "labels": {
            "alertname": TEST_ALERTNAME,
            TEST_CHANNEL_LABEL: channel,
            TEST_ID_LABEL: id,
            "severity": "info",
        },
        "annotations": {
            "summary": format!("monstack alert test: a test notification for channel {channel}"),
            "description": "Sent by `monstack alert test` to check that notifications arrive. Nothing is wrong.",
        },
    });
    if let Some(end) = ends_at {
        alert["endsAt"] = json!(rfc3339(end));
    }
    alert
}

pub(super) async fn post_alerts(
    client: &reqwest::Client,
    am_url: &str,
    alerts: &[Value],
) -> Result<()> {
    let url = format!("{am_url}/api/v2/alerts");
    let response = client
        .post(&url)
        .json(alerts)
        .send()
        .await
        .with_context(|| format!("posting the test alert to {url}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = crate::clients::read_text(response)
            .await
            .unwrap_or_default();
        return Err(anyhow!("posting the test alert to {url}: HTTP {status}: {body}").into());
    }
    Ok(())
}
