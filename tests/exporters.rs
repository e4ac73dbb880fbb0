//! Host metrics and probes on the real Docker Engine: `monstack up` runs node_exporter (in the
//! host's network and PID namespaces, the host's root read-only) and the blackbox exporter,
//! built here from Debian sid's node_exporter 1.11 and blackbox exporter 0.28, and Prometheus
//! in the stack's network scrapes both: job `node` up with the host's own interfaces and root
//! filesystem, an http probe of a server in this test up, a custom status code accepted, an
//! icmp probe of the host answered, a tcp probe of a closed port failing and its built-in alert
//! pending.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use monstack::stack::docker::Engine;
use serde_json::Value;

use crate::support::images::{
    free_port, require_docker_and_binaries, test_images, unique_project, ProjectGuard,
};
use crate::support::Project;

async fn query(port: u16, expr: &str) -> Vec<Value> {
    let body: Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("querying {expr}: {e}"))
        .json()
        .await
        .unwrap();
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `job health lastError` of every target, for failure messages.
async fn targets(port: u16) -> String {
    let body: Value = match reqwest::get(format!("http://127.0.0.1:{port}/api/v1/targets")).await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(e) => return format!("(Prometheus did not answer: {e})"),
    };
    body["data"]["activeTargets"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|t| {
                    format!(
                        "{} {} {} {}",
                        t["labels"]["job"], t["labels"]["instance"], t["health"], t["lastError"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n  ")
        })
        .unwrap_or_default()
}

/// The size of the filesystem holding `/` on this machine, as statvfs(2) reports it.
fn root_filesystem_bytes() -> f64 {
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c"/".as_ptr(), &mut stat) };
    assert_eq!(rc, 0, "statvfs /");
    stat.f_blocks as f64 * stat.f_frsize as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_node_exporter_and_the_blackbox_exporter_and_prometheus_scrapes_both() {
    if !require_docker_and_binaries() {
        return;
    }
    let engine = Engine::connect().await.expect("connecting to Docker");
    let images = test_images(&engine)
        .await
        .expect("building the test images");

    // A server on the host for the http probes, reached from the containers through the
    // bridge gateway (so it listens on every interface), and a port nothing listens on.
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
            .await
            .unwrap();
    let http_port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/gone", get(|| async { (StatusCode::GONE, "gone") }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let closed_port = free_port();

    let project = unique_project("exporters");
    let _guard = ProjectGuard::new(&project);
    let (prometheus_port, node_port, blackbox_port) = (free_port(), free_port(), free_port());
    let health = format!("http://host.docker.internal:{http_port}/health");
    let gone = format!("http://host.docker.internal:{http_port}/gone");
    let closed = format!("host.docker.internal:{closed_port}");
    let dir = Project::new().manifest(&format!(
        "project: {project}\n\
         prometheus: {{image: {}, port: {prometheus_port}, scrape_interval: 2s, evaluation_interval: 2s}}\n\
         grafana: false\n\
         node_exporter: {{image: {}, port: {node_port}}}\n\
         blackbox_exporter: {{image: {}, port: {blackbox_port}}}\n\
         probes:\n\
         \x20 - http: {health}\n\
         \x20 - http: {gone}\n\
         \x20   status: [410]\n\
         \x20 - tcp: {closed}\n\
         \x20   timeout: 2s\n\
         \x20 - icmp: host.docker.internal\n",
        images.prometheus, images.node_exporter, images.blackbox,
    ));
    let run = dir.run(&["up", "--timeout", "120"]);
    run.success();
    assert!(
        run.stdout.contains("node-exporter") && run.stdout.contains("blackbox"),
        "{}",
        run.stdout
    );

    // Every expectation at once, until all hold (the first scrapes take a few seconds).
    let expectations: Vec<(String, String)> = vec![
        ("node is scraped".into(), r#"up{job="node"} == 1"#.into()),
        (
            "the blackbox exporter is scraped".into(),
            r#"up{job="blackbox"} == 1"#.into(),
        ),
        (
            "the http probe succeeds".into(),
            format!(
                r#"probe_success{{job="probes", module="http_2xx", instance="{health}"}} == 1"#
            ),
        ),
        (
            "the expected 410 counts as success".into(),
            format!(
                r#"probe_success{{module="http_410", instance="{gone}"}} == 1 and probe_http_status_code{{instance="{gone}"}} == 410"#
            ),
        ),
        (
            "the closed port fails".into(),
            format!(r#"probe_success{{module="tcp_connect", instance="{closed}"}} == 0"#),
        ),
        (
            "the host answers the icmp probe".into(),
            r#"probe_success{module="icmp", instance="host.docker.internal"} == 1"#.into(),
        ),
        (
            "the failing probe's alert is pending".into(),
            format!(
                r#"ALERTS{{alertname="MonstackProbeFailing", alertstate="pending", instance="{closed}"}}"#
            ),
        ),
        (
            "node_exporter sees the host's interfaces (host network)".into(),
            r#"node_network_up{job="node", device="docker0"}"#.into(),
        ),
    ];
    let started = Instant::now();
    let missing = loop {
        let mut missing = Vec::new();
        for (what, expr) in &expectations {
            if query(prometheus_port, expr).await.is_empty() {
                missing.push(format!("{what}: {expr}"));
            }
        }
        if missing.is_empty() || started.elapsed() > Duration::from_secs(90) {
            break missing;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(
        missing.is_empty(),
        "not true after 90 s:\n  {}\ntargets:\n  {}",
        missing.join("\n  "),
        targets(prometheus_port).await
    );

    // The host's root filesystem, through the read-only /host mount.
    let root = query(
        prometheus_port,
        r#"node_filesystem_size_bytes{job="node", mountpoint="/"}"#,
    )
    .await;
    assert_eq!(root.len(), 1, "{root:?}");
    assert_eq!(value(&root[0]), root_filesystem_bytes());

    // node_exporter listens on Docker's bridge, not on every interface: this machine reaches
    // it there, `status` shows it, and nothing answers on loopback.
    let status = dir.run(&["status", "--json"]);
    status.success();
    let report: Value = serde_json::from_str(&status.stdout).unwrap();
    let node = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "node-exporter")
        .unwrap_or_else(|| panic!("no node-exporter in {report}"))
        .clone();
    assert_eq!(node["health"], "ready", "{node}");
    let url = node["url"].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!(":{node_port}")), "{url}");
    assert!(!url.contains("127.0.0.1"), "{url}");
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("node_uname_info"));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", node_port)).is_err(),
        "node_exporter must not listen on loopback (or all interfaces)"
    );

    // A second `up` changes nothing: the host-network container keeps its port.
    let again = dir.run(&["up"]);
    again.success();
    assert!(
        !again.stdout.contains("recreate") && !again.stderr.contains("recreate"),
        "stdout:\n{}\nstderr:\n{}",
        again.stdout,
        again.stderr
    );

    dir.run(&["down"]).success();
    server.abort();
}
