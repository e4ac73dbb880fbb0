//! The monstack agent: runs next to the stack (as the container `agent`, or in the foreground
//! with `monstack agent`). It bridges etcd registrations into Prometheus target files, relays
//! alert notifications to DingTalk robots ([`crate::agent::dingtalk`]) and serves its own `/metrics`
//! and `/-/ready` on port 8060.
//!
//! HTTP endpoints:
//! - `GET /metrics`, `GET /-/ready`, `GET /-/healthy`: open (Prometheus scrapes the metrics);
//! - everything under `/dingtalk/` needs `Authorization: Bearer <relay_token>` (the token in the
//!   agent's config file, which monstack renders into Alertmanager's and Grafana's webhooks):
//!   401 otherwise, before anything else is looked at, so that nobody who merely reaches the
//!   port can have the relay sign and send a message, or learn the channels' names and errors.
//!   An agent without channels has nothing to protect and answers 404 as below;
//! - `GET /sd/etcd` (open, like `/metrics`): the discovered services in Prometheus' HTTP
//!   service discovery format (`[{"targets": ["host:port"], "labels": {...}}]`, the labels of
//!   the target files), for a Prometheus that cannot read the files (Kubernetes). 503 until the
//!   first listing from etcd, 404 when the agent does no discovery.
//! - `POST /dingtalk/<channel>`: an Alertmanager (or Grafana) webhook payload, sent on to the
//!   channel's DingTalk robot. 200 once DingTalk accepted it. On failure the body has the
//!   reason, and Alertmanager counts a failed notification: 502 when the retries ran out on a
//!   network error, HTTP 5xx or DingTalk's rate limit (Alertmanager retries 5xx later itself);
//!   424 when DingTalk refused the message (errcode such as 310000, HTTP 4xx): sending it again
//!   cannot help, and Alertmanager does not retry a 4xx. 404 for a channel not in the config
//!   file; 400 for a body that is not a webhook payload.
//! - `GET /dingtalk/<channel>/status`: the channel's record since the agent started, as JSON:
//!   `{"channel": "ops-ding", "sent": 3, "failed": 1, "last_error": "errcode_310000: ...",
//!   "last_error_at": 1716000000.5, "last_sent_at": 1716000100.2}` (times are Unix seconds,
//!   `null` when there is none yet). `monstack alert test` reads it to report DingTalk delivery.

pub mod config;
pub mod dingtalk;
pub mod discovery;
mod metrics;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::clients::etcd::Etcd;
pub use config::{AgentConfig, ConfigFile, DiscoveryConfig};
use dingtalk::Relay;
use discovery::BridgeMetrics;

/// What the agent's HTTP handlers share. Built by [`run`]; tests build one with
/// [`Shared::new`] and serve [`router`] in-process.
pub struct Shared {
    metrics: Arc<BridgeMetrics>,
    discovery: bool,
    started: std::time::Instant,
    dingtalk: Relay,
    /// What `/dingtalk/...` requests must carry as `Authorization: Bearer <token>`.
    relay_token: Option<String>,
}

impl Shared {
    pub fn new(
        metrics: Arc<BridgeMetrics>,
        discovery: bool,
        dingtalk: Relay,
        relay_token: Option<String>,
    ) -> Shared {
        Shared {
            metrics,
            discovery,
            started: std::time::Instant::now(),
            dingtalk,
            relay_token: relay_token.filter(|t| !t.is_empty()),
        }
    }

    /// `None` when the request may use the relay, else the 401 to answer. Without channels
    /// there is nothing to protect (every channel is unknown); with channels and no token
    /// nothing is allowed.
    fn refuse_unauthorized(&self, headers: &HeaderMap) -> Option<Response> {
        if self.dingtalk.channel_names().is_empty() {
            return None;
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match (&self.relay_token, presented) {
            (Some(expected), Some(presented)) if same_token(presented, expected) => None,
            _ => {
                tracing::warn!("refused a DingTalk relay request without the relay token");
                Some(
                    (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, "Bearer")],
                        "the DingTalk relay needs `Authorization: Bearer <relay_token>` \
                         (the token is in the agent's config file)\n",
                    )
                        .into_response(),
                )
            }
        }
    }
}

