//! The agent's settings: what it is started with, and the schema of its config file
//! (`.monstack/agent/agent.yml`), which `render` writes and the agent reads. A leaf: it imports
//! nothing of the agent's runtime, so render can use it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Where discovered services come from and where their target files go.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// The cluster; the stack's own etcd is one endpoint without TLS or auth.
    pub etcd: crate::model::EtcdCluster,
    /// How long the watch may go without a message (see
    /// [`crate::clients::etcd::DEFAULT_WATCH_IDLE_TIMEOUT`]): twice the cluster's progress
    /// notification interval, and a margin.
    pub watch_idle_timeout: std::time::Duration,
    pub prefix: String,
    pub targets_dir: PathBuf,
    /// Rewrite loopback registrations (`localhost:8080`) to `host.docker.internal`.
    pub rewrite_loopback: bool,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub listen: SocketAddr,
    pub discovery: Option<DiscoveryConfig>,
    /// The agent's config file (`agent/agent.yml`, rendered by monstack), already read.
    pub file: ConfigFile,
}

/// The agent's config file, rendered into `.monstack/agent/agent.yml` when the stack has
/// DingTalk channels. It holds webhook tokens and signing secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where notifications link back to: Alertmanager's (or, with the Grafana engine,
    /// Grafana's) URL as published on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// What callers of `/dingtalk/...` must send as `Authorization: Bearer <token>`; rendered
    /// by monstack (see `render::agent::relay_token`) wherever it renders a webhook to the
    /// agent. Required when there are channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_token: Option<String>,
    /// DingTalk channels by name: `POST /dingtalk/<name>` sends to them.
    #[serde(default)]
    pub dingtalk: BTreeMap<String, ChannelConfig>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<ConfigFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: ConfigFile = crate::manifest::yaml::from_str(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        // An open relay would sign and send anything anyone posts: no token, no relay.
        if !file.dingtalk.is_empty() && file.relay_token.as_deref().is_none_or(str::is_empty) {
            anyhow::bail!(
                "{}: DingTalk channels but no `relay_token` (a file from an older monstack?)",
                path.display()
            );
        }
        Ok(file)
    }
}

/// One DingTalk channel as the agent's config file (`agent/agent.yml`) holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// The robot's full webhook URL, with its `access_token`.
    pub url: String,
    /// Signing secret (`SEC...`) when the robot uses signed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A keyword the robot requires in every message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    #[serde(default)]
    pub at_mobiles: Vec<String>,
    #[serde(default)]
    pub at_all: bool,
}
