//! Where Prometheus sends its samples (`prometheus.remote_write`), and how it runs
//! (`prometheus.mode`): the validated form, with presets already turned into paths and
//! headers and secret files already read.

use std::collections::BTreeMap;

use super::Duration;

/// Prometheus' mode: a full server, or an agent that only scrapes and forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrometheusMode {
    #[default]
    Server,
    /// `--agent`: no local storage for queries, no rules, no alerting; everything goes to
    /// `remote_write`.
    Agent,
}

impl PrometheusMode {
    pub fn is_agent(self) -> bool {
        self == PrometheusMode::Agent
    }
}

/// One receiver of `remote_write`.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWrite {
    /// Unique among the receivers; Prometheus' `remote_name` label.
    pub name: String,
    /// The full URL Prometheus posts to (a preset's path included).
    pub url: String,
    /// Headers, a preset's tenant header included; not secret.
    pub headers: BTreeMap<String, String>,
    pub auth: Option<RemoteAuth>,
    pub tls: Option<RemoteTls>,
    pub remote_timeout: Option<Duration>,
    pub queue: QueueConfig,
    /// `write_relabel_configs`, the `keep`/`drop` short forms first.
    pub relabel: Vec<WriteRelabel>,
}

/// A file the manifest names whose contents Prometheus must read: copied into `.monstack/`
/// (private to the owner's group when `secret`), because Prometheus runs in a container as
/// its own user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedFile {
    /// As written in the manifest (for messages).
    pub source: String,
    pub contents: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RemoteAuth {
    Basic {
        username: String,
        password: CopiedFile,
    },
    Bearer {
        token: CopiedFile,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteTls {
    pub ca: Option<CopiedFile>,
    /// Client certificate and its key, always both.
    pub client: Option<(CopiedFile, CopiedFile)>,
    pub server_name: Option<String>,
    /// Only when the manifest says `insecure_skip_verify: true`.
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueConfig {
    pub capacity: Option<u64>,
    pub max_shards: Option<u64>,
    pub min_shards: Option<u64>,
    pub max_samples_per_send: Option<u64>,
    pub batch_send_deadline: Option<Duration>,
    pub min_backoff: Option<Duration>,
    pub max_backoff: Option<Duration>,
}

impl QueueConfig {
    pub fn is_empty(&self) -> bool {
        *self == QueueConfig::default()
    }
}

/// One relabel rule, as Prometheus' `write_relabel_configs` has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteRelabel {
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub regex: Option<String>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub modulus: Option<u64>,
    pub action: Option<String>,
}

impl RemoteWrite {
    /// The secret values this receiver holds, for redaction: the password or token, the TLS key.
    pub fn secrets(&self) -> Vec<&str> {
        let mut out = Vec::new();
        match &self.auth {
            Some(RemoteAuth::Basic { password, .. }) => out.push(password),
            Some(RemoteAuth::Bearer { token }) => out.push(token),
            None => {}
        }
        if let Some((_, key)) = self.tls.as_ref().and_then(|t| t.client.as_ref()) {
            out.push(key);
        }
        out.into_iter()
            .filter_map(|f| std::str::from_utf8(&f.contents).ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}
