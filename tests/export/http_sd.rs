//! The agent's `GET /sd/etcd`, live: a real etcd 3.5, `monstack agent` against it, services
//! registered with `monstack register`, and a real Prometheus 3.5 whose only discovery is
//! `http_sd_configs` pointing at the agent, as the exported ScrapeConfig has it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use monstack::agent::discovery::target_path;

use crate::support::testsupport::{self, free_port, pinned, ChildGuard};
use crate::support::Project;

const DEADLINE: Duration = Duration::from_secs(60);

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(url: &str) -> Option<(u16, String, String)> {
    let response = client().get(url).send().await.ok()?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Some((status, content_type, response.text().await.ok()?))
}

async fn ok(url: String) -> bool {
    get(&url).await.is_some_and(|(status, _, _)| status == 200)
}

/// `monstack register` in the background; SIGINT ends it and revokes its lease.
struct Registered(Child);

impl Registered {
    fn start(dir: &Path, args: &[&str]) -> Registered {
        let child = Command::new(env!("CARGO_BIN_EXE_monstack"))
            .arg("register")
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Registered(child)
    }

    fn stop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prometheus' active targets of the job.
async fn targets(prometheus: &str, job: &str) -> Vec<serde_json::Value> {
    let Some((200, _, body)) = get(&format!("{prometheus}/api/v1/targets")).await else {
        return vec![];
    };
    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    body["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["scrapePool"] == job)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_discovers_registered_services_through_the_agents_http_sd() {
    let (Some(etcd), Some(prometheus)) =
        (pinned(testsupport::ETCD), pinned(testsupport::PROMETHEUS))
    else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let (etcd_port, peer_port, agent_port, prom_port) =
        (free_port(), free_port(), free_port(), free_port());
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let mut etcd = ChildGuard::spawn(
        Command::new(etcd).args([
            "--name=sd".to_string(),
            format!("--data-dir={}", temp.path().join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=sd={peer}"),
        ]),
        &temp.path().join("etcd.log"),
    );
    etcd.wait_until("etcd answers", DEADLINE, || {
        ok(format!("{etcd_url}/health"))
    })
    .await;

    let agent_url = format!("http://127.0.0.1:{agent_port}");
    let mut agent = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_monstack"))
            // Prometheus runs here as a process: loopback registrations are what it reaches.
            .args(["agent", "--keep-loopback", "--etcd", &etcd_url, "--listen"])
            .arg(format!("127.0.0.1:{agent_port}"))
            .arg("--targets-dir")
            .arg(temp.path().join("targets"))
            .env("NO_COLOR", "1"),
        &temp.path().join("agent.log"),
    );
    agent
        .wait_until("the agent is ready", DEADLINE, || {
            ok(format!("{agent_url}/-/ready"))
        })
        .await;
    let sd = format!("{agent_url}/sd/etcd");
    let (status, content_type, body) = get(&sd).await.unwrap();
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (200, "application/json", "[]")
    );

    // Prometheus 3.5 with nothing but HTTP SD against the agent.
    let config = temp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
             scrape_configs:\n\
             - job_name: etcd-discovered\n  \
               http_sd_configs: [{{url: '{sd}', refresh_interval: 1s}}]\n"
        ),
    )
    .unwrap();
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let mut prom = ChildGuard::spawn(
        testsupport::prometheus_command(&prometheus, &config, &temp.path().join("tsdb"), prom_port)
            .arg("--scrape.discovery-reload-interval=1s"),
        &temp.path().join("prometheus.log"),
    );
    prom.wait_until("Prometheus is ready", DEADLINE, || {
        ok(format!("{prom_url}/-/ready"))
    })
    .await;

    // Two services: the agent's own /metrics (a target that is up), and one on another path.
    let project = Project::new().manifest(&format!(
        "etcd: {{port: {etcd_port}}}\ndiscovery: {{etcd: {{}}}}\ngrafana: false\n"
    ));
    let addr = format!("127.0.0.1:{agent_port}");
    let _agent_self = Registered::start(
        &project.path(),
        &["agent-self", &addr, "--id", "a1", "--label", "env=test"],
    );
    let mut elsewhere = Registered::start(
        &project.path(),
        &[
            "elsewhere",
            &addr,
            "--id",
            "e1",
            "--path",
            "/custom/metrics",
            "--ttl",
            "30s",
        ],
    );

    prom.wait_until(
        "Prometheus lists both registrations, the agent's own target up",
        DEADLINE,
        || async {
            let targets = targets(&prom_url, "etcd-discovered").await;
            let up = targets.iter().any(|t| {
                t["labels"]["service"] == "agent-self"
                    && t["labels"]["service_id"] == "a1"
                    && t["labels"]["env"] == "test"
                    && t["health"] == "up"
            });
            let elsewhere = targets.iter().any(|t| {
                t["labels"]["service"] == "elsewhere"
                    && t["scrapeUrl"] == format!("http://{addr}/custom/metrics")
            });
            up && elsewhere
        },
    )
    .await;
    // The endpoint has the target files' groups.
    let (_, _, body) = get(&sd).await.unwrap();
    let groups: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let file: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(target_path(&temp.path().join("targets"), "elsewhere.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(groups.contains(&file[0]), "{body}");

    // A registration that ends leaves Prometheus at its next refresh.
    elsewhere.stop();
    prom.wait_until(
        "the ended registration is no longer a target",
        DEADLINE,
        || async {
            let targets = targets(&prom_url, "etcd-discovered").await;
            !targets.is_empty()
                && targets
                    .iter()
                    .all(|t| t["labels"]["service"] == "agent-self")
        },
    )
    .await;
    assert!(agent.exited().is_none(), "the agent died:\n{}", agent.log());
}

#[tokio::test]
async fn an_agent_without_discovery_answers_404() {
    let port = free_port();
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("agent.yml"), "dingtalk: {}\n").unwrap();
    let mut agent = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_monstack"))
            .args(["agent", "--config"])
            .arg(temp.path().join("agent.yml"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}")),
        &temp.path().join("agent.log"),
    );
    let url = format!("http://127.0.0.1:{port}");
    agent
        .wait_until("the agent answers", DEADLINE, || {
            ok(format!("{url}/-/healthy"))
        })
        .await;
    let (status, _, body) = get(&format!("{url}/sd/etcd")).await.unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no etcd discovery"), "{body}");
}
