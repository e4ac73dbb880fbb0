//! `monstack alert test`: a synthetic alert through the real path (Alertmanager's API, its
//! routes, the receivers, the agent for DingTalk), and the outcome per channel.
//! `monstack alert list`: Prometheus' rules and the firing alerts.
//!
//! How a channel's outcome is known. Alertmanager 0.25 counts notifications per *integration*
//! (email, webhook, slack), not per receiver, and logs failures per receiver. So:
//! - failed: Alertmanager logged `Notify for alerts failed` with `err="<channel>/..."` (it gave
//!   up: an unrecoverable error, or retries until the test route's timeout, ~10s). The error
//!   text is the reason. The log is exact: it names the receiver, which is the channel.
//! - delivered: the successful requests of the channel's integration
//!   (`alertmanager_notification_requests_total - ..._failed_total`) rose by as many as there
//!   are channels of that integration under test that have not failed. Counting works for
//!   several channels of one integration at once because failures are told apart by the log.
//! - DingTalk channels are webhooks to the agent as far as Alertmanager knows; their outcome is
//!   the agent's `GET /dingtalk/<channel>/status` (`sent` / `failed` rising, `last_error`).
//!
//! Other notifications sent while the test runs (real alerts) can inflate the success counts;
//! see the README.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clients;
use crate::error::{Error, Result};
use crate::model::{AlertEngine, ChannelKind, Stack};
use crate::project::{load, Context};
use crate::render::alertmanager::{TEST_ALERTNAME, TEST_CHANNEL_LABEL, TEST_ID_LABEL};
use crate::stack::containers;
use crate::stack::docker::Engine;

/// How long `alert test` waits for every outcome: the test routes' group wait (1s), then up to
/// ~10s of retries for a failing channel, plus room for the agent's own retries to DingTalk.
const TEST_DEADLINE: Duration = Duration::from_secs(31);
const POLL: Duration = Duration::from_millis(500);
/// How much of Alertmanager's log is searched for failures.
const LOG_LINES: usize = 3000;

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Pending,
    Delivered(Option<String>),
    Failed(String),
}

struct ChannelUnderTest {
    name: String,
    kind: &'static str,
    /// Alertmanager's integration: DingTalk channels are webhooks to the agent.
    integration: &'static str,
    outcome: Outcome,
    /// Alertmanager gave the notification to the agent (DingTalk only).
    reached_agent: bool,
    /// The agent's counters before the test (DingTalk only); `Err` says why there are none.
    agent_before: Option<std::result::Result<AgentStatus, String>>,
    /// The last failed attempt Alertmanager logged, for a channel that never settles.
    last_attempt_error: Option<String>,
}

/// The agent's `GET /dingtalk/<channel>/status`.
#[derive(Debug, Clone, Deserialize)]
struct AgentStatus {
    #[serde(default)]
    sent: u64,
    #[serde(default)]
    failed: u64,
    #[serde(default)]
    last_error: Option<String>,
}

