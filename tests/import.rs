//! `monstack import-dashboard` and `monstack dashboards`: real exported dashboards imported from
//! a file and from a local server playing grafana.com, bad input refused without writing
//! anything, and the calls to a running stack checked against a wiremock Grafana (request shapes
//! of ../shared/reference/formats.md section 4) and a wiremock Prometheus.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use wiremock::matchers::{basic_auth, body_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{Project, Run};

/// The five exported dashboards and the uid each gets.
const FIXTURES: [(&str, &str); 5] = [
    ("apache-full.json", "apache-http"),
    ("haproxy.json", "rEqu1u5ue"),
    ("node-exporter-full-old.json", "node-exporter-full-old"),
    ("node-exporter-full.json", "rYdddlPWk"),
    ("unbound-full.json", "9FQf4fEWz"),
];

const GRAFANA_PASSWORD: &str = "s3cret-Admin-pass";

fn fixtures_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exported-dashboards");
    if dir.join(FIXTURES[0].0).is_file() {
        return Some(dir);
    }
    crate::support::testsupport::skip_or_fail(&format!(
        "the dashboard fixtures are missing ({})",
        dir.display()
    ));
    None
}

/// A port where nothing listens, so the stack counts as not running.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A commented manifest whose Grafana and Prometheus are published on the given ports.
fn manifest(grafana_port: u16, prometheus_port: u16) -> String {
    format!(
        "# Shop monitoring: keep this header\n\
         project: shop   # the project name\n\
         \n\
         prometheus:\n  port: {prometheus_port}   # published here\n\
         grafana: {{port: {grafana_port}}}\n\
         alertmanager: {{}}\n\
         \n\
         dashboards:\n\
         \x20 - go-runtime   # bundled, stays first\n\
         \x20 # more below\n"
    )
}

fn project_not_running() -> Project {
    Project::new().manifest(&manifest(closed_port(), closed_port()))
}

/// Runs the CLI on a blocking thread, so this test's runtime keeps serving the mocks.
async fn run(project: Project, args: &[&str]) -> (Project, Run) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = project.run(&refs);
        (project, run)
    })
    .await
    .unwrap()
}

/// Every file under the project, relative, with its contents: "nothing was written" is this
/// staying equal.
fn snapshot(project: &Project) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.push((
                    path.strip_prefix(root).unwrap().display().to_string(),
                    vec![],
                ));
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                out.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&project.path(), &project.path(), &mut out);
    out.sort();
    out
}

/// What every imported dashboard must look like in the rendered tree.
#[track_caller]
fn assert_provisionable(name: &str, text: &str, uid: &str) {
    assert!(!text.contains("${DS_"), "{name}: ${{DS_ left");
    assert!(!text.contains("__inputs"), "{name}: __inputs left");
    assert!(!text.contains("__requires"), "{name}: __requires left");
    let json: Value = serde_json::from_str(text).unwrap();
    assert_eq!(json["id"], Value::Null, "{name}");
    assert_eq!(json["uid"], uid, "{name}");
    let mut references = Vec::new();
    datasource_references(&json, &mut references);
    assert!(!references.is_empty(), "{name}: no datasource references");
    for reference in references {
        let ok = reference == "prometheus"
            || reference.starts_with('$')
            || ["grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"]
                .contains(&reference.as_str());
        assert!(ok, "{name}: datasource `{reference}` is not provisioned");
    }
}

/// Every datasource uid (or legacy name) the dashboard refers to.
fn datasource_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            match map.get("datasource") {
                Some(Value::String(name)) => out.push(name.clone()),
                Some(Value::Object(reference)) => {
                    if let Some(uid) = reference.get("uid").and_then(Value::as_str) {
                        out.push(uid.to_string());
                    }
                }
                _ => {}
            }
            map.values().for_each(|v| datasource_references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| datasource_references(v, out)),
        _ => {}
    }
}

