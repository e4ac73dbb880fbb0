//! The locally built test images run every service exactly as `containers::desired` specifies
//! it: entrypoint paths, data directories the service's user can write, and the rendered secret
//! files (mode 0640) readable through the supplementary group.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use monstack::manifest::{self, Source};
use monstack::stack::containers::{self, ContainerSpec, HostContext, MountSource};
use monstack::stack::docker::Engine;

use crate::support::images::{
    free_port, require_docker_and_binaries, test_images, unique_project, ProjectGuard,
};

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn every_service_runs_from_the_test_images_as_the_stack_specifies_it() {
    if !require_docker_and_binaries() {
        return;
    }
    let engine = Engine::connect().await.unwrap();
    let images = test_images(&engine).await.unwrap();
    let project = unique_project("images");
    let _guard = ProjectGuard::new(&project);

    let mut ports = BTreeSet::new();
    while ports.len() < 4 {
        ports.insert(free_port());
    }
    let [prometheus, etcd, alertmanager, pushgateway] =
        <[u16; 4]>::try_from(ports.into_iter().collect::<Vec<_>>()).unwrap();
    let manifest = format!(
        "project: {project}\n\
         prometheus: {{image: {}, port: {prometheus}, scrape_interval: 1s}}\n\
         grafana: false\n\
         etcd: {{image: {}, port: {etcd}}}\n\
         alertmanager: {{image: {}, port: {alertmanager}}}\n\
         pushgateway: {{image: {}, port: {pushgateway}}}\n",
        images.prometheus, images.etcd, images.alertmanager, images.pushgateway
    );
    let dir = tempfile::tempdir().unwrap();
    let source = Source {
        text: &manifest,
        display_name: "monstack.yaml",
        root: dir.path(),
    };
    let stack = manifest::load(&source, &|_| None).unwrap_or_else(|d| panic!("{d}"));
    let tree = monstack::render::render(&stack).unwrap();
    let out = dir.path().join(".monstack");
    monstack::render::write::write_tree(&out, &tree).unwrap();

    let am_config = std::fs::metadata(out.join("alertmanager/alertmanager.yml")).unwrap();
    assert_eq!(
        am_config.mode() & 0o777,
        0o640,
        "the Alertmanager config is a secret file"
    );
    let host = HostContext {
        out_dir: &out,
        secret_gid: am_config.gid(),
        grafana_admin_password: "unused-password",
        agent_image: Some("monstack-agent:test"),
        host_user: (1000, 1000),
        host_gateway: None,
        host_root_shared: false,
    };
    let specs = containers::desired(&stack, &tree, &host);
    assert_eq!(
        specs.iter().map(|s| s.service).collect::<Vec<_>>(),
        ["prometheus", "etcd", "alertmanager", "pushgateway"]
    );

    engine
        .ensure_network(&containers::network_name(&project), &project)
        .await
        .unwrap();
    for spec in &specs {
        for mount in &spec.mounts {
            if let MountSource::Volume(volume) = &mount.source {
                engine
                    .ensure_volume(volume, &project, "/tmp")
                    .await
                    .unwrap();
            }
        }
        engine.create(spec, &project).await.unwrap();
        engine.start(&spec.name).await.unwrap();
    }

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for spec in &specs {
        let path = if spec.service == "etcd" {
            "/health"
        } else {
            "/-/ready"
        };
        wait_for(&engine, spec, &format!("{path} to answer"), || async {
            let response = client.get(format!("{}{path}", spec.url())).send().await;
            let Ok(response) = response.and_then(|r| r.error_for_status()) else {
                return false;
            };
            if spec.service != "etcd" {
                return true;
            }
            // etcd answers /health before it has a leader, with {"health":"false"}.
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            body["health"] == "true"
        })
        .await;
    }

    // Prometheus appends its own samples to the TSDB in /prometheus (a volume owned by 65534).
    let spec = &specs[0];
    let query = format!(
        "{}/api/v1/query?query=prometheus_tsdb_head_series",
        spec.url()
    );
    wait_for(&engine, spec, "a scrape stored in the TSDB", || async {
        let Ok(response) = client.get(&query).send().await else {
            return false;
        };
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let value = body["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or("0");
        body["status"] == "success" && value.parse::<f64>().unwrap_or(0.0) > 0.0
    })
    .await;

    // Alertmanager runs as 65534 and reads the 0640 config only through the added group.
    let spec = &specs[2];
    let status: serde_json::Value = client
        .get(format!("{}/api/v2/status", spec.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded = status["config"]["original"].as_str().unwrap_or_default();
    assert!(
        loaded.contains("monstack-default"),
        "Alertmanager did not load the rendered configuration:\n{loaded}"
    );
}

/// Polls `ready` until it holds or [`DEADLINE`] passes (a wait, not a timing assertion); then
/// fails with the container's state and last log lines.
async fn wait_for<F, Fut>(engine: &Engine, spec: &ContainerSpec, what: &str, ready: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let state = engine.state(&spec.name).await;
    let logs = match engine.logs_tail(&spec.name, 50).await {
        Ok(lines) => lines.join("\n"),
        Err(e) => format!("(cannot read them: {e:#})"),
    };
    panic!(
        "{}: waited {} s for {what}\nstate: {state:?}\nlast log lines:\n{logs}",
        spec.name,
        DEADLINE.as_secs(),
    );
}

#[test]
fn unique_project_names_are_short_distinct_and_valid() {
    let long = unique_project("A Very_Long prefix, longer than any project name should be");
    let short = unique_project("up");
    for name in [&long, &short] {
        assert!(name.len() <= 40, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        assert!(name.contains(&std::process::id().to_string()), "{name}");
    }
    assert_ne!(unique_project("up"), short);
}
