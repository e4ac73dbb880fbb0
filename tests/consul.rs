//! `discovery.consul`, live: the `prometheus.yml` monstack renders, checked by promtool 3.5 and
//! run by a real Prometheus 3.5 against a local server that answers Consul's HTTP API as Consul
//! documents it (no Consul binary can be obtained here): `/v1/agent/self`,
//! `/v1/catalog/services` and `/v1/health/service/<name>` with blocking queries (`index`,
//! `wait`, `X-Consul-Index`), `dc`, `stale` and `tag` parameters, and ACLs (a token by
//! `X-Consul-Token` or `Authorization: Bearer`; a wrong one 403 "ACL not found", none at all
//! results filtered as for the anonymous token). Prometheus must list the registered instances
//! with monstack's labels and scrape them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::support::testsupport::{self, free_port, pinned, ChildGuard};
use crate::support::Project;

const DEADLINE: Duration = Duration::from_secs(60);
const TOKEN: &str = "0b5c7bd0-6f4e-4a51-9c0e-3c1d2b7a9e11";
const DATACENTER: &str = "dc1";

/// One instance in the fake catalog.
#[derive(Clone)]
struct Instance {
    node: &'static str,
    node_address: &'static str,
    service: &'static str,
    id: &'static str,
    address: &'static str,
    port: u16,
    tags: Vec<&'static str>,
    meta: BTreeMap<&'static str, &'static str>,
    status: &'static str,
}

#[derive(Default)]
struct Consul {
    instances: Vec<Instance>,
    /// The Raft index: what `X-Consul-Index` answers and blocking queries wait on.
    index: u64,
    /// Every request: path, query, and which token it carried.
    seen: Vec<(String, String, Option<String>)>,
}

type Shared = Arc<Mutex<Consul>>;

