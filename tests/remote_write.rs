//! `prometheus.remote_write` and `prometheus.mode: agent` against real receivers: the stack's
//! Prometheus 3.5 (in its container) writes to a second Prometheus 3.5 started with
//! `--web.enable-remote-write-receiver` and to a VictoriaMetrics single node, both processes on
//! this machine on loopback. A capturing proxy in this test sits in front of each, on Docker's
//! bridge address (what `host.docker.internal` is inside the containers): it records the path
//! and headers of every request and forwards it. Both receivers are stopped for 60 s and started
//! again, and the samples of that minute are queried back from them afterwards. The edge test
//! does the same with two stacks: a central one (a monstack server accepting remote writes) and
//! an edge one in agent mode.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use monstack::stack::docker::Engine;
use serde_json::Value;

use crate::support::images::{
    free_port, require_docker_and_binaries, test_images, unique_project, ProjectGuard, TestImages,
};
use crate::support::testsupport::eventually;
use crate::support::testsupport::{self, ChildGuard};
use crate::support::{Project, Run};

/// How long the receivers are away.
const OUTAGE: Duration = Duration::from_secs(60);

/// One request the proxy forwarded.
#[derive(Debug, Clone)]
struct Captured {
    path: String,
    headers: Vec<(String, String)>,
}

struct Proxy {
    /// Where Prometheus sends to, as seen from the containers' side: the bridge address.
    port: u16,
    captured: Arc<Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    /// The path the receiver serves, whatever path Prometheus used (a preset's).
    upstream_path: &'static str,
    /// The `Authorization` header a request must carry, as an authenticating proxy in front
    /// of a receiver would demand (401 otherwise).
    require_auth: Option<String>,
    captured: Arc<Mutex<Vec<Captured>>>,
    client: reqwest::Client,
}

