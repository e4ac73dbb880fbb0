//! Alerts on a running stack: testing that each channel delivers (`alert test`), and listing
//! the rules and active alerts (`alert list`).

pub mod list;
mod outcome;
pub mod test;

use anyhow::{anyhow, Context as _};
use serde_json::Value;

/// What became of a test notification.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pending,
    /// Delivered, with a note when there is something to add.
    Delivered(Option<String>),
    Failed(String),
}

/// `alert list` and `alert test` on an agent: there is nothing to list or send here.
pub(super) fn refuse_agent_mode(stack: &crate::model::Stack) -> Result<(), crate::error::Error> {
    if !stack.prometheus.mode.is_agent() {
        return Ok(());
    }
    Err(crate::error::Error::usage(
        "Prometheus runs in agent mode (`prometheus.mode: agent`): it evaluates no rules, the built-in alerts included, and sends no alerts",
        Some("the central stack that receives this host's samples evaluates and delivers them; run `monstack alert` there".to_string()),
    ))
}

pub(super) async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = crate::clients::read_text(response)
        .await
        .with_context(|| format!("GET {url}"))?;
    if !status.is_success() {
        return Err(anyhow!("GET {url}: HTTP {status}: {}", snippet(&body)));
    }
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON: {}", snippet(&body)))
}

pub(super) fn snippet(text: &str) -> String {
    text.chars().take(200).collect()
}