fn params(query: &Option<String>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Consul's `wait` parameter: `120000ms`, `30s`, `2m`.
fn wait_of(text: &str) -> Duration {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number.parse().unwrap_or(300_000);
    match unit {
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        _ => Duration::from_secs(n),
    }
    .min(Duration::from_secs(600))
}

/// The token a request carries, the two ways Consul reads it.
fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = headers.get("x-consul-token") {
        return token.to_str().ok().map(str::to_string);
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    auth.strip_prefix("Bearer ").map(str::to_string)
}

enum Access {
    Granted,
    /// No token: the anonymous token, which may read nothing (default policy deny).
    Anonymous,
}

/// What every Consul read does first: the ACL check, the datacenter, then a blocking wait.
async fn begin(
    state: &Shared,
    path: &str,
    query: &Option<String>,
    headers: &HeaderMap,
) -> Result<(Access, u64, bool), Response> {
    let params = params(query);
    let token = token_of(headers);
    state.lock().unwrap().seen.push((
        path.to_string(),
        query.clone().unwrap_or_default(),
        token.clone(),
    ));
    let access = match token.as_deref() {
        Some(TOKEN) => Access::Granted,
        Some(_) => return Err((StatusCode::FORBIDDEN, "ACL not found").into_response()),
        None => Access::Anonymous,
    };
    if let Some(dc) = param(&params, "dc") {
        if dc != DATACENTER {
            let body = "No path to datacenter";
            return Err((StatusCode::INTERNAL_SERVER_ERROR, body).into_response());
        }
    }
    let stale = param(&params, "stale").is_some();
    // A blocking query: answer when the index moves past the one given, or when `wait` ends.
    if let Some(index) = param(&params, "index").and_then(|i| i.parse::<u64>().ok()) {
        let wait = wait_of(param(&params, "wait").unwrap_or("5m"));
        let start = tokio::time::Instant::now();
        while state.lock().unwrap().index <= index && start.elapsed() < wait {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let index = state.lock().unwrap().index;
    Ok((access, index, stale))
}

fn answer(index: u64, stale: bool, access: &Access, body: Value) -> Response {
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert("x-consul-index", index.to_string().parse().unwrap());
    headers.insert("x-consul-knownleader", "true".parse().unwrap());
    headers.insert("x-consul-lastcontact", "0".parse().unwrap());
    headers.insert("x-consul-default-acl-policy", "deny".parse().unwrap());
    let consistency = if stale { "stale" } else { "leader" };
    headers.insert(
        "x-consul-effective-consistency",
        consistency.parse().unwrap(),
    );
    if matches!(access, Access::Anonymous) {
        headers.insert("x-consul-results-filtered-by-acls", "true".parse().unwrap());
    }
    response
}

async fn agent_self(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match begin(&state, "/v1/agent/self", &query, &headers).await {
        Ok(_) => axum::Json(json!({
            "Config": {"Datacenter": DATACENTER, "NodeName": "node-1", "Server": true,
                       "Version": "1.21.4"},
            "Member": {"Name": "node-1", "Addr": "127.0.0.1", "Port": 8301},
        }))
        .into_response(),
        Err(response) => response,
    }
}

async fn catalog_services(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (access, index, stale) = match begin(&state, "/v1/catalog/services", &query, &headers).await
    {
        Ok(begun) => begun,
        Err(response) => return response,
    };
    let mut services: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    if matches!(access, Access::Granted) {
        for i in &state.lock().unwrap().instances {
            let tags = services.entry(i.service).or_default();
            for tag in &i.tags {
                if !tags.contains(tag) {
                    tags.push(tag);
                }
            }
        }
    }
    answer(index, stale, &access, json!(services))
}

async fn health_service(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/health/service/{name}");
    let (access, index, stale) = match begin(&state, &path, &query, &headers).await {
        Ok(begun) => begun,
        Err(response) => return response,
    };
    let params = params(&query);
    let wanted: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v.as_str())
        .collect();
    let passing_only = param(&params, "passing").is_some();
    let entries: Vec<Value> = if matches!(access, Access::Granted) {
        state
            .lock()
            .unwrap()
            .instances
            .iter()
            .filter(|i| i.service == name)
            .filter(|i| wanted.iter().all(|t| i.tags.contains(t)))
            .filter(|i| !passing_only || i.status == "passing")
            .map(health_entry)
            .collect()
    } else {
        vec![]
    };
    answer(index, stale, &access, Value::Array(entries))
}

/// One entry of `/v1/health/service/<name>`, in the shape of Consul's API documentation.
fn health_entry(i: &Instance) -> Value {
    json!({
        "Node": {
            "ID": "40e4a748-2192-161a-0510-9bf59fe950b5",
            "Node": i.node,
            "Address": i.node_address,
            "Datacenter": DATACENTER,
            "TaggedAddresses": {"lan": i.node_address, "wan": i.node_address},
            "Meta": {"instance_type": "t2.medium"},
        },
        "Service": {
            "ID": i.id,
            "Service": i.service,
            "Tags": i.tags,
            "Address": i.address,
            "TaggedAddresses": {},
            "Meta": i.meta,
            "Port": i.port,
            "Weights": {"Passing": 10, "Warning": 1},
            "Namespace": "default",
        },
        "Checks": [
            {"Node": i.node, "CheckID": "serfHealth", "Name": "Serf Health Status",
             "Status": "passing", "Notes": "", "Output": "", "ServiceID": "", "ServiceName": "",
             "ServiceTags": [], "Namespace": "default"},
            {"Node": i.node, "CheckID": format!("service:{}", i.id),
             "Name": format!("Service '{}' check", i.service), "Status": i.status, "Notes": "",
             "Output": "", "ServiceID": i.id, "ServiceName": i.service, "ServiceTags": i.tags,
             "Namespace": "default"},
        ],
    })
}

/// A service's own metrics, as a registered instance would serve them.
async fn metrics() -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        "# TYPE orders_total counter\norders_total 7\n",
    )
}

