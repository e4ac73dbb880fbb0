//! The DingTalk relay in the agent. Alertmanager has no DingTalk receiver (and Grafana's cannot
//! sign requests), so both send their webhook payload to the agent's `POST /dingtalk/<channel>`,
//! and this module turns it into a DingTalk robot `markdown` message, signs the request when
//! the robot uses signed requests, sends it with retries and keeps the outcome per channel.
//!
//! Message building and signing are pure; [`Relay`] is the only part that does I/O.
//!
//! DingTalk's robot API (`https://oapi.dingtalk.com/robot/send?access_token=...`):
//! - a robot may require a keyword: messages without it in their content are dropped
//!   (errcode 310000);
//! - signed robots need `&timestamp=<ms>&sign=<url-encoded base64(HMAC-SHA256(key = secret,
//!   message = "<ms>\n<secret>"))>`; a timestamp more than an hour off is rejected;
//! - mentions in a markdown message work only when the text contains `@<mobile>`;
//! - the answer is `{"errcode": 0, "errmsg": "ok"}`, usually with HTTP 200 even on errors.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::Sha256;

pub use crate::agent::config::ChannelConfig;

/// DingTalk rejects messages over 20,000 bytes; the text stays under this, leaving room for
/// the title and the JSON around it.
pub const MAX_TEXT_BYTES: usize = 18_000;
const MAX_TITLE_BYTES: usize = 200;

/// DingTalk's "sending too fast" (20 messages a minute per robot): worth a retry.
const ERRCODE_RATE_LIMITED: i64 = 130101;
/// DingTalk's "system busy".
const ERRCODE_BUSY: i64 = -1;

// ---------------------------------------------------------------------------------------------
// What Alertmanager (and Grafana, whose webhook payload is a superset) sends

/// Alertmanager's webhook payload (version 4). Unknown fields (Grafana's `title`, `orgId`,
/// `values`, ...) are ignored; missing or null ones are empty.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Notification {
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub receiver: String,
    #[serde(default, rename = "groupLabels", deserialize_with = "null_as_default")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default, rename = "commonLabels", deserialize_with = "null_as_default")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL", deserialize_with = "null_as_default")]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Alert {
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, rename = "startsAt", deserialize_with = "null_as_default")]
    pub starts_at: String,
    #[serde(default, rename = "endsAt", deserialize_with = "null_as_default")]
    pub ends_at: String,
    #[serde(default, rename = "generatorURL", deserialize_with = "null_as_default")]
    pub generator_url: String,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Alert {
    fn is_resolved(&self) -> bool {
        self.status == "resolved"
    }
}