pub async fn test(ctx: &Context, names: &[String]) -> Result<()> {
    let stack = load(ctx)?;
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
    let mut channels = choose_channels(&stack, names)?;
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
    for channel in channels.iter_mut().filter(|c| c.kind == "dingtalk") {
        channel.agent_before = Some(match &agent_url {
            Some(url) => agent_status(&client, url, &channel.name).await,
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
    ctx.printer.status(
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
        settle(&mut channels, &before, &after, logs.as_deref());
        for channel in channels
            .iter_mut()
            .filter(|c| c.kind == "dingtalk" && c.outcome == Outcome::Pending)
        {
            settle_dingtalk(&client, agent_url.as_deref(), channel).await;
        }
        if channels.iter().all(|c| c.outcome != Outcome::Pending) {
            break;
        }
        if started.elapsed() >= TEST_DEADLINE {
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
        ctx.printer.warn(&format!(
            "resolving the test alert: {e:#} (it expires in 5m)"
        ));
    }

    let rows: Vec<Vec<String>> = channels
        .iter()
        .map(|c| {
            let result = match &c.outcome {
                Outcome::Delivered(None) => "delivered".to_string(),
                Outcome::Delivered(Some(note)) => format!("delivered ({note})"),
                Outcome::Failed(reason) => format!("failed: {reason}"),
                Outcome::Pending => "pending".to_string(),
            };
            vec![c.name.clone(), c.kind.to_string(), result]
        })
        .collect();
    ctx.printer.table(&["CHANNEL", "TYPE", "RESULT"], &rows);
    let failed = channels
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
        .count();
    if failed > 0 {
        return Err(Error::Other(anyhow!(
            "{failed} of {} channels failed",
            channels.len()
        )));
    }
    Ok(())
}

fn choose_channels(stack: &Stack, names: &[String]) -> Result<Vec<ChannelUnderTest>> {
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
        })
        .collect())
}

/// A stack started by an older monstack has no test routes: the alert would go nowhere.
async fn check_test_routes(
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

fn test_id() -> String {
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

fn test_alert(id: &str, channel: &str, ends_at: Option<SystemTime>) -> Value {
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

async fn post_alerts(client: &reqwest::Client, am_url: &str, alerts: &[Value]) -> Result<()> {
    let url = format!("{am_url}/api/v2/alerts");
    let response = client
        .post(&url)
        .json(alerts)
        .send()
        .await
        .with_context(|| format!("posting the test alert to {url}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(anyhow!("posting the test alert to {url}: HTTP {status}: {body}").into());
    }
    Ok(())
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !status.is_success() {
        return Err(anyhow!("GET {url}: HTTP {status}: {}", snippet(&body)));
    }
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON: {}", snippet(&body)))
}

fn snippet(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Successful and given-up notifications per integration, from Alertmanager's `/metrics`.
#[derive(Debug, Default, Clone, PartialEq)]
struct Counts {
    /// Requests that succeeded (`requests_total - requests_failed_total`).
    succeeded: HashMap<String, f64>,
    /// Notifications given up on (`notifications_failed_total`).
    failed: HashMap<String, f64>,
}

async fn integration_counts(client: &reqwest::Client, am_url: &str) -> Result<Counts> {
    let url = format!("{am_url}/metrics");
    let text = client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("reading {url}"))?
        .text()
        .await
        .with_context(|| format!("reading {url}"))?;
    Ok(parse_counts(&text))
}

fn parse_counts(text: &str) -> Counts {
    let mut requests = HashMap::new();
    let mut requests_failed = HashMap::new();
    let mut failed = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some((name, labels)) = series.split_once('{') else {
            continue;
        };
        let Some(integration) = label_value(labels, "integration") else {
            continue;
        };
        let slot = match name {
            "alertmanager_notification_requests_total" => &mut requests,
            "alertmanager_notification_requests_failed_total" => &mut requests_failed,
            "alertmanager_notifications_failed_total" => &mut failed,
            _ => continue,
        };
        *slot.entry(integration).or_insert(0.0) += value;
    }
    let succeeded = requests
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v - requests_failed.get(k).copied().unwrap_or(0.0),
            )
        })
        .collect();
    Counts { succeeded, failed }
}

fn label_value(labels: &str, name: &str) -> Option<String> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[start..].find('"')?;
    Some(labels[start..start + end].to_string())
}