async fn serve(state: Shared, port: u16) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route("/v1/agent/self", get(agent_self))
        .route("/v1/catalog/services", get(catalog_services))
        .route("/v1/health/service/{name}", get(health_service))
        .route("/custom/metrics", get(metrics))
        .route("/metrics", get(metrics))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn targets(prometheus: &str) -> Vec<Value> {
    targets_of(prometheus, "consul-discovered").await
}

async fn targets_of(prometheus: &str, pool: &str) -> Vec<Value> {
    let Ok(response) = client()
        .get(format!("{prometheus}/api/v1/targets"))
        .send()
        .await
    else {
        return vec![];
    };
    let body: Value = response.json().await.unwrap_or_default();
    body["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["scrapePool"] == pool)
        .collect()
}

/// Whether a Prometheus build has Consul discovery: Debian's (the pinned 3.5.3 and bookworm's
/// 2.42) are built without it, the official images and release binaries have it.
fn has_consul_sd(binary: &std::path::Path) -> bool {
    let bytes = std::fs::read(binary).unwrap_or_default();
    bytes.windows(17).any(|w| w == b"consul_sd_configs")
}

/// The fake catalog: Consul itself, three instances to scrape (one at its node's address with
/// the default path, one at a service address of its own with a metrics path from its
/// metadata, one with a job in its metadata) and two that the `prom` tag leaves out.
fn catalog(port: u16) -> Consul {
    let instance = |service, id, port, tags: Vec<&'static str>| Instance {
        node: "node-1",
        node_address: "127.0.0.1",
        service,
        id,
        address: "",
        port,
        tags,
        meta: BTreeMap::new(),
        status: "passing",
    };
    Consul {
        index: 42,
        instances: vec![
            instance("consul", "consul", 8300, vec![]),
            instance("orders", "orders-1", port, vec!["prom", "v2"]),
            Instance {
                address: "127.0.0.1",
                meta: BTreeMap::from([("metrics_path", "/custom/metrics")]),
                ..instance("payments", "payments-a", port, vec!["prom"])
            },
            instance("payments", "payments-b", port, vec!["canary"]),
            // A job of its own in its metadata.
            Instance {
                meta: BTreeMap::from([("job", "billing")]),
                ..instance("invoices", "invoices-1", port, vec!["prom"])
            },
            instance("db", "db-1", 5432, vec!["sql"]),
        ],
        ..Consul::default()
    }
}