/// Compares digests of the two, not the tokens: how long the comparison takes tells nothing
/// about how much of a guess was right.
fn same_token(presented: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (
        Sha256::digest(presented.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = Arc::new(BridgeMetrics::default());
    // A CA or key that cannot be read stops the agent here, before it serves anything.
    let discovery = match config.discovery {
        Some(d) => Some((Etcd::connect(&d.etcd)?, d)),
        None => None,
    };
    let relay = Relay::new(config.file.dingtalk, config.file.external_url)?;
    let relay_token = config.file.relay_token;
    if !relay.channel_names().is_empty() {
        tracing::info!(
            "relaying to DingTalk channel(s) {}",
            relay.channel_names().join(", ")
        );
    }
    let shared = Arc::new(Shared::new(
        metrics.clone(),
        discovery.is_some(),
        relay,
        relay_token,
    ));
    let app = router(shared);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!("agent listening on {}", config.listen);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await
        })
    };
    let bridge = discovery.map(|(etcd, d)| {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            tracing::info!(
                "bridging {}{}* into {}",
                d.etcd.endpoints.join(","),
                d.prefix,
                d.targets_dir.display()
            );
            let etcd = etcd.with_watch_idle_timeout(d.watch_idle_timeout);
            discovery::set_rewrite_loopback(d.rewrite_loopback);
            discovery::run_bridge(etcd, d.prefix, d.targets_dir, metrics, async move {
                let _ = stop.changed().await;
            })
            .await;
        })
    });
    shutdown.await;
    let _ = stop_tx.send(true);
    if let Some(bridge) = bridge {
        let _ = bridge.await;
    }
    server
        .await
        .context("agent HTTP server")?
        .context("agent HTTP server")?;
    Ok(())
}

/// The agent's HTTP API (see the module documentation).
pub fn router(shared: Arc<Shared>) -> Router {
    let relay = Router::new()
        .route("/dingtalk/{channel}", post(dingtalk_send))
        .route("/dingtalk/{channel}/status", get(dingtalk_status))
        // Before any extractor: an unauthorized request is refused without reading its body.
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_relay_token,
        ));
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/-/ready", get(ready))
        .route("/-/healthy", get(healthy))
        .route(crate::model::AGENT_HTTP_SD_PATH, get(http_sd))
        .merge(relay)
        .with_state(shared)
}

async fn require_relay_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    match shared.refuse_unauthorized(request.headers()) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

async fn serve_metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let text = metrics::render(&shared.metrics, &shared.dingtalk, shared.started);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
}

/// Ready once the target files reflect etcd (the first listing succeeded), or at once when the
/// agent does no discovery.
async fn ready(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if !shared.discovery || shared.metrics.last_sync_unix.load(Ordering::Relaxed) > 0 {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first listing from etcd\n",
        )
    }
}

async fn http_sd(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.discovery {
        return (
            StatusCode::NOT_FOUND,
            "this agent does no etcd discovery (run it with --etcd)\n",
        )
            .into_response();
    }
    match shared.metrics.published.answer() {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first listing from etcd\n",
        )
            .into_response(),
    }
}

async fn healthy() -> impl IntoResponse {
    (StatusCode::OK, "healthy\n")
}

fn unknown_channel(shared: &Shared, channel: &str) -> Response {
    let known = shared.dingtalk.channel_names();
    let known = if known.is_empty() {
        "it has none: run it with --config <agent.yml>".to_string()
    } else {
        format!("it has {}", known.join(", "))
    };
    (
        StatusCode::NOT_FOUND,
        format!("no DingTalk channel `{channel}` in the agent's config ({known})\n"),
    )
        .into_response()
}

async fn dingtalk_send(
    State(shared): State<Arc<Shared>>,
    UrlPath(channel): UrlPath<String>,
    body: Bytes,
) -> Response {
    if !shared.dingtalk.has_channel(&channel) {
        return unknown_channel(&shared, &channel);
    }
    let notification: dingtalk::Notification = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an Alertmanager webhook payload: {e}\n"),
            )
                .into_response()
        }
    };
    match shared.dingtalk.deliver(&channel, &notification).await {
        None => unknown_channel(&shared, &channel),
        Some(Ok(attempts)) => {
            tracing::info!(
                "DingTalk channel {channel}: sent {} alert(s) ({attempts} attempt(s))",
                notification.alerts.len()
            );
            (StatusCode::OK, "sent\n").into_response()
        }
        Some(Err(failure)) => {
            let message = format!(
                "DingTalk channel {channel}: {} ({}, {} attempt(s))",
                failure.detail, failure.reason, failure.attempts
            );
            tracing::warn!("{message}");
            let status = if failure.transient {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::FAILED_DEPENDENCY
            };
            (status, format!("{message}\n")).into_response()
        }
    }
}

