//! Downloads of dashboards from the internet: grafana.com's dashboard API (the latest revision
//! of a dashboard id) and plain URLs, with a size cap. `MONSTACK_GRAFANA_COM_URL` points it at
//! a mirror or a test server.

use std::time::Duration;

use anyhow::{anyhow, Context as _};
use serde::Deserialize;

use super::{read_body, BodyError};
use crate::error::{Error, Result};

/// Where `grafana.com/ID` dashboards come from; `MONSTACK_GRAFANA_COM_URL` points elsewhere
/// (a mirror, or a test server).
pub const GRAFANA_COM_URL: &str = "https://grafana.com";

pub(crate) const GRAFANA_COM_ENV: &str = "MONSTACK_GRAFANA_COM_URL";

/// Downloads: dashboards are at most a few MB; a slow mirror still gets a minute.
pub(crate) const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) const MAX_DOWNLOAD_BYTES: usize = 32 * 1024 * 1024;

/// The client for downloads from the internet: unlike [`super::http_client`] it honours
/// `HTTPS_PROXY`, and gives slow mirrors more time.
pub(crate) fn download_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("monstack/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
        .map_err(Error::from)
}

/// `{"items": [{"revision": N}, ...]}` -> the highest N; `None` when there is none.
pub(crate) fn latest_revision(body: &[u8]) -> anyhow::Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Revisions {
        #[serde(default)]
        items: Vec<Revision>,
    }
    #[derive(Deserialize)]
    struct Revision {
        revision: u64,
    }
    let revisions: Revisions = serde_json::from_slice(body).map_err(|e| {
        anyhow!(
            "expected {{\"items\": [{{\"revision\": N}}]}}: {e}: {}",
            snippet(body)
        )
    })?;
    Ok(revisions.items.iter().map(|r| r.revision).max())
}

pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    not_found: impl FnOnce() -> Error,
) -> Result<Vec<u8>> {
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .with_context(|| format!("downloading {url}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(not_found());
    }
    // Read chunk by chunk within the cap: a chunked answer announces no length.
    let body = read_body(response, MAX_DOWNLOAD_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(limit) => anyhow!(
                "downloading {url}: the answer is larger than {} MiB, more than any dashboard; stopped reading it",
                limit >> 20
            ),
            BodyError::Transport(_) => anyhow!("downloading {url}: {e}"),
        })?;
    if !status.is_success() {
        return Err(anyhow!("downloading {url}: HTTP {status}: {}", snippet(&body)).into());
    }
    Ok(body)
}

pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dashboard URL whose server streams forever (chunked, so no length to refuse up front).
    #[tokio::test]
    async fn an_endless_download_stops_at_the_dashboard_cap() {
        let (base, sent) = crate::clients::testkit::endless_body_server().await;
        let url = format!("{base}/dashboard.json");
        let started = std::time::Instant::now();
        let error = get(&download_client().unwrap(), &url, || {
            Error::usage("not found", None)
        })
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            format!("downloading {url}: the answer is larger than 32 MiB, more than any dashboard; stopped reading it")
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
        assert!(sent < MAX_DOWNLOAD_BYTES + (16 << 20), "{sent} bytes sent");
    }
}
