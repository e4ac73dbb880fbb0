//! Benchmark: discovery from an existing etcd cluster (`discovery.etcd.endpoints`): three etcd
//! 3.5 members on loopback with client TLS and auth (the test cluster of tests/support).
//! - put -> target file latency with the bridge watching through TLS: 200 new services, one at
//!   a time (the goal: p99 under 100 ms, as against the stack's own etcd);
//! - failover: the member the agent watches is killed, a registration is put through another
//!   member at once; the time from the kill to its target file, 5 rounds (the member is started
//!   again between rounds).
//!
//! A report, not a test: it exits 0 whether or not the goal is met. Without etcd it says why.
//! Run with `cargo bench --bench etcd_cluster`.

#[path = "../src/testsupport.rs"]
#[allow(dead_code)]
mod testsupport;

#[path = "../tests/support/etcd_cluster.rs"]
#[allow(dead_code)]
mod etcd_cluster;

use std::path::Path;
use std::time::{Duration, Instant};

const PUTS: usize = 200;
const FAILOVERS: usize = 5;
const GOAL_P99: Duration = Duration::from_millis(100);

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MONSTACK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    println!("monstack etcd cluster benchmark (3 members, TLS, auth)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    runtime.block_on(run());
}

/// Waits (polling every millisecond) until `file` exists in its shard of `dir`; the time it took.
async fn until_file(dir: &Path, file: &str, since: Instant) -> Duration {
    let path = monstack::agent::discovery::target_path(dir, file);
    while !path.exists() {
        if since.elapsed() > Duration::from_secs(60) {
            panic!("{file} never appeared");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    since.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

async fn run() {
    let Some(mut cluster) = etcd_cluster::TestCluster::start(300).await else {
        println!("skipping: the benchmark needs etcd-3.5 and etcdctl-3.5");
        return;
    };
    let targets = cluster.dir.path().join("targets");
    let agent = cluster.client(&[0, 1, 2]);
    let admin = cluster.client(&[2, 1, 0]);
    let bridge = etcd_cluster::RunningBridge::start(agent.clone(), targets.clone());
    admin
        .put("/service/warm/1", b"10.0.0.1:80", None)
        .await
        .unwrap();
    until_file(&targets, "warm.json", Instant::now()).await;

    let mut latencies = Vec::with_capacity(PUTS);
    for i in 0..PUTS {
        let start = Instant::now();
        admin
            .put(&format!("/service/s{i}/1"), b"10.0.0.2:80", None)
            .await
            .unwrap();
        latencies.push(until_file(&targets, &format!("s{i}.json"), start).await);
    }
    latencies.sort();
    let p99 = percentile(&latencies, 0.99);
    println!(
        "put -> target file over TLS+auth, {PUTS} puts: p50 {}, p90 {}, p99 {}, max {} (goal p99 < {}: {})",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(p99),
        ms(*latencies.last().unwrap()),
        ms(GOAL_P99),
        if p99 < GOAL_P99 { "met" } else { "MISSED" }
    );

    let mut failovers = Vec::new();
    for round in 0..FAILOVERS {
        let member = cluster.member_at(agent.base_url());
        let killed = Instant::now();
        cluster.kill(member);
        admin
            .put(&format!("/service/f{round}/1"), b"10.0.0.3:80", None)
            .await
            .unwrap();
        let acknowledged = killed.elapsed();
        let seen = until_file(&targets, &format!("f{round}.json"), killed).await;
        println!(
            "  round {round}: killed member {member}; put acknowledged after {}, in the files after {}",
            ms(acknowledged),
            ms(seen)
        );
        failovers.push(seen);
        cluster.restart(member).await;
    }
    failovers.sort();
    println!(
        "member killed -> next registration in the target files, {FAILOVERS} rounds: median {}, max {}",
        ms(failovers[failovers.len() / 2]),
        ms(*failovers.last().unwrap())
    );
    let _ = bridge.stop().await;
}
