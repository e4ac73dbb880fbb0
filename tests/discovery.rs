//! Live targets on a running stack: `register` -> etcd -> agent -> target file -> Prometheus,
//! lease end -> gone, etcd down -> files kept, `add-target` without a Prometheus restart.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use monstack::agent::discovery::target_path;
use monstack::stack::docker::Engine;

use crate::support::images::{
    free_port, require_docker_and_binaries, test_images, unique_project, ProjectGuard, TestImages,
};
use crate::support::testsupport::{answers, eventually};
use crate::support::Project;

fn manifest(
    project: &str,
    images: &TestImages,
    prometheus: u16,
    etcd: u16,
    pushgateway: u16,
    agent: u16,
) -> String {
    format!(
        "project: {project}\n\
         prometheus: {{image: {}, port: {prometheus}, scrape_interval: 1s}}\n\
         grafana: false\n\
         etcd: {{image: {}, port: {etcd}}}\n\
         pushgateway: {{image: {}, port: {pushgateway}}}\n\
         agent: {{port: {agent}}}\n\
         discovery:\n  etcd: {{prefix: /service/}}\n\
         # scrape jobs\n\
         targets:\n  - job: pg\n    targets: [\"pushgateway:9091\"]  # the pushgateway itself\n",
        images.prometheus, images.etcd, images.pushgateway
    )
}

async fn targets(port: u16) -> Vec<serde_json::Value> {
    let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/targets")).await else {
        return vec![];
    };
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    body["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn target_health(port: u16, job: &str, service: Option<&str>) -> Option<String> {
    targets(port).await.into_iter().find_map(|t| {
        let pool_matches = t["scrapePool"] == job;
        // A registered service's job label is its name (monstack targets lists it so).
        let service_matches =
            service.is_none_or(|s| t["labels"]["service"] == s && t["labels"]["job"] == s);
        (pool_matches && service_matches)
            .then(|| t["health"].as_str().unwrap_or_default().to_string())
    })
}

fn started_at(container: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.StartedAt}}", container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `monstack register` in the background; SIGINT ends it (and revokes its lease).
struct Registered(std::process::Child);

impl Registered {
    fn start(dir: &Path, args: &[&str]) -> Registered {
        let child = Command::new(env!("CARGO_BIN_EXE_monstack"))
            .arg("register")
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Registered(child)
    }

    fn stop(mut self) -> String {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let out = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registered_services_are_scraped_and_dropped_and_survive_an_etcd_outage() {
    if !require_docker_and_binaries() {
        return;
    }
    let engine = Engine::connect().await.unwrap();
    let images = test_images(&engine).await.unwrap();
    let name = unique_project("disc");
    let _guard = ProjectGuard::new(&name);
    let (prom, etcd, pg, agent) = (free_port(), free_port(), free_port(), free_port());
    let project = Project::new().manifest(&manifest(&name, &images, prom, etcd, pg, agent));
    project.run(&["up", "--timeout", "120"]).success();
    let dir = project.path();
    let etcd_targets = dir.join(".monstack/prometheus/targets/etcd");
    let file = target_path(&etcd_targets, "pg-etcd.json");

    // register -> file -> Prometheus scrapes it (the pushgateway serves a real /metrics).
    let registration = Registered::start(
        &dir,
        &["pg-etcd", "pushgateway:9091", "--id", "one", "--ttl", "5s"],
    );
    eventually("the target file", Duration::from_secs(30), || {
        let file = file.clone();
        async move {
            std::fs::read_to_string(&file).is_ok_and(|t| {
                t.contains("pushgateway:9091") && t.contains("\"service_id\": \"one\"")
            })
        }
    })
    .await;
    eventually(
        "Prometheus scraping the registered service",
        Duration::from_secs(30),
        || async move {
            target_health(prom, "etcd-discovered", Some("pg-etcd"))
                .await
                .as_deref()
                == Some("up")
        },
    )
    .await;

    // `targets` shows both sources, with the lease.
    let listing = project.run(&["targets", "--json"]);
    listing.success();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&listing.stdout).unwrap();
    assert!(
        rows.iter()
            .any(|r| r["source"] == "manifest" && r["job"] == "pg"),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r["source"] == "etcd"
            && r["service_id"] == "one"
            && r["lease_ttl_seconds"].as_i64().is_some_and(|t| t > 0)),
        "{rows:?}"
    );

