//! Discovery from an existing etcd cluster (`discovery.etcd.endpoints`): three etcd 3.5
//! members with client TLS and auth, the agent's bridge and `register`'s keep-alive using them,
//! a member dying under them and their token expiring.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use monstack::clients::etcd::Etcd;

use crate::support::etcd_cluster::{RunningBridge, TestCluster};

const TOKEN_TTL_SECS: u32 = 2;
/// Prometheus' file_sd floor (`--scrape.discovery-reload-interval`, 5 s): a registration made
/// after a member died must reach the files within twice that.
const TWICE_THE_DISCOVERY_FLOOR: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);

/// `(service, id)` of every target in the files of `dir`'s shard directories.
fn file_targets(dir: &Path) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let entries = monstack::layout::etcd_target_shards()
        .filter_map(|shard| std::fs::read_dir(dir.join(shard)).ok())
        .flatten();
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let groups: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
        for group in groups {
            found.insert((
                group["labels"]["service"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                group["labels"]["service_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
    }
    found
}

/// `(service, id)` of every registration in etcd.
async fn etcd_targets(etcd: &Etcd) -> BTreeSet<(String, String)> {
    etcd.range_prefix("/service/")
        .await
        .unwrap()
        .kvs
        .iter()
        .filter_map(|kv| {
            let rest = kv.key.strip_prefix("/service/")?;
            let (service, id) = rest.split_once('/')?;
            Some((service.to_string(), id.to_string()))
        })
        .collect()
}

async fn wait_for(what: &str, limit: Duration, cluster: &TestCluster, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > limit {
            panic!("{what}: not after {limit:?}\n{}", cluster.logs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn register_value(host: &str, port: u16) -> Vec<u8> {
    format!(r#"{{"host":"{host}","port":{port}}}"#).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_follows_a_tls_auth_cluster_through_a_dead_member_and_an_expired_token() {
    let Some(mut cluster) = TestCluster::start(TOKEN_TTL_SECS).await else {
        return;
    };
    let targets = cluster.dir.path().join("targets");
    // The test's own client lists the members the other way round, so it keeps writing
    // through a member the agent is not talking to.
    let admin = cluster.client(&[2, 1, 0]);
    for (name, id) in [("api", "1"), ("api", "2"), ("web", "1")] {
        admin
            .put(
                &format!("/service/{name}/{id}"),
                &register_value("10.0.0.1", 8080),
                None,
            )
            .await
            .unwrap();
    }
    let agent = cluster.client(&[0, 1, 2]);
    let bridge = RunningBridge::start(agent.clone(), targets.clone());
    let metrics = bridge.metrics.clone();
    wait_for("the first listing", WAIT, &cluster, || {
        file_targets(&targets).len() == 3
    })
    .await;

    // The member the agent talks to dies.
    let first = cluster.member_at(agent.base_url());
    assert_eq!(first, 0);
    cluster.kill(first);
    let killed = Instant::now();
    admin
        .put("/service/late/1", &register_value("10.0.0.2", 80), None)
        .await
        .unwrap();
    wait_for(
        "a registration made after the agent's member died",
        TWICE_THE_DISCOVERY_FLOOR,
        &cluster,
        || file_targets(&targets).contains(&("late".into(), "1".into())),
    )
    .await;
    eprintln!(
        "member killed -> next registration in the files: {:?}",
        killed.elapsed()
    );
    assert_ne!(
        cluster.member_at(agent.base_url()),
        first,
        "the agent moved on"
    );
    assert_eq!(
        file_targets(&targets),
        etcd_targets(&admin).await,
        "nothing lost"
    );

    // Both clients' tokens expire while nothing uses them (the open watch does not).
    cluster.restart(first).await;
    tokio::time::sleep(Duration::from_secs(u64::from(TOKEN_TTL_SECS) + 2)).await;
    admin.delete("/service/api/2").await.unwrap();
    wait_for("a delete after the tokens expired", WAIT, &cluster, || {
        !file_targets(&targets).contains(&("api".into(), "2".into()))
    })
    .await;

    // The agent's second member dies: its new watch starts with an expired token, which etcd
    // cancels; the agent authenticates again and resumes from its revision elsewhere.
    let second = cluster.member_at(agent.base_url());
    let restarts = metrics.watch_restarts.load(Ordering::Relaxed);
    cluster.kill(second);
    admin
        .put("/service/later/1", &register_value("10.0.0.3", 80), None)
        .await
        .unwrap();
    wait_for(
        "a registration after the second failover",
        TWICE_THE_DISCOVERY_FLOOR,
        &cluster,
        || file_targets(&targets).contains(&("later".into(), "1".into())),
    )
    .await;
    assert!(metrics.watch_restarts.load(Ordering::Relaxed) > restarts);
    assert_eq!(
        file_targets(&targets),
        etcd_targets(&admin).await,
        "nothing lost"
    );
    bridge.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_keeps_its_lease_on_a_tls_auth_cluster_when_its_member_dies() {
    let Some(mut cluster) = TestCluster::start(TOKEN_TTL_SECS).await else {
        return;
    };
    let admin = cluster.client(&[2]);
    let etcd = cluster.client(&[0, 1, 2]);
    let printer = monstack::output::Printer::new(true, monstack::output::ColorChoice::Never);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (leased_tx, leased_rx) = tokio::sync::oneshot::channel::<i64>();
    let key = "/service/reg/1";
    let register = {
        let etcd = etcd.clone();
        tokio::spawn(async move {
            monstack::project::register::keep_registered(
                &etcd,
                key,
                &register_value("10.0.0.9", 9000),
                2,
                &printer,
                async move {
                    let _ = stopped.await;
                },
                |lease| {
                    let _ = leased_tx.send(lease);
                },
            )
            .await
        })
    };
    let lease = tokio::time::timeout(WAIT, leased_rx)
        .await
        .unwrap()
        .unwrap();
    cluster.kill(cluster.member_at(etcd.base_url()));
    // Several TTLs (and a token expiry) later, the key is there, on the same lease.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let listed = admin.range_prefix("/service/").await.unwrap();
    assert_eq!(listed.kvs.len(), 1, "{}", cluster.logs());
    assert_eq!(
        (listed.kvs[0].key.as_str(), listed.kvs[0].lease),
        (key, lease)
    );
    assert!(admin.time_to_live(lease).await.unwrap().is_some());
    // Stopping revokes the lease: the key goes at once.
    stop.send(()).unwrap();
    register.await.unwrap().unwrap();
    assert!(admin
        .range_prefix("/service/")
        .await
        .unwrap()
        .kvs
        .is_empty());
}

/// The manifest of a host that uses an existing cluster (the README's snippet): it validates and
/// renders with the stack's etcd left out, and neither the password nor the key shows up in
/// the output at any verbosity or in `.monstack/`.
pub const EXISTING_CLUSTER_MANIFEST: &str = "\
project: shop
discovery:
  etcd:
    endpoints:
      - https://10.0.0.11:2379
      - https://10.0.0.12:2379
      - https://10.0.0.13:2379
    tls:
      ca: etcd/ca.pem
      cert: etcd/monstack.pem
      key: etcd/monstack-key.pem
    username: monstack
    password_file: etcd/password
";

#[test]
fn a_manifest_naming_an_existing_cluster_validates_renders_and_keeps_its_secrets() {
    let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
    let password = "etcd-pass-Zq81";
    let project = crate::support::Project::new()
        .file(
            "etcd/ca.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .file(
            "etcd/monstack.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .file("etcd/monstack-key.pem", key)
        .file("etcd/password", &format!("{password}\n"))
        .manifest(EXISTING_CLUSTER_MANIFEST);
    let validated = project.run(&["-vv", "validate"]);
    validated.success();
    let rendered = project.run(&["-vv", "render"]);
    rendered.success();
    for run in [validated, rendered] {
        for text in [&run.stdout, &run.stderr] {
            assert!(
                !text.contains(password) && !text.contains("MIGHAgEA"),
                "{text}"
            );
        }
    }
    let prometheus = project.read(".monstack/prometheus/prometheus.yml");
    assert!(prometheus.contains("etcd-discovered"), "{prometheus}");
    assert!(
        !prometheus.contains("job_name: etcd\n"),
        "no scrape of a stack etcd"
    );
    let rendered = std::process::Command::new("grep")
        .args(["-rl", password, ".monstack"])
        .current_dir(project.path())
        .output()
        .unwrap();
    assert!(
        rendered.stdout.is_empty(),
        "the password was copied into .monstack"
    );
}

/// The services Prometheus lists in the pool `etcd-discovered`.
async fn prometheus_services(prom_url: &str) -> BTreeSet<String> {
    let Ok(response) = reqwest::get(format!("{prom_url}/api/v1/targets")).await else {
        return BTreeSet::new();
    };
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    body["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["scrapePool"] == "etcd-discovered")
        .filter_map(|t| t["labels"]["service"].as_str().map(String::from))
        .collect()
}

/// The real `monstack agent` with the cluster flags (as the agent container gets them), and
/// Prometheus 3.5 reading its files: registrations made before and after the agent's member
/// died are listed by Prometheus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_lists_what_the_agent_reads_from_the_cluster_across_a_failover() {
    use crate::support::testsupport::{answers, free_port, pinned, ChildGuard, PROMETHEUS};
    let Some(prometheus) = pinned(PROMETHEUS) else {
        return;
    };
    let Some(mut cluster) = TestCluster::start(TOKEN_TTL_SECS).await else {
        return;
    };
    let dir = cluster.dir.path().to_path_buf();
    let admin = cluster.client(&[2, 1, 0]);
    admin
        .put("/service/before/1", &register_value("127.0.0.1", 1), None)
        .await
        .unwrap();
    let agent_port = free_port();
    let mut agent = ChildGuard::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_monstack"))
            .args(["agent", "--keep-loopback", "--etcd"])
            .arg(cluster.endpoints().join(","))
            .arg("--etcd-ca")
            .arg(&cluster.ca)
            .arg("--etcd-cert")
            .arg(&cluster.cert)
            .arg("--etcd-key")
            .arg(&cluster.key)
            .args(["--etcd-user", "root", "--etcd-password-file"])
            .arg(&cluster.password_file)
            .args(["--etcd-progress-interval", "1s", "--listen"])
            .arg(format!("127.0.0.1:{agent_port}"))
            .arg("--targets-dir")
            .arg(dir.join("targets"))
            .env("NO_COLOR", "1")
            .env("MONSTACK_LOG", "debug"),
        &dir.join("agent.log"),
    );
    agent
        .wait_until("the agent's first listing", WAIT, || {
            answers(format!("http://127.0.0.1:{agent_port}/-/ready"))
        })
        .await;
    let config = dir.join("prometheus.yml");
    // One file_sd config per shard directory, as `render` writes them.
    let shards: Vec<String> = monstack::layout::etcd_target_shards()
        .map(|shard| {
            format!(
                "{{files: ['{}/{shard}/*.json']}}",
                dir.join("targets").display()
            )
        })
        .collect();
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
             scrape_configs:\n\
             - job_name: etcd-discovered\n  \
               file_sd_configs: [{}]\n",
            shards.join(", ")
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let mut prom = ChildGuard::spawn(
        crate::support::testsupport::prometheus_command(
            &prometheus,
            &config,
            &dir.join("tsdb"),
            prom_port,
        )
        .arg("--scrape.discovery-reload-interval=1s"),
        &dir.join("prometheus.log"),
    );
    prom.wait_until(
        "Prometheus lists the registration made before",
        WAIT,
        || {
            let prom_url = prom_url.clone();
            async move { prometheus_services(&prom_url).await.contains("before") }
        },
    )
    .await;

    // The agent talks to the first endpoint; it dies.
    cluster.kill(0);
    admin
        .put("/service/after/1", &register_value("127.0.0.1", 2), None)
        .await
        .unwrap();
    prom.wait_until("Prometheus lists the registration made after", WAIT, || {
        let prom_url = prom_url.clone();
        async move {
            let services = prometheus_services(&prom_url).await;
            services.contains("before") && services.contains("after")
        }
    })
    .await;
    let log = agent.log();
    assert!(log.contains("switching to"), "{log}");
    assert!(
        !log.contains(crate::support::etcd_cluster::PASSWORD),
        "{log}"
    );
}