// ---------------------------------------------------------------------------------------------
// The robot message

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub msgtype: &'static str,
    pub markdown: Markdown,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Markdown {
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct At {
    #[serde(rename = "atMobiles")]
    pub at_mobiles: Vec<String>,
    #[serde(rename = "isAtAll")]
    pub is_at_all: bool,
}

/// The markdown message for one notification: a heading with the status and count (and the
/// channel's keyword), then one section per alert (firing first) with its name, severity,
/// summary, labels, start (and end) and a link back, then the mentions. Alerts that do not fit
/// in [`MAX_TEXT_BYTES`] are counted in a last line instead of being cut mid-way.
pub fn build_message(
    channel: &ChannelConfig,
    notification: &Notification,
    external_url: Option<&str>,
) -> Message {
    let external_url = external_url
        .filter(|u| !u.is_empty())
        .or(Some(notification.external_url.as_str()).filter(|u| !u.is_empty()));
    let (resolved, firing): (Vec<&Alert>, Vec<&Alert>) =
        notification.alerts.iter().partition(|a| a.is_resolved());
    let status = if notification.status == "resolved" {
        format!("RESOLVED:{}", notification.alerts.len())
    } else {
        format!("FIRING:{}", firing.len())
    };
    let name = group_name(notification);
    let keyword = channel
        .keyword
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|k| format!("{k} "))
        .unwrap_or_default();
    let title = truncate(&format!("{keyword}[{status}] {name}"), MAX_TITLE_BYTES).to_string();

    let mut head = format!("### {}\n\n", one_line(&title));
    if !firing.is_empty() && !resolved.is_empty() {
        head.push_str(&format!(
            "**{}** firing, **{}** resolved\n\n",
            firing.len(),
            resolved.len()
        ));
    }
    let mut tail = String::new();
    if let Some(url) = external_url {
        tail.push_str(&format!("\n[All alerts]({url})\n"));
    }
    if !channel.at_mobiles.is_empty() {
        let mentions: Vec<String> = channel.at_mobiles.iter().map(|m| format!("@{m}")).collect();
        tail.push_str(&format!("\n{}\n", mentions.join(" ")));
    }

    // Room for the sections, keeping some for the "... more" line.
    const MORE_LINE_RESERVE: usize = 120;
    let budget = MAX_TEXT_BYTES.saturating_sub(head.len() + tail.len() + MORE_LINE_RESERVE);
    let mut body = String::new();
    let ordered: Vec<&Alert> = firing.iter().chain(resolved.iter()).copied().collect();
    let mut shown = 0;
    for alert in &ordered {
        let section = alert_section(alert, external_url);
        if body.len() + section.len() > budget {
            if shown == 0 {
                // One huge alert (a long description): show its beginning.
                body.push_str(truncate(&section, budget));
                body.push_str("…\n\n");
                shown = 1;
            }
            break;
        }
        body.push_str(&section);
        shown += 1;
    }
    if shown < ordered.len() {
        body.push_str(&format!(
            "---\n\n…and {} more alert(s) not shown\n\n",
            ordered.len() - shown
        ));
    }
    Message {
        msgtype: "markdown",
        markdown: Markdown {
            title,
            text: format!("{head}{body}{tail}"),
        },
        at: At {
            at_mobiles: channel.at_mobiles.clone(),
            is_at_all: channel.at_all,
        },
    }
}

/// What the notification is about: the alert name shared by its alerts, or the first one's.
fn group_name(notification: &Notification) -> String {
    let names = [
        notification.common_labels.get("alertname"),
        notification.group_labels.get("alertname"),
        notification
            .alerts
            .first()
            .and_then(|a| a.labels.get("alertname")),
    ];
    let name = names.into_iter().flatten().next().cloned();
    match name {
        Some(name) if notification.alerts.len() > 1 && !all_named(notification, &name) => {
            format!("{name} and others")
        }
        Some(name) => name,
        None => "alerts".to_string(),
    }
}

fn all_named(notification: &Notification, name: &str) -> bool {
    notification
        .alerts
        .iter()
        .all(|a| a.labels.get("alertname").map(String::as_str) == Some(name))
}

fn alert_section(alert: &Alert, external_url: Option<&str>) -> String {
    let name = alert
        .labels
        .get("alertname")
        .map(String::as_str)
        .unwrap_or("alert");
    let status = if alert.is_resolved() {
        "RESOLVED"
    } else {
        "FIRING"
    };
    let mut out = format!("---\n\n**{}** · {status}", one_line(name));
    if let Some(severity) = alert.labels.get("severity") {
        out.push_str(&format!(" · severity **{}**", one_line(severity)));
    }
    out.push_str("\n\n");
    let summary = ["summary", "description", "message"]
        .iter()
        .find_map(|k| alert.annotations.get(*k).filter(|s| !s.trim().is_empty()));
    if let Some(summary) = summary {
        out.push_str(&format!("> {}\n\n", one_line(summary)));
    }
    let labels: Vec<String> = alert
        .labels
        .iter()
        .filter(|(k, _)| *k != "alertname" && *k != "severity")
        .map(|(k, v)| format!("`{}={}`", k, v.replace('`', "'")))
        .collect();
    if !labels.is_empty() {
        out.push_str(&format!("- Labels: {}\n", one_line(&labels.join(" "))));
    }
    if let Some(start) = display_time(&alert.starts_at) {
        out.push_str(&format!("- Started: {start}\n"));
    }
    if alert.is_resolved() {
        if let Some(end) = display_time(&alert.ends_at) {
            out.push_str(&format!("- Resolved: {end}\n"));
        }
    }
    let link = Some(alert.generator_url.as_str())
        .filter(|u| !u.is_empty())
        .or(external_url);
    if let Some(link) = link {
        out.push_str(&format!("- [Source]({link})\n"));
    }
    out.push('\n');
    out
}

