//! How each `remote_write` receiver is doing, from Prometheus' own `/metrics`
//! (`prometheus_remote_storage_*`), which a server and an agent both serve: an agent has no
//! query API to ask instead.

use std::collections::BTreeMap;

use anyhow::Result;
use reqwest::Client;
use serde::Serialize;

/// Prometheus' remote-write mixin calls a receiver behind after this long.
pub const BEHIND_AFTER_SECONDS: f64 = 120.0;

/// One receiver, as Prometheus' metrics describe it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteHealth {
    /// `remote_name`.
    pub name: String,
    /// `url`, with any `user:password@` removed.
    pub url: String,
    /// Samples waiting in the queue (`prometheus_remote_storage_samples_pending`).
    pub pending: f64,
    /// Samples sent (`prometheus_remote_storage_samples_total`).
    pub sent: f64,
    /// Samples the receiver refused for good (`..._samples_failed_total`).
    pub failed: f64,
    /// Samples sent again after a retryable error (`..._samples_retried_total`).
    pub retried: f64,
    /// How far the newest sample sent lags the newest sample appended: the global
    /// `prometheus_remote_storage_highest_timestamp_in_seconds` minus this queue's
    /// `prometheus_remote_storage_queue_highest_sent_timestamp_seconds`. `None` before the
    /// first sample was sent.
    pub behind_seconds: Option<f64>,
}

impl RemoteHealth {
    /// `ok`, `behind`, `refused` (nothing accepted yet and samples refused for good: a wrong
    /// password, a tenant the receiver does not know), `not sent yet`.
    pub fn state(&self) -> &'static str {
        match self.behind_seconds {
            None if self.failed > 0.0 => "refused",
            None => "not sent yet",
            Some(lag) if lag > BEHIND_AFTER_SECONDS => "behind",
            Some(_) => "ok",
        }
    }
}

/// `GET {base}/metrics`, read into one entry per receiver (sorted by name).
pub async fn remote_health(client: &Client, base: &str) -> Result<Vec<RemoteHealth>> {
    Ok(parse(&super::metrics_text(client, base).await?))
}

/// The receivers in a Prometheus text exposition.
pub fn parse(text: &str) -> Vec<RemoteHealth> {
    let mut newest_appended: Option<f64> = None;
    let mut remotes: BTreeMap<(String, String), RemoteHealth> = BTreeMap::new();
    let mut highest_sent: BTreeMap<(String, String), f64> = BTreeMap::new();
    for line in text.lines() {
        let Some((name, labels, value)) = sample(line) else {
            continue;
        };
        if name == "prometheus_remote_storage_highest_timestamp_in_seconds" {
            newest_appended = Some(value);
            continue;
        }
        let Some(field) = name.strip_prefix("prometheus_remote_storage_") else {
            continue;
        };
        let (Some(remote), Some(url)) = (label(labels, "remote_name"), label(labels, "url")) else {
            continue;
        };
        let key = (remote.clone(), url.clone());
        let entry = remotes.entry(key.clone()).or_insert_with(|| RemoteHealth {
            name: remote,
            url: without_credentials(&url),
            pending: 0.0,
            sent: 0.0,
            failed: 0.0,
            retried: 0.0,
            behind_seconds: None,
        });
        match field {
            "samples_pending" => entry.pending = value,
            "samples_total" => entry.sent = value,
            "samples_failed_total" => entry.failed = value,
            "samples_retried_total" => entry.retried = value,
            "queue_highest_sent_timestamp_seconds" => {
                highest_sent.insert(key, value);
            }
            _ => {}
        }
    }
    for (key, sent) in highest_sent {
        if let (Some(entry), Some(newest)) = (remotes.get_mut(&key), newest_appended) {
            entry.behind_seconds = (sent > 0.0).then(|| (newest - sent).max(0.0));
        }
    }
    remotes.into_values().collect()
}

/// `name{labels} value [timestamp]` -> (name, labels without braces, value).
pub(super) fn sample(line: &str) -> Option<(&str, &str, f64)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (&line[..open], &line[open + 1..close], &line[close + 1..])
        }
        None => {
            let (name, rest) = line.split_once(' ')?;
            (name, "", rest)
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some((name, labels, value))
}

