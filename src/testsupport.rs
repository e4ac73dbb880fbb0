//! Helpers for unit tests that run the real services (Prometheus, Alertmanager, ...) as child
//! processes: a free port, a guard that kills the child when the test ends (also when it panics),
//! the pinned binaries, and the one decision "skip, or fail in CI" when something is missing.

use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port free on every address a moment ago, and never one this process handed out
/// before (the kernel can give the same free port to two calls in a row, and a test that asked
/// for two ports then got one). The listener is dropped before returning, so another process
/// could take it in between; good enough for tests.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        // The wildcard address: a port free there is free on every address (a test listening
        // on Docker's bridge address holds a port 127.0.0.1 alone would call free).
        let port = TcpListener::bind("0.0.0.0:0")
            .and_then(|listener| listener.local_addr())
            .expect("binding 127.0.0.1:0 to pick a port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The one place that decides what a test does when something it needs is missing: print
/// `skipping: <reason>` and return `false`, or, with `MONSTACK_REQUIRE_ALL=1` (CI), fail.
/// The integration tests include this file too (`tests/support/mod.rs`), so unit and
/// integration tests decide the same way.
pub fn skip_or_fail(reason: &str) -> bool {
    if std::env::var("MONSTACK_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{reason}; MONSTACK_REQUIRE_ALL=1 forbids skipping");
    }
    eprintln!("skipping: {reason}");
    false
}

/// The versions the tests run: the ones the manifest pins by default (Prometheus 3.5,
/// Alertmanager 0.28, etcd 3.5, Pushgateway 1.11), the newest Alertmanager, and node_exporter
/// 1.11 and the blackbox exporter 0.28 (newer than the pinned images' 1.9 and 0.27), unpacked from
/// Debian's newer suites by `.ci/fetch-binaries` into its cache's `bin/`.
pub const PROMETHEUS: &str = "prometheus-3.5";
pub const PROMTOOL: &str = "promtool-3.5";
pub const ALERTMANAGER: &str = "alertmanager-0.28";
pub const AMTOOL: &str = "amtool-0.28";
pub const ALERTMANAGER_NEWEST: &str = "alertmanager-0.33";
pub const ETCD: &str = "etcd-3.5";
pub const PUSHGATEWAY: &str = "pushgateway-1.11";
/// Debian's kustomize (any version: the export's kustomization uses only `resources`).
pub const KUSTOMIZE: &str = "kustomize";
/// Debian sid's `prometheus-node-exporter` and `prometheus-blackbox-exporter`.
pub const NODE_EXPORTER: &str = "node_exporter-1.11";
pub const BLACKBOX_EXPORTER: &str = "blackbox_exporter-0.28";
/// Debian sid's VictoriaMetrics single-node: a remote_write receiver (tests/remote_write.rs), and
/// a scraper that reads Prometheus' `scrape_configs` and, unlike Debian's Prometheus builds, has
/// Consul service discovery (tests/consul.rs).
pub const VICTORIA_METRICS: &str = "victoria-metrics";
/// Debian sid's InfluxDB 1.x server (no `influx` CLI in the package).
pub const INFLUXD: &str = "influxd-1";

/// `.ci/fetch-binaries`' cache: `MONSTACK_BIN_CACHE`, else `~/.cache/monstack-ci`.
pub fn binary_cache() -> PathBuf {
    match std::env::var_os("MONSTACK_BIN_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/monstack-ci"),
    }
}

/// A pinned binary (one of the names above), resolved to its file in the unpacked package, or
/// `None` after [`skip_or_fail`] says how to get it.
pub fn pinned(name: &str) -> Option<PathBuf> {
    let link = binary_cache().join("bin").join(name);
    match std::fs::canonicalize(&link) {
        Ok(path) if path.is_file() => Some(path),
        _ => {
            skip_or_fail(&format!(
                "{name} not found at {} (run `bash .ci/fetch-binaries`)",
                link.display()
            ));
            None
        }
    }
}

/// The Python virtualenv `.ci/run` installs the validators into (`kubernetes-validate`,
/// `check-jsonschema`): `MONSTACK_CI_VENV`, else `target/ci-venv` in the source tree.
pub fn ci_venv() -> PathBuf {
    match std::env::var_os("MONSTACK_CI_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv"),
    }
}

/// A program of that virtualenv (`kubernetes-validate`), or `None` after [`skip_or_fail`] says
/// how to install it.
pub fn venv_tool(name: &str) -> Option<PathBuf> {
    let path = ci_venv().join("bin").join(name);
    if path.is_file() {
        return Some(path);
    }
    skip_or_fail(&format!(
        "{name} not found at {} (`bash .ci/run` installs it: python3 -m venv target/ci-venv && \
         target/ci-venv/bin/pip install kubernetes-validate check-jsonschema)",
        path.display()
    ));
    None
}

/// The root of the unpacked package a pinned binary comes from (`.../usr/bin/x` -> `...`), for
/// the files it reads beside the binary (Alertmanager's templates).
pub fn package_root(binary: &Path) -> PathBuf {
    binary
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A child process that is killed and reaped when the guard is dropped. Its stdout and stderr go
/// to a log file, shown by [`ChildGuard::log`] when a test needs to explain a failure.
pub struct ChildGuard {
    child: Child,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Starts `command` with its output appended to `log_path`.
    pub fn spawn(command: &mut Command, log_path: &Path) -> ChildGuard {
        let log = File::create(log_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
        let log_err = log.try_clone().expect("duplicating the log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", command.get_program()));
        ChildGuard {
            child,
            log_path: log_path.to_path_buf(),
        }
    }

    /// What the child has written so far.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `Some(description)` once the child has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown state ({e})")),
        }
    }

    /// Polls `check` every 100 ms until it returns true. Panics with the child's log if the
    /// child exits or `deadline` passes first. A wait for a service to start, not a timing
    /// assertion: the deadline is generous.
    pub async fn wait_until<F, Fut>(&mut self, what: &str, deadline: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let start = Instant::now();
        loop {
            if check().await {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{what}: the process exited ({status}); its log:\n{}",
                    self.log()
                );
            }
            if start.elapsed() > deadline {
                panic!(
                    "{what}: still not done after {deadline:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (not a timing assertion) until `check` holds, polling every 200 ms, or panics naming
/// `what` after `limit`. The one poll loop of the integration tests.
pub async fn eventually<Fut: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Fut,
) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {limit:?} waiting for: {what}");
}

/// Whether `url` answers a GET with a 2xx status (a readiness probe for [`eventually`]).
pub async fn answers(url: String) -> bool {
    matches!(reqwest::get(url).await, Ok(r) if r.status().is_success())
}

/// A Prometheus process's command: `config`, its TSDB in `tsdb`, listening on 127.0.0.1:`port`.
/// Callers add what their test needs (`--scrape.discovery-reload-interval=1s`, the receiver)
/// and spawn it through [`ChildGuard::spawn`].
pub fn prometheus_command(binary: &Path, config: &Path, tsdb: &Path, port: u16) -> Command {
    let mut command = Command::new(binary);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    command
}
