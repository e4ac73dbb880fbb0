//! How a channel's outcome is known (each channel is one Alertmanager receiver).
//! - From Alertmanager 0.27 on, monstack starts it with `receiver-name-in-metrics`: its
//!   notification counters carry `receiver_name`, so a channel is delivered when its successful
//!   requests (`alertmanager_notification_requests_total - ..._failed_total`) rose, and failed
//!   when `alertmanager_notifications_failed_total` rose (Alertmanager gave up: at once on a
//!   4xx, after its retries, ~10s on the test routes, otherwise). This does not depend on the
//!   log's format, which changed in 0.28 (`time=`, `level=ERROR`, `source=`, redacted URLs) and
//!   again in 0.33 (`aggrGroup=`).
//! - The reason of a failure is read from the log either way: `Notify for alerts failed` with
//!   `err="<channel>/<integration>[i]: ... attempts: <reason>"`; without a readable log, the
//!   counter's `reason` label (`clientError`, `serverError`, ...).
//! - Alertmanager 0.25 (or an image whose tag names no version) counts per *integration* only:
//!   failures come from the log (exact: it names the receiver), and deliveries from the
//!   integration's successful requests rising by as many as there are channels of that
//!   integration under test that have not failed.
//! - DingTalk channels are webhooks to the agent as far as Alertmanager knows; their outcome is
//!   the agent's `GET /dingtalk/<channel>/status` (`sent` / `failed` rising, `last_error`).
//!
//! Other notifications sent while the test runs (real alerts) can inflate the success counts;
//! see the README.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::test::{AgentStatus, ChannelUnderTest};
use super::{snippet, Outcome};
use crate::clients::logfmt::logfmt_value;
#[cfg(test)]
use crate::clients::logfmt::{rfc3339, since};
use crate::error::Result;

/// Successful and given-up notifications per integration, and per receiver where Alertmanager
/// labels them so, from its `/metrics`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Counts {
    /// Requests that succeeded (`requests_total - requests_failed_total`).
    succeeded: HashMap<String, f64>,
    /// Notifications given up on (`notifications_failed_total`).
    failed: HashMap<String, f64>,
    /// The same per receiver (`receiver_name`, Alertmanager >= 0.27 with the feature on).
    receivers: HashMap<String, ReceiverCounts>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct ReceiverCounts {
    requests: f64,
    requests_failed: f64,
    /// Given up on, by `reason` (`clientError`, `serverError`, `other`, ...).
    failed: HashMap<String, f64>,
}

impl ReceiverCounts {
    fn succeeded(&self) -> f64 {
        self.requests - self.requests_failed
    }

    fn failed_total(&self) -> f64 {
        self.failed.values().sum()
    }
}

pub(super) async fn integration_counts(client: &reqwest::Client, am_url: &str) -> Result<Counts> {
    Ok(parse_counts(
        &crate::clients::metrics_text(client, am_url).await?,
    ))
}

pub(super) fn parse_counts(text: &str) -> Counts {
    let mut requests = HashMap::new();
    let mut requests_failed = HashMap::new();
    let mut failed = HashMap::new();
    let mut receivers: HashMap<String, ReceiverCounts> = HashMap::new();
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
        if let Some(receiver) = label_value(labels, "receiver_name") {
            let counts: &mut ReceiverCounts = receivers.entry(receiver).or_default();
            match name {
                "alertmanager_notification_requests_total" => counts.requests += value,
                "alertmanager_notification_requests_failed_total" => {
                    counts.requests_failed += value
                }
                _ => {
                    let reason = label_value(labels, "reason").unwrap_or_default();
                    *counts.failed.entry(reason).or_insert(0.0) += value;
                }
            }
        }
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
    Counts {
        succeeded,
        failed,
        receivers,
    }
}

pub(super) fn label_value(labels: &str, name: &str) -> Option<String> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[start..].find('"')?;
    Some(labels[start..start + end].to_string())
}

/// How long a failure Alertmanager has counted waits for its reason to reach the log (the
/// counter rises before the dispatcher writes `Notify for alerts failed`) or, for DingTalk, for
/// the agent's record, before the counter's own reason is taken.
pub(super) const REASON_GRACE: Duration = Duration::from_secs(3);