    // `sync` beside the running agent is refused (its snapshot could put back an older state
    // than the watch has applied); with the agent stopped it writes the files from etcd.
    let run = project.run(&["sync"]);
    run.code(2);
    assert!(run.stderr.contains("agent is running"), "{}", run.stderr);
    let agent_container = format!("monstack-{name}-agent");
    docker(&["stop", &agent_container]);
    std::fs::remove_file(&file).unwrap();
    let run = project.run(&["sync"]);
    run.success();
    assert!(run.stderr.contains("Synced"), "{}", run.stderr);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("pushgateway:9091"));
    docker(&["start", &agent_container]);
    eventually("the agent back", Duration::from_secs(30), || {
        answers(format!("http://127.0.0.1:{agent}/-/ready"))
    })
    .await;

    // The agent exposes its own metrics, and Prometheus scrapes them.
    let metrics = reqwest::get(format!("http://127.0.0.1:{agent}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("monstack_agent_targets 1"), "{metrics}");
    eventually("Prometheus scraping the agent", Duration::from_secs(30), || async move {
        target_health(prom, "monstack-agent", None).await.as_deref() == Some("up")
    })
    .await;

    // Ctrl-C revokes the lease: the file and the target go.
    let said = registration.stop();
    assert!(said.contains("Removed /service/pg-etcd/one"), "{said}");
    eventually("the target file removed", Duration::from_secs(15), || {
        let file = file.clone();
        async move { !file.exists() }
    })
    .await;
    eventually(
        "the target gone from Prometheus",
        Duration::from_secs(30),
        || async move {
            target_health(prom, "etcd-discovered", Some("pg-etcd"))
                .await
                .is_none()
        },
    )
    .await;

    // etcd down: the agent keeps the files; back up: new registrations are picked up.
    let _kept = Registered::start(
        &dir,
        &["kept", "pushgateway:9091", "--id", "k", "--ttl", "30s"],
    );
    let kept_file = target_path(&etcd_targets, "kept.json");
    eventually("the kept target file", Duration::from_secs(30), || {
        let f = kept_file.clone();
        async move { f.exists() }
    })
    .await;
    let before = std::fs::read(&kept_file).unwrap();
    let etcd_container = format!("monstack-{name}-etcd");
    docker(&["stop", "-t", "1", &etcd_container]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        std::fs::read(&kept_file).unwrap(),
        before,
        "targets must be kept while etcd is down"
    );
    docker(&["start", &etcd_container]);
    let late = Registered::start(
        &dir,
        &["late", "pushgateway:9091", "--id", "l", "--ttl", "10s"],
    );
    let agent_logs = project.run(&["logs", "agent", "--tail", "30"]).stdout;
    println!("agent after the etcd restart:\n{agent_logs}");
    eventually(
        "a registration made after etcd came back",
        Duration::from_secs(60),
        || {
            let f = target_path(&etcd_targets, "late.json");
            async move { f.exists() }
        },
    )
    .await;
    drop(late);

    // add-target on the running stack: scraped without restarting Prometheus.
    let prometheus_container = format!("monstack-{name}-prometheus");
    let started = started_at(&prometheus_container);
    let added = project.run(&["add-target", "pg", "etcd:2379", "--wait", "30s"]);
    added.success();
    assert!(
        added.stderr.contains("Up pg etcd:2379") || added.stderr.contains("pg etcd:2379"),
        "{}",
        added.stderr
    );
    assert!(
        !added.stderr.contains("Reloaded"),
        "an existing job needs no reload: {}",
        added.stderr
    );
    let manifest_text = project.read("monstack.yaml");
    assert!(
        manifest_text.contains("# scrape jobs")
            && manifest_text.contains("# the pushgateway itself"),
        "comments kept: {manifest_text}"
    );
    // A new job changes prometheus.yml: reloaded, still no restart.
    let new_job = project.run(&["add-target", "etcd-direct", "etcd:2379", "--wait", "30s"]);
    new_job.success();
    assert!(new_job.stderr.contains("Reloaded"), "{}", new_job.stderr);
    eventually(
        "the new job scraped",
        Duration::from_secs(30),
        || async move { target_health(prom, "etcd-direct", None).await.as_deref() == Some("up") },
    )
    .await;
    assert_eq!(
        started_at(&prometheus_container),
        started,
        "Prometheus must not be restarted"
    );
    // And the next `up` has nothing left to do.
    let settled = project.run(&["up"]);
    settled.success();
    assert!(
        settled.stderr.contains("every service is up to date"),
        "{}",
        settled.stderr
    );

    project.run(&["remove-target", "etcd-direct"]).success();
    eventually(
        "the removed job gone",
        Duration::from_secs(30),
        || async move { target_health(prom, "etcd-direct", None).await.is_none() },
    )
    .await;
}

#[test]
fn add_target_edits_the_manifest_and_the_target_file_without_a_stack() {
    let project = Project::new().manifest("project: offline\n# my jobs\ntargets:\n  - job: api   # the API\n    targets: [\"host.docker.internal:8080\"]\n");
    let run = project.run(&[
        "add-target",
        "api",
        "host.docker.internal:8081",
        "--label",
        "env=dev",
    ]);
    run.success();
    assert!(
        run.stderr.contains("the stack is not running") || !run.stderr.contains("Reloaded"),
        "{}",
        run.stderr
    );
    let text = project.read("monstack.yaml");
    assert!(
        text.starts_with("project: offline\n# my jobs\ntargets:\n  - job: api   # the API\n"),
        "{text}"
    );
    let file = project.read(".monstack/prometheus/targets/api.json");
    assert!(
        file.contains("host.docker.internal:8081") && file.contains("\"env\": \"dev\""),
        "{file}"
    );

    // Duplicates, bad addresses and bad labels: exit 2, nothing changed.
    let before = project.read("monstack.yaml");
    for args in [
        &["add-target", "api", "host.docker.internal:8081"][..],
        &["add-target", "api", "http://x:1/metrics"][..],
        &["add-target", "api", "x:1", "--label", "1bad=x"][..],
        &["add-target", "prometheus", "x:1"][..],
        &["remove-target", "api", "nope:1"][..],
    ] {
        let run = project.run(args);
        run.code(2);
        assert_eq!(
            project.read("monstack.yaml"),
            before,
            "{args:?} changed the manifest"
        );
    }
    // Loopback addresses get a warning and a hint.
    let run = project.run(&["add-target", "api", "localhost:9100"]);
    run.success();
    assert!(
        run.stderr.contains("host.docker.internal:9100"),
        "{}",
        run.stderr
    );
    project.run(&["remove-target", "api"]).success();
    assert!(!project.read("monstack.yaml").contains("job: api"));
    assert!(
        !project.exists(".monstack/prometheus/targets/api.json"),
        "the job's file goes with it"
    );
}

/// Prometheus' file_sd counters, summed over its file_sd configs.
async fn file_sd_counters(client: &reqwest::Client, prometheus: &str) -> Option<(f64, f64)> {
    let text = client
        .get(format!("{prometheus}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some((
        // One per re-read of a file_sd config's files.
        value("prometheus_sd_file_scan_duration_seconds_count")?,
        // One per file handed to the discovery manager, so per file read.
        value("prometheus_sd_received_updates_total{name=\"scrape\"}")?,
    ))
}

/// Why the target files are sharded and written through `.tmp/`, checked on a real Prometheus
/// 3.5 with the prometheus.yml `render` writes and a real `monstack agent`: a registration makes
/// Prometheus re-read exactly one shard's files, once. With all files in one watched directory
/// and the temp file beside them, it was every file, four times (created, written, renamed
/// away, renamed in). Counted from Prometheus' own counters, never timed.
#[tokio::test(flavor = "multi_thread")]
async fn a_registration_makes_prometheus_reread_one_shard_once() {
    use crate::support::testsupport::{self, pinned, ChildGuard};
    use monstack::clients::etcd::Etcd;
    let (Some(etcd_bin), Some(prometheus_bin)) =
        (pinned(testsupport::ETCD), pinned(testsupport::PROMETHEUS))
    else {
        return;
    };
    const DEADLINE: Duration = Duration::from_secs(60);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let ok = |url: String| {
        let client = client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    };
    let (etcd_port, peer_port, agent_port, prom_port) =
        (free_port(), free_port(), free_port(), free_port());
    let project = crate::support::Project::new().manifest(&format!(
        "etcd: {{port: {etcd_port}}}\ndiscovery: {{etcd: {{}}}}\ngrafana: false\n"
    ));
    project.run(&["render"]).success();
    let out = project.path().join(".monstack");
    let targets = out.join("prometheus/targets/etcd");

    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let mut etcd_child = ChildGuard::spawn(
        Command::new(etcd_bin).args([
            "--name=shards".to_string(),
            format!("--data-dir={}", project.path().join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=shards={peer}"),
        ]),
        &project.path().join("etcd.log"),
    );
    etcd_child
        .wait_until("etcd answers", DEADLINE, || {
            ok(format!("{etcd_url}/health"))
        })
        .await;
    let etcd = Etcd::new(&client, etcd_url.clone());
    // Services already registered: every shard holds several files, so a re-read of all of
    // them and a re-read of one shard differ by far.
    let put = |name: String| {
        let etcd = etcd.clone();
        async move {
            etcd.put(&format!("/service/{name}/1"), b"10.9.9.9:9100", None)
                .await
                .unwrap();
        }
    };
    for i in 0..64 {
        put(format!("svc{i}")).await;
    }

    let mut agent = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_monstack"))
            .args(["agent", "--etcd", &etcd_url, "--listen"])
            .arg(format!("127.0.0.1:{agent_port}"))
            .arg("--targets-dir")
            .arg(&targets)
            .env("NO_COLOR", "1"),
        &project.path().join("agent.log"),
    );
    agent
        .wait_until("the agent has listed etcd", DEADLINE, || {
            ok(format!("http://127.0.0.1:{agent_port}/-/ready"))
        })
        .await;

    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let mut prometheus = ChildGuard::spawn(
        testsupport::prometheus_command(
            &prometheus_bin,
            &out.join("prometheus/prometheus.yml"),
            &project.path().join("tsdb"),
            prom_port,
        )
        .arg("--scrape.discovery-reload-interval=1s"),
        &project.path().join("prometheus.log"),
    );
    let discovered = |expected: usize| {
        let client = client.clone();
        let url = format!("{prom_url}/metrics");
        async move {
            let Ok(response) = client.get(url).send().await else {
                return false;
            };
            let text = response.text().await.unwrap_or_default();
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(
                        "prometheus_sd_discovered_targets{config=\"etcd-discovered\",name=\"scrape\"} ",
                    )
                })
                .and_then(|v| v.parse::<f64>().ok())
                == Some(expected as f64)
        }
    };
    prometheus
        .wait_until("Prometheus has read the 64 services", DEADLINE, || {
            discovered(64)
        })
        .await;
    let (scans_before, reads_before) = file_sd_counters(&client, &prom_url).await.unwrap();

    // Four new services, one at a time, each waited for until Prometheus has it.
    let mut expected_reads = 0;
    for i in 0..4 {
        let name = format!("new{i}");
        put(name.clone()).await;
        prometheus
            .wait_until("Prometheus has the new service", DEADLINE, || {
                discovered(65 + i)
            })
            .await;
        // What a re-read of its shard reads: its files, the new one and the placeholder.
        let shard = target_path(&targets, &format!("{name}.json"));
        expected_reads += std::fs::read_dir(shard.parent().unwrap())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".json")
            })
            .count();
    }
    // The last re-read may still be handing files over; then a moment for any further re-read
    // to show (each follows its change within milliseconds).
    prometheus
        .wait_until("the last re-read to finish", DEADLINE, || async {
            file_sd_counters(&client, &prom_url)
                .await
                .is_some_and(|(_, reads)| reads - reads_before >= expected_reads as f64)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (scans, reads) = file_sd_counters(&client, &prom_url).await.unwrap();
    assert_eq!(
        (scans - scans_before, reads - reads_before),
        (4.0, expected_reads as f64),
        "file_sd re-reads and files read for 4 registrations (68 services in 16 shards); \
         Prometheus' log:\n{}",
        prometheus.log()
    );
    // The temp files never were in a watched directory, and none is left.
    assert_eq!(
        std::fs::read_dir(targets.join(".tmp")).unwrap().count(),
        0,
        "temp files left behind"
    );
    assert!(agent.exited().is_none(), "the agent died:\n{}", agent.log());
}
