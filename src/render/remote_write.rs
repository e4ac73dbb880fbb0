//! `remote_write:` of `prometheus.yml`, and the files its receivers need beside it: passwords,
//! tokens and TLS keys (secret files, readable by the owner's group only) and certificates,
//! copied from where the manifest names them, because Prometheus reads them inside its
//! container. Paths in `prometheus.yml` are relative to it, as everywhere in that file, so
//! `promtool check config` on the host sees the same files.

use std::collections::BTreeMap;

use serde::Serialize;

use super::RenderedFile;
use crate::model::{CopiedFile, QueueConfig, RemoteAuth, RemoteWrite, Stack, WriteRelabel};

/// The directory of the copied files, relative to `prometheus.yml`.
const DIR: &str = "remote_write";

#[derive(Serialize)]
pub(super) struct RemoteWriteConfig {
    url: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_timeout: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_config: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_config: Option<Queue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    write_relabel_configs: Vec<Relabel>,
}

#[derive(Serialize)]
struct BasicAuth {
    username: String,
    password_file: String,
}

#[derive(Serialize)]
struct Authorization {
    #[serde(rename = "type")]
    kind: &'static str,
    credentials_file: String,
}

#[derive(Serialize)]
struct TlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    insecure_skip_verify: bool,
}

#[derive(Serialize)]
struct Queue {
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_shards: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_shards: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_samples_per_send: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_send_deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_backoff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_backoff: Option<String>,
}

#[derive(Serialize)]
struct Relabel {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    source_labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    separator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modulus: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The directory of one receiver's files: its position and name, so two names that differ
/// only in characters a path cannot hold never share one.
fn remote_dir(index: usize, remote: &RemoteWrite) -> String {
    let name: String = remote
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{DIR}/{}-{name}", index + 1)
}

/// The `remote_write` entries of `prometheus.yml`.
pub(super) fn configs(stack: &Stack) -> Vec<RemoteWriteConfig> {
    stack
        .prometheus
        .remote_write
        .iter()
        .enumerate()
        .map(|(i, remote)| config(&remote_dir(i, remote), remote))
        .collect()
}

fn config(dir: &str, remote: &RemoteWrite) -> RemoteWriteConfig {
    let path = |file: &str| format!("{dir}/{file}");
    let (basic_auth, authorization) = match &remote.auth {
        Some(RemoteAuth::Basic { username, .. }) => (
            Some(BasicAuth {
                username: username.clone(),
                password_file: path("password"),
            }),
            None,
        ),
        Some(RemoteAuth::Bearer { .. }) => (
            None,
            Some(Authorization {
                kind: "Bearer",
                credentials_file: path("token"),
            }),
        ),
        None => (None, None),
    };
    let tls_config = remote.tls.as_ref().map(|tls| TlsConfig {
        ca_file: tls.ca.as_ref().map(|_| path("ca.pem")),
        cert_file: tls.client.as_ref().map(|_| path("cert.pem")),
        key_file: tls.client.as_ref().map(|_| path("key.pem")),
        server_name: tls.server_name.clone(),
        insecure_skip_verify: tls.insecure_skip_verify,
    });
    RemoteWriteConfig {
        url: remote.url.clone(),
        name: remote.name.clone(),
        remote_timeout: remote.remote_timeout.map(|d| d.to_string()),
        headers: remote.headers.clone(),
        basic_auth,
        authorization,
        tls_config,
        queue_config: (!remote.queue.is_empty()).then(|| queue(&remote.queue)),
        write_relabel_configs: remote.relabel.iter().map(relabel).collect(),
    }
}

fn queue(q: &QueueConfig) -> Queue {
    Queue {
        capacity: q.capacity,
        max_shards: q.max_shards,
        min_shards: q.min_shards,
        max_samples_per_send: q.max_samples_per_send,
        batch_send_deadline: q.batch_send_deadline.map(|d| d.to_string()),
        min_backoff: q.min_backoff.map(|d| d.to_string()),
        max_backoff: q.max_backoff.map(|d| d.to_string()),
    }
}

fn relabel(rule: &WriteRelabel) -> Relabel {
    Relabel {
        source_labels: rule.source_labels.clone(),
        separator: rule.separator.clone(),
        regex: rule.regex.clone(),
        target_label: rule.target_label.clone(),
        replacement: rule.replacement.clone(),
        modulus: rule.modulus,
        action: rule.action.clone(),
    }
}

/// The copied files, under `.monstack/prometheus/remote_write/`.
pub(super) fn files(stack: &Stack) -> Vec<RenderedFile> {
    let mut out = Vec::new();
    for (i, remote) in stack.prometheus.remote_write.iter().enumerate() {
        let dir = format!("prometheus/{}", remote_dir(i, remote));
        let mut add = |file: &str, copied: &CopiedFile, secret: bool| {
            let path = format!("{dir}/{file}");
            out.push(if secret {
                RenderedFile::secret(path, copied.contents.clone())
            } else {
                RenderedFile::new(path, copied.contents.clone())
            });
        };
        match &remote.auth {
            Some(RemoteAuth::Basic { password, .. }) => add("password", password, true),
            Some(RemoteAuth::Bearer { token }) => add("token", token, true),
            None => {}
        }
        if let Some(tls) = &remote.tls {
            if let Some(ca) = &tls.ca {
                add("ca.pem", ca, false);
            }
            if let Some((cert, key)) = &tls.client {
                add("cert.pem", cert, false);
                add("key.pem", key, true);
            }
        }
    }
    out
}

/// Whether Prometheus reads a secret file (and so needs the group that may read them).
pub fn reads_secrets(stack: &Stack) -> bool {
    stack
        .prometheus
        .remote_write
        .iter()
        .any(|r| r.auth.is_some() || r.tls.as_ref().is_some_and(|t| t.client.is_some()))
}

#[cfg(test)]
mod tests;
