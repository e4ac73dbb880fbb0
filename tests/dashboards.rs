//! The bundled dashboards: well-formed for Grafana's file provisioning, and no panel is empty
//! against the exporters it claims to support.
//!
//! The proof runs the real things as child processes: Prometheus (scraping itself), etcd and
//! Alertmanager (Go programs with client_golang's default collectors), the monstack agent (etcd
//! discovery metrics), `tests/fixtures/rust-exporter`, a small service built here from the real
//! Rust metrics crates and given real traffic, node_exporter 1.11 (this machine) and the
//! blackbox exporter 0.28 with the modules and probes job monstack renders (http, tcp of a
//! closed port, icmp). Then it evaluates every query of every panel
//! through Prometheus' HTTP API, with the template variables set to the values Grafana would
//! offer, and reports every query that returns no series.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use monstack::dashboards;

use crate::support::testsupport::{self, free_port};
use serde_json::{json, Value};

/// Panels allowed to be empty in the proof, with the reason. Their descriptions must say so too.
///
/// None at present. The go-runtime panels GOMAXPROCS, GOGC and Memory limit
/// (`go_sched_gomaxprocs_threads`, `go_gc_gogc_percent`, `go_gc_gomemlimit_bytes`) were listed
/// while the proof ran Debian 12's Prometheus 2.42, etcd 3.4 and Alertmanager 0.25, whose
/// client_golang predates 1.20; the exporters it runs now (Prometheus 3.5, etcd 3.5,
/// Alertmanager 0.28) export them, so those panels must show data like every other. Their
/// descriptions still call them optional: users' older Go programs do not export them.
const OPTIONAL_PANELS: &[(&str, &str, &str)] = &[];

/// Metric names go-micro's Prometheus wrapper exports, from its source:
/// - micro/go-plugins `wrapper/monitoring/prometheus/prometheus.go` (v1-v3): `micro_request_total`
///   {method, status = success|fail}, summary `micro_upstream_latency_microseconds` {method},
///   histogram `micro_request_duration_seconds` {method}; constant labels `micro_name`, `micro_id`,
///   `micro_version` (and `micro_<metadata key>`) from the server options.
/// - go-micro/plugins `v4/wrapper/monitoring/prometheus/prometheus.go`: `micro_request_total`
///   {micro_name, micro_version, micro_id, micro_endpoint, micro_method, micro_status =
///   success|failure}, summary `micro_latency_microseconds` and histogram
///   `micro_request_duration_seconds` {micro_name, micro_version, micro_id, micro_endpoint,
///   micro_method}.
const GO_MICRO_METRICS: &[&str] = &[
    "micro_request_total",
    "micro_request_duration_seconds_bucket",
    "micro_request_duration_seconds_sum",
    "micro_request_duration_seconds_count",
    "micro_upstream_latency_microseconds",
    "micro_upstream_latency_microseconds_sum",
    "micro_upstream_latency_microseconds_count",
    "micro_latency_microseconds",
    "micro_latency_microseconds_sum",
    "micro_latency_microseconds_count",
];

/// Label names of the wrapper (both generations, see above), and the ones Prometheus adds.
const GO_MICRO_LABELS: &[&str] = &[
    "method",
    "status",
    "micro_name",
    "micro_version",
    "micro_id",
    "micro_endpoint",
    "micro_method",
    "micro_status",
    "le",
    "quantile",
    "job",
    "instance",
];

const DS: &str = "${datasource}";

fn datasource_ref() -> Value {
    json!({"type": "prometheus", "uid": DS})
}

fn all_dashboards() -> Vec<(&'static str, Value)> {
    dashboards::bundled_names()
        .into_iter()
        .map(|name| (name, dashboards::bundled(name).unwrap()))
        .collect()
}

