//! The discovery agent: service registrations in etcd become Prometheus file_sd target files,
//! one `<shard>/<service>.json` per service, kept up to date by a watch.
//!
//! There is no standard registration format; we read the common convention (key
//! `/service/{name}/{id}`, a JSON value with `host`, `port` and `routes`) and plain `host:port`.
//! Anything else is skipped with a warning naming the key, never fatal.
//!
//! The files are what Prometheus scrapes, so the agent errs on the side of keeping them: when
//! etcd cannot be reached the files stay as they are (an outage of the registry is not an outage
//! of the services), and every write is atomic, so Prometheus never reads half a file.
//!
//! This file holds the bridge itself: the listing, the watch and its retries, and the agent's
//! counters about them. Reading one registration is in `registration.rs`, the target files in
//! `targets.rs`.

mod http_sd;
mod registration;
mod targets;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use futures_util::StreamExt;

use crate::clients::etcd::{Etcd, WatchError, WatchEvent};
pub use http_sd::Published;
pub use registration::{parse_registration, set_rewrite_loopback, Registration};
pub use targets::{file_name, target_path, Registry};
use targets::{remove_file, write_all, write_if_changed};

/// Where registrations live by convention.
pub const DEFAULT_PREFIX: &str = "/service/";

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A registration that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub key: String,
    pub reason: String,
}

/// What [`sync_once`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The etcd revision the files reflect.
    pub revision: i64,
    pub services: usize,
    pub targets: usize,
    pub skipped: Vec<Skipped>,
    /// File names written (those whose contents changed).
    pub written: Vec<String>,
    /// File names removed: services that no longer exist.
    pub removed: Vec<String>,
}

/// Lists the registrations under `prefix` once and brings the target files in `dir` in line:
/// writes changed files atomically into their shards and removes the files of services that
/// are gone (and those of the layout before the shards).
pub async fn sync_once(etcd: &Etcd, prefix: &str, dir: &Path) -> Result<SyncReport> {
    let (registry, revision, skipped) = list(etcd, prefix).await?;
    let (written, removed) = write_all(dir, &registry.files())?;
    Ok(SyncReport {
        revision,
        services: registry.services(),
        targets: registry.targets(),
        skipped,
        written,
        removed,
    })
}