/// `2024-05-01T12:00:00.123Z` -> `2024-05-01 12:00:00 UTC`; the zero time Alertmanager sends
/// for "not yet" -> `None`; anything else unchanged.
fn display_time(rfc3339: &str) -> Option<String> {
    if rfc3339.is_empty() || rfc3339.starts_with("0001-") {
        return None;
    }
    let bytes = rfc3339.as_bytes();
    if rfc3339.len() < 20 || bytes[10] != b'T' || !rfc3339.is_char_boundary(19) {
        return Some(rfc3339.to_string());
    }
    let rest = rfc3339[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let zone = if rest == "Z" || rest == "+00:00" {
        "UTC"
    } else {
        rest
    };
    Some(format!("{} {} {zone}", &rfc3339[..10], &rfc3339[11..19]))
}

/// Newlines would break the markdown structure (a summary spanning lines leaves its quote).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The longest prefix of `text` of at most `max` bytes, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

// ---------------------------------------------------------------------------------------------
// Signing

/// DingTalk's signature: URL-encoded base64 of HMAC-SHA256 with the secret as key over
/// `"<timestamp_ms>\n<secret>"`.
pub fn sign(secret: &str, timestamp_ms: u64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any size");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    // Base64 has `+`, `/` and `=`: all percent-encoded, as DingTalk's examples do.
    percent_encoding::utf8_percent_encode(&signature, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
}

/// The webhook URL with `timestamp` and `sign` appended.
pub fn signed_url(url: &str, secret: &str, timestamp_ms: u64) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}timestamp={timestamp_ms}&sign={}",
        sign(secret, timestamp_ms)
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Sending

/// How often and how patiently a message is sent.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Waits before the second, third, ... attempt: one attempt more than there are delays.
    pub delays: Vec<Duration>,
    /// Per attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, 0.5 s, 1 s and 2 s apart, 10 s each: at most ~45 s, well inside
    /// Alertmanager's notification deadline.
    fn default() -> RetryPolicy {
        RetryPolicy {
            delays: vec![
                Duration::from_millis(500),
                Duration::from_secs(1),
                Duration::from_secs(2),
            ],
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Short code for the metric label: `http_5xx`, `http_4xx`, `network`, `bad_response`,
    /// `errcode_<n>`.
    pub reason: String,
    /// For people: what DingTalk (or the network) said.
    pub detail: String,
    pub attempts: usize,
    /// Trying again later may help (network, HTTP 5xx, rate limit). Otherwise DingTalk refused
    /// the message (wrong signature, missing keyword, unknown token) and will refuse it again.
    pub transient: bool,
}

enum Attempt {
    Sent,
    Retry { reason: String, detail: String },
    GiveUp { reason: String, detail: String },
}

#[derive(Deserialize)]
struct RobotAnswer {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// Sends `message` to the channel's robot, signing each attempt afresh. Returns the number of
/// attempts it took.
pub async fn send(
    client: &reqwest::Client,
    policy: &RetryPolicy,
    channel: &ChannelConfig,
    message: &Message,
) -> Result<usize, Failure> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (reason, detail) = match attempt(client, policy, channel, message).await {
            Attempt::Sent => return Ok(attempts),
            Attempt::GiveUp { reason, detail } => {
                return Err(Failure {
                    reason,
                    detail,
                    attempts,
                    transient: false,
                })
            }
            Attempt::Retry { reason, detail } => (reason, detail),
        };
        match policy.delays.get(attempts - 1) {
            Some(delay) => {
                tracing::debug!("DingTalk attempt {attempts} failed ({detail}); retrying");
                tokio::time::sleep(*delay).await;
            }
            None => {
                return Err(Failure {
                    reason,
                    detail,
                    attempts,
                    transient: true,
                })
            }
        }
    }
}

async fn attempt(
    client: &reqwest::Client,
    policy: &RetryPolicy,
    channel: &ChannelConfig,
    message: &Message,
) -> Attempt {
    let url = match &channel.secret {
        Some(secret) if !secret.is_empty() => signed_url(&channel.url, secret, now_ms()),
        _ => channel.url.clone(),
    };
    let response = client
        .post(&url)
        .timeout(policy.timeout)
        .json(message)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Retry {
                reason: "network".into(),
                detail: format!("sending to DingTalk: {}", error_chain(e)),
            };
        }
    };
    let status = response.status();
    let body = match crate::clients::read_text(response).await {
        Ok(body) => body,
        Err(e) => {
            return Attempt::Retry {
                reason: "network".into(),
                detail: format!("reading DingTalk's answer: {e}"),
            }
        }
    };
    let snippet = truncate(body.trim(), 200);
    if status.is_server_error() {
        return Attempt::Retry {
            reason: "http_5xx".into(),
            detail: format!("DingTalk answered HTTP {status}: {snippet}"),
        };
    }
    if status.as_u16() == 429 {
        return Attempt::Retry {
            reason: "http_4xx".into(),
            detail: format!("DingTalk answered HTTP {status}: {snippet}"),
        };
    }
    if !status.is_success() {
        return Attempt::GiveUp {
            reason: "http_4xx".into(),
            detail: format!("DingTalk answered HTTP {status}: {snippet}"),
        };
    }
    match serde_json::from_str::<RobotAnswer>(&body) {
        Ok(answer) if answer.errcode == 0 => Attempt::Sent,
        Ok(answer) => {
            let reason = format!("errcode_{}", answer.errcode);
            let detail = format!("DingTalk errcode {}: {}", answer.errcode, answer.errmsg);
            if answer.errcode == ERRCODE_RATE_LIMITED || answer.errcode == ERRCODE_BUSY {
                Attempt::Retry { reason, detail }
            } else {
                Attempt::GiveUp { reason, detail }
            }
        }
        Err(_) => Attempt::GiveUp {
            reason: "bad_response".into(),
            detail: format!("DingTalk's answer is not {{\"errcode\": ...}}: {snippet}"),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The relay: channels, delivery and its record

/// The per-channel record, as `GET /dingtalk/<channel>/status` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStatus {
    pub channel: String,
    /// Notifications delivered (DingTalk answered errcode 0).
    pub sent: u64,
    /// Notifications that failed after every attempt.
    pub failed: u64,
    /// The last failure's reason and detail: `errcode_310000: DingTalk errcode 310000: ...`.
    pub last_error: Option<String>,
    /// Unix time (seconds) of the last failure.
    pub last_error_at: Option<f64>,
    /// Unix time (seconds) of the last delivery.
    pub last_sent_at: Option<f64>,
}

#[derive(Debug, Default)]
struct Record {
    sent: u64,
    failed: BTreeMap<String, u64>,
    last_error: Option<String>,
    last_error_at: Option<f64>,
    last_sent_at: Option<f64>,
}

/// Sends notifications to the configured channels and remembers how that went.
pub struct Relay {
    channels: BTreeMap<String, ChannelConfig>,
    external_url: Option<String>,
    client: reqwest::Client,
    policy: RetryPolicy,
    records: Mutex<BTreeMap<String, Record>>,
}

impl Relay {
    /// A relay with its own HTTP client (honouring the usual proxy variables: DingTalk is on the
    /// internet).
    pub fn new(
        channels: BTreeMap<String, ChannelConfig>,
        external_url: Option<String>,
    ) -> anyhow::Result<Relay> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| anyhow::anyhow!("building the DingTalk HTTP client: {e}"))?;
        Ok(Relay::with_client(
            channels,
            external_url,
            client,
            RetryPolicy::default(),
        ))
    }

    pub fn with_client(
        channels: BTreeMap<String, ChannelConfig>,
        external_url: Option<String>,
        client: reqwest::Client,
        policy: RetryPolicy,
    ) -> Relay {
        let records = channels
            .keys()
            .map(|name| (name.clone(), Record::default()))
            .collect();
        Relay {
            channels,
            external_url,
            client,
            policy,
            records: Mutex::new(records),
        }
    }

    /// A relay without channels: every request is for an unknown channel.
    pub fn empty() -> Relay {
        Relay::with_client(
            BTreeMap::new(),
            None,
            reqwest::Client::new(),
            RetryPolicy::default(),
        )
    }

    pub fn channel_names(&self) -> Vec<&str> {
        self.channels.keys().map(String::as_str).collect()
    }

    pub fn has_channel(&self, name: &str) -> bool {
        self.channels.contains_key(name)
    }

    /// Builds, sends and records one notification. `None` when the channel is unknown.
    pub async fn deliver(
        &self,
        channel: &str,
        notification: &Notification,
    ) -> Option<Result<usize, Failure>> {
        let config = self.channels.get(channel)?;
        let message = build_message(config, notification, self.external_url.as_deref());
        let outcome = send(&self.client, &self.policy, config, &message).await;
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records.entry(channel.to_string()).or_default();
        match &outcome {
            Ok(_) => {
                record.sent += 1;
                record.last_sent_at = Some(now_secs());
            }
            Err(failure) => {
                *record.failed.entry(failure.reason.clone()).or_default() += 1;
                record.last_error = Some(format!("{}: {}", failure.reason, failure.detail));
                record.last_error_at = Some(now_secs());
            }
        }
        Some(outcome)
    }

    pub fn status(&self, channel: &str) -> Option<ChannelStatus> {
        if !self.has_channel(channel) {
            return None;
        }
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records.get(channel)?;
        Some(ChannelStatus {
            channel: channel.to_string(),
            sent: record.sent,
            failed: record.failed.values().sum(),
            last_error: record.last_error.clone(),
            last_error_at: record.last_error_at,
            last_sent_at: record.last_sent_at,
        })
    }

    /// The relay's metrics in Prometheus' text format; nothing without channels.
    pub fn render_prometheus_text(&self) -> String {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        out.push_str(
            "# HELP monstack_agent_dingtalk_notifications_total Notifications the DingTalk relay tried to deliver (retries included in one).\n\
             # TYPE monstack_agent_dingtalk_notifications_total counter\n",
        );
        for (channel, record) in records.iter() {
            let total = record.sent + record.failed.values().sum::<u64>();
            out.push_str(&format!(
                "monstack_agent_dingtalk_notifications_total{{channel=\"{}\"}} {total}\n",
                escape_label(channel)
            ));
        }
        out.push_str(
            "# HELP monstack_agent_dingtalk_notifications_failed_total Notifications that failed after every attempt, by reason.\n\
             # TYPE monstack_agent_dingtalk_notifications_failed_total counter\n",
        );
        for (channel, record) in records.iter() {
            for (reason, count) in &record.failed {
                out.push_str(&format!(
                    "monstack_agent_dingtalk_notifications_failed_total{{channel=\"{}\",reason=\"{}\"}} {count}\n",
                    escape_label(channel),
                    escape_label(reason)
                ));
            }
        }
        out.push_str(
            "# HELP monstack_agent_dingtalk_last_error_timestamp_seconds Unix time of the last failed notification (0: none).\n\
             # TYPE monstack_agent_dingtalk_last_error_timestamp_seconds gauge\n",
        );
        for (channel, record) in records.iter() {
            out.push_str(&format!(
                "monstack_agent_dingtalk_last_error_timestamp_seconds{{channel=\"{}\"}} {:.3}\n",
                escape_label(channel),
                record.last_error_at.unwrap_or(0.0)
            ));
        }
        out
    }
}