/// A local server answering like grafana.com for one dashboard: three revisions, the highest
/// of which (3, listed second) is the one to download.
async fn mount_grafana_com(server: &MockServer, id: u64, body: &[u8]) {
    Mock::given(method("GET"))
        .and(path(format!("/api/dashboards/{id}/revisions")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [{"revision": 1}, {"revision": 3}, {"revision": 2}],
            "orderBy": "revision", "direction": "asc", "links": []
        })))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/dashboards/{id}/revisions/3/download")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), "application/json"))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_dashboards_import_from_a_file_and_from_grafana_com_alike() {
    let Some(dir) = fixtures_dir() else { return };
    let grafana_com = MockServer::start().await;
    for (index, (file, uid)) in FIXTURES.iter().enumerate() {
        let source = dir.join(file);
        let bytes = std::fs::read(&source).unwrap();

        // From the file, into a folder.
        let text = manifest(closed_port(), closed_port());
        let (from_file, out) = run(
            Project::new().manifest(&text),
            &[
                "import-dashboard",
                source.to_str().unwrap(),
                "--folder",
                "Hosts & Services",
            ],
        )
        .await;
        out.success();
        assert!(
            out.stderr.contains(&format!("(uid {uid})")),
            "{}",
            out.stderr
        );
        // Only Unbound's bucket list selects integral `le` values (`le=~"...|1|2|4"`).
        assert_eq!(
            out.stderr
                .contains("note: rewrote 1 selector for Prometheus 3 (le=~"),
            *file == "unbound-full.json",
            "{file}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("the stack is not running"),
            "{}",
            out.stderr
        );
        assert_eq!(
            from_file.read("monstack.yaml"),
            text.replace(
                "  # more below\n",
                &format!("  - file: dashboards/{uid}.json\n    folder: Hosts & Services\n  # more below\n")
            ),
            "{file}: the entry is appended and every comment kept"
        );
        let saved = from_file.read(&format!("dashboards/{uid}.json"));
        assert_provisionable(file, &saved, uid);
        let rendered = from_file.read(&format!(
            ".monstack/grafana/dashboards/hosts-services/{uid}.json"
        ));
        assert_provisionable(file, &rendered, uid);
        let providers = from_file.read(".monstack/grafana/provisioning/dashboards/monstack.yaml");
        assert!(
            providers.contains("folder: Hosts & Services"),
            "{providers}"
        );

        // From grafana.com (the latest revision), without a folder.
        let id = 1000 + index as u64;
        mount_grafana_com(&grafana_com, id, &bytes).await;
        let form = if index % 2 == 0 {
            format!("grafana.com/{id}")
        } else {
            format!("gnet:{id}")
        };
        let (from_gnet, out) = run(
            project_not_running().env("MONSTACK_GRAFANA_COM_URL", &grafana_com.uri()),
            &["import-dashboard", &form],
        )
        .await;
        out.success();
        assert!(
            from_gnet
                .read("monstack.yaml")
                .contains(&format!("  - go-runtime   # bundled, stays first\n  - file: dashboards/{uid}.json\n  # more below\n")),
            "{}",
            from_gnet.read("monstack.yaml")
        );
        assert_eq!(
            from_gnet.read(&format!("dashboards/{uid}.json")),
            saved,
            "{file}: the same dashboard whichever way it came"
        );
        let rendered_gnet =
            from_gnet.read(&format!(".monstack/grafana/dashboards/general/{uid}.json"));
        assert_eq!(rendered_gnet, rendered, "{file}");

        // The listing shows it.
        let (_, listing) = run(from_gnet, &["dashboards"]).await;
        listing.success();
        assert!(
            listing
                .stdout
                .lines()
                .any(|l| l.starts_with(&format!("dashboards/{uid}.json")) && l.contains("General")),
            "{}",
            listing.stdout
        );
    }
    grafana_com.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_grafana_com_ids_and_unreachable_servers_write_nothing() {
    let grafana_com = MockServer::start().await;
    let project = project_not_running().env("MONSTACK_GRAFANA_COM_URL", &grafana_com.uri());
    let before = snapshot(&project);
    let (project, out) = run(project, &["import-dashboard", "grafana.com/999999"]).await;
    out.code(2);
    assert!(
        out.stderr.contains("grafana.com has no dashboard 999999"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&project), before);

    // A known id whose download fails on the server: not the user's fault, exit 1.
    Mock::given(method("GET"))
        .and(path("/api/dashboards/7/revisions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [{"revision": 2}]})))
        .mount(&grafana_com)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/dashboards/7/revisions/2/download"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .mount(&grafana_com)
        .await;
    let (project, out) = run(project, &["import-dashboard", "gnet:7"]).await;
    out.code(1);
    assert!(out.stderr.contains("HTTP 502"), "{}", out.stderr);
    assert_eq!(snapshot(&project), before);

    // Nothing listens: a network failure, exit 1.
    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    let project = project.env("MONSTACK_GRAFANA_COM_URL", &unreachable);
    let (project, out) = run(project, &["import-dashboard", "gnet:1860"]).await;
    out.code(1);
    assert!(out.stderr.contains("downloading"), "{}", out.stderr);
    let (project, out) = run(
        project,
        &["import-dashboard", &format!("{unreachable}/d.json")],
    )
    .await;
    out.code(1);
    assert_eq!(snapshot(&project), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn input_that_is_not_a_usable_dashboard_writes_nothing() {
    let web = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/page"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("<html><body>Dashboards</body></html>", "text/html"),
        )
        .mount(&web)
        .await;
    let project = project_not_running()
        .file("notes.json", "this is not JSON\n")
        .file("list.json", "[1, 2, 3]\n")
        .file("other.json", "{\"items\": []}\n")
        .file(
            "logs.json",
            &json!({
                "__inputs": [{"name": "DS_LOKI", "type": "datasource", "pluginId": "loki"}],
                "title": "Logs",
                "panels": [{"datasource": {"type": "loki", "uid": "${DS_LOKI}"}}]
            })
            .to_string(),
        );
    let before = snapshot(&project);
    let cases: [(&str, &str); 6] = [
        ("notes.json", "notes.json is not JSON"),
        ("list.json", "list.json is not a Grafana dashboard"),
        ("other.json", "other.json is not a Grafana dashboard"),
        (
            "logs.json",
            "the dashboard input `DS_LOKI` needs a `loki` datasource",
        ),
        ("missing.json", "missing.json: no such file"),
        ("go-runtim", "did you mean the bundled `go-runtime`?"),
    ];
    let mut project = project;
    for (source, message) in cases {
        let (p, out) = run(project, &["import-dashboard", source]).await;
        project = p;
        out.code(2);
        assert!(out.stderr.contains(message), "{source}: {}", out.stderr);
        assert_eq!(snapshot(&project), before, "{source}");
    }
    let page = format!("{}/page", web.uri());
    let (project, out) = run(project, &["import-dashboard", &page]).await;
    out.code(2);
    assert!(out.stderr.contains("is not JSON"), "{}", out.stderr);
    assert!(out.stderr.contains("that is a web page"), "{}", out.stderr);
    let (project, out) = run(
        project,
        &["import-dashboard", &format!("{}/gone.json", web.uri())],
    )
    .await;
    out.code(2);
    assert!(
        out.stderr.contains("not found (HTTP 404)"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&project), before);
}

/// Prometheus 3 stores `quantile="1"` as `"1.0"`: the import rewrites such selectors to match
/// both spellings and says so; importing the result again changes nothing and says nothing.
#[tokio::test(flavor = "multi_thread")]
async fn integral_quantile_and_le_selectors_are_rewritten_and_reported() {
    let dashboard = json!({"uid": "gc", "title": "GC", "schemaVersion": 39,
        "panels": [{"id": 1, "type": "timeseries", "title": "GC pause",
                    "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
                    "targets": [
                        {"refId": "A", "expr": "go_gc_duration_seconds{quantile=\"1\"}"},
                        {"refId": "B", "expr": "go_gc_duration_seconds{quantile=\"0.5\"}"},
                        {"refId": "C", "expr": "sum(rate(h_bucket{le=\"1\", job=\"le=\\\"1\\\"\"}[5m]))"}]}]});
    let project = project_not_running().file("gc.json", &dashboard.to_string());
    let (project, out) = run(project, &["import-dashboard", "gc.json"]).await;
    out.success();
    assert!(
        out.stderr.lines().any(|l| l.trim()
            == "note: rewrote 2 selectors for Prometheus 3 (quantile=\"1\" -> quantile=~\"1|1[.]0\", le=\"1\" -> le=~\"1|1[.]0\")"),
        "{}",
        out.stderr
    );
    for path in [
        "dashboards/gc.json",
        ".monstack/grafana/dashboards/general/gc.json",
    ] {
        let saved: Value = serde_json::from_str(&project.read(path)).unwrap();
        let targets = &saved["panels"][0]["targets"];
        assert_eq!(
            targets[0]["expr"], "go_gc_duration_seconds{quantile=~\"1|1[.]0\"}",
            "{path}"
        );
        assert_eq!(
            targets[1]["expr"], "go_gc_duration_seconds{quantile=\"0.5\"}",
            "{path}"
        );
        assert_eq!(
            targets[2]["expr"], "sum(rate(h_bucket{le=~\"1|1[.]0\", job=\"le=\\\"1\\\"\"}[5m]))",
            "{path}"
        );
    }
    let (_, out) = run(project, &["import-dashboard", "dashboards/gc.json"]).await;
    out.success();
    assert!(out.stderr.contains("Unchanged"), "{}", out.stderr);
    assert!(!out.stderr.contains("rewrote"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn reimports_conflicts_and_bundled_dashboards() {
    let dashboard = |title: &str| {
        json!({"uid": "orders", "title": title, "schemaVersion": 39,
               "panels": [{"id": 1, "type": "timeseries", "title": "Up",
                           "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
                           "targets": [{"refId": "A", "expr": "up"}]}]})
        .to_string()
    };
    let project = project_not_running()
        .file("orders.json", &dashboard("Orders"))
        .file("orders-v2.json", &dashboard("Orders v2"));
    let (project, out) = run(project, &["import-dashboard", "orders.json"]).await;
    out.success();
    let after_first = snapshot(&project);

    // The same again: nothing changes.
    let (project, out) = run(project, &["import-dashboard", "orders.json"]).await;
    out.success();
    assert!(out.stderr.contains("Unchanged"), "{}", out.stderr);
    assert_eq!(snapshot(&project), after_first);

    // Another version of the same uid: refused without --force, replaced with it.
    let (project, out) = run(project, &["import-dashboard", "orders-v2.json"]).await;
    out.code(2);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(snapshot(&project), after_first);
    let (project, out) = run(project, &["import-dashboard", "orders-v2.json", "--force"]).await;
    out.success();
    assert!(project.read("dashboards/orders.json").contains("Orders v2"));
    assert!(project
        .read(".monstack/grafana/dashboards/general/orders.json")
        .contains("Orders v2"));
    assert_eq!(
        project
            .read("monstack.yaml")
            .matches("dashboards/orders.json")
            .count(),
        1
    );

    // A file already in dashboards/ is prepared in place.
    let raw = dashboard("Orders v3").replace(
        "\"uid\":\"orders\",",
        "\"uid\":\"orders\",\"__requires\":[],",
    );
    assert!(raw.contains("__requires"));
    std::fs::write(project.path().join("dashboards/orders.json"), raw).unwrap();
    let (project, out) = run(project, &["import-dashboard", "dashboards/orders.json"]).await;
    out.success();
    assert!(!project
        .read("dashboards/orders.json")
        .contains("__requires"));
    assert!(project
        .read(".monstack/grafana/dashboards/general/orders.json")
        .contains("Orders v3"));

    // A dashboard with the uid of one already listed from elsewhere.
    let clash = dashboard("Clash").replace("\"orders\"", "\"monstack-go-runtime\"");
    let project = project.file("clash.json", &clash);
    let before = snapshot(&project);
    let (project, out) = run(project, &["import-dashboard", "clash.json"]).await;
    out.code(2);
    assert!(
        out.stderr
            .contains("already has a dashboard with the uid `monstack-go-runtime`: go-runtime"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&project), before);

    // The same file into another folder would be a second copy with the same uid.
    let before = snapshot(&project);
    let (project, out) = run(
        project,
        &[
            "import-dashboard",
            "orders.json",
            "--folder",
            "Shop",
            "--force",
        ],
    )
    .await;
    out.code(2);
    assert!(out.stderr.contains("another folder"), "{}", out.stderr);
    assert_eq!(snapshot(&project), before);

    // Bundled: with a folder, and a second time unchanged.
    let (project, out) = run(
        project,
        &["import-dashboard", "rust-runtime", "--folder", "Rust"],
    )
    .await;
    out.success();
    let text = project.read("monstack.yaml");
    assert!(
        text.ends_with("  - file: dashboards/orders.json\n  - bundled: rust-runtime\n    folder: Rust\n  # more below\n"),
        "{text}"
    );
    assert!(text.starts_with("# Shop monitoring: keep this header\n"));
    let rust = project.read(".monstack/grafana/dashboards/rust/monstack-rust-runtime.json");
    assert!(rust.contains("\"uid\": \"monstack-rust-runtime\""));
    let before = snapshot(&project);
    let (project, out) = run(project, &["import-dashboard", "go-runtime"]).await;
    out.success();
    assert!(out.stderr.contains("Unchanged"), "{}", out.stderr);
    assert_eq!(snapshot(&project), before);

    let (_, listing) = run(project, &["dashboards"]).await;
    listing.success();
    for expected in [
        "go-runtime",
        "monstack-rust-runtime",
        "dashboards/orders.json",
        "Orders v3",
    ] {
        assert!(
            listing.stdout.contains(expected),
            "{expected}: {}",
            listing.stdout
        );
    }
    let rust_row = listing
        .stdout
        .lines()
        .find(|l| l.starts_with("rust-runtime ") && l.contains("Rust"))
        .unwrap_or_else(|| panic!("{}", listing.stdout));
    assert!(rust_row.contains("monstack-rust-runtime"), "{rust_row}");
}

/// A wiremock "Grafana" that only answers requests of the documented shapes with the admin's
/// basic auth, and a wiremock "Prometheus" with a metric name list.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_stack_gets_the_dashboard_pushed_and_a_compatibility_report() {
    let Some(dir) = fixtures_dir() else { return };
    let grafana = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/health"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"commit": "abc", "database": "ok", "version": "12.1.1"})),
        )
        .mount(&grafana)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/folders/hosts"))
        .and(basic_auth("admin", GRAFANA_PASSWORD))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"message": "folder not found"})),
        )
        .expect(1)
        .mount(&grafana)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/folders"))
        .and(basic_auth("admin", GRAFANA_PASSWORD))
        .and(body_json(json!({"uid": "hosts", "title": "Hosts"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": 7, "uid": "hosts", "title": "Hosts", "url": "/dashboards/f/hosts/hosts"}),
        ))
        .expect(1)
        .mount(&grafana)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/dashboards/db"))
        .and(basic_auth("admin", GRAFANA_PASSWORD))
        .and(|request: &Request| {
            let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                return false;
            };
            let fields: BTreeSet<&str> = body
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            fields == BTreeSet::from(["dashboard", "folderUid", "overwrite", "message"])
                && body["dashboard"]["id"].is_null()
                && body["dashboard"]["uid"].is_string()
                && body["folderUid"] == "hosts"
                && body["overwrite"] == true
                && body["message"].is_string()
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 1, "uid": "node-exporter-full-old",
            "url": "/d/node-exporter-full-old/node-exporter-full-old",
            "status": "success", "version": 1
        })))
        .expect(1)
        .mount(&grafana)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/admin/provisioning/dashboards/reload"))
        .and(basic_auth("admin", GRAFANA_PASSWORD))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"message": "Dashboards config reloaded"})),
        )
        .expect(1)
        .mount(&grafana)
        .await;
    // Anything else (another shape, no or wrong credentials) is refused.
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthorized"})))
        .with_priority(10)
        .mount(&grafana)
        .await;

    // Prometheus scrapes a current node_exporter: it has the names of the current dashboard.
    let current: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("node-exporter-full.json")).unwrap(),
    )
    .unwrap();
    let mut available: Vec<String> = monstack::dashboards::metric_names(&current)
        .into_iter()
        .collect();
    available.push("up".into());
    let prometheus = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/-/ready"))
        .respond_with(ResponseTemplate::new(200).set_body_string("Prometheus Server is Ready.\n"))
        .mount(&prometheus)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/label/__name__/values"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "data": available})),
        )
        .expect(1)
        .mount(&prometheus)
        .await;

    let port = |server: &MockServer| server.address().port();
    let project = Project::new()
        .manifest(&manifest(port(&grafana), port(&prometheus)))
        .file(
            ".monstack/secrets/grafana-admin-password",
            &format!("{GRAFANA_PASSWORD}\n"),
        );
    let source = dir.join("node-exporter-full-old.json");
    let (project, out) = run(
        project,
        &[
            "import-dashboard",
            source.to_str().unwrap(),
            "--folder",
            "Hosts",
        ],
    )
    .await;
    out.success();
    grafana.verify().await;
    prometheus.verify().await;

    // The folder before the dashboard, and the pushed dashboard is the provisioned one.
    let requests = grafana.received_requests().await.unwrap();
    let order: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    let folder_at = order.iter().position(|r| r == "POST /api/folders").unwrap();
    let push_at = order
        .iter()
        .position(|r| r == "POST /api/dashboards/db")
        .unwrap();
    let reload_at = order
        .iter()
        .position(|r| r == "POST /api/admin/provisioning/dashboards/reload")
        .unwrap();
    assert!(folder_at < push_at && push_at < reload_at, "{order:?}");
    let pushed: Value = serde_json::from_slice(&requests[push_at].body).unwrap();
    let saved: Value =
        serde_json::from_str(&project.read("dashboards/node-exporter-full-old.json")).unwrap();
    assert_eq!(pushed["dashboard"], saved);
    assert_provisionable(
        "pushed",
        &pushed["dashboard"].to_string(),
        "node-exporter-full-old",
    );

    assert_eq!(
        out.stdout.trim(),
        format!(
            "{}/d/node-exporter-full-old/node-exporter-full-old",
            grafana.uri()
        )
    );
    // The report: the names node_exporter 0.16 renamed, each with its new name.
    for line in [
        "`node_memory_MemTotal` -> did you mean `node_memory_MemTotal_bytes`?",
        "`node_cpu` -> did you mean `node_cpu_seconds_total`?",
        "`node_boot_time` -> did you mean `node_boot_time_seconds`?",
        "`node_network_receive_bytes` -> did you mean `node_network_receive_bytes_total`?",
    ] {
        assert!(
            out.stderr.lines().any(|l| l.trim() == line),
            "missing report line {line}\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .contains("metric names \"Node Exporter Full Old\" queries are not in Prometheus"),
        "{}",
        out.stderr
    );
    // Names Prometheus has are not reported.
    assert!(!out.stderr.contains("`process_open_fds`"), "{}", out.stderr);
}