/// Reads every registration under `prefix`; malformed ones are logged and skipped.
async fn list(etcd: &Etcd, prefix: &str) -> Result<(Registry, i64, Vec<Skipped>)> {
    let listed = etcd.range_prefix(prefix).await?;
    let mut registry = Registry::default();
    let mut skipped = Vec::new();
    let mut entries = Vec::new();
    for kv in listed.kvs {
        match parse_registration(&kv.key, &kv.value, prefix) {
            Ok(registration) => entries.push((kv.key, registration)),
            Err(reason) => {
                tracing::warn!("skipping the registration at {}: {reason}", kv.key);
                skipped.push(Skipped {
                    key: kv.key,
                    reason,
                });
            }
        }
    }
    registry.replace_all(entries);
    Ok((registry, listed.revision, skipped))
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// What the agent exposes about itself, updated as it runs.
#[derive(Debug, Default)]
pub struct BridgeMetrics {
    /// Instances currently in the target files.
    pub targets: AtomicU64,
    /// Services currently with a target file.
    pub services: AtomicU64,
    /// Watches that ended (connection lost, compaction, ...) and were started again.
    pub watch_restarts: AtomicU64,
    /// Unix time (seconds) when the files last matched etcd as far as the agent knows.
    pub last_sync_unix: AtomicU64,
    /// Put and delete events applied from the watch.
    pub events: AtomicU64,
    /// Registrations skipped because they could not be read (counted each time one is seen).
    pub skipped_registrations: AtomicU64,
    /// Not a metric: the registry as last published, which `GET /sd/etcd` answers with. Here
    /// because this is what the bridge already shares with the HTTP handlers.
    pub published: Published,
}

impl BridgeMetrics {
    /// The Prometheus text exposition format.
    pub fn render_prometheus_text(&self) -> String {
        let metrics: [(&str, &str, &str, &AtomicU64); 6] = [
            (
                "monstack_agent_targets",
                "gauge",
                "Targets currently written to file_sd files.",
                &self.targets,
            ),
            (
                "monstack_agent_services",
                "gauge",
                "Services currently with a file_sd file.",
                &self.services,
            ),
            (
                "monstack_agent_watch_restarts_total",
                "counter",
                "Times the etcd watch ended and was started again.",
                &self.watch_restarts,
            ),
            (
                "monstack_agent_last_sync_timestamp_seconds",
                "gauge",
                "Unix time when the files last matched etcd.",
                &self.last_sync_unix,
            ),
            (
                "monstack_agent_events_total",
                "counter",
                "Put and delete events applied from the etcd watch.",
                &self.events,
            ),
            (
                "monstack_agent_skipped_registrations_total",
                "counter",
                "Registrations skipped because their key or value could not be read.",
                &self.skipped_registrations,
            ),
        ];
        let mut text = String::new();
        for (name, kind, help, value) in metrics {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        text
    }

    fn synced_now(&self, registry: &Registry) {
        self.targets
            .store(registry.targets() as u64, Ordering::Relaxed);
        self.services
            .store(registry.services() as u64, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.last_sync_unix.store(now, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// The bridge

/// Keeps the target files in `dir` in line with the registrations under `prefix`: list, write,
/// watch from the listed revision + 1, rewrite the file of each service that changes.
pub struct Bridge {
    etcd: Etcd,
    prefix: String,
    dir: PathBuf,
    metrics: Arc<BridgeMetrics>,
    registry: Registry,
    /// The last revision reflected in the registry.
    revision: i64,
}

/// Why a watch ended, for the loop that starts the next one.
enum WatchEnd {
    /// Etcd or the connection failed: resume from `revision + 1`.
    Disconnected(anyhow::Error),
    /// History we need is gone: list again.
    Compacted(i64),
    /// A file could not be written: list again (after a pause) and rewrite everything.
    Files(anyhow::Error),
}

/// Runs a [`Bridge`] until `shutdown` completes.
pub async fn run_bridge(
    etcd: Etcd,
    prefix: impl Into<String>,
    dir: impl Into<PathBuf>,
    metrics: Arc<BridgeMetrics>,
    shutdown: impl Future<Output = ()>,
) {
    Bridge::new(etcd, prefix, dir, metrics).run(shutdown).await
}

impl Bridge {
    pub fn new(
        etcd: Etcd,
        prefix: impl Into<String>,
        dir: impl Into<PathBuf>,
        metrics: Arc<BridgeMetrics>,
    ) -> Bridge {
        Bridge {
            etcd,
            prefix: prefix.into(),
            dir: dir.into(),
            metrics,
            registry: Registry::default(),
            revision: 0,
        }
    }

    /// Runs until `shutdown` completes. Nothing here is fatal: etcd outages and file errors are
    /// logged and retried with backoff (100 ms doubling to 5 s), and the files are kept as they
    /// are meanwhile.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::select! {
            _ = shutdown => {}
            _ = self.run_forever() => {}
        }
    }

    async fn run_forever(&mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut need_list = true;
        let mut compactions_in_a_row = 0;
        // Watches that broke in a row: the next member is tried at once, the backoff is for a
        // round of members that all failed.
        let mut members_tried = 0;
        loop {
            if need_list {
                match self.resync().await {
                    Ok(()) => {
                        need_list = false;
                        backoff = BACKOFF_MIN;
                    }
                    Err(e) => {
                        tracing::warn!("{e:#}; trying again in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
            let started = Instant::now();
            let end = self.watch().await;
            self.metrics.watch_restarts.fetch_add(1, Ordering::Relaxed);
            if started.elapsed() > BACKOFF_MAX {
                // The watch worked for a while: this is a new problem, start the backoff over.
                backoff = BACKOFF_MIN;
                members_tried = 0;
            }
            match end {
                WatchEnd::Compacted(compact_revision) => {
                    tracing::info!(
                        "etcd compacted its history up to revision {compact_revision}, past \
                         revision {}: listing {} again",
                        self.revision,
                        self.prefix
                    );
                    need_list = true;
                    compactions_in_a_row += 1;
                    if compactions_in_a_row == 1 {
                        continue;
                    }
                }
                WatchEnd::Disconnected(e) => {
                    compactions_in_a_row = 0;
                    members_tried += 1;
                    if members_tried < self.etcd.endpoint_count() {
                        tracing::warn!(
                            "{e:#}; keeping the target files as they are, resuming from revision \
                             {} on {}",
                            self.revision + 1,
                            self.etcd.base_url()
                        );
                        continue;
                    }
                    members_tried = 0;
                    tracing::warn!(
                        "{e:#}; keeping the target files as they are, resuming from revision {} \
                         in {backoff:?}",
                        self.revision + 1
                    );
                }
                WatchEnd::Files(e) => {
                    compactions_in_a_row = 0;
                    need_list = true;
                    tracing::error!("{e:#}; rewriting all target files in {backoff:?}");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Lists everything again and rewrites the files, removing those of vanished services.
    async fn resync(&mut self) -> Result<()> {
        let (registry, revision, skipped) = list(&self.etcd, &self.prefix).await?;
        self.metrics
            .skipped_registrations
            .fetch_add(skipped.len() as u64, Ordering::Relaxed);
        write_all(&self.dir, &registry.files())?;
        self.registry = registry;
        self.metrics.published.replace(&self.registry);
        self.revision = revision;
        self.metrics.synced_now(&self.registry);
        tracing::info!(
            "{} targets of {} services under {} at revision {revision}",
            self.registry.targets(),
            self.registry.services(),
            self.prefix
        );
        Ok(())
    }

    /// Watches from `self.revision + 1` and applies events until the watch ends.
    async fn watch(&mut self) -> WatchEnd {
        let stream = self.etcd.watch_prefix(&self.prefix, self.revision + 1);
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(WatchEvent::Progress { revision }) => {
                    self.revision = self.revision.max(revision);
                    self.metrics.synced_now(&self.registry);
                }
                Ok(event) => {
                    if let Err(e) = self.apply(event) {
                        return WatchEnd::Files(e);
                    }
                }
                Err(WatchError::Compacted { compact_revision }) => {
                    return WatchEnd::Compacted(compact_revision)
                }
                Err(e) => return WatchEnd::Disconnected(e.into()),
            }
        }
        WatchEnd::Disconnected(anyhow::anyhow!("the etcd watch ended"))
    }

    /// Applies one put or delete and rewrites the file of the service it touched.
    fn apply(&mut self, event: WatchEvent) -> Result<()> {
        let key = match &event {
            WatchEvent::Put(kv) => kv.key.clone(),
            WatchEvent::Delete { key, .. } => key.clone(),
            WatchEvent::Progress { .. } => return Ok(()),
        };
        let (touched, mod_revision) = match event {
            WatchEvent::Put(kv) => {
                let touched = match parse_registration(&kv.key, &kv.value, &self.prefix) {
                    Ok(registration) => {
                        let file = file_name(&registration.name);
                        self.registry
                            .apply_put(&kv.key, registration)
                            .then_some(file)
                    }
                    Err(reason) => {
                        tracing::warn!("skipping the registration at {}: {reason}", kv.key);
                        self.metrics
                            .skipped_registrations
                            .fetch_add(1, Ordering::Relaxed);
                        // What was registered there before no longer holds.
                        self.registry
                            .apply_delete(&kv.key)
                            .map(|old| file_name(&old.name))
                    }
                };
                (touched, kv.mod_revision)
            }
            WatchEvent::Delete { key, mod_revision } => (
                self.registry
                    .apply_delete(&key)
                    .map(|old| file_name(&old.name)),
                mod_revision,
            ),
            WatchEvent::Progress { .. } => return Ok(()),
        };
        self.metrics.events.fetch_add(1, Ordering::Relaxed);
        if let Some(file) = touched {
            match self.registry.file(&file) {
                Some(contents) => {
                    write_if_changed(&self.dir, &file, &contents)?;
                }
                None => remove_file(&target_path(&self.dir, &file))?,
            }
            self.metrics.published.mirror(&key, self.registry.get(&key));
        }
        self.revision = self.revision.max(mod_revision);
        self.metrics.synced_now(&self.registry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::etcd::testing::TestEtcd;
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;
    use tokio::net::{TcpListener, TcpStream};

    const P: &str = "/service/";
    const WAIT: Duration = Duration::from_secs(30);

    #[test]
    fn metrics_render_in_the_text_format() {
        let metrics = BridgeMetrics::default();
        metrics.targets.store(3, Ordering::Relaxed);
        metrics.watch_restarts.store(2, Ordering::Relaxed);
        let text = metrics.render_prometheus_text();
        assert!(text.contains(
            "# HELP monstack_agent_targets Targets currently written to file_sd files.\n\
             # TYPE monstack_agent_targets gauge\nmonstack_agent_targets 3\n"
        ));
        assert!(text.contains(
            "# TYPE monstack_agent_watch_restarts_total counter\n\
             monstack_agent_watch_restarts_total 2\n"
        ));
        for name in [
            "monstack_agent_services 0",
            "monstack_agent_last_sync_timestamp_seconds 0",
            "monstack_agent_events_total 0",
            "monstack_agent_skipped_registrations_total 0",
        ] {
            assert!(text.contains(&format!("\n{name}\n")), "{name} in\n{text}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // With a real etcd

    /// The files under `dir`: a target file in its shard by its name, anything else (a temp
    /// file, a file out of place) by its path relative to `dir` -> contents.
    fn read_files(dir: &Path) -> BTreeMap<String, String> {
        fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.map(|e| e.unwrap()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let relative = format!("{prefix}{name}");
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), &format!("{relative}/"), out);
                } else if target_path(Path::new(""), &name) == Path::new(&relative) {
                    out.insert(
                        name,
                        std::fs::read_to_string(entry.path()).unwrap_or_default(),
                    );
                } else {
                    out.insert(
                        relative,
                        std::fs::read_to_string(entry.path()).unwrap_or_default(),
                    );
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, "", &mut out);
        out
    }

    /// The targets of one file as (service_id, address) pairs.
    fn targets_of(dir: &Path, file: &str) -> Option<Vec<(String, String)>> {
        let text = std::fs::read_to_string(target_path(dir, file)).ok()?;
        let groups: Vec<serde_json::Value> = serde_json::from_str(&text).ok()?;
        Some(
            groups
                .iter()
                .map(|g| {
                    (
                        g["labels"]["service_id"].as_str().unwrap().to_string(),
                        g["targets"][0].as_str().unwrap().to_string(),
                    )
                })
                .collect(),
        )
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    /// Waits (polling) until `check` holds; panics with `what`, the files and etcd's log.
    async fn wait_until(what: &str, dir: &Path, test_etcd: &TestEtcd, check: impl Fn() -> bool) {
        let start = Instant::now();
        while !check() {
            if start.elapsed() > WAIT {
                panic!(
                    "{what}: not after {WAIT:?}; files: {:#?}\netcd log:\n{}",
                    read_files(dir),
                    test_etcd.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a bridge in a task; dropping or sending on the returned sender stops it.
    fn spawn_bridge(
        etcd: Etcd,
        dir: &Path,
    ) -> (
        Arc<BridgeMetrics>,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let metrics = Arc::new(BridgeMetrics::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_bridge(
            etcd,
            P,
            dir.to_path_buf(),
            metrics.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        (metrics, stop, task)
    }

    fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn real_etcd_sync_once_writes_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let Some(test_etcd) = TestEtcd::start(&dir.path().join("etcd"), None).await else {
            return;
        };
        let etcd = &test_etcd.etcd;
        let targets = dir.path().join("targets");
        std::fs::create_dir_all(targets.join("0f")).unwrap();
        std::fs::write(targets.join("0f/gone.json"), "[]").unwrap();
        std::fs::write(targets.join("README"), "not ours").unwrap();
        etcd.put("/service/monitor/1", br#"{"host":"m1","port":8080}"#, None)
            .await
            .unwrap();
        etcd.put("/service/monitor/2", b"m2:8080", None)
            .await
            .unwrap();
        etcd.put("/service/broken/1", b"no port here", None)
            .await
            .unwrap();
        let last = etcd.put("/service/short", b"m3:1", None).await.unwrap();
        let report = sync_once(etcd, P, &targets).await.unwrap();
        assert_eq!(report.revision, last);
        assert_eq!((report.services, report.targets), (1, 2));
        assert_eq!(report.written, ["monitor.json"]);
        assert_eq!(report.removed, ["gone.json"]);
        let skipped: Vec<&str> = report.skipped.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(skipped, ["/service/broken/1", "/service/short"]);
        assert_eq!(
            targets_of(&targets, "monitor.json"),
            pairs(&[("1", "m1:8080"), ("2", "m2:8080")])
        );
        assert!(targets.join("README").exists());
        // Unchanged files are not rewritten.
        let again = sync_once(etcd, P, &targets).await.unwrap();
        assert!(
            again.written.is_empty() && again.removed.is_empty(),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn real_etcd_bridge_follows_puts_deletes_and_lease_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let Some(test_etcd) = TestEtcd::start(&dir.path().join("etcd"), None).await else {
            return;
        };
        let etcd = test_etcd.etcd.clone();
        let targets = dir.path().join("targets");
        etcd.put("/service/monitor/1", br#"{"host":"m1","port":8080}"#, None)
            .await
            .unwrap();
        let (metrics, stop, task) = spawn_bridge(etcd.clone(), &targets);
        let monitor = || targets_of(&targets, "monitor.json");
        wait_until("the listed instance", &targets, &test_etcd, || {
            monitor() == pairs(&[("1", "m1:8080")])
        })
        .await;

        // A second instance, from the watch.
        let value = r#"{"id":"2","name":"monitor","host":"m2","port":8080,"lease_time":5,
                        "routes":[{"path":"/actuator/metrics","method":"GET"}],
                        "labels":{"zone":"a"}}"#;
        etcd.put("/service/monitor/2", value.as_bytes(), None)
            .await
            .unwrap();
        wait_until("the second instance", &targets, &test_etcd, || {
            monitor() == pairs(&[("1", "m1:8080"), ("2", "m2:8080")])
        })
        .await;
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(target_path(&targets, "monitor.json")).unwrap())
                .unwrap();
        assert_eq!(
            file[1]["labels"],
            serde_json::json!({"__metrics_path__": "/actuator/metrics", "job": "monitor",
                               "service": "monitor", "service_id": "2", "zone": "a"})
        );

        // A malformed registration is skipped; the others are untouched.
        etcd.put("/service/monitor/3", b"garbage", None)
            .await
            .unwrap();
        wait_until("the skip to be counted", &targets, &test_etcd, || {
            count(&metrics.skipped_registrations) == 1
        })
        .await;
        assert_eq!(monitor(), pairs(&[("1", "m1:8080"), ("2", "m2:8080")]));

        // A delete rewrites the file.
        etcd.delete("/service/monitor/1").await.unwrap();
        wait_until("the delete", &targets, &test_etcd, || {
            monitor() == pairs(&[("2", "m2:8080")])
        })
        .await;

        // An instance on a lease that is kept alive, then abandoned: its file goes away.
        let lease = etcd.grant(2).await.unwrap();
        etcd.put("/service/short/1", b"s:1", Some(lease.id))
            .await
            .unwrap();
        let keeper = {
            let etcd = etcd.clone();
            tokio::spawn(async move {
                loop {
                    let _ = etcd.keep_alive(lease.id).await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        };
        wait_until("the leased instance", &targets, &test_etcd, || {
            targets_of(&targets, "short.json") == pairs(&[("1", "s:1")])
        })
        .await;
        keeper.abort();
        wait_until(
            "the expired instance's file to go",
            &targets,
            &test_etcd,
            || !target_path(&targets, "short.json").exists(),
        )
        .await;
        assert_eq!(
            read_files(&targets).keys().collect::<Vec<_>>(),
            ["monitor.json"],
            "no temp files or leftovers"
        );
        assert_eq!(count(&metrics.targets), 1);
        assert_eq!(count(&metrics.services), 1);
        assert!(count(&metrics.events) >= 5);
        assert!(count(&metrics.last_sync_unix) > 0);
        assert_eq!(count(&metrics.watch_restarts), 0);
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn real_etcd_bridge_keeps_files_while_etcd_is_down_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let Some(mut test_etcd) = TestEtcd::start(&dir.path().join("etcd"), None).await else {
            return;
        };
        let targets = dir.path().join("targets");
        test_etcd
            .etcd
            .put("/service/a/1", b"a1:80", None)
            .await
            .unwrap();
        let (metrics, stop, task) = spawn_bridge(test_etcd.etcd.clone(), &targets);
        wait_until("the first file", &targets, &test_etcd, || {
            targets_of(&targets, "a.json").is_some()
        })
        .await;
        let before = read_files(&targets);

        test_etcd.kill();
        // Several failed attempts to watch again prove the bridge noticed and keeps trying.
        wait_until("the bridge to retry", &targets, &test_etcd, || {
            count(&metrics.watch_restarts) >= 3
        })
        .await;
        assert_eq!(
            read_files(&targets),
            before,
            "files kept while etcd is down"
        );

        test_etcd.restart().await;
        test_etcd
            .etcd
            .put("/service/b/1", b"b1:80", None)
            .await
            .unwrap();
        wait_until(
            "the registration made after the restart",
            &targets,
            &test_etcd,
            || targets_of(&targets, "b.json") == pairs(&[("1", "b1:80")]),
        )
        .await;
        assert_eq!(read_files(&targets)["a.json"], before["a.json"]);
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    /// A TCP relay to etcd that the test can cut and restore, so the bridge loses etcd while
    /// etcd itself keeps running.
    struct Relay {
        port: u16,
        open: Arc<AtomicBool>,
        connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
        accept: tokio::task::JoinHandle<()>,
    }

    impl Relay {
        async fn start(upstream: String) -> Relay {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let open = Arc::new(AtomicBool::new(true));
            let connections = Arc::new(Mutex::new(Vec::new()));
            let accept = {
                let open = open.clone();
                let connections = connections.clone();
                tokio::spawn(async move {
                    loop {
                        let Ok((mut inbound, _)) = listener.accept().await else {
                            continue;
                        };
                        if !open.load(Ordering::SeqCst) {
                            continue; // dropped: the client sees the connection close
                        }
                        let upstream = upstream.clone();
                        let relay = tokio::spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        });
                        connections.lock().unwrap().push(relay.abort_handle());
                    }
                })
            };
            Relay {
                port,
                open,
                connections,
                accept,
            }
        }

        fn cut(&self) {
            self.open.store(false, Ordering::SeqCst);
            for connection in self.connections.lock().unwrap().drain(..) {
                connection.abort();
            }
        }

        fn restore(&self) {
            self.open.store(true, Ordering::SeqCst);
        }
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            self.cut();
            self.accept.abort();
        }
    }

    #[tokio::test]
    async fn real_etcd_bridge_lists_again_after_a_compaction_while_disconnected() {
        let dir = tempfile::tempdir().unwrap();
        let Some(test_etcd) = TestEtcd::start(&dir.path().join("etcd"), None).await else {
            return;
        };
        let etcd = test_etcd.etcd.clone();
        let relay = Relay::start(test_etcd.base_url().replace("http://", "")).await;
        let through_relay = Etcd::new(
            &crate::clients::http_client().unwrap(),
            format!("http://127.0.0.1:{}", relay.port),
        );
        let targets = dir.path().join("targets");
        etcd.put("/service/a/1", b"a1:80", None).await.unwrap();
        etcd.put("/service/b/1", b"b1:80", None).await.unwrap();
        let (metrics, stop, task) = spawn_bridge(through_relay, &targets);
        wait_until("the first files", &targets, &test_etcd, || {
            read_files(&targets).len() == 2
        })
        .await;

        relay.cut();
        wait_until("the bridge to lose etcd", &targets, &test_etcd, || {
            count(&metrics.watch_restarts) >= 1
        })
        .await;
        etcd.delete("/service/b/1").await.unwrap();
        etcd.put("/service/c/1", b"c1:80", None).await.unwrap();
        let latest = etcd.put("/service/a/1", b"a1:81", None).await.unwrap();
        etcd.compact(latest).await.unwrap();
        let restarts = count(&metrics.watch_restarts);
        relay.restore();

        wait_until(
            "the files to match etcd after a new list",
            &targets,
            &test_etcd,
            || {
                read_files(&targets).keys().collect::<Vec<_>>() == ["a.json", "c.json"]
                    && targets_of(&targets, "a.json") == pairs(&[("1", "a1:81")])
            },
        )
        .await;
        assert!(count(&metrics.watch_restarts) > restarts);
        assert_eq!(count(&metrics.targets), 2);
        // And the watch works again after the new list.
        etcd.put("/service/d/1", b"d1:80", None).await.unwrap();
        wait_until("a change after the new list", &targets, &test_etcd, || {
            targets_of(&targets, "d.json").is_some()
        })
        .await;
        stop.send(()).unwrap();
        task.await.unwrap();
    }
}
