//! Small HTTP clients for the services of the stack: readiness, configuration reloads, the reads
//! that confirm a reload took effect, and the few Grafana calls monstack makes.
//!
//! Every client takes a base URL, so tests point it at a local server: the real Prometheus and
//! Alertmanager binaries, wiremock for Grafana. Build one [`reqwest::Client`] with
//! [`http_client`] and hand it to every client (clones share one connection pool); a client is
//! tied to the tokio runtime that first uses its connections, so build it inside that runtime's
//! life, not in a process-wide static.
//!
//! Passwords travel only in the `Authorization` header and never appear in errors or `Debug`.
//!
//! This file holds what the clients share: the one HTTP client, sending and decoding, readiness
//! probes and Alertmanager's `/-/reload` call. Each service's client has a file of its own, re-exported here
//! so that callers name `clients::Prometheus`, `clients::is_ready` and so on.

mod alertmanager;
pub mod etcd;
mod grafana;
pub mod grafana_com;
pub mod influxdb;
pub mod logfmt;
mod prometheus;
mod readiness;
mod remote_storage;
#[cfg(test)]
mod testkit;

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

pub use alertmanager::Alertmanager;
pub use grafana::{Grafana, GrafanaHealth};
pub use prometheus::{summarize, ConfigLoad, Health, JobSummary, Prometheus, Sample, Target};
pub use readiness::{is_ready, readiness_path};
pub use remote_storage::{remote_health, without_credentials, RemoteHealth};

/// The longest any single request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How much of an unexpected response body goes into an error message.
const BODY_SNIPPET_CHARS: usize = 300;
/// The most of one answer that is read. The services' answers are kilobytes; a large
/// Prometheus' target list or metric names a few MB. A server that sends more (a broken proxy,
/// an endless chunked body) is cut off here instead of filling the memory.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The one HTTP client the clients share. No proxy: every service is on this machine or in the
/// stack's network, and a corporate `HTTP_PROXY` would only get in the way.
pub fn http_client() -> Result<Client> {
    Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

fn trim_base(base: impl Into<String>) -> String {
    let mut base = base.into();
    while base.ends_with('/') {
        base.pop();
    }
    base
}

// ---------------------------------------------------------------------------------------------
// Readiness probes

/// What a readiness endpoint said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Ready,
    /// Not answering yet (connection refused or reset, 503, timeout): worth asking again.
    Starting,
    /// An answer that waiting will not fix, e.g. a 404 because something else holds the port.
    Unexpected(String),
}

/// `GET url`: 200 is ready, 503 or a connection that is refused, reset or times out is
/// starting, anything else is unexpected.
pub async fn probe(client: &Client, url: &str) -> Probe {
    probe_with(client, url, |_| Probe::Ready).await
}

/// Ready when the JSON body has `field` equal to `expected`; starting when it has another value
/// (etcd without a leader yet, Grafana with its database not up).
fn json_field_is(body: &[u8], field: &str, expected: &str, what: &str) -> Probe {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => match value.get(field).and_then(|v| v.as_str()) {
            Some(v) if v == expected => Probe::Ready,
            Some(_) => Probe::Starting,
            None => Probe::Unexpected(format!(
                "{what} answered without a `{field}` field: {}",
                snippet(body)
            )),
        },
        Err(_) => Probe::Unexpected(format!("{what} answered with non-JSON: {}", snippet(body))),
    }
}

async fn probe_with(client: &Client, url: &str, check: impl FnOnce(&[u8]) -> Probe) -> Probe {
    let response = match client.get(url).send().await {
        Ok(response) => response,
        Err(e) if still_starting(&e) => return Probe::Starting,
        Err(e) => return Probe::Unexpected(format!("GET {url}: {}", error_chain(&e))),
    };
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return Probe::Starting;
    }
    let body = match read_body(response, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(BodyError::Transport(e)) if still_starting(&e) => return Probe::Starting,
        Err(e) => return Probe::Unexpected(format!("reading GET {url}: {e}")),
    };
    if status != StatusCode::OK {
        return Probe::Unexpected(format!(
            "GET {url} answered HTTP {status}: {}",
            snippet(&body)
        ));
    }
    check(&body)
}