/// Decides what the log and the counters tell: failures by the log (exact, per receiver),
/// deliveries by counting successes per integration.
fn settle(
    channels: &mut [ChannelUnderTest],
    before: &Counts,
    after: &Counts,
    logs: std::result::Result<&[String], &anyhow::Error>,
) {
    let delta = |map: fn(&Counts) -> &HashMap<String, f64>, integration: &str| {
        map(after).get(integration).copied().unwrap_or(0.0)
            - map(before).get(integration).copied().unwrap_or(0.0)
    };
    match logs {
        Ok(lines) => {
            for channel in channels.iter_mut() {
                let failures = receiver_failures(lines, &channel.name);
                if let Some(error) = failures.attempt {
                    channel.last_attempt_error = Some(error);
                }
                if let Some(reason) = failures.gave_up {
                    if channel.outcome == Outcome::Pending {
                        channel.outcome = Outcome::Failed(reason);
                    }
                }
            }
        }
        Err(e) => {
            // Without the log only the counters are left: a failure is attributed to a channel
            // only when it is the sole one of its integration still open.
            let integrations: Vec<&'static str> = channels.iter().map(|c| c.integration).collect();
            for integration in integrations {
                let open: Vec<usize> = channels
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        c.integration == integration
                            && c.outcome == Outcome::Pending
                            && !c.reached_agent
                    })
                    .map(|(i, _)| i)
                    .collect();
                let failed = delta(|c| &c.failed, integration);
                if failed >= 1.0 && !open.is_empty() {
                    let reason = if open.len() == 1 {
                        format!("Alertmanager gave up on a {integration} notification (its log, which says why, could not be read: {e:#})")
                    } else {
                        format!("one of {} {integration} channels failed; telling which takes Alertmanager's log, which could not be read: {e:#}", open.len())
                    };
                    for i in open {
                        channels[i].outcome = Outcome::Failed(reason.clone());
                    }
                }
            }
        }
    }

    // Deliveries: per integration, the successes cover every channel not failed.
    let mut integrations: Vec<&'static str> = channels.iter().map(|c| c.integration).collect();
    integrations.sort_unstable();
    integrations.dedup();
    for integration in integrations {
        let not_failed = channels
            .iter()
            .filter(|c| c.integration == integration && !matches!(c.outcome, Outcome::Failed(_)))
            .count();
        if not_failed == 0 || delta(|c| &c.succeeded, integration) < not_failed as f64 {
            continue;
        }
        for channel in channels
            .iter_mut()
            .filter(|c| c.integration == integration && c.outcome == Outcome::Pending)
        {
            if channel.kind == "dingtalk" {
                channel.reached_agent = true;
            } else {
                channel.outcome = Outcome::Delivered(None);
            }
        }
    }
}

/// A DingTalk channel's outcome from the agent's counters.
async fn settle_dingtalk(
    client: &reqwest::Client,
    agent_url: Option<&str>,
    channel: &mut ChannelUnderTest,
) {
    let before = match &channel.agent_before {
        Some(Ok(before)) => before.clone(),
        Some(Err(why)) => {
            // Alertmanager reached the agent; what DingTalk said is unknown.
            if channel.reached_agent {
                channel.outcome = Outcome::Delivered(Some(format!(
                    "to the agent; DingTalk's answer unknown: {why}"
                )));
            }
            return;
        }
        None => return,
    };
    let Some(url) = agent_url else { return };
    let Ok(now) = agent_status(client, url, &channel.name).await else {
        return;
    };
    if now.failed > before.failed {
        channel.outcome = Outcome::Failed(
            now.last_error
                .unwrap_or_else(|| "the agent counted a failure".to_string()),
        );
    } else if now.sent > before.sent {
        channel.outcome = Outcome::Delivered(None);
    }
}

async fn agent_status(
    client: &reqwest::Client,
    agent_url: &str,
    channel: &str,
) -> std::result::Result<AgentStatus, String> {
    let url = format!("{agent_url}/dingtalk/{channel}/status");
    let value = get_json(client, &url).await.map_err(|e| format!("{e:#}"))?;
    serde_json::from_value(value).map_err(|e| format!("{url}: unexpected answer: {e}"))
}

#[derive(Debug, Default, PartialEq)]
struct ReceiverFailures {
    /// `Notify for alerts failed`: Alertmanager gave up; the reason.
    gave_up: Option<String>,
    /// The last `Notify attempt failed` error.
    attempt: Option<String>,
}

/// What Alertmanager's log says about one receiver's notifications. Lines look like
/// `... level=error component=dispatcher msg="Notify for alerts failed" num_alerts=1
/// err="hook/webhook[0]: notify retry canceled after 7 attempts: Post ...: connection refused"`
/// and `... receiver=hook integration=webhook[0] msg="Notify attempt failed, will retry later"
/// attempts=1 err="..."`.
fn receiver_failures(lines: &[String], receiver: &str) -> ReceiverFailures {
    let mut found = ReceiverFailures::default();
    let gave_up_prefix = format!("{receiver}/");
    for line in lines {
        let Some(err) = logfmt_value(line, "err") else {
            continue;
        };
        if line.contains("msg=\"Notify for alerts failed\"") && err.starts_with(&gave_up_prefix) {
            // `hook/webhook[0]: notify retry canceled after 7 attempts: <why>` -> `<why>`.
            let reason = match err.split_once("attempts: ") {
                Some((_, why)) => why.to_string(),
                None => err.clone(),
            };
            found.gave_up.get_or_insert(reason);
        } else if logfmt_value(line, "receiver").as_deref() == Some(receiver)
            && line.contains("Notify attempt failed")
        {
            found.attempt = Some(err);
        }
    }
    found
}