fn panels(dashboard: &Value) -> &[Value] {
    dashboard["panels"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn is_row(panel: &Value) -> bool {
    panel["type"] == "row"
}

fn title(panel: &Value) -> &str {
    panel["title"].as_str().unwrap_or("(untitled)")
}

// ---------------------------------------------------------------------------------------------
// Well-formed

#[test]
fn bundled_dashboards_are_well_formed() {
    let all = all_dashboards();
    let names: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
    for expected in [
        "go-micro",
        "go-runtime",
        "host",
        "probes",
        "rust-runtime",
        "stack",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} is not bundled: {names:?}"
        );
    }
    let mut problems = Vec::new();
    for (name, dashboard) in &all {
        problems.extend(
            check_dashboard(name, dashboard)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Everything that is wrong with one bundled dashboard, per formats.md section 2 and our own
/// conventions (stable uid, datasource variable, descriptions, units, a full 24-column grid).
fn check_dashboard(name: &str, dashboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, problem: String| {
        if !ok {
            problems.push(problem);
        }
    };
    check(
        dashboard["uid"] == format!("monstack-{name}"),
        format!("uid is {}, not monstack-{name}", dashboard["uid"]),
    );
    check(
        dashboard["uid"]
            .as_str()
            .is_some_and(dashboards::is_valid_uid),
        "uid is not valid for Grafana".into(),
    );
    check(
        dashboard["title"]
            .as_str()
            .is_some_and(|t| !t.trim().is_empty()),
        "no title".into(),
    );
    check(
        dashboard["schemaVersion"] == 39,
        "schemaVersion is not 39".into(),
    );
    check(dashboard["id"].is_null(), "id is not null".into());

    // Exactly what file provisioning will load: prepare has nothing to substitute or fix.
    let datasources = [("prometheus".to_string(), "prometheus".to_string())];
    match dashboards::prepare(dashboard.clone(), &datasources) {
        Ok(prepared) => check(
            &prepared == dashboard,
            "dashboards::prepare changes it (it should only set id, which is already null)".into(),
        ),
        Err(err) => check(false, format!("dashboards::prepare rejects it: {err}")),
    }

    let variables = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let first = variables.first().cloned().unwrap_or_default();
    check(
        first["name"] == "datasource"
            && first["type"] == "datasource"
            && first["query"] == "prometheus",
        "the first template variable is not the Prometheus datasource variable `datasource`".into(),
    );
    let mut defined: BTreeSet<String> = variables
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    for builtin in ["__rate_interval", "__interval", "__range"] {
        defined.insert(builtin.to_string());
    }
    for variable in variables.iter().filter(|v| v["type"] == "query") {
        check(
            variable["datasource"] == datasource_ref(),
            format!("variable {} does not use ${{datasource}}", variable["name"]),
        );
        check(
            variable["query"]
                .as_str()
                .and_then(parse_label_values)
                .is_some(),
            format!(
                "variable {} is not a label_values(selector, label) query",
                variable["name"]
            ),
        );
    }

    let all = panels(dashboard);
    check(!all.is_empty(), "no panels".into());
    let mut ids = BTreeSet::new();
    let mut area = 0;
    let mut bottom = 0;
    for panel in all {
        let title = title(panel);
        match panel["id"].as_u64() {
            Some(id) => check(
                ids.insert(id),
                format!("panel id {id} ({title}) is not unique"),
            ),
            None => check(false, format!("{title}: no numeric id")),
        }
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_u64().unwrap_or(u64::MAX));
        if [x, y, w, h].contains(&u64::MAX) {
            check(false, format!("{title}: gridPos needs integer x, y, w, h"));
            continue;
        }
        check(
            w > 0 && h > 0 && x + w <= 24,
            format!("{title}: gridPos leaves the 24-column grid"),
        );
        area += w * h;
        bottom = bottom.max(y + h);
        if is_row(panel) {
            check(
                w == 24 && h == 1,
                format!("row {title}: not a full-width row"),
            );
            continue;
        }
        check(!title.trim().is_empty(), "a panel has no title".into());
        check(
            panel["datasource"] == datasource_ref(),
            format!("{title}: datasource is not {{prometheus, ${{datasource}}}}"),
        );
        check(
            panel["description"].as_str().is_some_and(|d| d.len() > 20),
            format!("{title}: no description"),
        );
        check(
            panel["fieldConfig"]["defaults"]["unit"].is_string(),
            format!("{title}: no unit"),
        );
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        check(!targets.is_empty(), format!("{title}: no targets"));
        let mut ref_ids = BTreeSet::new();
        for target in &targets {
            let ref_id = target["refId"].as_str().unwrap_or_default();
            check(
                !ref_id.is_empty() && ref_ids.insert(ref_id.to_string()),
                format!("{title}: refId {ref_id:?} missing or repeated"),
            );
            check(
                target["datasource"] == datasource_ref(),
                format!("{title} {ref_id}: datasource is not {{prometheus, ${{datasource}}}}"),
            );
            let expr = target["expr"].as_str().unwrap_or_default();
            check(
                !expr.trim().is_empty(),
                format!("{title} {ref_id}: no expr"),
            );
            for used in variables_used(expr) {
                check(
                    defined.contains(&used),
                    format!("{title} {ref_id}: ${used} is not a template variable"),
                );
            }
        }
    }
    check(!rects_overlap(all), "panels overlap".into());
    // Together with no overlap: the grid has no holes, every band is filled edge to edge.
    check(
        area == 24 * bottom,
        format!(
            "the layout has holes: panels cover {area} of {} cells",
            24 * bottom
        ),
    );
    problems
}

fn rects_overlap(panels: &[Value]) -> bool {
    let rect = |p: &Value| ["x", "y", "w", "h"].map(|k| p["gridPos"][k].as_u64().unwrap_or(0));
    panels.iter().enumerate().any(|(i, a)| {
        panels[i + 1..].iter().any(|b| {
            let [ax, ay, aw, ah] = rect(a);
            let [bx, by, bw, bh] = rect(b);
            ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah
        })
    })
}

/// `$name` and `${name}` / `${name:format}` references in a query.
fn variables_used(expr: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name: String = if let Some(braced) = rest.strip_prefix('{') {
            braced
                .split(['}', ':'])
                .next()
                .unwrap_or_default()
                .to_string()
        } else {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        if !name.is_empty() {
            used.insert(name);
        }
    }
    used
}

/// `label_values(selector, label)` -> `(selector, label)`.
fn parse_label_values(query: &str) -> Option<(String, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim().to_string(), label.trim().to_string()))
}