/// Errors that a service produces while it starts: nothing listening yet, or (through Docker's
/// port proxy) a connection accepted and then dropped.
fn still_starting(error: &reqwest::Error) -> bool {
    if error.is_connect() || error.is_timeout() {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | BrokenPipe
                    | UnexpectedEof
            ) {
                return true;
            }
        }
        // hyper's "connection closed before message completed" has no io::Error underneath and
        // hyper is not a direct dependency, so its message is the only handle on it.
        if e.to_string()
            .contains("connection closed before message completed")
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// reqwest's Display names only the outermost layer ("error sending request for url ..."); the
/// useful part ("Connection refused") is further down.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    match text.char_indices().nth(BODY_SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// `GET {base}/metrics`: a service's own text exposition (Prometheus' config-load and
/// remote-write gauges, Alertmanager's notification counters).
pub async fn metrics_text(client: &Client, base: &str) -> Result<String> {
    let url = format!("{}/metrics", base.trim_end_matches('/'));
    let doing = || format!("reading {url}");
    let (status, body) = send(client.get(&url)).await.with_context(doing)?;
    if !status.is_success() {
        return Err(anyhow!("HTTP {status}: {}", snippet(&body))).with_context(doing);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Sends a request and reads the whole answer (at most [`MAX_BODY_BYTES`]); transport errors
/// keep their cause chain.
async fn send(request: RequestBuilder) -> Result<(StatusCode, Vec<u8>)> {
    let response = request.send().await.map_err(|e| anyhow!(error_chain(&e)))?;
    let status = response.status();
    let body = read_body(response, MAX_BODY_BYTES)
        .await
        .map_err(|e| anyhow!("reading the answer: {e}"))?;
    Ok((status, body))
}

/// Why an answer's body was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("{}", error_chain(.0))]
    Transport(reqwest::Error),
    #[error("the answer is larger than {} MiB; stopped reading it", .0 >> 20)]
    TooLarge(usize),
}

/// [`read_body`] of a text answer with the usual cap, for callers outside `clients` (the
/// DingTalk relay, `alert test`): invalid UTF-8 is replaced, not an error.
pub(crate) async fn read_text(response: reqwest::Response) -> Result<String, BodyError> {
    let body = read_body(response, MAX_BODY_BYTES).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Reads a whole body chunk by chunk, and stops as soon as it passes `limit` bytes (at once
/// when the announced `Content-Length` does). Every body in `clients` is read through here.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).with_context(|| format!("decoding {what} from {}", snippet(body)))
}

// ---------------------------------------------------------------------------------------------
// Reloads (Alertmanager's /-/reload; Prometheus reloads by a signal, see Prometheus::reload_by_signal)

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The service kept its old configuration; the message is the service's own (Alertmanager's
    /// answer, the errors Prometheus logged).
    #[error("reload rejected: {0}")]
    Rejected(String),
    #[error("{0:#}")]
    Other(anyhow::Error),
}

async fn post_reload(client: &Client, service: &str, base: &str) -> Result<(), ReloadError> {
    let doing = || format!("reloading {service} at {base}");
    let (status, body) = send(client.post(format!("{base}/-/reload")))
        .await
        .map_err(|e| ReloadError::Other(e.context(doing())))?;
    match status {
        StatusCode::OK => Ok(()),
        StatusCode::INTERNAL_SERVER_ERROR => Err(ReloadError::Rejected(
            String::from_utf8_lossy(&body).trim().to_string(),
        )),
        _ => Err(ReloadError::Other(
            anyhow!("unexpected HTTP {status}: {}", snippet(&body)).context(doing()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::{client, closed_port_url, endless_body_server};
    use super::*;

    /// An answer that never ends is cut off at the cap, wherever it is read: the shared `send`
    /// (every service API) and the readiness probe.
    #[tokio::test]
    async fn an_endless_chunked_answer_is_cut_off_at_the_cap() {
        let (base, sent) = endless_body_server().await;
        let started = std::time::Instant::now();
        let error = send(client().get(format!("{base}/api/v1/targets")))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "reading the answer: the answer is larger than 16 MiB; stopped reading it"
        );
        let outcome = probe(&client(), &format!("{base}/-/ready")).await;
        let Probe::Unexpected(why) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(why.contains("larger than 16 MiB"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(8));
        // Both reads stopped: what the server got out is the cap twice and what the socket
        // buffers hold, not an unbounded stream.
        let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
        assert!(sent < 2 * MAX_BODY_BYTES + (16 << 20), "{sent} bytes sent");
    }

    #[tokio::test]
    async fn an_announced_length_over_the_cap_is_refused_unread() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n{";
            socket.write_all(head.as_bytes()).await.unwrap();
            // Hold the connection: a client that waited for the body would time out instead.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let started = std::time::Instant::now();
        let error = send(client().get(&base)).await.unwrap_err().to_string();
        assert!(error.contains("larger than 16 MiB"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn not_ready_when_the_connection_is_refused() {
        let base = closed_port_url();
        assert!(!Prometheus::new(&client(), &base).ready().await.unwrap());
        assert!(!Alertmanager::new(&client(), &base).ready().await.unwrap());
        let outcome = probe(&client(), &format!("{base}/-/ready")).await;
        assert_eq!(outcome, Probe::Starting);
    }

    /// Docker's port proxy accepts connections before the container listens, then drops them.
    #[tokio::test]
    async fn not_ready_when_the_connection_is_dropped_after_accept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                drop(socket);
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let ready = Prometheus::new(&client(), base).ready().await;
        acceptor.abort();
        assert!(!ready.unwrap());
    }

    #[tokio::test]
    async fn not_ready_when_the_answer_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                held.push(socket);
            }
        });
        let impatient = Client::builder()
            .timeout(Duration::from_millis(200))
            .no_proxy()
            .build()
            .unwrap();
        let outcome = probe(&impatient, &format!("http://127.0.0.1:{port}/-/ready")).await;
        acceptor.abort();
        assert_eq!(outcome, Probe::Starting);
    }

    #[tokio::test]
    async fn reload_of_a_stopped_service_names_the_cause() {
        let base = closed_port_url();
        let error = Alertmanager::new(&client(), &base)
            .reload()
            .await
            .unwrap_err();
        let message = error.to_string();
        let doing = format!("reloading Alertmanager at {base}: ");
        assert!(message.starts_with(&doing), "{message}");
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }
}