/// Waits until the scraper at `url` lists exactly the three tagged instances, with monstack's
/// labels, both scraped, and their samples carry the service's name as `job`; then checks what
/// the scraper asked Consul.
async fn lists_and_scrapes(
    what: &str,
    guard: &mut ChildGuard,
    url: &str,
    state: &Shared,
    port: u16,
) {
    let address = format!("127.0.0.1:{port}");
    guard
        .wait_until(
            &format!("{what} lists orders-1, payments-a and invoices-1 from Consul, all scraped"),
            DEADLINE,
            || async {
                let targets = targets(url).await;
                let orders = targets.iter().any(|t| {
                    t["labels"]
                        == json!({"instance": address, "job": "orders",
                                  "service": "orders", "service_id": "orders-1"})
                        && t["scrapeUrl"] == format!("http://{address}/metrics")
                        && t["health"] == "up"
                });
                let payments = targets.iter().any(|t| {
                    t["labels"]
                        == json!({"instance": address, "job": "payments",
                                  "service": "payments", "service_id": "payments-a"})
                        && t["scrapeUrl"] == format!("http://{address}/custom/metrics")
                        && t["health"] == "up"
                });
                let invoices = targets.iter().any(|t| {
                    t["labels"]
                        == json!({"instance": address, "job": "billing",
                                  "service": "invoices", "service_id": "invoices-1"})
                        && t["health"] == "up"
                });
                orders && payments && invoices && targets.len() == 3
            },
        )
        .await;
    guard
        .wait_until(
            &format!("{what} has the samples under each service's job"),
            DEADLINE,
            || async {
                let Ok(response) = client()
                    .get(format!("{url}/api/v1/query"))
                    .query(&[("query", "orders_total")])
                    .send()
                    .await
                else {
                    return false;
                };
                let body: Value = response.json().await.unwrap_or_default();
                let mut jobs: Vec<&str> = body["data"]["result"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(|s| s["metric"]["job"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                jobs.sort_unstable();
                jobs == ["billing", "orders", "payments"]
            },
        )
        .await;

    // Every request carried the token; the datacenter was asked for; only the tagged services'
    // health was read, each with the tag.
    let seen = state.lock().unwrap().seen.clone();
    assert!(
        seen.iter()
            .all(|(_, _, token)| token.as_deref() == Some(TOKEN)),
        "{what}: {seen:?}"
    );
    let reads: Vec<&(String, String, Option<String>)> = seen
        .iter()
        .filter(|(path, _, _)| path != "/v1/agent/self")
        .collect();
    assert!(
        reads
            .iter()
            .all(|(_, q, _)| param(&params(&Some(q.clone())), "dc") == Some(DATACENTER)),
        "{what}: {seen:?}"
    );
    assert!(
        reads
            .iter()
            .any(|(path, _, _)| path == "/v1/catalog/services"),
        "{what}: {seen:?}"
    );
    let health: Vec<&&(String, String, Option<String>)> = reads
        .iter()
        .filter(|(path, _, _)| path.starts_with("/v1/health/service/"))
        .collect();
    let mut asked: Vec<&str> = health.iter().map(|(path, _, _)| &path[19..]).collect();
    asked.sort_unstable();
    asked.dedup();
    assert_eq!(
        asked,
        ["invoices", "orders", "payments"],
        "{what}: {seen:?}"
    );
    assert!(
        health
            .iter()
            .all(|(_, q, _)| param(&params(&Some(q.clone())), "tag") == Some("prom")),
        "{what}: {seen:?}"
    );
    assert!(guard.exited().is_none(), "{what} died:\n{}", guard.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rendered_consul_job_lists_and_scrapes_the_services_registered_in_consul() {
    let (Some(prometheus), Some(promtool), Some(victoria)) = (
        pinned(testsupport::PROMETHEUS),
        pinned(testsupport::PROMTOOL),
        pinned(testsupport::VICTORIA_METRICS),
    ) else {
        return;
    };
    let consul_port = free_port();
    let project = Project::new()
        .file("secrets/consul.token", &format!("{TOKEN}\n"))
        .manifest(&format!(
            "project: consul-sd\ngrafana: false\n\
             prometheus: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
             discovery:\n  consul:\n    server: 'localhost:{consul_port}'\n    \
             tags: [prom]\n    datacenter: {DATACENTER}\n    token_file: secrets/consul.token\n    \
             # The scrapers run here as processes: loopback is what they reach.\n    \
             rewrite_loopback: false\n"
        ));
    project.run(&["render"]).success();
    let dir = project.path().join(".monstack/prometheus");
    let config_path = dir.join("prometheus.yml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(!config.contains(TOKEN), "{config}");
    let token_file = dir.join("secrets/consul-token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the token file's mode");
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        format!("{TOKEN}\n")
    );

    let temp = tempfile::tempdir().unwrap();
    if has_consul_sd(&prometheus) {
        let check = Command::new(&promtool)
            .args(["check", "config"])
            .arg(&config_path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "promtool check config:\n{}{}\n{config}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let state: Shared = Arc::new(Mutex::new(catalog(consul_port)));
        let server = serve(state.clone(), consul_port).await;
        let prom_port = free_port();
        let url = format!("http://127.0.0.1:{prom_port}");
        let mut prom = ChildGuard::spawn(
            testsupport::prometheus_command(
                &prometheus,
                &config_path,
                &temp.path().join("tsdb"),
                prom_port,
            )
            .arg("--scrape.discovery-reload-interval=1s"),
            &temp.path().join("prometheus.log"),
        );
        lists_and_scrapes("Prometheus", &mut prom, &url, &state, consul_port).await;
        drop(prom);
        server.abort();
    } else {
        // What the pinned Prometheus says about the job is only that it lacks the discoverer.
        let check = Command::new(&promtool)
            .args(["check", "config"])
            .arg(&config_path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&check.stdout).into_owned()
            + &String::from_utf8_lossy(&check.stderr);
        assert!(said.contains("field consul_sd_configs not found"), "{said}");
        eprintln!(
            "note: {} is built without Consul discovery (Debian's build); the job runs in \
             VictoriaMetrics' Prometheus-compatible scraper instead",
            prometheus.display()
        );
    }

    // VictoriaMetrics' scraper, on the rendered job alone (it refuses Prometheus' other
    // top-level keys), with unknown fields refused; its own Consul on a port of its own.
    let consul_port = free_port();
    let job_of = |config: &str| -> serde_yaml::Value {
        let rendered: serde_yaml::Value = serde_yaml::from_str(config).unwrap();
        let mut job = rendered["scrape_configs"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|j| j["job_name"] == "consul-discovered")
            .cloned()
            .unwrap();
        job["consul_sd_configs"][0]["server"] = format!("localhost:{consul_port}").into();
        job
    };
    let job = job_of(&config);
    // The same stack with the loopback rewrite on (the default), as a second job: its relabelling
    // must turn the instances registered at 127.0.0.1 into host.docker.internal targets.
    let rewriting = Project::new()
        .file("secrets/consul.token", &format!("{TOKEN}\n"))
        .manifest(&format!(
            "project: consul-rw\ngrafana: false\n\
             discovery:\n  consul: {{server: 'localhost:{consul_port}', tags: [prom], \
             datacenter: {DATACENTER}, token_file: secrets/consul.token}}\n"
        ));
    rewriting.run(&["render"]).success();
    let rewriting_config = rewriting.read(".monstack/prometheus/prometheus.yml");
    assert!(
        rewriting_config.contains(&format!("server: host.docker.internal:{consul_port}")),
        "{rewriting_config}"
    );
    let mut rewritten = job_of(&rewriting_config);
    rewritten["job_name"] = "consul-rewritten".into();
    let vm_config = dir.join("victoria-metrics.yml");
    std::fs::write(
        &vm_config,
        serde_yaml::to_string(&json!({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                serde_json::to_value(&job).unwrap(),
                serde_json::to_value(&rewritten).unwrap(),
            ],
        }))
        .unwrap(),
    )
    .unwrap();
    let dry = Command::new(&victoria)
        .arg(format!("-promscrape.config={}", vm_config.display()))
        .args([
            "-promscrape.config.strictParse",
            "-promscrape.config.dryRun",
        ])
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let state: Shared = Arc::new(Mutex::new(catalog(consul_port)));
    let _server = serve(state.clone(), consul_port).await;
    let vm_port = free_port();
    let url = format!("http://127.0.0.1:{vm_port}");
    let mut vm = ChildGuard::spawn(
        Command::new(&victoria)
            .arg(format!("-promscrape.config={}", vm_config.display()))
            .arg(format!(
                "-storageDataPath={}",
                temp.path().join("vm").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{vm_port}"))
            .arg("-search.latencyOffset=0s"),
        &temp.path().join("victoria-metrics.log"),
    );
    lists_and_scrapes("VictoriaMetrics", &mut vm, &url, &state, consul_port).await;
    let rewritten = targets_of(&url, "consul-rewritten").await;
    let mut addresses: Vec<&str> = rewritten
        .iter()
        .filter_map(|t| t["labels"]["instance"].as_str())
        .collect();
    addresses.sort_unstable();
    let expected = format!("host.docker.internal:{consul_port}");
    assert_eq!(addresses, [expected.as_str(); 3], "{rewritten:#?}");
    assert!(
        rewritten.iter().all(|t| t["scrapeUrl"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("http://{expected}/"))),
        "{rewritten:#?}"
    );
}