/// Decides what the log and the counters tell: failures by the log (exact, per receiver),
/// deliveries by counting successes per integration. `now` is when `after` and `logs` were read.
pub(super) fn settle(
    channels: &mut [ChannelUnderTest],
    before: &Counts,
    after: &Counts,
    logs: std::result::Result<&[String], &anyhow::Error>,
    now: Instant,
) {
    let delta = |map: fn(&Counts) -> &HashMap<String, f64>, integration: &str| {
        map(after).get(integration).copied().unwrap_or(0.0)
            - map(before).get(integration).copied().unwrap_or(0.0)
    };
    let log_reasons: HashMap<String, ReceiverFailures> = match logs {
        Ok(lines) => channels
            .iter()
            .map(|c| (c.name.clone(), receiver_failures(lines, &c.name)))
            .collect(),
        Err(_) => HashMap::new(),
    };
    // Alertmanager >= 0.27: the counters name the receiver, which is the channel.
    let mut per_receiver = false;
    for channel in channels.iter_mut() {
        let Some(counts) = after.receivers.get(&channel.name) else {
            continue;
        };
        per_receiver = true;
        let then = before
            .receivers
            .get(&channel.name)
            .cloned()
            .unwrap_or_default();
        let from_log = log_reasons.get(&channel.name);
        if let Some(error) = from_log.and_then(|f| f.attempt.clone()) {
            channel.last_attempt_error = Some(error);
        }
        if channel.outcome != Outcome::Pending {
            continue;
        }
        if counts.failed_total() - then.failed_total() >= 1.0 {
            if let Some(reason) = from_log.and_then(|f| f.gave_up.clone()) {
                channel.outcome = Outcome::Failed(reason);
                continue;
            }
            // The reason may not be in the log yet; a DingTalk channel's is also the agent's.
            let counted_at = *channel.failure_counted_at.get_or_insert(now);
            if logs.is_ok() && now.duration_since(counted_at) < REASON_GRACE {
                continue;
            }
            let log_state = match logs {
                Ok(_) => "its log names no reason".to_string(),
                Err(e) => format!("its log, which says more, could not be read: {e:#}"),
            };
            channel.outcome = Outcome::Failed(failure_class(&then, counts, &log_state));
        } else if counts.succeeded() - then.succeeded() >= 1.0 {
            if channel.kind == "dingtalk" {
                channel.reached_agent = true;
            } else {
                channel.outcome = Outcome::Delivered(None);
            }
        }
    }
    if per_receiver {
        return;
    }
    match logs {
        Ok(lines) => {
            let _ = lines;
            for channel in channels.iter_mut() {
                let failures = log_reasons.get(&channel.name).cloned().unwrap_or_default();
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
pub(super) async fn settle_dingtalk(
    client: &reqwest::Client,
    agent_url: Option<&str>,
    relay_token: Option<&str>,
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
    let Ok(now) = agent_status(client, url, relay_token, &channel.name).await else {
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

/// The agent's record of a channel. `relay_token`: the stack's
/// ([`crate::render::agent::relay_token`]), which the agent requires on `/dingtalk/...`.
pub(super) async fn agent_status(
    client: &reqwest::Client,
    agent_url: &str,
    relay_token: Option<&str>,
    channel: &str,
) -> std::result::Result<AgentStatus, String> {
    let url = format!("{agent_url}/dingtalk/{channel}/status");
    let fetch = async {
        let request = client.get(&url);
        let request = match relay_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = crate::clients::read_text(response)
            .await
            .with_context(|| format!("GET {url}"))?;
        if !status.is_success() {
            anyhow::bail!("GET {url}: HTTP {status}: {}", snippet(&body));
        }
        Ok(body)
    };
    let body = fetch.await.map_err(|e| format!("{e:#}"))?;
    serde_json::from_str(&body).map_err(|e| format!("{url}: unexpected answer: {e}"))
}

/// The reason Alertmanager's counter gives for a failure, when its log cannot say more
/// (`log_state` says why not).
fn failure_class(before: &ReceiverCounts, now: &ReceiverCounts, log_state: &str) -> String {
    let rose = now
        .failed
        .iter()
        .filter(|(reason, value)| **value > before.failed.get(*reason).copied().unwrap_or(0.0))
        .map(|(reason, _)| match reason.as_str() {
            "clientError" => "the receiver answered with a 4xx status".to_string(),
            "serverError" => "the receiver answered with a 5xx status".to_string(),
            "contextDeadlineExceeded" => "timed out".to_string(),
            "" => "failed".to_string(),
            other => format!("failed ({other})"),
        })
        .next();
    format!(
        "Alertmanager gave up: {} ({log_state})",
        rose.unwrap_or_else(|| "failed".to_string())
    )
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct ReceiverFailures {
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
pub(super) fn receiver_failures(lines: &[String], receiver: &str) -> ReceiverFailures {
    let mut found = ReceiverFailures::default();
    let gave_up_prefix = format!("{receiver}/");
    for line in lines {
        let Some(err) = logfmt_value(line, "err") else {
            continue;
        };
        if line.contains("msg=\"Notify for alerts failed\"") && err.starts_with(&gave_up_prefix) {
            // `hook/webhook[0]: notify retry canceled after 7 attempts: <why>` -> `<why>`.
            let reason = match err.split_once("attempts: ") {
                Some((_, why)) => why,
                None => err.as_str(),
            };
            found.gave_up.get_or_insert(clean_reason(reason));
        } else if logfmt_value(line, "receiver").as_deref() == Some(receiver)
            && line.contains("Notify attempt failed")
        {
            found.attempt = Some(clean_reason(&err));
        }
    }
    found
}

/// One failure's reason as the user reads it: only the first integration's when several failed
/// together (0.25 and 0.28 join them with `; `, 0.33 with a newline), without the trailing
/// newline of a receiver's answer.
fn clean_reason(reason: &str) -> String {
    let first = reason.split("\n\n").next().unwrap_or(reason);
    first.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::anyhow;
    use std::time::UNIX_EPOCH;

    fn channel(name: &str, kind: &'static str, integration: &'static str) -> ChannelUnderTest {
        ChannelUnderTest {
            name: name.into(),
            kind,
            integration,
            outcome: Outcome::Pending,
            reached_agent: false,
            agent_before: None,
            last_attempt_error: None,
            failure_counted_at: None,
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
        settle(&mut channels, &before, &after, Ok(&lines), Instant::now());
        assert_eq!(channels[0].outcome, Outcome::Delivered(None));
        assert!(
            matches!(&channels[1].outcome, Outcome::Failed(r) if r.ends_with("connection refused"))
        );
        assert_eq!(channels[2].outcome, Outcome::Pending);

        *after.succeeded.get_mut("email").unwrap() += 1.0;
        settle(&mut channels, &before, &after, Ok(&lines), Instant::now());
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
        settle(&mut channels, &before, &after, Ok(&[]), Instant::now());
        assert!(channels.iter().all(|c| c.outcome == Outcome::Pending));
    }

    #[test]
    fn dingtalk_waits_for_the_agent() {
        let mut channels = vec![channel("ding", "dingtalk", "webhook")];
        let before = parse_counts(METRICS);
        let mut after = before.clone();
        *after.succeeded.get_mut("webhook").unwrap() += 1.0;
        settle(&mut channels, &before, &after, Ok(&[]), Instant::now());
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
        settle(&mut channels, &before, &after, Err(&e), Instant::now());
        assert!(matches!(&channels[0].outcome, Outcome::Failed(r) if r.contains("no docker")));
    }

    /// Alertmanager 0.28.1 with `receiver-name-in-metrics` (verbatim shapes from a real run).
    const METRICS_028: &str = "\
alertmanager_notification_requests_failed_total{integration=\"webhook\",receiver_name=\"mc-404\"} 1
alertmanager_notification_requests_failed_total{integration=\"webhook\",receiver_name=\"mc-ok\"} 0
alertmanager_notification_requests_total{integration=\"webhook\",receiver_name=\"mc-404\"} 1
alertmanager_notification_requests_total{integration=\"webhook\",receiver_name=\"mc-ok\"} 1
alertmanager_notifications_failed_total{integration=\"webhook\",reason=\"clientError\",receiver_name=\"mc-404\"} 1
alertmanager_notifications_failed_total{integration=\"webhook\",reason=\"serverError\",receiver_name=\"mc-404\"} 0
alertmanager_notifications_failed_total{integration=\"webhook\",reason=\"clientError\",receiver_name=\"mc-ok\"} 0
";

    const LOG_028: &str = r#"time=2026-12-01T20:31:58.076Z level=WARN source=notify.go:865 msg="Notify attempt failed, will retry later" component=dispatcher receiver=mc-closed integration=webhook[0] aggrGroup="{}/{monstack_channel=\"closed\"}:{alertname=\"MonstackTest_gi30\", monstack_channel=\"closed\"}" attempts=1 err="Post \"<redacted>\": dial tcp 127.0.0.1:18999: connect: connection refused"
time=2026-12-01T20:31:58.078Z level=ERROR source=dispatch.go:360 msg="Notify for alerts failed" component=dispatcher num_alerts=1 err="mc-404/webhook[0]: notify retry canceled due to unrecoverable error after 1 attempts: unexpected status code 404: no such hook\n"
time=2026-12-01T20:32:28.074Z level=ERROR source=dispatch.go:360 msg="Notify for alerts failed" component=dispatcher num_alerts=1 err="mc-closed/webhook[0]: notify retry canceled after 10 attempts: Post \"<redacted>\": dial tcp 127.0.0.1:18999: connect: connection refused""#;

    const LOG_033: &str = r#"time=2026-12-01T20:31:58.003Z level=ERROR source=dispatch.go:580 msg="Notify for alerts failed" component=dispatcher aggrGroup="{}/{monstack_channel=\"http404\"}:{alertname=\"MonstackTest_gi30\", monstack_channel=\"http404\"}" num_alerts=1 err="mc-404/webhook[0]: notify retry canceled due to unrecoverable error after 1 attempts: unexpected status code 404: no such hook\n"
time=2026-12-01T20:32:28.000Z level=ERROR source=dispatch.go:580 msg="Notify for alerts failed" component=dispatcher aggrGroup="{}/{monstack_channel=\"closed\"}:{alertname=\"MonstackTest_gi30\", monstack_channel=\"closed\"}" num_alerts=1 err="mc-closed/webhook[0]: notify retry canceled after 9 attempts: Post \"<redacted>\": dial tcp 127.0.0.1:18999: connect: connection refused"
time=2026-12-01T20:32:29.000Z level=ERROR source=dispatch.go:580 msg="Notify for alerts failed" component=dispatcher num_alerts=1 err="mc-multi/webhook[1]: notify retry canceled due to unrecoverable error after 1 attempts: unexpected status code 404: no such hook\n\nmc-multi/webhook[0]: notify retry canceled due to unrecoverable error after 1 attempts: unexpected status code 404: no such hook\n""#;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn failures_are_read_from_the_logs_of_0_28_and_0_33() {
        for log in [LOG_028, LOG_033] {
            let lines = lines(log);
            assert_eq!(
                receiver_failures(&lines, "mc-404").gave_up.as_deref(),
                Some("unexpected status code 404: no such hook"),
                "{log}"
            );
            assert_eq!(
                receiver_failures(&lines, "mc-closed").gave_up.as_deref(),
                Some("Post \"<redacted>\": dial tcp 127.0.0.1:18999: connect: connection refused")
            );
        }
        assert_eq!(
            receiver_failures(&lines(LOG_033), "mc-multi")
                .gave_up
                .as_deref(),
            Some("unexpected status code 404: no such hook")
        );
        assert!(receiver_failures(&lines(LOG_028), "mc-closed")
            .attempt
            .unwrap()
            .ends_with("connection refused"));
    }

    #[test]
    fn per_receiver_counters_decide_without_the_log() {
        let before = parse_counts("");
        let after = parse_counts(METRICS_028);
        let mut channels = vec![
            channel("mc-404", "webhook", "webhook"),
            channel("mc-ok", "webhook", "webhook"),
        ];
        let no_log = anyhow!("no docker");
        settle(&mut channels, &before, &after, Err(&no_log), Instant::now());
        assert_eq!(channels[1].outcome, Outcome::Delivered(None));
        let Outcome::Failed(reason) = &channels[0].outcome else {
            panic!("{:?}", channels[0].outcome)
        };
        assert!(reason.contains("4xx"), "{reason}");
        // With the log, the reason is Alertmanager's own words.
        let mut channels = vec![channel("mc-404", "webhook", "webhook")];
        let log = lines(LOG_028);
        settle(&mut channels, &before, &after, Ok(&log), Instant::now());
        assert_eq!(
            channels[0].outcome,
            Outcome::Failed("unexpected status code 404: no such hook".into())
        );
    }

    #[test]
    fn a_counted_failure_waits_a_moment_for_its_reason_in_the_log() {
        let before = parse_counts("");
        let after = parse_counts(METRICS_028);
        let start = Instant::now();
        let mut channels = vec![channel("mc-404", "webhook", "webhook")];
        // The counter rose, the log has no line yet: wait.
        settle(&mut channels, &before, &after, Ok(&[]), start);
        assert_eq!(channels[0].outcome, Outcome::Pending);
        // The line arrives: Alertmanager's own words.
        let log = lines(LOG_028);
        settle(
            &mut channels,
            &before,
            &after,
            Ok(&log),
            start + Duration::from_secs(1),
        );
        assert_eq!(
            channels[0].outcome,
            Outcome::Failed("unexpected status code 404: no such hook".into())
        );
        // It never does: the counter's reason, and the log is not called unreadable.
        let mut channels = vec![channel("mc-404", "webhook", "webhook")];
        settle(&mut channels, &before, &after, Ok(&[]), start);
        settle(
            &mut channels,
            &before,
            &after,
            Ok(&[]),
            start + REASON_GRACE,
        );
        let Outcome::Failed(reason) = &channels[0].outcome else {
            panic!("{:?}", channels[0].outcome)
        };
        assert!(
            reason.contains("4xx") && reason.contains("names no reason"),
            "{reason}"
        );
        // A DingTalk channel waits the same, for the agent's record of DingTalk's answer.
        let mut channels = vec![channel("mc-404", "dingtalk", "webhook")];
        settle(&mut channels, &before, &after, Ok(&[]), start);
        assert_eq!(channels[0].outcome, Outcome::Pending);
    }

    #[test]
    fn per_receiver_counters_that_did_not_move_decide_nothing() {
        let counts = parse_counts(METRICS_028);
        let mut channels = vec![channel("mc-ok", "webhook", "webhook")];
        settle(&mut channels, &counts, &counts, Ok(&[]), Instant::now());
        assert_eq!(channels[0].outcome, Outcome::Pending);
    }
}