#[test]
fn optional_panels_exist_and_say_they_are_optional() {
    for (dashboard_name, panel_title, _reason) in OPTIONAL_PANELS {
        let dashboard = dashboards::bundled(dashboard_name).unwrap();
        let panel = panels(&dashboard)
            .iter()
            .find(|p| title(p) == *panel_title)
            .unwrap_or_else(|| panic!("{dashboard_name} has no panel {panel_title}"));
        let description = panel["description"].as_str().unwrap_or_default();
        assert!(
            description.contains("Optional"),
            "{dashboard_name} / {panel_title}: the description does not say the panel is optional"
        );
    }
}

#[test]
fn go_micro_queries_use_only_the_wrappers_metric_and_label_names() {
    let dashboard = dashboards::bundled("go-micro").unwrap();
    let mut metrics_used = BTreeSet::new();
    let mut problems = Vec::new();
    for panel in panels(&dashboard).iter().filter(|p| !is_row(p)) {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let (metrics, labels) = names_in(expr);
            for metric in metrics {
                if !GO_MICRO_METRICS.contains(&metric.as_str()) {
                    problems.push(format!(
                        "{}: {metric} is not exported by the wrapper",
                        title(panel)
                    ));
                }
                metrics_used.insert(metric);
            }
            for label in labels {
                if !GO_MICRO_LABELS.contains(&label.as_str()) {
                    problems.push(format!(
                        "{}: label {label} is not the wrapper's",
                        title(panel)
                    ));
                }
            }
        }
    }
    for base in [
        "micro_request_total",
        "micro_request_duration_seconds_bucket",
        "micro_upstream_latency_microseconds",
        "micro_latency_microseconds",
    ] {
        if !metrics_used.contains(base) {
            problems.push(format!("no panel uses {base}"));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Metric names and label names in a PromQL expression: identifiers outside `{...}` and `by
/// (...)`/`without (...)` that are not functions or keywords are metrics; the others are labels.
fn names_in(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    const KEYWORDS: &[&str] = &[
        "sum",
        "max",
        "min",
        "avg",
        "count",
        "rate",
        "irate",
        "increase",
        "histogram_quantile",
        "by",
        "without",
        "on",
        "ignoring",
        "or",
        "and",
        "unless",
        "vector",
        "time",
        "bool",
    ];
    let (mut metrics, mut labels) = (BTreeSet::new(), BTreeSet::new());
    let chars: Vec<char> = expr.chars().collect();
    let (mut i, mut in_braces, mut in_grouping, mut last_word) = (0, false, false, String::new());
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            // Skip string literals (label values).
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c == '[' {
            // Range durations such as [$__rate_interval].
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if in_braces || in_grouping {
                labels.insert(word.clone());
            } else if !KEYWORDS.contains(&word.as_str()) {
                metrics.insert(word.clone());
            }
            last_word = word;
            continue;
        }
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            '(' if matches!(last_word.as_str(), "by" | "without" | "on" | "ignoring") => {
                in_grouping = true
            }
            ')' => in_grouping = false,
            _ => {}
        }
        if !c.is_whitespace() {
            last_word.clear();
        }
        i += 1;
    }
    (metrics, labels)
}