async fn forward(
    State(state): State<ProxyState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.captured.lock().unwrap().push(Captured {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
    });
    if let Some(required) = &state.require_auth {
        let given = headers.get("authorization").and_then(|v| v.to_str().ok());
        if given != Some(required.as_str()) {
            return (StatusCode::UNAUTHORIZED, "wrong credentials").into_response();
        }
    }
    let mut request = state
        .client
        .post(format!("{}{}", state.upstream, state.upstream_path))
        .body(body);
    for (name, value) in &headers {
        if !["host", "content-length", "authorization"].contains(&name.as_str()) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            (status, answer.bytes().await.unwrap_or_default()).into_response()
        }
        // The receiver is down: a 503, which Prometheus retries.
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn start_proxy(
    listen: IpAddr,
    upstream_port: u16,
    upstream_path: &'static str,
    require_auth: Option<String>,
) -> Proxy {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(listen, 0))
        .await
        .unwrap_or_else(|e| panic!("binding the proxy to {listen}: {e}"));
    let port = listener.local_addr().unwrap().port();
    let captured = Arc::new(Mutex::new(Vec::new()));
    let state = ProxyState {
        upstream: format!("http://127.0.0.1:{upstream_port}"),
        upstream_path,
        require_auth,
        captured: captured.clone(),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    let app = Router::new().fallback(forward).with_state(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Proxy {
        port,
        captured,
        task,
    }
}

fn receiver_prometheus(binary: &Path, dir: &Path, port: u16) -> ChildGuard {
    ChildGuard::spawn(
        testsupport::prometheus_command(
            binary,
            &dir.join("receiver.yml"),
            &dir.join("receiver-data"),
            port,
        )
        .arg("--web.enable-remote-write-receiver"),
        &dir.join(format!("receiver-{}.log", now_secs() as u64)),
    )
}

fn victoria_metrics(binary: &Path, dir: &Path, port: u16) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(binary)
            .arg(format!(
                "-storageDataPath={}",
                dir.join("vm-data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            // Samples are searchable at once, not after the default 30 s.
            .arg("-search.latencyOffset=1s")
            .arg("-loggerLevel=WARN"),
        &dir.join(format!("vm-{}.log", now_secs() as u64)),
    )
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The result vector of an instant query (Prometheus or VictoriaMetrics), empty on any error.
async fn query(port: u16, expr: &str, at: Option<f64>) -> Vec<Value> {
    let mut params = vec![("query", expr.to_string())];
    if let Some(at) = at {
        params.push(("time", format!("{at:.3}")));
    }
    let Ok(answer) = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&params)
        .send()
        .await
    else {
        return vec![];
    };
    let body: Value = answer.json().await.unwrap_or_default();
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

/// Runs the monstack binary without holding up the runtime the proxies run on.
fn run(project: &Project, args: &[&str]) -> Run {
    tokio::task::block_in_place(|| project.run(args))
}

/// The samples of `series` in the minute of the outage, as the receiver at `port` has them.
async fn samples_in(port: u16, series: &str, from: f64, to: f64) -> f64 {
    let window = (to - from).floor() as u64;
    query(
        port,
        &format!("count_over_time({series}[{window}s])"),
        Some(to),
    )
    .await
    .first()
    .map_or(0.0, value)
}

/// `status --json`'s receivers by name: (state, pending, behind seconds).
fn remotes(project: &Project) -> Vec<(String, String, f64, Option<f64>)> {
    let status = run(project, &["status", "--json"]);
    status.success();
    let report: Value = serde_json::from_str(&status.stdout).expect("status --json is JSON");
    report["remotes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["url"].as_str().unwrap_or_default().to_string(),
                r["pending"].as_f64().unwrap_or(f64::NAN),
                r["behind_seconds"].as_f64(),
            )
        })
        .collect()
}

struct Setup {
    engine: Engine,
    images: TestImages,
    gateway: IpAddr,
}

async fn setup() -> Option<Setup> {
    if !require_docker_and_binaries() {
        return None;
    }
    let engine = Engine::connect().await.expect("connecting to Docker");
    let images = test_images(&engine)
        .await
        .expect("building the test images");
    let Some(gateway) = engine
        .host_gateway()
        .await
        .expect("inspecting Docker's bridge")
    else {
        testsupport::skip_or_fail("Docker's bridge network has no gateway address");
        return None;
    };
    Some(Setup {
        engine,
        images,
        gateway,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stack_writes_to_prometheus_and_victoriametrics_and_the_minute_they_were_away_arrives()
{
    let Some(setup) = setup().await else {
        return;
    };
    let (Some(prometheus_bin), Some(vm_bin)) = (
        testsupport::pinned(testsupport::PROMETHEUS),
        testsupport::pinned(testsupport::VICTORIA_METRICS),
    ) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("receiver.yml"), "global: {}\n").unwrap();
    let (receiver_port, vm_port) = (free_port(), free_port());
    let mut receiver = receiver_prometheus(&prometheus_bin, work.path(), receiver_port);
    let mut vm = victoria_metrics(&vm_bin, work.path(), vm_port);
    let client = reqwest::Client::new();
    for (child, port, path) in [
        (&mut receiver, receiver_port, "/-/ready"),
        (&mut vm, vm_port, "/health"),
    ] {
        let url = format!("http://127.0.0.1:{port}{path}");
        child
            .wait_until("the receiver starts", Duration::from_secs(30), || {
                let request = client.get(&url).send();
                async move { request.await.is_ok_and(|r| r.status().is_success()) }
            })
            .await;
    }
    // Mimir's path and tenant header through the preset; the proxy hands the samples to the
    // Prometheus receiver's own path.
    let password = "rw-Pa55word-0f-the-test";
    let mimir_proxy = start_proxy(
        setup.gateway,
        receiver_port,
        "/api/v1/write",
        Some(basic("edge", password)),
    )
    .await;
    let vm_proxy = start_proxy(setup.gateway, vm_port, "/api/v1/write", None).await;

    let project_name = unique_project("remote-write");
    let _guard = ProjectGuard::new(&project_name);
    let prometheus_port = free_port();
    let project = Project::new()
        .file("secrets/receiver-password", &format!("{password}\n"))
        .manifest(&format!(
            "project: {project_name}\n\
             prometheus:\n\
             \x20 image: {image}\n\
             \x20 port: {prometheus_port}\n\
             \x20 scrape_interval: 1s\n\
             \x20 external_labels: {{cluster: test}}\n\
             \x20 remote_write:\n\
             \x20   - name: receiver\n\
             \x20     url: http://host.docker.internal:{mimir}\n\
             \x20     preset: mimir\n\
             \x20     tenant: team-a\n\
             \x20     basic_auth: {{username: edge, password_file: secrets/receiver-password}}\n\
             \x20     queue_config: {{batch_send_deadline: 1s, max_samples_per_send: 500}}\n\
             \x20     keep: [up, 'prometheus_tsdb_head_.*']\n\
             \x20   - name: vm\n\
             \x20     url: http://host.docker.internal:{vmp}\n\
             \x20     preset: victoriametrics\n\
             \x20     headers: {{X-Source: monstack-test}}\n\
             \x20     queue_config: {{batch_send_deadline: 1s}}\n\
             \x20     drop: ['go_.*']\n\
             grafana: false\n",
            image = setup.images.prometheus,
            mimir = mimir_proxy.port,
            vmp = vm_proxy.port,
        ));
    std::fs::set_permissions(
        project.path().join("secrets/receiver-password"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let up = run(&project, &["up", "--timeout", "120"]);
    up.success();
    let rendered = project.read(".monstack/prometheus/prometheus.yml");
    assert!(
        !rendered.contains(password),
        "the password is in prometheus.yml:\n{rendered}"
    );
    let mode = std::os::unix::fs::MetadataExt::mode(
        &std::fs::metadata(
            project
                .path()
                .join(".monstack/prometheus/remote_write/1-receiver/password"),
        )
        .unwrap(),
    );
    assert_eq!(
        mode & 0o007,
        0,
        "the copied password is readable by others: {mode:o}"
    );

    // The samples arrive at both receivers, filtered as asked.
    for (port, what) in [
        (receiver_port, "the Prometheus receiver"),
        (vm_port, "VictoriaMetrics"),
    ] {
        eventually(
            &format!("{what} has the stack's `up`"),
            Duration::from_secs(60),
            || async move {
                !query(port, "up{job=\"prometheus\",cluster=\"test\"}", None)
                    .await
                    .is_empty()
            },
        )
        .await;
    }
    assert!(
        query(receiver_port, "{__name__=~\"go_.*\"}", None)
            .await
            .is_empty(),
        "`keep` let other metrics through"
    );
    assert!(
        !query(receiver_port, "prometheus_tsdb_head_series", None)
            .await
            .is_empty(),
        "`keep` of a regex dropped what it names"
    );
    assert!(
        query(vm_port, "{__name__=~\"go_.*\"}", None)
            .await
            .is_empty(),
        "`drop` let go_ metrics through"
    );
    assert!(
        !query(vm_port, "prometheus_build_info", None)
            .await
            .is_empty(),
        "`drop` dropped more than it names"
    );

    // What went over the wire: the preset's paths, the tenant header, basic auth.
    let mimir_requests = mimir_proxy.captured.lock().unwrap().clone();
    let first = mimir_requests.first().expect("requests to the receiver");
    assert_eq!(first.path, "/api/v1/push");
    let header = |c: &Captured, name: &str| {
        c.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(first, "x-scope-orgid").as_deref(), Some("team-a"));
    let expected = basic("edge", password);
    assert_eq!(header(first, "authorization"), Some(expected));
    let vm_requests = vm_proxy.captured.lock().unwrap().clone();
    let first = vm_requests.first().expect("requests to VictoriaMetrics");
    assert_eq!(first.path, "/api/v1/write");
    assert_eq!(header(first, "x-source").as_deref(), Some("monstack-test"));
    assert_eq!(header(first, "authorization"), None);

    // `status` reads each receiver's queue from Prometheus' own metrics.
    let status = run(&project, &["status"]);
    status.success();
    assert!(status.stdout.contains("REMOTE"), "{}", status.stdout);
    assert!(!status.stdout.contains(password) && !status.stderr.contains(password));
    let names: Vec<String> = remotes(&project).into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["receiver", "vm"]);

    // Both receivers go away for a minute.
    drop(receiver);
    drop(vm);
    let gone = now_secs();
    tokio::time::sleep(OUTAGE - Duration::from_secs(10)).await;
    // Prometheus keeps the samples and says how far behind each receiver is.
    for (name, url, pending, behind) in remotes(&project) {
        assert!(url.starts_with("http://host.docker.internal:"), "{url}");
        let behind = behind.unwrap_or_else(|| panic!("{name}: no lag reported"));
        assert!(
            behind > 20.0,
            "{name} is only {behind} s behind after 50 s away (pending {pending})"
        );
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let back = now_secs();
    let receiver = receiver_prometheus(&prometheus_bin, work.path(), receiver_port);
    let vm = victoria_metrics(&vm_bin, work.path(), vm_port);
    let restarted = Instant::now();

    // The minute they were away arrives: about one `up` per second of it (1 s scrapes).
    let (from, to) = (gone + 5.0, back - 5.0);
    let expected = (to - from) * 0.8;
    for (port, what) in [
        (receiver_port, "the Prometheus receiver"),
        (vm_port, "VictoriaMetrics"),
    ] {
        let series = "up{job=\"prometheus\",cluster=\"test\"}";
        eventually(
            &format!("{what} has the samples of the outage"),
            Duration::from_secs(120),
            || async move { samples_in(port, series, from, to).await >= expected },
        )
        .await;
        // A figure for the report, not an assertion.
        eprintln!(
            "{what}: the outage's samples were there {:.1} s after its restart",
            restarted.elapsed().as_secs_f64()
        );
    }
    eventually(
        "every receiver caught up",
        Duration::from_secs(60),
        || async {
            remotes(&project)
                .iter()
                .all(|(_, _, _, behind)| behind.is_some_and(|b| b < 30.0))
        },
    )
    .await;
    drop((receiver, vm));
    run(&project, &["down", "--volumes"]).success();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_agent_sends_to_a_central_stack_and_catches_up_after_it_was_stopped() {
    let Some(setup) = setup().await else {
        return;
    };
    let central_name = unique_project("central");
    let edge_name = unique_project("edge");
    let _central_guard = ProjectGuard::new(&central_name);
    let _edge_guard = ProjectGuard::new(&edge_name);

    // The central stack: a Prometheus server that accepts remote writes.
    let central_port = free_port();
    let central = Project::new().manifest(&format!(
        "project: {central_name}\n\
         prometheus:\n\
         \x20 image: {image}\n\
         \x20 port: {central_port}\n\
         \x20 remote_write_receiver: true\n\
         grafana: false\n",
        image = setup.images.prometheus,
    ));
    run(&central, &["up", "--timeout", "120"]).success();
    // An authenticating proxy in front of it, as between hosts.
    let password = "edge-Pa55word-for-central";
    let proxy = start_proxy(
        setup.gateway,
        central_port,
        "/api/v1/write",
        Some(basic("edge-1", password)),
    )
    .await;

    // The edge: Prometheus in agent mode and node_exporter, nothing else.
    let (edge_port, node_port) = (free_port(), free_port());
    let edge = Project::new()
        .file("central-password", &format!("{password}\n"))
        .manifest(&format!(
            "project: {edge_name}\n\
             prometheus:\n\
             \x20 image: {image}\n\
             \x20 port: {edge_port}\n\
             \x20 mode: agent\n\
             \x20 scrape_interval: 1s\n\
             \x20 external_labels: {{host: edge-1}}\n\
             \x20 remote_write:\n\
             \x20   - name: central\n\
             \x20     url: http://host.docker.internal:{proxy}/api/v1/write\n\
             \x20     basic_auth: {{username: edge-1, password_file: central-password}}\n\
             \x20     queue_config: {{batch_send_deadline: 1s}}\n\
             node_exporter: {{image: {node}, port: {node_port}}}\n",
            image = setup.images.prometheus,
            node = setup.images.node_exporter,
            proxy = proxy.port,
        ));
    std::fs::set_permissions(
        edge.path().join("central-password"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let validate = run(&edge, &["validate"]);
    validate.success();
    assert!(
        validate.stdout.contains("agent mode"),
        "{}",
        validate.stdout
    );
    run(&edge, &["up", "--timeout", "120"]).success();

    // Only what the profile needs runs.
    let mut services: Vec<String> = setup
        .engine
        .project_containers(&edge_name)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.service)
        .collect();
    services.sort();
    assert_eq!(services, ["node-exporter", "prometheus"]);
    assert!(!edge.exists(".monstack/grafana/provisioning/datasources/monstack.yaml"));
    assert!(!edge.exists(".monstack/prometheus/rules/monstack-builtin.yml"));
    // An agent answers no queries.
    let answer: Value = reqwest::get(format!(
        "http://127.0.0.1:{edge_port}/api/v1/query?query=up"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(answer["status"], "error", "{answer}");

    // The central stack has the edge's samples, its host metrics included.
    for series in [
        "up{host=\"edge-1\",job=\"prometheus\"}",
        "node_load1{host=\"edge-1\"}",
    ] {
        eventually(
            &format!("central has {series}"),
            Duration::from_secs(60),
            || async move { !query(central_port, series, None).await.is_empty() },
        )
        .await;
    }
    let captured = proxy.captured.lock().unwrap().clone();
    assert!(captured.iter().all(|c| c.path == "/api/v1/write"));
    let status = run(&edge, &["status"]);
    status.success();
    assert!(status.stderr.contains("agent mode"), "{}", status.stderr);
    assert!(status.stdout.contains("REMOTE"), "{}", status.stdout);
    assert!(!status.stdout.contains(password) && !status.stderr.contains(password));
    let listed = remotes(&edge);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, "central");

    // The central Prometheus stops for a minute.
    let container = format!("monstack-{central_name}-prometheus");
    let docker = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    docker(&["stop", "-t", "5", &container]);
    let gone = now_secs();
    tokio::time::sleep(OUTAGE).await;
    let behind = remotes(&edge)[0].3;
    assert!(behind.is_some_and(|b| b > 30.0), "behind: {behind:?}");
    docker(&["start", &container]);
    let back = now_secs();
    let restarted = Instant::now();

    let (from, to) = (gone + 5.0, back - 5.0);
    let expected = (to - from) * 0.8;
    eventually(
        "central has the samples of the minute it was stopped",
        Duration::from_secs(120),
        || async move {
            samples_in(
                central_port,
                "up{host=\"edge-1\",job=\"prometheus\"}",
                from,
                to,
            )
            .await
                >= expected
        },
    )
    .await;
    eprintln!(
        "central: the outage's samples were there {:.1} s after its start",
        restarted.elapsed().as_secs_f64()
    );
    // A changed receiver setting reloads the agent (confirmed against its loaded config, which
    // an agent serves), nothing is recreated.
    let manifest = edge.read("monstack.yaml");
    std::fs::write(
        edge.path().join("monstack.yaml"),
        manifest.replace(
            "batch_send_deadline: 1s}",
            "batch_send_deadline: 1s, max_shards: 4}",
        ),
    )
    .unwrap();
    let reload = run(&edge, &["up", "--timeout", "120"]);
    reload.success();
    assert!(
        reload.stderr.contains("reload   prometheus") && !reload.stderr.contains("recreate"),
        "{}",
        reload.stderr
    );
    assert!(edge
        .read(".monstack/prometheus/prometheus.yml")
        .contains("max_shards: 4"));
    run(&edge, &["down", "--volumes"]).success();
    run(&central, &["down", "--volumes"]).success();
}

#[test]
fn an_agent_manifest_that_asks_for_local_queries_is_refused_and_nothing_is_written() {
    let project = Project::new()
        .file("token", "t0ken-of-the-test\n")
        .manifest(
            "project: edge\n\
             prometheus:\n\
             \x20 mode: agent\n\
             \x20 remote_write: [{url: 'https://central.example.com/api/v1/write', bearer_token_file: token}]\n\
             alertmanager: {}\n\
             alerts: [{name: Down, expr: up == 0}]\n",
        );
    let render = project.run(&["render"]);
    render.code(2);
    assert_eq!(
        render.headlines(),
        [
            "monstack.yaml:5:1: `alertmanager` cannot be used with `prometheus.mode: agent`: an agent sends no alerts",
            "monstack.yaml:6:1: `alerts` cannot be used with `prometheus.mode: agent`: alert rules are evaluated by a Prometheus server",
        ]
    );
    assert!(!project.exists(".monstack"), "written despite the errors");

    // A valid agent manifest: `alert list` says why there is nothing to list, and the token
    // is in the rendered secret file only.
    let project = Project::new()
        .file("token", "t0ken-of-the-test\n")
        .manifest(
            "project: edge\n\
             prometheus:\n\
             \x20 mode: agent\n\
             \x20 remote_write: [{url: 'https://central.example.com/api/v1/write', bearer_token_file: token}]\n",
        );
    let list = project.run(&["alert", "list"]);
    list.code(2);
    assert!(list.stderr.contains("agent mode"), "{}", list.stderr);
    let render = project.run(&["-vv", "render"]);
    render.success();
    assert!(!format!("{}{}", render.stdout, render.stderr).contains("t0ken-of-the-test"));
    assert!(!project
        .read(".monstack/prometheus/prometheus.yml")
        .contains("t0ken"));
    assert_eq!(
        project.read(".monstack/prometheus/remote_write/1-central.example.com/token"),
        "t0ken-of-the-test\n"
    );
}