/// A dashboard whose exporter is not scraped at all gets one line for the whole family, and a
/// wrong stored password is reported without changing what was written.
#[tokio::test(flavor = "multi_thread")]
async fn absent_exporters_are_summarised_and_refused_passwords_reported() {
    let Some(dir) = fixtures_dir() else { return };
    let grafana = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/health"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"commit": "abc", "database": "ok", "version": "12.1.1"})),
        )
        .mount(&grafana)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthorized"})))
        .with_priority(10)
        .mount(&grafana)
        .await;
    let project = Project::new()
        .manifest(&manifest(grafana.address().port(), closed_port()))
        .file(
            ".monstack/secrets/grafana-admin-password",
            "stale-password\n",
        );
    let source = dir.join("apache-full.json");
    let (project, out) = run(project, &["import-dashboard", source.to_str().unwrap()]).await;
    out.code(1);
    assert!(
        out.stderr
            .contains("Grafana refused the stored admin password"),
        "{}",
        out.stderr
    );
    // The import itself is done: the next `up` provisions it.
    assert!(project.exists("dashboards/apache-http.json"));
    assert!(project.exists(".monstack/grafana/dashboards/general/apache-http.json"));

    let prometheus = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/-/ready"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&prometheus)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/label/__name__/values"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status": "success", "data": ["up", "node_load1", "process_open_fds"]}),
        ))
        .mount(&prometheus)
        .await;
    let project = Project::new().manifest(&manifest(closed_port(), prometheus.address().port()));
    let (_, out) = run(project, &["import-dashboard", source.to_str().unwrap()]).await;
    out.success();
    assert!(
        out.stderr.contains(
            "`apache_*` (19 names): Prometheus has no `apache_` metrics at all; is their exporter scraped?"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("did you mean"), "{}", out.stderr);
}