#[test]
fn promql_name_scanner() {
    let (metrics, labels) = names_in(
        r#"sum by (le, micro_endpoint) (rate(micro_request_duration_seconds_bucket{job=~"$job", status!="a{b"}[$__rate_interval])) or vector(0)"#,
    );
    assert_eq!(
        metrics.into_iter().collect::<Vec<_>>(),
        ["micro_request_duration_seconds_bucket"]
    );
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        ["job", "le", "micro_endpoint", "status"]
    );
}

// ---------------------------------------------------------------------------------------------
// No panel is empty

/// How a dashboard whose single-value variables (`job`) offer several values must show data.
#[derive(Clone, Copy, PartialEq)]
enum Coverage {
    /// Every query returns series for every value: each Go job is a client_golang program.
    EveryValue,
    /// Every query returns series for at least one value: the Rust dashboard covers several crate
    /// families, and a service uses one of them (the fixture serves each family as its own job).
    SomeValue,
    /// Queries must parse; there is no exporter to return data.
    ParseOnly,
}

fn coverage(dashboard: &str) -> Coverage {
    match dashboard {
        "go-runtime" => Coverage::EveryValue,
        "go-micro" => Coverage::ParseOnly,
        // rust-runtime; stack has only multi-value variables, so one evaluation.
        _ => Coverage::SomeValue,
    }
}

