//! Alerts that arrive, end to end: a real stack (`monstack up`: Prometheus, Alertmanager and the
//! agent in Docker) notifies servers running in this test on the host, reached from the
//! containers as `host.docker.internal:<port>`:
//! - a webhook sink (Alertmanager's webhook payload checked),
//! - a real SMTP server (mailin-embedded; it refuses unknown recipients, the message's subject
//!   and body are checked),
//! - a robot playing DingTalk's API: access token, timestamp, signature (HMAC-SHA256 of
//!   `timestamp + "\n" + secret`, base64, URL-encoded) and keyword checked as DingTalk does,
//!   answering `errcode` 310000 otherwise,
//! - a Slack incoming webhook (JSON shape and channel checked).
//!
//! A rule fires because its target's port is closed, reaches all four, and resolves when the
//! port answers. `monstack alert test` reports every channel delivered, then, with the webhook
//! sink down and the robot's secret changed, those two as failed with the reason.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use monstack::stack::docker::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::images::{
    free_port, require_docker_and_binaries, test_images, unique_project, ProjectGuard, TestImages,
};
use crate::support::Project;

const DING_TOKEN: &str = "T0KEN";
const DING_SECRET: &str = "SECmonstacktest";
const DING_KEYWORD: &str = "monstack";
const MAIL_TO: &str = "ops@example.com";
const MAIL_FROM: &str = "monstack@example.com";
const SLACK_CHANNEL: &str = "#ops";

/// Everything the fake services accepted, and what they refused (for failure messages).
#[derive(Default)]
struct Received {
    webhook: Vec<Value>,
    slack: Vec<Value>,
    dingtalk: Vec<Value>,
    mail: Vec<Mail>,
    refused: Vec<String>,
}

#[derive(Debug, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

#[derive(Clone)]
struct Sinks {
    received: Arc<Mutex<Received>>,
    /// The secret the robot checks signatures with; changing it makes the agent's fail.
    ding_secret: Arc<Mutex<String>>,
}

impl Sinks {
    fn refuse(&self, what: String) {
        self.received.lock().unwrap().refused.push(what);
    }

    fn report(&self) -> String {
        let r = self.received.lock().unwrap();
        format!(
            "webhook: {:#?}\nslack: {:#?}\ndingtalk: {:#?}\nmail: {:#?}\nrefused: {:#?}",
            r.webhook, r.slack, r.dingtalk, r.mail, r.refused
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook sink

async fn webhook(State(sinks): State<Sinks>, body: Bytes) -> (axum::http::StatusCode, String) {
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            sinks.refuse(format!("webhook: not JSON: {e}"));
            return (axum::http::StatusCode::BAD_REQUEST, "not JSON".into());
        }
    };
    // Alertmanager's webhook payload, version 4.
    let shaped = payload["version"] == "4"
        && payload["status"].is_string()
        && payload["receiver"].is_string()
        && payload["alerts"].as_array().is_some_and(|a| !a.is_empty());
    if !shaped {
        sinks.refuse(format!("webhook: unexpected payload {payload}"));
        return (axum::http::StatusCode::BAD_REQUEST, "bad payload".into());
    }
    sinks.received.lock().unwrap().webhook.push(payload);
    (axum::http::StatusCode::OK, "ok".into())
}

// ---------------------------------------------------------------------------------------------
// Slack's incoming webhook: JSON with `text` or `attachments`, to the configured channel.

async fn slack(State(sinks): State<Sinks>, body: Bytes) -> (axum::http::StatusCode, String) {
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        sinks.refuse("slack: not JSON".into());
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_payload".into(),
        );
    };
    let has_text = payload["text"].as_str().is_some_and(|t| !t.is_empty());
    let has_attachments = payload["attachments"].as_array().is_some_and(|a| {
        !a.is_empty()
            && a.iter()
                .all(|att| att["title"].is_string() || att["fallback"].is_string())
    });
    if !(has_text || has_attachments) {
        sinks.refuse(format!("slack: no text or attachments: {payload}"));
        return (axum::http::StatusCode::BAD_REQUEST, "no_text".into());
    }
    if payload["channel"] != SLACK_CHANNEL {
        sinks.refuse(format!("slack: wrong channel: {payload}"));
        return (
            axum::http::StatusCode::NOT_FOUND,
            "channel_not_found".into(),
        );
    }
    sinks.received.lock().unwrap().slack.push(payload);
    (axum::http::StatusCode::OK, "ok".into())
}