async fn dingtalk_status(
    State(shared): State<Arc<Shared>>,
    UrlPath(channel): UrlPath<String>,
) -> Response {
    match shared.dingtalk.status(&channel) {
        Some(status) => Json(status).into_response(),
        None => unknown_channel(&shared, &channel),
    }
}

/// The DingTalk relay through the agent's HTTP API, against a fake robot that checks requests
/// as DingTalk does (token, signature, timestamp, keyword). No Docker.
#[cfg(test)]
mod dingtalk_tests {
    use super::*;
    use crate::agent::dingtalk::fake_robot::FakeRobot;
    use crate::agent::dingtalk::{ChannelConfig, ChannelStatus, RetryPolicy};
    use std::time::Duration;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "T0KEN";
    const SECRET: &str = "SEC0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    /// The relay token the test agents require.
    const RELAY_TOKEN: &str = "4f1c0ffee5e1ec7ab1e0ddba11ad5ca1ab1eb0a710ad5eedfacade5eed5ca1ed";

    fn robot() -> FakeRobot {
        FakeRobot {
            token: TOKEN.into(),
            secret: Some(SECRET.into()),
            keyword: Some("monitor".into()),
        }
    }

    fn channel(server: &MockServer) -> ChannelConfig {
        ChannelConfig {
            url: format!("{}/robot/send?access_token={TOKEN}", server.uri()),
            secret: Some(SECRET.into()),
            keyword: Some("monitor".into()),
            at_mobiles: vec!["13800000000".into()],
            at_all: false,
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    /// Serves the agent's router on a free port with these DingTalk channels and
    /// [`RELAY_TOKEN`]; returns its URL.
    async fn agent(channels: Vec<(&str, ChannelConfig)>) -> String {
        agent_with_token(channels, Some(RELAY_TOKEN)).await
    }

    async fn agent_with_token(
        channels: Vec<(&str, ChannelConfig)>,
        relay_token: Option<&str>,
    ) -> String {
        let channels = channels
            .into_iter()
            .map(|(name, c)| (name.to_string(), c))
            .collect();
        let relay = Relay::with_client(
            channels,
            Some("http://127.0.0.1:9093".into()),
            client(),
            RetryPolicy {
                delays: vec![Duration::from_millis(10); 3],
                timeout: Duration::from_secs(2),
            },
        );
        let shared = Arc::new(Shared::new(
            Arc::new(BridgeMetrics::default()),
            false,
            relay,
            relay_token.map(str::to_string),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(shared)).await });
        format!("http://{addr}")
    }

    /// What Alertmanager 0.28 posts to a webhook receiver.
    fn payload(status: &str) -> serde_json::Value {
        let ends_at = if status == "resolved" {
            "2024-05-01T12:30:00Z"
        } else {
            "0001-01-01T00:00:00Z"
        };
        serde_json::json!({
            "receiver": "ops-ding", "status": status, "version": "4",
            "groupKey": "{}/{alertname=~\"OrderDown\"}:{alertname=\"OrderDown\"}",
            "truncatedAlerts": 0,
            "groupLabels": {"alertname": "OrderDown"},
            "commonLabels": {"alertname": "OrderDown", "job": "order", "severity": "critical"},
            "commonAnnotations": {"summary": "order is down"},
            "externalURL": "http://127.0.0.1:9093",
            "alerts": [{
                "status": status,
                "labels": {"alertname": "OrderDown", "job": "order", "instance": "order:8080",
                           "severity": "critical"},
                "annotations": {"summary": "order is down"},
                "startsAt": "2024-05-01T12:00:00.5Z", "endsAt": ends_at,
                "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up%3D%3D0",
                "fingerprint": "3f2a1b"
            }]
        })
    }

    /// Posts as Alertmanager does: with the relay token.
    async fn post(agent: &str, channel: &str, body: &serde_json::Value) -> (u16, String) {
        post_with(agent, channel, body, Some(&format!("Bearer {RELAY_TOKEN}"))).await
    }

    /// Posts with this `Authorization` header (or none).
    async fn post_with(
        agent: &str,
        channel: &str,
        body: &serde_json::Value,
        authorization: Option<&str>,
    ) -> (u16, String) {
        let mut request = client()
            .post(format!("{agent}/dingtalk/{channel}"))
            .json(body);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn status(agent: &str, channel: &str) -> ChannelStatus {
        let response = client()
            .get(format!("{agent}/dingtalk/{channel}/status"))
            .bearer_auth(RELAY_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn metrics(agent: &str) -> String {
        client()
            .get(format!("{agent}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_signed_notification_is_accepted_by_a_robot_checking_like_dingtalk() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/robot/send"))
            .and(query_param("access_token", TOKEN))
            .respond_with(robot())
            .expect(2)
            .mount(&server)
            .await;
        let agent = agent(vec![("ops-ding", channel(&server))]).await;

        assert_eq!(post(&agent, "ops-ding", &payload("firing")).await.0, 200);
        let (code, body) = post(&agent, "ops-ding", &payload("resolved")).await;
        assert_eq!((code, body.as_str()), (200, "sent\n"));

        let requests = server.received_requests().await.unwrap();
        let firing: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(firing["msgtype"], "markdown");
        assert_eq!(firing["markdown"]["title"], "monitor [FIRING:1] OrderDown");
        let text = firing["markdown"]["text"].as_str().unwrap();
        for part in [
            "monitor",
            "**OrderDown** · FIRING · severity **critical**",
            "> order is down",
            "`instance=order:8080` `job=order`",
            "- Started: 2024-05-01 12:00:00 UTC",
            "[Source](http://127.0.0.1:9090/graph?g0.expr=up%3D%3D0)",
            "@13800000000",
        ] {
            assert!(text.contains(part), "{part:?} missing from:\n{text}");
        }
        assert_eq!(
            firing["at"],
            serde_json::json!({"atMobiles": ["13800000000"], "isAtAll": false})
        );
        let resolved: serde_json::Value = serde_json::from_slice(&requests[1].body).unwrap();
        assert_eq!(
            resolved["markdown"]["title"],
            "monitor [RESOLVED:1] OrderDown"
        );
        assert!(resolved["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("- Resolved: 2024-05-01 12:30:00 UTC"));

        let record = status(&agent, "ops-ding").await;
        assert_eq!((record.sent, record.failed), (2, 0));
        assert!(record.last_sent_at.is_some() && record.last_error.is_none());
        let text = metrics(&agent).await;
        assert!(
            text.contains("monstack_agent_dingtalk_notifications_total{channel=\"ops-ding\"} 2\n")
        );
        assert!(!text.contains("monstack_agent_dingtalk_notifications_failed_total{"));
    }

    #[tokio::test]
    async fn the_fake_robot_is_strict_about_signature_timestamp_token_and_keyword() {
        // The checks the other tests rely on do reject what DingTalk rejects.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(robot())
            .mount(&server)
            .await;
        let message = serde_json::json!({"msgtype": "markdown",
            "markdown": {"title": "t", "text": "monitor: hello"}});
        let base = format!("{}/robot/send?access_token={TOKEN}", server.uri());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let errcode = |url: String, body: serde_json::Value| async move {
            let answer: serde_json::Value = client()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["errcode"].as_i64().unwrap()
        };
        let signed = |ts| crate::agent::dingtalk::signed_url(&base, SECRET, ts);
        assert_eq!(errcode(signed(now), message.clone()).await, 0);
        assert_eq!(errcode(base.clone(), message.clone()).await, 310000);
        assert_eq!(
            errcode(
                crate::agent::dingtalk::signed_url(&base, "SECwrong", now),
                message.clone()
            )
            .await,
            310000
        );
        assert_eq!(
            errcode(signed(now - 2 * 3_600_000), message.clone()).await,
            310000
        );
        let other_token = crate::agent::dingtalk::signed_url(
            &format!("{}/robot/send?access_token=nope", server.uri()),
            SECRET,
            now,
        );
        assert_eq!(errcode(other_token, message.clone()).await, 300001);
        let no_keyword = serde_json::json!({"msgtype": "markdown",
            "markdown": {"title": "t", "text": "hello"}});
        assert_eq!(errcode(signed(now), no_keyword).await, 310000);
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_with_dingtalks_errcode_counted_in_metrics() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(robot())
            .expect(1) // errcode 310000 is not worth a retry
            .mount(&server)
            .await;
        let mut wrong = channel(&server);
        wrong.secret = Some("SECnot-the-robots".into());
        let agent = agent(vec![("wrong", wrong)]).await;

        let (code, body) = post(&agent, "wrong", &payload("firing")).await;
        // Refused for good: a 4xx, which Alertmanager counts as failed without retrying.
        assert_eq!(code, 424, "{body}");
        assert!(
            body.contains("errcode 310000: sign not match") && body.contains("errcode_310000"),
            "{body}"
        );
        let record = status(&agent, "wrong").await;
        assert_eq!((record.sent, record.failed), (0, 1));
        assert!(record
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("errcode_310000: "));
        assert!(record.last_error_at.unwrap() > 1.7e9);
        let text = metrics(&agent).await;
        assert!(text.contains(
            "monstack_agent_dingtalk_notifications_failed_total{channel=\"wrong\",reason=\"errcode_310000\"} 1\n"
        ), "{text}");
        assert!(text.contains("monstack_agent_dingtalk_notifications_total{channel=\"wrong\"} 1\n"));
        assert!(!text.contains(
            "monstack_agent_dingtalk_last_error_timestamp_seconds{channel=\"wrong\"} 0.000"
        ));

        // A channel whose keyword the robot does not get.
        let server2 = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(robot())
            .mount(&server2)
            .await;
        let mut no_keyword = channel(&server2);
        no_keyword.keyword = None;
        let agent = self::agent(vec![("quiet", no_keyword)]).await;
        let (code, body) = post(&agent, "quiet", &payload("firing")).await;
        assert_eq!(code, 424);
        assert!(body.contains("keywords not in content"), "{body}");
    }

    #[tokio::test]
    async fn server_errors_and_rate_limits_are_retried_each_attempt_signed_afresh() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("busy"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(
                    serde_json::json!({"errcode": 130101, "errmsg": "send too fast"}),
                ),
            )
            .up_to_n_times(1)
            .with_priority(2)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(robot())
            .with_priority(3)
            .expect(1)
            .mount(&server)
            .await;
        let agent = agent(vec![("ops-ding", channel(&server))]).await;
        let (code, body) = post(&agent, "ops-ding", &payload("firing")).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
        let record = status(&agent, "ops-ding").await;
        assert_eq!((record.sent, record.failed), (1, 0));
    }

    #[tokio::test]
    async fn an_unreachable_robot_fails_after_every_attempt_as_network() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let unreachable = ChannelConfig {
            url: format!("http://127.0.0.1:{port}/robot/send?access_token={TOKEN}"),
            secret: None,
            keyword: None,
            at_mobiles: vec![],
            at_all: false,
        };
        let agent = agent(vec![("down", unreachable)]).await;
        let (code, body) = post(&agent, "down", &payload("firing")).await;
        assert_eq!(code, 502);
        assert!(body.contains("(network, 4 attempt(s))"), "{body}");
        assert!(
            !body.contains(TOKEN),
            "the token stays out of messages: {body}"
        );
        let text = metrics(&agent).await;
        assert!(text.contains(
            "monstack_agent_dingtalk_notifications_failed_total{channel=\"down\",reason=\"network\"} 1\n"
        ));
        let persistent_500 = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .expect(4)
            .mount(&persistent_500)
            .await;
        let agent = self::agent(vec![("flaky", channel(&persistent_500))]).await;
        let (code, body) = post(&agent, "flaky", &payload("firing")).await;
        assert_eq!(code, 502);
        assert!(body.contains("(http_5xx, 4 attempt(s))"), "{body}");
    }

    #[tokio::test]
    async fn unknown_channels_bad_payloads_and_readiness() {
        let server = MockServer::start().await;
        let agent = agent(vec![("ops-ding", channel(&server))]).await;
        let (code, body) = post(&agent, "nope", &payload("firing")).await;
        assert_eq!(code, 404);
        assert_eq!(
            body,
            "no DingTalk channel `nope` in the agent's config (it has ops-ding)\n"
        );
        let response = client()
            .get(format!("{agent}/dingtalk/nope/status"))
            .bearer_auth(RELAY_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        let response = client()
            .post(format!("{agent}/dingtalk/ops-ding"))
            .bearer_auth(RELAY_TOKEN)
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert!(response
            .text()
            .await
            .unwrap()
            .starts_with("not an Alertmanager webhook payload"));
        assert!(server.received_requests().await.unwrap().is_empty());
        let ready = client()
            .get(format!("{agent}/-/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);

        // Without any DingTalk config the agent runs as before and says why it has no channel.
        let bare = self::agent(vec![]).await;
        let (code, body) = post(&bare, "ops-ding", &payload("firing")).await;
        assert_eq!(code, 404);
        assert!(body.contains("it has none"), "{body}");
        assert!(!metrics(&bare).await.contains("dingtalk"));
    }

    #[tokio::test]
    async fn the_relay_refuses_requests_without_the_right_token() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(robot())
            .expect(1)
            .mount(&server)
            .await;
        let agent = agent(vec![("ops-ding", channel(&server))]).await;
        let firing = payload("firing");
        let refused = [
            None,
            Some("Bearer "),
            Some("Bearer wrong"),
            // One character short, one too many, the right one in another scheme.
            Some(&format!("Bearer {}", &RELAY_TOKEN[..63])),
            Some(&format!("Bearer {RELAY_TOKEN}0")),
            Some(&format!("Basic {RELAY_TOKEN}")),
            Some(RELAY_TOKEN),
        ];
        for authorization in refused {
            let (code, body) = post_with(&agent, "ops-ding", &firing, authorization).await;
            assert_eq!(code, 401, "{authorization:?}: {body}");
            assert!(body.contains("Authorization: Bearer"), "{body}");
            // Refused before the channel is looked at: unknown ones give nothing away either.
            let (code, body) = post_with(&agent, "nope", &firing, authorization).await;
            assert_eq!((code, body.contains("ops-ding")), (401, false), "{body}");
        }
        let response = client()
            .post(format!("{agent}/dingtalk/ops-ding"))
            .json(&firing)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer",
            "a 401 names the scheme"
        );
        // The record of a channel (DingTalk's last error) is behind the token too.
        for request in [
            client().get(format!("{agent}/dingtalk/ops-ding/status")),
            client()
                .get(format!("{agent}/dingtalk/ops-ding/status"))
                .bearer_auth("wrong"),
        ] {
            assert_eq!(request.send().await.unwrap().status(), 401);
        }
        assert!(
            server.received_requests().await.unwrap().is_empty(),
            "nothing refused reached DingTalk"
        );

        // With the token, the notification is forwarded and counted.
        let (code, body) = post(&agent, "ops-ding", &firing).await;
        assert_eq!((code, body.as_str()), (200, "sent\n"));
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        let record = status(&agent, "ops-ding").await;
        assert_eq!((record.sent, record.failed), (1, 0));

        // What Prometheus scrapes and Docker probes stays open.
        for open in ["/metrics", "/-/ready", "/-/healthy"] {
            let response = client().get(format!("{agent}{open}")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{open}");
        }
    }

    #[tokio::test]
    async fn channels_without_a_token_refuse_everything() {
        let server = MockServer::start().await;
        let agent = agent_with_token(vec![("ops-ding", channel(&server))], None).await;
        for authorization in [None, Some("Bearer "), Some("Bearer anything")] {
            let (code, _) = post_with(&agent, "ops-ding", &payload("firing"), authorization).await;
            assert_eq!(code, 401, "{authorization:?}");
        }
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[test]
    fn the_config_file_reads_back_what_render_writes() {
        let stack = crate::render::testkit::full();
        let files = crate::render::agent::render(&stack).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.yml");
        std::fs::write(&path, &files[0].contents).unwrap();
        let config = ConfigFile::load(&path).unwrap();
        assert_eq!(
            config.dingtalk["ops-ding"].secret.as_deref(),
            Some("SECxyz")
        );
        assert_eq!(
            config.relay_token,
            crate::render::agent::relay_token(&stack),
            "the token Alertmanager and Grafana are rendered with"
        );
        std::fs::write(
            &path,
            "relay_token: t\ndingtalk: {x: {url: u, sekret: s}}\n",
        )
        .unwrap();
        let error = format!("{:#}", ConfigFile::load(&path).unwrap_err());
        assert!(error.contains("sekret"), "{error}");
        // Channels without a token would make an open relay: refused at load.
        for text in [
            "dingtalk: {x: {url: u}}\n",
            "relay_token: ''\ndingtalk: {x: {url: u}}\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let error = format!("{:#}", ConfigFile::load(&path).unwrap_err());
            assert!(error.contains("no `relay_token`"), "{error}");
        }
        std::fs::write(&path, "{}\n").unwrap();
        assert!(ConfigFile::load(&path).unwrap().dingtalk.is_empty());
    }
}