/// reqwest's message and its causes (`connection refused` is in a cause), without the URL:
/// the access token must not reach logs.
fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A stand-in for DingTalk's robot API, for tests: it checks requests the way DingTalk does.
#[cfg(test)]
pub(crate) mod fake_robot {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    use wiremock::{Request, Respond, ResponseTemplate};

    /// HMAC-SHA256 written out from RFC 2104 over sha2, independent of the `hmac` crate the
    /// relay uses.
    pub fn rfc2104_hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
        let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
        let inner_hash = Sha256::new()
            .chain_update(&inner)
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(&outer)
            .chain_update(inner_hash)
            .finalize()
            .to_vec()
    }

    /// One robot: its access token, its signing secret (signed requests) and its keyword.
    pub struct FakeRobot {
        pub token: String,
        pub secret: Option<String>,
        pub keyword: Option<String>,
    }

    fn answer(errcode: i64, errmsg: &str) -> ResponseTemplate {
        // DingTalk answers errors with HTTP 200 too.
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"errcode": errcode, "errmsg": errmsg}))
    }

    impl Respond for FakeRobot {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let query: std::collections::HashMap<String, String> =
                request.url.query_pairs().into_owned().collect();
            if query.get("access_token") != Some(&self.token) {
                return answer(300001, "token is not exist");
            }
            if let Some(secret) = &self.secret {
                let (Some(timestamp), Some(sign)) = (query.get("timestamp"), query.get("sign"))
                else {
                    return answer(310000, "sign not match (no timestamp or sign)");
                };
                let Ok(ms) = timestamp.parse::<i64>() else {
                    return answer(310000, "invalid timestamp");
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64;
                if (now - ms).abs() > 3_600_000 {
                    return answer(310000, "invalid timestamp (more than 1 hour off)");
                }
                let expected =
                    base64::engine::general_purpose::STANDARD.encode(rfc2104_hmac_sha256(
                        secret.as_bytes(),
                        format!("{timestamp}\n{secret}").as_bytes(),
                    ));
                // `query_pairs` has already URL-decoded `sign`.
                if *sign != expected {
                    return answer(310000, "sign not match");
                }
            }
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
                return answer(40035, "invalid json");
            };
            let (title, text) = match body["msgtype"].as_str() {
                Some("markdown") => (
                    body["markdown"]["title"].as_str(),
                    body["markdown"]["text"].as_str(),
                ),
                _ => return answer(40035, "unsupported msgtype"),
            };
            let (Some(_), Some(text)) = (title, text) else {
                return answer(40035, "markdown needs title and text");
            };
            if let Some(keyword) = &self.keyword {
                if !text.contains(keyword.as_str()) {
                    return answer(310000, "keywords not in content");
                }
            }
            answer(0, "ok")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake_robot::rfc2104_hmac_sha256;
    use super::*;

    fn channel() -> ChannelConfig {
        ChannelConfig {
            url: "https://oapi.dingtalk.com/robot/send?access_token=T0KEN".into(),
            secret: Some("SECabc".into()),
            keyword: Some("alert".into()),
            at_mobiles: vec!["13800000000".into(), "13900000000".into()],
            at_all: false,
        }
    }

    fn alert(name: &str, status: &str) -> Alert {
        Alert {
            status: status.into(),
            labels: BTreeMap::from([
                ("alertname".to_string(), name.to_string()),
                ("severity".to_string(), "critical".to_string()),
                ("instance".to_string(), "order:8080".to_string()),
                ("job".to_string(), "order".to_string()),
            ]),
            annotations: BTreeMap::from([("summary".to_string(), format!("{name} on order:8080"))]),
            starts_at: "2024-05-01T12:00:00.123456789Z".into(),
            ends_at: if status == "resolved" {
                "2024-05-01T12:30:05Z".into()
            } else {
                "0001-01-01T00:00:00Z".into()
            },
            generator_url: "http://127.0.0.1:9090/graph?g0.expr=up".into(),
        }
    }

    fn notification(status: &str, alerts: Vec<Alert>) -> Notification {
        Notification {
            status: status.into(),
            receiver: "ops-ding".into(),
            group_labels: BTreeMap::from([("alertname".to_string(), "OrderDown".to_string())]),
            common_labels: BTreeMap::new(),
            external_url: "http://127.0.0.1:9093".into(),
            alerts,
        }
    }

    #[test]
    fn signature_matches_a_vector_computed_elsewhere() {
        // Computed with Python (hmac, hashlib, base64, urllib.parse.quote_plus) and checked
        // with `openssl dgst -sha256 -hmac`: DingTalk's documented recipe.
        let secret = "SECd0c4f2a1b3e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff";
        assert_eq!(
            sign(secret, 1_700_000_000_005),
            "dIgb4K%2BFw3tQ64q%2Fn7h9c%2Bc%2BtdQLK2XM%2FPF7xbOCmHI%3D"
        );
        assert_eq!(
            sign(secret, 1_700_000_000_000),
            "5aBGPzwDgA52XeUZlUQ5NAF2kCdlBfM9994LULVxfak%3D"
        );
    }

    #[test]
    fn signature_matches_hmac_written_out_from_the_rfc() {
        for (secret, ts) in [
            ("SECabc", 1_716_000_000_123u64),
            (&"SEC".repeat(40)[..], 1),
            ("秘密", 42),
        ] {
            let mac = rfc2104_hmac_sha256(secret.as_bytes(), format!("{ts}\n{secret}").as_bytes());
            let b64 = base64::engine::general_purpose::STANDARD.encode(mac);
            let decoded = percent_encoding::percent_decode_str(&sign(secret, ts))
                .decode_utf8()
                .unwrap()
                .into_owned();
            assert_eq!(decoded, b64, "secret {secret}");
        }
    }

    #[test]
    fn signed_url_appends_timestamp_and_sign() {
        let url = signed_url(
            "https://oapi.dingtalk.com/robot/send?access_token=T",
            "SECabc",
            1_700_000_000_000,
        );
        assert_eq!(
            url,
            format!(
                "https://oapi.dingtalk.com/robot/send?access_token=T&timestamp=1700000000000&sign={}",
                sign("SECabc", 1_700_000_000_000)
            )
        );
        assert!(signed_url("http://x/robot", "s", 1).starts_with("http://x/robot?timestamp=1&"));
    }

    #[test]
    fn firing_message_has_keyword_status_alerts_and_mentions() {
        let message = build_message(
            &channel(),
            &notification("firing", vec![alert("OrderDown", "firing")]),
            Some("http://127.0.0.1:9093"),
        );
        assert_eq!(message.msgtype, "markdown");
        assert_eq!(message.markdown.title, "alert [FIRING:1] OrderDown");
        let text = &message.markdown.text;
        assert!(
            text.starts_with("### alert [FIRING:1] OrderDown\n"),
            "{text}"
        );
        assert!(text.contains("**OrderDown** · FIRING · severity **critical**"));
        assert!(text.contains("> OrderDown on order:8080"));
        assert!(text.contains("- Labels: `instance=order:8080` `job=order`"));
        assert!(text.contains("- Started: 2024-05-01 12:00:00 UTC"));
        assert!(!text.contains("Resolved:"), "{text}");
        assert!(text.contains("[Source](http://127.0.0.1:9090/graph?g0.expr=up)"));
        assert!(text.contains("[All alerts](http://127.0.0.1:9093)"));
        assert!(text.trim_end().ends_with("@13800000000 @13900000000"));
        assert_eq!(message.at.at_mobiles, ["13800000000", "13900000000"]);
        assert!(!message.at.is_at_all);
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(
            json["at"],
            serde_json::json!({"atMobiles": ["13800000000", "13900000000"], "isAtAll": false})
        );
    }

    #[test]
    fn resolved_message_says_so_with_the_end_time() {
        let mut ch = channel();
        ch.keyword = None;
        ch.at_mobiles.clear();
        ch.at_all = true;
        let message = build_message(
            &ch,
            &notification(
                "resolved",
                vec![
                    alert("OrderDown", "resolved"),
                    alert("OrderDown", "resolved"),
                ],
            ),
            None,
        );
        assert_eq!(message.markdown.title, "[RESOLVED:2] OrderDown");
        let text = &message.markdown.text;
        assert!(text.contains("· RESOLVED"));
        assert!(text.contains("- Resolved: 2024-05-01 12:30:05 UTC"));
        assert!(!text.contains('@'), "{text}");
        assert!(message.at.is_at_all);
        // Without a configured URL, the payload's externalURL is the link back.
        assert!(text.contains("[All alerts](http://127.0.0.1:9093)"));
    }

    #[test]
    fn a_mixed_group_counts_firing_alerts_and_lists_them_first() {
        let message = build_message(
            &channel(),
            &notification(
                "firing",
                vec![alert("DiskFull", "resolved"), alert("OrderDown", "firing")],
            ),
            None,
        );
        assert_eq!(
            message.markdown.title,
            "alert [FIRING:1] OrderDown and others"
        );
        let text = &message.markdown.text;
        assert!(text.contains("**1** firing, **1** resolved"));
        assert!(text.find("**OrderDown**").unwrap() < text.find("**DiskFull**").unwrap());
    }

    #[test]
    fn many_alerts_are_cut_to_fit_keeping_keyword_and_mentions() {
        let alerts: Vec<Alert> = (0..500)
            .map(|i| {
                let mut a = alert("OrderDown", "firing");
                a.labels
                    .insert("instance".into(), format!("order-{i}:8080"));
                a
            })
            .collect();
        let message = build_message(&channel(), &notification("firing", alerts), None);
        let text = &message.markdown.text;
        assert!(text.len() <= MAX_TEXT_BYTES, "{}", text.len());
        assert!(text.len() > MAX_TEXT_BYTES / 2, "the space is used");
        assert!(text.starts_with("### alert [FIRING:500] OrderDown"));
        assert!(text.contains("order-0:8080"));
        assert!(!text.contains("order-499:8080"));
        let shown = text.matches("**OrderDown** ·").count();
        assert!(text.contains(&format!("…and {} more alert(s) not shown", 500 - shown)));
        assert!(text.trim_end().ends_with("@13800000000 @13900000000"));
    }

    #[test]
    fn one_huge_alert_is_shown_truncated() {
        let mut a = alert("OrderDown", "firing");
        a.annotations
            .insert("summary".into(), "é".repeat(MAX_TEXT_BYTES));
        let message = build_message(&channel(), &notification("firing", vec![a]), None);
        let text = &message.markdown.text;
        assert!(text.len() <= MAX_TEXT_BYTES);
        assert!(text.contains("**OrderDown** · FIRING"));
        assert!(text.contains("alert [FIRING:1]"));
        assert!(text.trim_end().ends_with("@13800000000 @13900000000"));
    }

    #[test]
    fn grafana_payload_and_nulls_are_accepted() {
        // Grafana's webhook: Alertmanager's fields plus its own; null maps do occur.
        let payload = serde_json::json!({
            "receiver": "ops-ding", "status": "firing", "orgId": 1,
            "groupLabels": null, "commonLabels": {"alertname": "ApiDown"},
            "commonAnnotations": {}, "externalURL": "http://127.0.0.1:3000/",
            "version": "1", "groupKey": "{}:{}", "truncatedAlerts": 0,
            "title": "[FIRING:1] ApiDown", "state": "alerting", "message": "...",
            "alerts": [{
                "status": "firing", "labels": {"alertname": "ApiDown", "severity": "critical"},
                "annotations": {"description": "api is down"},
                "startsAt": "2024-05-01T12:00:00+08:00", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:3000/alerting/grafana/x/view",
                "fingerprint": "abc", "silenceURL": "http://...", "dashboardURL": "",
                "panelURL": "", "values": {"A": 1.0}, "valueString": "[ var='A' value=1 ]"
            }]
        });
        let n: Notification = serde_json::from_value(payload).unwrap();
        let message = build_message(&channel(), &n, None);
        let text = &message.markdown.text;
        assert!(text.contains("> api is down"));
        assert!(text.contains("- Started: 2024-05-01 12:00:00 +08:00"));
        assert!(text.contains("[Source](http://127.0.0.1:3000/alerting/grafana/x/view)"));
    }

    #[test]
    fn times_are_shown_plainly() {
        assert_eq!(
            display_time("2024-05-01T12:00:00Z").as_deref(),
            Some("2024-05-01 12:00:00 UTC")
        );
        assert_eq!(display_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(display_time("").as_deref(), None);
        assert_eq!(display_time("soon").as_deref(), Some("soon"));
    }

    #[test]
    fn metrics_list_every_channel_from_the_start() {
        let relay = Relay::with_client(
            BTreeMap::from([("ops-ding".to_string(), channel())]),
            None,
            reqwest::Client::new(),
            RetryPolicy::default(),
        );
        let text = relay.render_prometheus_text();
        assert!(
            text.contains("monstack_agent_dingtalk_notifications_total{channel=\"ops-ding\"} 0\n")
        );
        assert!(text.contains(
            "monstack_agent_dingtalk_last_error_timestamp_seconds{channel=\"ops-ding\"} 0.000\n"
        ));
        assert_eq!(
            relay.status("ops-ding").unwrap(),
            ChannelStatus {
                channel: "ops-ding".into(),
                sent: 0,
                failed: 0,
                last_error: None,
                last_error_at: None,
                last_sent_at: None
            }
        );
        assert!(relay.status("other").is_none());
        assert_eq!(Relay::empty().render_prometheus_text(), "");
    }
}