// ---------------------------------------------------------------------------------------------
// DingTalk's robot API: checks as documented for custom robots, answers with errcode.

/// HMAC-SHA256 written out from RFC 2104, independent of the agent's implementation.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut key_block = [0u8; BLOCK];
    if key.len() > BLOCK {
        key_block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        key_block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| key_block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn ding_sign(secret: &str, timestamp: &str) -> String {
    let mac = hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp}\n{secret}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(mac)
}

#[test]
fn hmac_matches_rfc_4231_case_2() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

async fn dingtalk(
    State(sinks): State<Sinks>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Json<Value> {
    let refuse = |errcode: i64, errmsg: &str, detail: String| {
        sinks.refuse(format!("dingtalk: {errmsg}: {detail}"));
        Json(json!({"errcode": errcode, "errmsg": errmsg}))
    };
    if query.get("access_token").map(String::as_str) != Some(DING_TOKEN) {
        return refuse(300001, "token is not exist", format!("{query:?}"));
    }
    let (Some(timestamp), Some(sign)) = (query.get("timestamp"), query.get("sign")) else {
        return refuse(310000, "sign not match", format!("{query:?}"));
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    match timestamp.parse::<i64>() {
        Ok(ts) if (now_ms - ts).abs() <= 3_600_000 => {}
        _ => return refuse(310000, "invalid timestamp", timestamp.clone()),
    }
    // The query is already URL-decoded once: `sign` must be the plain base64 signature, so a
    // `+` the agent forgot to encode arrives as a space and fails, as on DingTalk.
    let secret = sinks.ding_secret.lock().unwrap().clone();
    if *sign != ding_sign(&secret, timestamp) {
        return refuse(310000, "sign not match", format!("{query:?}"));
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return refuse(43004, "invalid json", String::from_utf8_lossy(&body).into());
    };
    let content = match message["msgtype"].as_str() {
        Some("markdown") => format!(
            "{}\n{}",
            message["markdown"]["title"].as_str().unwrap_or_default(),
            message["markdown"]["text"].as_str().unwrap_or_default()
        ),
        Some("text") => message["text"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        _ => return refuse(40035, "missing msgtype", message.to_string()),
    };
    if !content.contains(DING_KEYWORD) {
        return refuse(310000, "keywords not in content", content);
    }
    sinks.received.lock().unwrap().dingtalk.push(message);
    Json(json!({"errcode": 0, "errmsg": "ok"}))
}

// ---------------------------------------------------------------------------------------------
// SMTP: a real server (mailin-embedded) with a handler that keeps the messages.

#[derive(Clone)]
struct MailHandler {
    received: Arc<Mutex<Received>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for MailHandler {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> mailin_embedded::Response {
        self.from = from.to_string();
        self.to.clear();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn rcpt(&mut self, to: &str) -> mailin_embedded::Response {
        if to != MAIL_TO {
            self.received
                .lock()
                .unwrap()
                .refused
                .push(format!("smtp: unknown recipient {to}"));
            return mailin_embedded::response::NO_MAILBOX;
        }
        self.to.push(to.to_string());
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let mail = Mail {
            from: self.from.clone(),
            to: self.to.clone(),
            data: String::from_utf8_lossy(&self.data).into_owned(),
        };
        self.received.lock().unwrap().mail.push(mail);
        mailin_embedded::response::OK
    }
}

fn start_smtp(received: Arc<Mutex<Received>>) -> u16 {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = MailHandler {
        received,
        from: String::new(),
        to: Vec::new(),
        data: Vec::new(),
    };
    let mut server = mailin_embedded::Server::new(handler);
    server
        .with_name("sink.test")
        .with_ssl(mailin_embedded::SslConfig::None)
        .unwrap()
        .with_tcp_listener(listener);
    // Serves until the test process ends.
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    port
}

/// Quoted-printable decoding, enough for Alertmanager's HTML mail.
fn unquote_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn subject(mail: &Mail) -> String {
    mail.data
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// HTTP servers on the host

/// Serves `router` on 0.0.0.0 (the containers reach it through the bridge gateway); aborting
/// the task closes the port.
async fn serve(router: Router, port: u16) -> tokio::task::JoinHandle<()> {
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
            .await
            .unwrap_or_else(|e| panic!("binding 0.0.0.0:{port}: {e}"));
    // axum runs each connection in a task of its own, which aborting the server does not end:
    // a connection Alertmanager keeps alive would go on answering after the sink "stopped".
    // Every answer closes its connection, so a stopped sink refuses the next one.
    let router = router.layer(axum::middleware::map_response(
        |mut response: axum::response::Response| async move {
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        },
    ));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

async fn wait_until(what: &str, sinks: &Sinks, limit: Duration, check: impl Fn(&Received) -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check(&sinks.received.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "timed out after {limit:?} waiting for: {what}\n{}",
        sinks.report()
    );
}

fn webhook_has(r: &Received, alertname: &str, status: &str) -> bool {
    r.webhook.iter().any(|p| {
        p["status"] == status
            && p["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["labels"]["alertname"] == alertname && a["status"] == status)
    })
}

fn slack_has(r: &Received, title_start: &str) -> bool {
    r.slack.iter().any(|p| {
        p["attachments"].as_array().into_iter().flatten().any(|a| {
            a["title"]
                .as_str()
                .unwrap_or_default()
                .starts_with(title_start)
        })
    })
}

fn dingtalk_has(r: &Received, needles: &[&str]) -> bool {
    r.dingtalk.iter().any(|m| {
        let text = m["markdown"]["text"].as_str().unwrap_or_default();
        needles.iter().all(|n| text.contains(n))
    })
}

fn mail_with_subject(r: &Received, start: &str) -> Option<Mail> {
    r.mail
        .iter()
        .find(|m| subject(m).starts_with(start))
        .cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_firing_rule_reaches_every_channel_resolves_and_alert_test_tells_failures() {
    if !require_docker_and_binaries() {
        return;
    }
    let engine = Engine::connect().await.unwrap();
    let images = test_images(&engine).await.unwrap();
    every_channel_on(&images, &images.alertmanager).await;
}

/// The same on the newest Alertmanager (0.33: another log format, `aggrGroup=` on every line).
#[tokio::test(flavor = "multi_thread")]
async fn alert_delivery_and_alert_test_work_on_the_newest_alertmanager() {
    if !require_docker_and_binaries() {
        return;
    }
    let engine = Engine::connect().await.unwrap();
    let images = test_images(&engine).await.unwrap();
    every_channel_on(&images, &images.alertmanager_newest).await;
}

async fn every_channel_on(images: &TestImages, alertmanager_image: &str) {
    let begun = Instant::now();
    let name = unique_project("alerts");
    let _guard = ProjectGuard::new(&name);

    let sinks = Sinks {
        received: Arc::new(Mutex::new(Received::default())),
        ding_secret: Arc::new(Mutex::new(DING_SECRET.to_string())),
    };
    let smtp_port = start_smtp(sinks.received.clone());
    let (http_port, probe_port) = (free_port(), free_port());
    let http = serve(
        Router::new()
            .route("/hook", post(webhook))
            .route("/slack/T0/B0/XXXX", post(slack))
            .route("/robot/send", post(dingtalk))
            .with_state(sinks.clone()),
        http_port,
    )
    .await;

    let (prometheus, alertmanager, agent) = (free_port(), free_port(), free_port());
    let manifest = format!(
        r#"project: {name}
prometheus: {{image: {prom_image}, port: {prometheus}, scrape_interval: 1s, evaluation_interval: 1s}}
grafana: false
alertmanager: {{image: {am_image}, port: {alertmanager}}}
agent: {{port: {agent}}}
targets:
  - job: probe
    targets: ["host.docker.internal:{probe_port}"]
channels:
  - name: ops-mail
    email: {{to: [{MAIL_TO}]}}
  - name: ops-ding
    dingtalk:
      url: "http://host.docker.internal:{http_port}/robot/send?access_token={DING_TOKEN}"
      secret: {DING_SECRET}
      keyword: {DING_KEYWORD}
  - name: hook
    webhook: {{url: "http://host.docker.internal:{http_port}/hook"}}
  - name: chat
    slack: {{url: "http://host.docker.internal:{http_port}/slack/T0/B0/XXXX", channel: "{SLACK_CHANNEL}"}}
smtp: {{host: "host.docker.internal:{smtp_port}", from: {MAIL_FROM}, require_tls: false}}
alerting: {{group_wait: 1s, group_interval: 1s}}
alerts:
  - name: ProbeDown
    expr: up{{job="probe"}} == 0
    severity: critical
    summary: "probe target {{{{ $labels.instance }}}} is down"
"#,
        prom_image = images.prometheus,
        am_image = alertmanager_image,
    );
    let project = Project::new().manifest(&manifest);
    project.run(&["up", "--timeout", "120"]).success();
    eprintln!("stack up after {:.1}s", begun.elapsed().as_secs_f64());

    // The built-in pack is loaded next to the user's rules.
    let rules: Value = reqwest::get(format!("http://127.0.0.1:{prometheus}/api/v1/rules"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups: Vec<&str> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        groups.contains(&"monstack") && groups.contains(&"monstack-builtin"),
        "{groups:?}"
    );

    // Firing: the probe's port is closed.
    let instance = format!("host.docker.internal:{probe_port}");
    let limit = Duration::from_secs(60);
    wait_until("the firing webhook", &sinks, limit, |r| {
        webhook_has(r, "ProbeDown", "firing")
    })
    .await;
    wait_until("the firing Slack message", &sinks, limit, |r| {
        slack_has(r, "[FIRING:1] ProbeDown")
    })
    .await;
    wait_until("the firing DingTalk message", &sinks, limit, |r| {
        dingtalk_has(r, &["ProbeDown", "FIRING"])
    })
    .await;
    wait_until("the firing mail", &sinks, limit, |r| {
        mail_with_subject(r, "[FIRING:1] ProbeDown").is_some()
    })
    .await;
    {
        let r = sinks.received.lock().unwrap();
        let payload = r.webhook.iter().find(|p| p["status"] == "firing").unwrap();
        let alert = &payload["alerts"][0];
        assert_eq!(payload["receiver"], "monstack-default");
        assert_eq!(alert["labels"]["job"], "probe");
        assert_eq!(alert["labels"]["instance"], instance.as_str());
        assert_eq!(alert["labels"]["severity"], "critical");
        assert_eq!(
            alert["annotations"]["summary"],
            format!("probe target {instance} is down").as_str()
        );
        let mail = mail_with_subject(&r, "[FIRING:1] ProbeDown").unwrap();
        assert_eq!(mail.from, MAIL_FROM);
        assert_eq!(mail.to, [MAIL_TO]);
        let body = unquote_printable(&mail.data);
        assert!(
            body.contains(&format!("probe target {instance} is down")),
            "{body}"
        );
        assert!(
            dingtalk_has(&r, &[&format!("probe target {instance} is down")]),
            "{:#?}",
            r.dingtalk
        );
    }
    eprintln!(
        "fired everywhere after {:.1}s",
        begun.elapsed().as_secs_f64()
    );

    // Resolved: the port answers.
    let probe = serve(
        Router::new().route(
            "/metrics",
            get(|| async { "# TYPE probe_ok gauge\nprobe_ok 1\n" }),
        ),
        probe_port,
    )
    .await;
    wait_until("the resolved webhook", &sinks, limit, |r| {
        webhook_has(r, "ProbeDown", "resolved")
    })
    .await;
    wait_until("the resolved Slack message", &sinks, limit, |r| {
        slack_has(r, "[RESOLVED] ProbeDown")
    })
    .await;
    wait_until("the resolved DingTalk message", &sinks, limit, |r| {
        dingtalk_has(r, &["ProbeDown", "RESOLVED"])
    })
    .await;
    wait_until("the resolved mail", &sinks, limit, |r| {
        mail_with_subject(r, "[RESOLVED] ProbeDown").is_some()
    })
    .await;
    eprintln!(
        "resolved everywhere after {:.1}s",
        begun.elapsed().as_secs_f64()
    );

    // alert test, everything up: delivered, and the synthetic alert arrived where it should.
    let run = project.run(&["alert", "test"]);
    run.success();
    for channel in ["ops-mail", "ops-ding", "hook", "chat"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(channel))
            .unwrap_or_else(|| panic!("no line for {channel}:\n{}", run.stdout));
        assert!(line.ends_with("delivered"), "{}", run.stdout);
    }
    {
        let r = sinks.received.lock().unwrap();
        let test_payload = r
            .webhook
            .iter()
            .find(|p| p["alerts"][0]["labels"]["alertname"] == "MonstackTest")
            .unwrap_or_else(|| panic!("no test alert at the webhook\n{:#?}", r.webhook));
        assert_eq!(test_payload["receiver"], "hook");
        assert_eq!(
            test_payload["alerts"][0]["labels"]["monstack_channel"],
            "hook"
        );
        // Routed to exactly one channel each: the webhook got only its own.
        assert!(r
            .webhook
            .iter()
            .filter(|p| p["alerts"][0]["labels"]["alertname"] == "MonstackTest")
            .all(|p| p["alerts"][0]["labels"]["monstack_channel"] == "hook"));
        assert!(mail_with_subject(&r, "[FIRING:1] MonstackTest").is_some());
        assert!(dingtalk_has(&r, &["MonstackTest"]));
        assert!(slack_has(&r, "[FIRING:1] MonstackTest"));
    }
    eprintln!(
        "alert test delivered after {:.1}s",
        begun.elapsed().as_secs_f64()
    );

    // The webhook sink down, the robot's secret changed: both failed with the reason; Slack
    // still delivered; exit code 1.
    http.abort();
    let _ = http.await;
    *sinks.ding_secret.lock().unwrap() = "SECsomethingelse".into();
    let http = serve(
        Router::new()
            .route("/slack/T0/B0/XXXX", post(slack))
            .route("/robot/send", post(dingtalk))
            .with_state(sinks.clone()),
        http_port,
    )
    .await;
    let run = project.run(&["alert", "test", "hook", "ops-ding", "chat"]);
    run.code(1);
    let line = |channel: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(channel))
            .unwrap_or_else(|| panic!("no line for {channel}:\n{}\n{}", run.stdout, run.stderr))
            .to_string()
    };
    let hook = line("hook");
    assert!(
        hook.contains("failed: ") && hook.contains("404"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let ding = line("ops-ding");
    assert!(
        ding.contains("failed: ") && ding.contains("sign not match"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(line("chat").ends_with("delivered"), "{}", run.stdout);
    assert!(
        run.stderr.contains("2 of 3 channels failed"),
        "{}",
        run.stderr
    );

    // And with nothing listening at all: the connection is refused.
    http.abort();
    let _ = http.await;
    let run = project.run(&["alert", "test", "hook"]);
    run.code(1);
    assert!(
        run.stdout.contains("failed: ") && run.stdout.contains("connection refused"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    probe.abort();
    eprintln!("done after {:.1}s", begun.elapsed().as_secs_f64());
}