/// The value of one label in `a="x",b="y"` (escapes `\"`, `\\`, `\n` read back).
fn label(labels: &str, wanted: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                other => value.push(other),
            }
        }
        let end = end?;
        if name.trim_start_matches(',').trim() == wanted {
            return Some(value);
        }
        rest = after[end + 1..].trim_start_matches(',');
    }
    None
}

/// `https://user:pass@host/x?token=t` -> `https://host/x?…`: a URL shown never carries
/// credentials.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    // A query may carry a token (`?api_key=`): shown as `?…`.
    match rest.find(['?', '#']) {
        Some(q) => format!("{scheme}://{}?…", &rest[..q]),
        None => format!("{scheme}://{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = r#"# HELP prometheus_remote_storage_samples_pending The number of samples pending in the queues shards to be sent to the remote storage.
# TYPE prometheus_remote_storage_samples_pending gauge
prometheus_remote_storage_highest_timestamp_in_seconds 1.796167703e+09
prometheus_remote_storage_queue_highest_sent_timestamp_seconds{remote_name="central",url="http://10.0.0.1:9090/api/v1/write"} 1.796167700e+09
prometheus_remote_storage_queue_highest_sent_timestamp_seconds{remote_name="vm",url="https://u:secret@vm.example.com/api/v1/write"} 0
prometheus_remote_storage_samples_failed_total{remote_name="central",url="http://10.0.0.1:9090/api/v1/write"} 3
prometheus_remote_storage_samples_pending{remote_name="central",url="http://10.0.0.1:9090/api/v1/write"} 12
prometheus_remote_storage_samples_pending{remote_name="vm",url="https://u:secret@vm.example.com/api/v1/write"} 408
prometheus_remote_storage_samples_retried_total{remote_name="central",url="http://10.0.0.1:9090/api/v1/write"} 5
prometheus_remote_storage_samples_total{remote_name="central",url="http://10.0.0.1:9090/api/v1/write"} 1000
prometheus_remote_storage_samples_in_total 408
prometheus_remote_storage_shards{remote_name="central",url="http://10.0.0.1:9090/api/v1/write"} 1
"#;

    #[test]
    fn each_receiver_is_read_with_its_lag_and_without_credentials() {
        let remotes = parse(METRICS);
        assert_eq!(
            remotes,
            [
                RemoteHealth {
                    name: "central".into(),
                    url: "http://10.0.0.1:9090/api/v1/write".into(),
                    pending: 12.0,
                    sent: 1000.0,
                    failed: 3.0,
                    retried: 5.0,
                    behind_seconds: Some(3.0),
                },
                RemoteHealth {
                    name: "vm".into(),
                    url: "https://vm.example.com/api/v1/write".into(),
                    pending: 408.0,
                    sent: 0.0,
                    failed: 0.0,
                    retried: 0.0,
                    behind_seconds: None,
                },
            ]
        );
        assert_eq!(remotes[0].state(), "ok");
        assert_eq!(remotes[1].state(), "not sent yet");
        // Nothing accepted and samples refused for good (a wrong password: 401 on every batch).
        let refused = RemoteHealth {
            failed: 400.0,
            ..remotes[1].clone()
        };
        assert_eq!(refused.state(), "refused");
    }

    #[test]
    fn a_receiver_more_than_two_minutes_behind_says_so() {
        let text = "prometheus_remote_storage_highest_timestamp_in_seconds 1000\n\
                    prometheus_remote_storage_queue_highest_sent_timestamp_seconds{remote_name=\"a\",url=\"http://a/\"} 700\n";
        let remotes = parse(text);
        assert_eq!(remotes[0].behind_seconds, Some(300.0));
        assert_eq!(remotes[0].state(), "behind");
    }

    #[test]
    fn labels_with_escapes_and_commas_are_read() {
        assert_eq!(
            label(r#"a="x,\"y\"",remote_name="r\\1""#, "remote_name").as_deref(),
            Some(r"r\1")
        );
        assert_eq!(label(r#"a="x""#, "b"), None);
        assert_eq!(sample("# HELP x"), None);
        assert_eq!(sample("up 1"), Some(("up", "", 1.0)));
        assert_eq!(sample("broken{a=\"1\"} nan-ish"), None);
        assert!(parse("no_metrics_here 1\n").is_empty());
    }
}