/// The value of `key=` in a logfmt line, unquoted and unescaped.
fn logfmt_value(line: &str, key: &str) -> Option<String> {
    let pattern = format!(" {key}=");
    let start = line.find(&pattern)? + pattern.len();
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(value),
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some(other) => value.push(other),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Some(value)
    } else {
        Some(rest.split(' ').next().unwrap_or_default().to_string())
    }
}

/// The log lines written at or after `start`. Alertmanager writes `ts=` as
/// `2006-01-02T15:04:05.000Z`, like [`rfc3339`], so the strings compare as times.
fn since(lines: &[String], start: SystemTime) -> Vec<String> {
    let start = rfc3339(start);
    lines
        .iter()
        .filter(|line| logfmt_value(&format!(" {line}"), "ts").is_some_and(|ts| ts >= start))
        .cloned()
        .collect()
}

/// `2024-05-01T10:00:00.000Z` (UTC).
fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

// ---------------------------------------------------------------------------------------------
// alert list

#[derive(Debug, Serialize)]
struct RuleRow {
    group: String,
    name: String,
    /// `inactive`, `pending`, `firing` (alerting rules) or `-` (recording rules).
    state: String,
    health: String,
    last_error: String,
}

#[derive(Debug, Serialize)]
struct AlertRow {
    name: String,
    severity: String,
    /// Alertmanager: `active`, `suppressed`; Prometheus: `firing`, `pending`.
    state: String,
    since: String,
    receivers: Vec<String>,
    labels: BTreeMap<String, String>,
    summary: String,
}

#[derive(Debug, Serialize)]
struct Listing {
    rules: Vec<RuleRow>,
    /// From Alertmanager when the stack runs it, else Prometheus' firing and pending alerts.
    alerts_from: &'static str,
    alerts: Vec<AlertRow>,
}

pub async fn list(ctx: &Context, json_output: bool) -> Result<()> {
    let stack = load(ctx)?;
    let client = clients::http_client()?;
    let prom = &stack.prometheus.service;
    let prom_url = crate::model::host_url(prom.bind, prom.port);
    let rules_json = get_json(&client, &format!("{prom_url}/api/v1/rules"))
        .await
        .map_err(|e| {
            Error::usage(
                format!("Prometheus does not answer: {e:#}"),
                Some("start the stack with `monstack up`".to_string()),
            )
        })?;
    let rules = rule_rows(&rules_json);
    let (alerts_from, alerts) = match (&stack.alertmanager, stack.alerting.engine) {
        (Some(am), AlertEngine::Alertmanager) => {
            let url = crate::model::host_url(am.bind, am.port);
            let body = get_json(&client, &format!("{url}/api/v2/alerts"))
                .await
                .context("listing Alertmanager's alerts")?;
            ("alertmanager", alertmanager_rows(&body))
        }
        _ => {
            let body = get_json(&client, &format!("{prom_url}/api/v1/alerts"))
                .await
                .context("listing Prometheus' alerts")?;
            ("prometheus", prometheus_rows(&body))
        }
    };
    let listing = Listing {
        rules,
        alerts_from,
        alerts,
    };
    if json_output {
        let text = serde_json::to_string_pretty(&listing).map_err(anyhow::Error::from)?;
        ctx.printer.result(&text, true);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = listing
        .rules
        .iter()
        .map(|r| {
            vec![
                r.group.clone(),
                r.name.clone(),
                r.state.clone(),
                r.health.clone(),
                r.last_error.clone(),
            ]
        })
        .collect();
    ctx.printer
        .table(&["GROUP", "RULE", "STATE", "HEALTH", "LAST ERROR"], &rows);
    ctx.printer.result("", false);
    if listing.alerts.is_empty() {
        ctx.printer
            .result(&format!("no alerts in {}", listing.alerts_from), false);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = listing
        .alerts
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.severity.clone(),
                a.state.clone(),
                a.since.clone(),
                a.receivers.join(","),
                a.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                a.summary.clone(),
            ]
        })
        .collect();
    ctx.printer.table(
        &[
            "ALERT",
            "SEVERITY",
            "STATE",
            "SINCE",
            "RECEIVERS",
            "LABELS",
            "SUMMARY",
        ],
        &rows,
    );
    Ok(())
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn rule_rows(body: &Value) -> Vec<RuleRow> {
    let mut rows = Vec::new();
    for group in body["data"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            rows.push(RuleRow {
                group: text(&group["name"]),
                name: text(&rule["name"]),
                state: rule["state"].as_str().unwrap_or("-").to_string(),
                health: text(&rule["health"]),
                last_error: text(&rule["lastError"]),
            });
        }
    }
    rows
}