/// The built-in variables, as Grafana would set them for a 1 s scrape interval.
const BUILTINS: &[(&str, &str)] = &[
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "5m"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_shows_data_from_real_exporters() {
    let (
        Some(prometheus_bin),
        Some(etcd_bin),
        Some(alertmanager_bin),
        Some(node_exporter_bin),
        Some(blackbox_bin),
    ) = (
        testsupport::pinned(testsupport::PROMETHEUS),
        testsupport::pinned(testsupport::ETCD),
        testsupport::pinned(testsupport::ALERTMANAGER),
        testsupport::pinned(testsupport::NODE_EXPORTER),
        testsupport::pinned(testsupport::BLACKBOX_EXPORTER),
    )
    else {
        return;
    };
    if !can_ping() {
        return;
    }
    let exporter_bin = build_rust_exporter();
    let dir = tempfile::Builder::new()
        .prefix("monstack-dashboards-")
        .tempdir()
        .unwrap();
    let dir = dir.path();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // etcd, with progress notifications so the agent's "last sync" stays fresh.
    let (etcd_port, etcd_peer) = (free_port(), free_port());
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer}");
    let mut etcd = Guard::spawn(
        Command::new(&etcd_bin)
            .arg("--name=default")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .arg("--experimental-watch-progress-notify-interval=1s"),
        &dir.join("etcd.log"),
    );
    etcd.wait_until("etcd to become healthy", || {
        http_ok(&http, format!("{etcd_url}/health"))
    })
    .await;

    // The Rust fixture, registered in etcd for the agent to discover.
    let exporter_port = free_port();
    let mut exporter = Guard::spawn(
        Command::new(&exporter_bin).arg(exporter_port.to_string()),
        &dir.join("rust-exporter.log"),
    );
    let exporter_url = format!("http://127.0.0.1:{exporter_port}");
    exporter
        .wait_until("the Rust exporter to answer", || {
            http_ok(&http, format!("{exporter_url}/"))
        })
        .await;
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let registration = json!({"host": "127.0.0.1", "port": exporter_port}).to_string();
    let put = http
        .post(format!("{etcd_url}/v3/kv/put"))
        .json(&json!({"key": b64("/service/rust-exporter/1"), "value": b64(&registration)}))
        .send()
        .await
        .and_then(|r| r.error_for_status());
    assert!(put.is_ok(), "registering in etcd: {put:?}");

    // The monstack agent: etcd -> target files, with its own /metrics.
    let agent_port = free_port();
    let agent_dir = dir.join("agent");
    std::fs::create_dir_all(agent_dir.join("targets")).unwrap();
    let mut agent_command = Command::new(env!("CARGO_BIN_EXE_monstack"));
    agent_command
        .current_dir(&agent_dir)
        .env("NO_COLOR", "1")
        .args(["agent", "--listen", &format!("127.0.0.1:{agent_port}")])
        .args(["--etcd", &etcd_url, "--prefix", "/service/"])
        .arg("--targets-dir")
        .arg(agent_dir.join("targets"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MONSTACK_") {
            agent_command.env_remove(key);
        }
    }
    let mut agent = Guard::spawn(&mut agent_command, &dir.join("agent.log"));
    let agent_url = format!("http://127.0.0.1:{agent_port}");
    agent
        .wait_until("the agent to be ready", || {
            http_ok(&http, format!("{agent_url}/-/ready"))
        })
        .await;

    // Alertmanager, notifying a webhook that answers 405, so failed notifications are real.
    let alertmanager_port = free_port();
    let alertmanager_config = json!({
        "route": {"receiver": "webhook", "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1m"},
        "receivers": [{"name": "webhook", "webhook_configs": [{"url": format!("{exporter_url}/"), "send_resolved": false}]}],
    });
    let alertmanager_yml = dir.join("alertmanager.yml");
    std::fs::write(
        &alertmanager_yml,
        serde_yaml::to_string(&alertmanager_config).unwrap(),
    )
    .unwrap();
    let mut alertmanager = Guard::spawn(
        Command::new(&alertmanager_bin)
            .arg(format!("--config.file={}", alertmanager_yml.display()))
            .arg(format!(
                "--storage.path={}",
                dir.join("alertmanager").display()
            ))
            .arg(format!(
                "--web.listen-address=127.0.0.1:{alertmanager_port}"
            ))
            .arg("--cluster.listen-address="),
        &dir.join("alertmanager.log"),
    );
    let alertmanager_addr = format!("127.0.0.1:{alertmanager_port}");
    alertmanager
        .wait_until("Alertmanager to be ready", || {
            http_ok(&http, format!("http://{alertmanager_addr}/-/ready"))
        })
        .await;

    // node_exporter, with the collectors monstack's container has.
    let node_port = free_port();
    let node_addr = format!("127.0.0.1:{node_port}");
    let mut node_exporter = Guard::spawn(
        Command::new(&node_exporter_bin)
            .arg(format!("--web.listen-address={node_addr}"))
            .arg("--collector.processes"),
        &dir.join("node_exporter.log"),
    );
    node_exporter
        .wait_until("node_exporter to answer", || {
            http_ok(&http, format!("http://{node_addr}/metrics"))
        })
        .await;

    // The blackbox exporter with the modules and the probes job monstack renders: an http
    // probe of the Rust fixture, an icmp probe and a tcp probe of a closed port (failing).
    let blackbox_port = free_port();
    let blackbox_addr = format!("127.0.0.1:{blackbox_port}");
    let (blackbox_yml, probes_job) = rendered_probes(dir, exporter_port, free_port());
    let blackbox_config = dir.join("blackbox.yml");
    std::fs::write(&blackbox_config, blackbox_yml).unwrap();
    let mut blackbox = Guard::spawn(
        Command::new(&blackbox_bin)
            .arg(format!("--config.file={}", blackbox_config.display()))
            .arg(format!("--web.listen-address={blackbox_addr}")),
        &dir.join("blackbox.log"),
    );
    blackbox
        .wait_until("the blackbox exporter to be healthy", || {
            http_ok(&http, format!("http://{blackbox_addr}/-/healthy"))
        })
        .await;
    // What Prometheus reaches as `blackbox:9115` and the probes as `host.docker.internal`
    // inside the stack are both this machine here.
    let probes_job: Value = serde_json::from_str(
        &probes_job
            .to_string()
            .replace("blackbox:9115", &blackbox_addr)
            .replace("host.docker.internal", "127.0.0.1"),
    )
    .unwrap();
    let probe_count = probes_job["static_configs"].as_array().unwrap().len();

    // Prometheus: every exporter above, a rule that fires, Alertmanager to send it to.
    let prometheus_port = free_port();
    let prometheus_addr = format!("127.0.0.1:{prometheus_port}");
    let rules = json!({"groups": [{"name": "monstack-test", "rules": [
        {"alert": "MonstackTestAlwaysFiring", "expr": "vector(1)", "labels": {"severity": "info"},
         "annotations": {"summary": "Fires so that the stack dashboard has an alert to show."}}
    ]}]});
    std::fs::write(
        dir.join("rules.yml"),
        serde_yaml::to_string(&rules).unwrap(),
    )
    .unwrap();
    let job = |name: &str, target: &str, path: &str| json!({"job_name": name, "metrics_path": path, "static_configs": [{"targets": [target]}]});
    let exporter_addr = format!("127.0.0.1:{exporter_port}");
    let scrape_configs = vec![
        job("prometheus", &prometheus_addr, "/metrics"),
        job("etcd", &format!("127.0.0.1:{etcd_port}"), "/metrics"),
        job("alertmanager", &alertmanager_addr, "/metrics"),
        job(
            "monstack-agent",
            &format!("127.0.0.1:{agent_port}"),
            "/metrics",
        ),
        // The fixture serves the prometheus crate's text without a Content-Type, as many
        // services do: Prometheus 3 drops such a scrape unless the job names a fallback
        // (monstack's `fallback_scrape_protocol` job setting renders the same key).
        {
            let mut job = job("rust-prometheus-crate", &exporter_addr, "/metrics");
            job["fallback_scrape_protocol"] = json!("PrometheusText0.0.4");
            job
        },
        job("rust-metrics-rs", &exporter_addr, "/metrics-rs"),
        job("node", &node_addr, "/metrics"),
        job("blackbox", &blackbox_addr, "/metrics"),
        probes_job,
    ];
    let expected_targets = scrape_configs.len() - 1 + probe_count;
    let prometheus_config = json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [dir.join("rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_addr]}]}]},
        "scrape_configs": scrape_configs,
    });
    let prometheus_yml = dir.join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        serde_yaml::to_string(&prometheus_config).unwrap(),
    )
    .unwrap();
    let mut prometheus = Guard::spawn(
        Command::new(&prometheus_bin)
            .arg(format!("--config.file={}", prometheus_yml.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus").display()
            ))
            .arg(format!("--web.listen-address={prometheus_addr}")),
        &dir.join("prometheus.log"),
    );
    let api = PrometheusApi {
        http: http.clone(),
        base: format!("http://{prometheus_addr}"),
    };

    // Real traffic for the HTTP panels, 5xx included, for as long as the test runs.
    let traffic = tokio::spawn({
        let http = http.clone();
        let exporter_url = exporter_url.clone();
        async move {
            for i in 0u64.. {
                let path = ["/", "/slow", "/", "/fail"][(i % 4) as usize];
                let _ = http.get(format!("{exporter_url}{path}")).send().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let _stop_traffic = AbortOnDrop(traffic);

    // Wait until every target has been scraped a few times, so rates have samples.
    let ready_query =
        format!("count(count_over_time(up[1m]) >= 5 and up == 1) == {expected_targets}");
    prometheus
        .wait_until("every target to be up for 5 scrapes", || {
            let api = api.clone();
            let query = ready_query.clone();
            async move { api.series(&query).await.is_ok_and(|n| n > 0) }
        })
        .await;

    // Evaluate; repeat until everything shows data or the deadline passes (alerts and
    // notifications take a few evaluation rounds), then report what is still empty.
    let started = Instant::now();
    let deadline = Duration::from_secs(90);
    let (report, failures) = loop {
        let (report, failures) = evaluate_all(&api).await;
        if failures.is_empty() || started.elapsed() > deadline {
            break (report, failures);
        }
        for guard in [
            &mut etcd,
            &mut exporter,
            &mut agent,
            &mut alertmanager,
            &mut node_exporter,
            &mut blackbox,
            &mut prometheus,
        ] {
            if let Some(status) = guard.exited() {
                panic!("{} exited ({status}):\n{}", guard.name, guard.log());
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    println!("{report}");
    assert!(
        failures.is_empty(),
        "{} queries returned no series (dashboard / panel / refId: expr):\n{}\n\ntargets: {}",
        failures.len(),
        failures.join("\n"),
        api.targets_summary().await,
    );
}

/// `blackbox.yml` and the `probes` scrape job (as JSON) that monstack renders for probes of
/// the fixture's `/` (http), a closed port (tcp) and the host (icmp), as the stack would reach
/// them (`host.docker.internal`), with the proof's 1 s scrape interval.
fn rendered_probes(dir: &Path, http_port: u16, closed_port: u16) -> (String, Value) {
    let manifest = format!(
        "project: proof\n\
         prometheus: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
         blackbox_exporter: {{}}\n\
         probes:\n\
         \x20 - http: http://host.docker.internal:{http_port}/\n\
         \x20 - tcp: host.docker.internal:{closed_port}\n\
         \x20 - icmp: host.docker.internal\n"
    );
    let source = monstack::manifest::Source {
        text: &manifest,
        display_name: "monstack.yaml",
        root: dir,
    };
    let stack = monstack::manifest::load(&source, &|_| None).unwrap_or_else(|d| panic!("{d}"));
    let tree = monstack::render::render(&stack).unwrap();
    let text = |path: &str| tree.get(path).unwrap().text().to_string();
    let prometheus: Value =
        serde_yaml::from_str(&text(monstack::render::prometheus::CONFIG_PATH)).unwrap();
    let probes = prometheus["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["job_name"] == "probes")
        .expect("a probes job")
        .clone();
    (text(monstack::render::blackbox::CONFIG_PATH), probes)
}

/// ICMP probes need a raw socket (root, or CAP_NET_RAW) or an unprivileged ICMP socket
/// (`net.ipv4.ping_group_range` including our group); the probes dashboard's ICMP panel is
/// proven only then.
fn can_ping() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    let gid = unsafe { libc::getegid() } as u64;
    let in_range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|n| n.parse::<u64>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .is_some_and(|(low, high)| (low..=high).contains(&gid));
    root || in_range
        || testsupport::skip_or_fail(
            "the blackbox exporter's icmp probe needs root or net.ipv4.ping_group_range including this group",
        )
}

/// Evaluates every query of every bundled dashboard. Returns a summary and the failures.
async fn evaluate_all(api: &PrometheusApi) -> (String, Vec<String>) {
    let mut failures = Vec::new();
    let mut report = String::new();
    for (name, dashboard) in all_dashboards() {
        let coverage = coverage(name);
        let assignments = variable_assignments(api, &dashboard).await;
        let (mut queries, mut empty_optional) = (0, 0);
        for panel in panels(&dashboard).iter().filter(|p| !is_row(p)) {
            let panel_title = title(panel);
            let optional = OPTIONAL_PANELS
                .iter()
                .any(|(d, t, _)| *d == name && *t == panel_title);
            for target in panel["targets"].as_array().cloned().unwrap_or_default() {
                let ref_id = target["refId"].as_str().unwrap_or_default();
                let expr = target["expr"].as_str().unwrap_or_default();
                queries += 1;
                let mut with_data = 0;
                let mut problems = Vec::new();
                for values in &assignments {
                    let query = substitute(expr, values);
                    match api.series(&query).await {
                        Ok(0) => problems.push(format!("no series with {}", describe(values))),
                        Ok(_) => with_data += 1,
                        // A query Prometheus cannot parse or run fails even for optional panels.
                        Err(err) => {
                            failures.push(format!(
                                "{name} / {panel_title} / {ref_id}: {expr}\n    error: {err}"
                            ));
                            problems.clear();
                            with_data = usize::MAX;
                            break;
                        }
                    }
                }
                let empty = match coverage {
                    Coverage::ParseOnly => false,
                    Coverage::EveryValue => with_data < assignments.len(),
                    Coverage::SomeValue => with_data == 0,
                };
                if empty && optional {
                    empty_optional += 1;
                } else if empty {
                    failures.push(format!(
                        "{name} / {panel_title} / {ref_id}: {expr}\n    {}",
                        problems.join("; ")
                    ));
                }
            }
        }
        report.push_str(&format!(
            "{name}: {queries} queries, {} variable assignment(s), {empty_optional} empty optional\n",
            assignments.len()
        ));
    }
    (report, failures)
}

/// The sets of variable values to evaluate a dashboard's queries with: one per value of each
/// single-value variable (Grafana shows one at a time); multi-value variables get all their
/// values at once, as Grafana's "All" would. Values come from the variable's own
/// `label_values` query, with the variables before it already set.
async fn variable_assignments(
    api: &PrometheusApi,
    dashboard: &Value,
) -> Vec<BTreeMap<String, String>> {
    let mut assignments = vec![BTreeMap::new()];
    for variable in dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = variable["name"].as_str().unwrap_or_default().to_string();
        if variable["type"] == "datasource" {
            continue;
        }
        let Some((selector, label)) = variable["query"].as_str().and_then(parse_label_values)
        else {
            continue;
        };
        let mut next = Vec::new();
        for values in assignments {
            let selector = substitute(&selector, &values);
            let mut options = api.label_values(&selector, &label).await;
            if options.is_empty() {
                // No exporter (go-micro): any value still lets the query parse.
                options.push(".*".to_string());
            }
            if variable["multi"] == true {
                let mut values = values.clone();
                values.insert(name.clone(), format!("({})", options.join("|")));
                next.push(values);
            } else {
                for option in options {
                    let mut values = values.clone();
                    values.insert(name.clone(), option);
                    next.push(values);
                }
            }
        }
        assignments = next;
    }
    assignments
}

/// Sets `$name`, `${name}` and the built-ins in a query.
fn substitute(expr: &str, values: &BTreeMap<String, String>) -> String {
    let mut all: Vec<(&str, &str)> = BUILTINS.to_vec();
    all.extend(values.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // Longest names first, so `$instance` is not taken for `$in` followed by "stance".
    all.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut out = expr.to_string();
    for (name, value) in all {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    out
}

fn describe(values: &BTreeMap<String, String>) -> String {
    if values.is_empty() {
        return "no variables".into();
    }
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn substitution_sets_variables_and_builtins() {
    let values = BTreeMap::from([
        ("job".to_string(), "etcd".to_string()),
        ("instance".to_string(), "(a|b)".to_string()),
    ]);
    assert_eq!(
        substitute(
            r#"rate(x{job=~"$job", instance=~"${instance}"}[$__rate_interval]) + $__interval"#,
            &values
        ),
        r#"rate(x{job=~"etcd", instance=~"(a|b)"}[1m]) + 15s"#
    );
}

// ---------------------------------------------------------------------------------------------
// Prometheus' HTTP API

#[derive(Clone)]
struct PrometheusApi {
    http: reqwest::Client,
    base: String,
}

impl PrometheusApi {
    /// How many series an instant query returns; `Err` when Prometheus rejects it.
    async fn series(&self, query: &str) -> Result<usize, String> {
        let response = self
            .http
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", query)])
            .send()
            .await
            .map_err(|e| format!("querying Prometheus: {e}"))?;
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("reading Prometheus' answer: {e}"))?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(match &body["data"]["result"] {
            Value::Array(items) => items.len(),
            // A scalar or string result is one value.
            Value::Null => 0,
            _ => 1,
        })
    }

    /// The values `label` has on the series matching `selector`, sorted.
    async fn label_values(&self, selector: &str, label: &str) -> Vec<String> {
        let Ok(response) = self
            .http
            .get(format!("{}/api/v1/label/{label}/values", self.base))
            .query(&[("match[]", selector)])
            .send()
            .await
        else {
            return Vec::new();
        };
        let body: Value = response.json().await.unwrap_or_default();
        body["data"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `job health error` of every target, for failure messages.
    async fn targets_summary(&self) -> String {
        let Ok(response) = self
            .http
            .get(format!("{}/api/v1/targets", self.base))
            .send()
            .await
        else {
            return "(Prometheus did not answer)".into();
        };
        let body: Value = response.json().await.unwrap_or_default();
        body["data"]["activeTargets"]
            .as_array()
            .map(|targets| {
                targets
                    .iter()
                    .map(|t| format!("{} {} {}", t["scrapePool"], t["health"], t["lastError"]))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
}

async fn http_ok(http: &reqwest::Client, url: String) -> bool {
    http.get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Builds `tests/fixtures/rust-exporter` (its own Cargo project and lock file) into
/// `target/rust-exporter`, and returns the binary.
fn build_rust_exporter() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("tests/fixtures/rust-exporter/Cargo.toml");
    let target_dir = root.join("target/rust-exporter");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let output = Command::new(cargo)
        .args(["build", "--locked", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .expect("running cargo to build the Rust exporter fixture");
    assert!(
        output.status.success(),
        "building {} failed:\n{}",
        manifest.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("rust-exporter fixture built in {:.1?}", started.elapsed());
    target_dir.join("debug/rust-exporter")
}

/// A child process killed (and reaped) on drop, also when the test panics; output to a log file.
struct Guard {
    child: Child,
    name: String,
    log_path: PathBuf,
}

impl Guard {
    fn spawn(command: &mut Command, log_path: &Path) -> Guard {
        let log = File::create(log_path).unwrap();
        let name = Path::new(command.get_program())
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Guard {
            child,
            name,
            log_path: log_path.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown state ({e})")),
        }
    }

    /// Polls `check` until it is true; panics with the log if the process exits or 60 s pass.
    /// A wait for a service to start, not a timing assertion.
    async fn wait_until<F, Fut>(&mut self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if check().await {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "waiting for {what}: {} exited ({status}):\n{}",
                    self.name,
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "waiting for {what}: not done after 60 s; {} log:\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