/// Labels worth a column of their own are taken out; the rest are shown as `k=v`.
fn other_labels(labels: &Value) -> BTreeMap<String, String> {
    labels
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !["alertname", "severity"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), text(v)))
        .collect()
}

fn alertmanager_rows(body: &Value) -> Vec<AlertRow> {
    body.as_array()
        .into_iter()
        .flatten()
        .map(|a| AlertRow {
            name: text(&a["labels"]["alertname"]),
            severity: text(&a["labels"]["severity"]),
            state: text(&a["status"]["state"]),
            since: text(&a["startsAt"]),
            receivers: a["receivers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| text(&r["name"]))
                .collect(),
            labels: other_labels(&a["labels"]),
            summary: text(&a["annotations"]["summary"]),
        })
        .collect()
}

fn prometheus_rows(body: &Value) -> Vec<AlertRow> {
    body["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| AlertRow {
            name: text(&a["labels"]["alertname"]),
            severity: text(&a["labels"]["severity"]),
            state: text(&a["state"]),
            since: text(&a["activeAt"]),
            receivers: vec![],
            labels: other_labels(&a["labels"]),
            summary: text(&a["annotations"]["summary"]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str, kind: &'static str, integration: &'static str) -> ChannelUnderTest {
        ChannelUnderTest {
            name: name.into(),
            kind,
            integration,
            outcome: Outcome::Pending,
            reached_agent: false,
            agent_before: None,
            last_attempt_error: None,
        }
    }

    const METRICS: &str = "\
# HELP alertmanager_notification_requests_total x
alertmanager_notification_requests_total{integration=\"email\"} 3
alertmanager_notification_requests_total{integration=\"webhook\"} 21
alertmanager_notification_requests_failed_total{integration=\"email\"} 1
alertmanager_notification_requests_failed_total{integration=\"webhook\"} 20
alertmanager_notifications_failed_total{integration=\"webhook\"} 2
alertmanager_notifications_total{integration=\"webhook\"} 4
";

    #[test]
    fn counts_are_read_per_integration() {
        let counts = parse_counts(METRICS);
        assert_eq!(counts.succeeded["email"], 2.0);
        assert_eq!(counts.succeeded["webhook"], 1.0);
        assert_eq!(counts.failed["webhook"], 2.0);
        assert!(!counts.failed.contains_key("email"));
    }

    const LOG: &str = r#"ts=2026-11-22T02:58:03.981Z caller=notify.go:732 level=warn component=dispatcher receiver=bad integration=webhook[0] msg="Notify attempt failed, will retry later" attempts=1 err="Post \"http://127.0.0.1:1/x\": dial tcp 127.0.0.1:1: connect: connection refused"
ts=2026-11-22T02:58:13.981Z caller=dispatch.go:352 level=error component=dispatcher msg="Notify for alerts failed" num_alerts=1 err="bad/webhook[0]: notify retry canceled after 7 attempts: Post \"http://127.0.0.1:1/x\": dial tcp 127.0.0.1:1: connect: connection refused"
ts=2026-11-22T02:58:13.982Z caller=dispatch.go:352 level=error component=dispatcher msg="Notify for alerts failed" num_alerts=1 err="bad-too/webhook[0]: notify retry canceled due to unrecoverable error after 1 attempts: unexpected status code 404""#;

    fn log() -> Vec<String> {
        LOG.lines().map(str::to_string).collect()
    }

    #[test]
    fn failures_are_read_per_receiver_from_the_log() {
        let lines = log();
        let bad = receiver_failures(&lines, "bad");
        assert_eq!(
            bad.gave_up.as_deref(),
            Some(
                "Post \"http://127.0.0.1:1/x\": dial tcp 127.0.0.1:1: connect: connection refused"
            )
        );
        assert!(bad.attempt.unwrap().ends_with("connection refused"));
        assert_eq!(
            receiver_failures(&lines, "bad-too").gave_up.as_deref(),
            Some("unexpected status code 404")
        );
        assert_eq!(
            receiver_failures(&lines, "good"),
            ReceiverFailures::default()
        );
    }

    #[test]
    fn log_lines_before_the_start_are_ignored() {
        let lines = log();
        let start = UNIX_EPOCH + Duration::from_secs(1_795_316_290); // 2026-11-22T02:58:10Z
        assert_eq!(rfc3339(start), "2026-11-22T02:58:10.000Z");
        assert_eq!(since(&lines, start).len(), 2);
        let start = UNIX_EPOCH + Duration::from_millis(1_795_316_293_982);
        assert_eq!(since(&lines, start).len(), 1);
    }

    #[test]
    fn rfc3339_formats_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
    }

    #[test]
    fn two_webhooks_one_failing_are_told_apart() {
        let mut channels = vec![
            channel("good", "webhook", "webhook"),
            channel("bad", "webhook", "webhook"),
            channel("mail", "email", "email"),
        ];
        let before = parse_counts(METRICS);
        let mut after = before.clone();
        *after.succeeded.get_mut("webhook").unwrap() += 1.0;
        let lines = log();
        settle(&mut channels, &before, &after, Ok(&lines));
        assert_eq!(channels[0].outcome, Outcome::Delivered(None));
        assert!(
            matches!(&channels[1].outcome, Outcome::Failed(r) if r.ends_with("connection refused"))
        );
        assert_eq!(channels[2].outcome, Outcome::Pending);

        *after.succeeded.get_mut("email").unwrap() += 1.0;
        settle(&mut channels, &before, &after, Ok(&lines));
        assert_eq!(channels[2].outcome, Outcome::Delivered(None));
    }

    #[test]
    fn one_success_for_two_open_webhooks_decides_nothing() {
        let mut channels = vec![
            channel("a", "webhook", "webhook"),
            channel("b", "webhook", "webhook"),
        ];
        let before = parse_counts(METRICS);
        let mut after = before.clone();
        *after.succeeded.get_mut("webhook").unwrap() += 1.0;
        settle(&mut channels, &before, &after, Ok(&[]));
        assert!(channels.iter().all(|c| c.outcome == Outcome::Pending));
    }

    #[test]
    fn dingtalk_waits_for_the_agent() {
        let mut channels = vec![channel("ding", "dingtalk", "webhook")];
        let before = parse_counts(METRICS);
        let mut after = before.clone();
        *after.succeeded.get_mut("webhook").unwrap() += 1.0;
        settle(&mut channels, &before, &after, Ok(&[]));
        assert_eq!(channels[0].outcome, Outcome::Pending);
        assert!(channels[0].reached_agent);
    }

    #[test]
    fn without_the_log_a_lone_channel_still_fails() {
        let mut channels = vec![channel("bad", "webhook", "webhook")];
        let before = parse_counts(METRICS);
        let mut after = before.clone();
        *after.failed.get_mut("webhook").unwrap() += 1.0;
        let e = anyhow!("no docker");
        settle(&mut channels, &before, &after, Err(&e));
        assert!(matches!(&channels[0].outcome, Outcome::Failed(r) if r.contains("no docker")));
    }

    #[test]
    fn list_rows_come_from_the_apis() {
        let rules = json!({"status": "success", "data": {"groups": [{"name": "monstack", "rules": [
            {"name": "OrderDown", "state": "firing", "health": "ok", "type": "alerting"},
            {"name": "Broken", "state": "inactive", "health": "err", "lastError": "bad", "type": "alerting"}
        ]}]}});
        let rows = rule_rows(&rules);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].last_error, "bad");
        let alerts = json!([{"labels": {"alertname": "OrderDown", "severity": "critical", "job": "order"},
            "annotations": {"summary": "down"}, "status": {"state": "active"},
            "startsAt": "2026-01-01T00:00:00Z", "receivers": [{"name": "monstack-default"}]}]);
        let rows = alertmanager_rows(&alerts);
        assert_eq!(rows[0].receivers, ["monstack-default"]);
        assert_eq!(
            rows[0].labels,
            BTreeMap::from([("job".to_string(), "order".to_string())])
        );
    }
}
