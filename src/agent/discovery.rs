//! The discovery agent: service registrations in etcd become Prometheus file_sd target files,
//! one `<service>.json` per service, kept up to date by a watch.
//!
//! There is no standard registration format; we read the common convention (key
//! `/service/{name}/{id}`, a JSON value with `host`, `port` and `routes`) and plain `host:port`.
//! Anything else is skipped with a warning naming the key, never fatal.
//!
//! The files are what Prometheus scrapes, so the agent errs on the side of keeping them: when
//! etcd cannot be reached the files stay as they are (an outage of the registry is not an outage
//! of the services), and every write is atomic, so Prometheus never reads half a file.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::clients::etcd::{Etcd, WatchError, WatchEvent};
use crate::files::{write_atomic_unsynced, MODE_PUBLIC};

/// Where registrations live by convention.
pub const DEFAULT_PREFIX: &str = "/service/";

const DEFAULT_METRICS_PATH: &str = "/metrics";
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One instance of a service, as the agent understood its registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// From the key: `/service/{name}/{id}`.
    pub name: String,
    pub id: String,
    /// `host:port` (IPv6 hosts in brackets).
    pub address: String,
    pub metrics_path: String,
    /// Extra target labels from the registration's `labels`.
    pub labels: BTreeMap<String, String>,
}

/// The JSON shape of the common convention. Unknown fields (`id`, `name`, `lease_time`, ...) are
/// ignored: the key is the authority for name and id.
#[derive(Deserialize)]
struct JsonRegistration {
    host: Option<String>,
    port: Option<serde_json::Value>,
    address: Option<String>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    labels: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Route {
    #[serde(default)]
    path: String,
}

/// Reads the registration at `key` (which must be `{prefix}{name}/{id}`). `Err` says why it
/// was skipped, for a warning that names the key.
pub fn parse_registration(key: &str, value: &[u8], prefix: &str) -> Result<Registration, String> {
    let (name, id) = parse_key(key, prefix)?;
    let text = std::str::from_utf8(value)
        .map_err(|_| format!("the value is not UTF-8 text: {}", shown(value)))?
        .trim();
    if text.is_empty() {
        return Err("the value is empty; expected JSON or host:port".to_string());
    }
    let mut registration = Registration {
        name,
        id,
        address: String::new(),
        metrics_path: DEFAULT_METRICS_PATH.to_string(),
        labels: BTreeMap::new(),
    };
    if !text.starts_with('{') {
        registration.address = parse_host_port(text).map_err(|why| {
            format!(
                "the value is neither a JSON object nor host:port ({why}): {}",
                shown(value)
            )
        })?;
        return Ok(registration);
    }
    let json: JsonRegistration = serde_json::from_str(text).map_err(|e| {
        format!(
            "the value is not a registration JSON object ({e}): {}",
            shown(value)
        )
    })?;
    registration.address = match (&json.address, &json.host, &json.port) {
        (_, Some(host), Some(port)) => join_host_port(host, port)?,
        (Some(address), _, _) => {
            parse_host_port(address).map_err(|why| format!("`address`: {why}"))?
        }
        _ => return Err("the value has neither `host` and `port` nor `address`".to_string()),
    };
    if let Some(route) = json
        .routes
        .iter()
        .find(|r| r.path.ends_with("/metrics"))
        .or_else(|| json.routes.iter().find(|r| r.path.contains("metrics")))
    {
        registration.metrics_path = if route.path.starts_with('/') {
            route.path.clone()
        } else {
            format!("/{}", route.path)
        };
    }
    for (label, value) in json.labels {
        check_label_name(&label)?;
        let value = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "label `{label}` has a value that is not text: {other}"
                ))
            }
        };
        registration.labels.insert(label, value);
    }
    Ok(registration)
}

fn parse_key(key: &str, prefix: &str) -> Result<(String, String), String> {
    let expected = || format!("expected {prefix}{{name}}/{{id}}");
    let rest = key
        .strip_prefix(prefix)
        .ok_or_else(|| format!("the key is not under {prefix}"))?;
    let rest = rest.trim_start_matches('/');
    match rest.split_once('/') {
        Some((name, id)) if !name.is_empty() && !id.is_empty() && !id.starts_with('/') => {
            Ok((name.to_string(), id.to_string()))
        }
        _ => Err(format!("the key has too few segments; {}", expected())),
    }
}

fn join_host_port(host: &str, port: &serde_json::Value) -> Result<String, String> {
    let port = match port {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(text) => text.parse().ok(),
        _ => None,
    }
    .filter(|p| (1..=65535).contains(p))
    .ok_or_else(|| format!("`port` is not a port number: {port}"))?;
    let host = host.trim();
    check_host(host.trim_start_matches('[').trim_end_matches(']'))?;
    if host.contains(':') && !host.starts_with('[') {
        Ok(format!("[{host}]:{port}"))
    } else {
        Ok(format!("{host}:{port}"))
    }
}

/// `host:port` or `[v6]:port`, returned as given.
fn parse_host_port(text: &str) -> Result<String, String> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| "no port".to_string())?;
    let bare_host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| "unbalanced `[`".to_string())?,
        None if host.contains(':') => {
            return Err("an IPv6 address needs brackets: [addr]:port".to_string())
        }
        None => host,
    };
    check_host(bare_host)?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(text.to_string()),
        _ => Err(format!("`{port}` is not a port number")),
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#@\"'".contains(c))
    {
        return Err(format!("`{host}` is not a host name or address"));
    }
    Ok(())
}

/// Prometheus rejects a whole target file for one bad label name, so a registration with one is
/// skipped instead. `service` and `service_id` come from the key; `__*` names are Prometheus'.
fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "label `{name}`: names starting with __ are reserved"
        ));
    }
    if name == "service" || name == "service_id" {
        return Err(format!(
            "label `{name}` is set from the key and cannot be overridden"
        ));
    }
    Ok(())
}

/// A value for a log line: text when it is text, at most 100 characters.
fn shown(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("`{}...`", &text[..cut]),
        None => format!("`{text}`"),
    }
}

/// The target file of a service: its name with anything outside `[A-Za-z0-9_.-]` replaced by
/// `_`, and no leading dot (that would hide the file), plus `.json`.
pub fn file_name(service: &str) -> String {
    let mut name: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with('.') {
        name.replace_range(..1, "_");
    }
    format!("{name}.json")
}

// ---------------------------------------------------------------------------------------------
// The registry and its files

/// The registrations the agent knows, by etcd key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    by_key: BTreeMap<String, Registration>,
}

/// One file_sd target group: one instance.
#[derive(Serialize)]
struct TargetGroup<'a> {
    targets: [&'a str; 1],
    labels: BTreeMap<&'a str, &'a str>,
}

impl Registry {
    /// Adds or replaces the registration at `key`. Returns true when that changed anything.
    pub fn apply_put(&mut self, key: &str, registration: Registration) -> bool {
        if self.by_key.get(key) == Some(&registration) {
            return false;
        }
        self.by_key.insert(key.to_string(), registration);
        true
    }

    /// Forgets `key`; returns what was registered there.
    pub fn apply_delete(&mut self, key: &str) -> Option<Registration> {
        self.by_key.remove(key)
    }

    pub fn replace_all(&mut self, list: impl IntoIterator<Item = (String, Registration)>) {
        self.by_key = list.into_iter().collect();
    }

    pub fn get(&self, key: &str) -> Option<&Registration> {
        self.by_key.get(key)
    }

    /// Number of instances.
    pub fn targets(&self) -> usize {
        self.by_key.len()
    }

    /// Number of distinct service names.
    pub fn services(&self) -> usize {
        self.by_key
            .values()
            .map(|r| r.name.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Every target file: file name -> contents.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        // Group once: scanning every registration per file is quadratic at 10,000 services.
        let mut groups: BTreeMap<String, Vec<(&String, &Registration)>> = BTreeMap::new();
        for (key, registration) in &self.by_key {
            groups
                .entry(file_name(&registration.name))
                .or_default()
                .push((key, registration));
        }
        groups
            .into_iter()
            .map(|(name, members)| (name, render_file(members)))
            .collect()
    }

    pub fn file(&self, file: &str) -> Option<Vec<u8>> {
        let members: Vec<(&String, &Registration)> = self
            .by_key
            .iter()
            .filter(|(_, r)| file_name(&r.name) == file)
            .collect();
        (!members.is_empty()).then(|| render_file(members))
    }
}

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
/// writes changed files atomically and removes `*.json` files of services that are gone.
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

/// Writes `files` into `dir` (only those that changed) and removes every other `*.json` there.
/// Returns the names written and removed.
fn write_all(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<(Vec<String>, Vec<String>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, contents) in files {
        if write_if_changed(&dir.join(name), contents)? {
            written.push(name.clone());
        }
    }
    let mut removed = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_file && name.ends_with(".json") && !files.contains_key(&name) {
            remove_file(&entry.path())?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok((written, removed))
}

/// Returns whether the file was written: an identical file is left alone, so Prometheus is not
/// woken for nothing.
fn write_if_changed(path: &Path, contents: &[u8]) -> Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    write_atomic_unsynced(path, contents, MODE_PUBLIC)?;
    Ok(true)
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
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
            let path = self.dir.join(&file);
            match self.registry.file(&file) {
                Some(contents) => {
                    std::fs::create_dir_all(&self.dir)
                        .with_context(|| format!("creating {}", self.dir.display()))?;
                    write_if_changed(&path, &contents)?;
                }
                None => remove_file(&path)?,
            }
        }
        self.revision = self.revision.max(mod_revision);
        self.metrics.synced_now(&self.registry);
        Ok(())
    }
}

/// One service's file_sd file: its instances, sorted, as pretty JSON.
fn render_file(mut members: Vec<(&String, &Registration)>) -> Vec<u8> {
    members.sort_by(|(ka, a), (kb, b)| (&a.name, &a.id, ka).cmp(&(&b.name, &b.id, kb)));
    let groups: Vec<TargetGroup> = members
        .into_iter()
        .map(|(_, r)| {
            let mut labels: BTreeMap<&str, &str> = r
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            labels.insert("service", &r.name);
            labels.insert("service_id", &r.id);
            if r.metrics_path != DEFAULT_METRICS_PATH {
                labels.insert("__metrics_path__", &r.metrics_path);
            }
            TargetGroup {
                targets: [&r.address],
                labels,
            }
        })
        .collect();
    let mut contents = serde_json::to_vec_pretty(&groups).expect("target groups always serialize");
    contents.push(b'\n');
    contents
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::etcd::testing::TestEtcd;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;
    use tokio::net::{TcpListener, TcpStream};

    const P: &str = "/service/";
    const WAIT: Duration = Duration::from_secs(30);

    fn parse(key: &str, value: &str) -> Result<Registration, String> {
        parse_registration(key, value.as_bytes(), P)
    }

    fn registration(name: &str, id: &str, address: &str) -> Registration {
        Registration {
            name: name.into(),
            id: id.into(),
            address: address.into(),
            metrics_path: "/metrics".into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn the_common_json_shape() {
        let value = r#"{"id":"1","name":"monitor","host":"monitor","port":8080,"lease_time":5,
                        "routes":[{"path":"/health","method":"GET"},
                                  {"path":"/api/metrics","method":"GET"}]}"#;
        let mut expected = registration("monitor", "1", "monitor:8080");
        expected.metrics_path = "/api/metrics".into();
        assert_eq!(parse("/service/monitor/1", value), Ok(expected));
    }

    #[test]
    fn the_metrics_path_prefers_a_route_ending_in_metrics() {
        let value = r#"{"host":"h","port":"9","routes":[{"path":"/metrics-legacy"},
                        {"path":"/v2/metrics"}]}"#;
        assert_eq!(
            parse("/service/a/1", value).unwrap().metrics_path,
            "/v2/metrics"
        );
        let value = r#"{"host":"h","port":9,"routes":[{"path":"prom_metrics_x"}]}"#;
        assert_eq!(
            parse("/service/a/1", value).unwrap().metrics_path,
            "/prom_metrics_x"
        );
        let value = r#"{"host":"h","port":9,"routes":[{"path":"/health"}]}"#;
        assert_eq!(
            parse("/service/a/1", value).unwrap().metrics_path,
            "/metrics"
        );
    }

    #[test]
    fn labels_address_and_plain_text() {
        let value =
            r#"{"address":"10.0.0.1:9100","labels":{"env":"prod","shard":3,"canary":true}}"#;
        let parsed = parse("/service/node/a", value).unwrap();
        assert_eq!(parsed.address, "10.0.0.1:9100");
        assert_eq!(
            parsed.labels,
            BTreeMap::from([
                ("canary".to_string(), "true".to_string()),
                ("env".to_string(), "prod".to_string()),
                ("shard".to_string(), "3".to_string()),
            ])
        );
        assert_eq!(
            parse("/service/node/b", " 10.0.0.2:9100\n"),
            Ok(registration("node", "b", "10.0.0.2:9100"))
        );
        assert_eq!(
            parse("/service/node/c", "[::1]:9100").unwrap().address,
            "[::1]:9100"
        );
        let v6 = r#"{"host":"fe80::1","port":80}"#;
        assert_eq!(
            parse("/service/node/d", v6).unwrap().address,
            "[fe80::1]:80"
        );
        // The key names the service and instance, whatever the value says.
        let other = r#"{"id":"9","name":"other","host":"h","port":1}"#;
        assert_eq!(
            parse("/service/real/1", other),
            Ok(registration("real", "1", "h:1"))
        );
        // An id may hold slashes; a prefix without its trailing slash works too.
        assert_eq!(
            parse_registration("/service/a/x/y", b"h:1", "/service")
                .unwrap()
                .id,
            "x/y"
        );
    }

    #[test]
    fn bad_values_say_why() {
        let cases = [
            ("", "empty"),
            ("localhost", "neither a JSON object nor host:port"),
            ("http://h:80/metrics", "neither a JSON object nor host:port"),
            ("h:0", "not a port number"),
            ("h:99999", "not a port number"),
            ("::1:80", "brackets"),
            ("{\"host\":\"h\"", "not a registration JSON object"),
            (
                "{\"host\":\"h\"}",
                "neither `host` and `port` nor `address`",
            ),
            (
                "{\"host\":\"h\",\"port\":70000}",
                "`port` is not a port number",
            ),
            ("{\"host\":\"\",\"port\":80}", "host is empty"),
            ("{\"address\":\"h\"}", "`address`: no port"),
            (
                "{\"host\":\"h\",\"port\":1,\"routes\":\"/metrics\"}",
                "not a registration",
            ),
            (
                "{\"host\":\"h\",\"port\":1,\"labels\":{\"a-b\":\"x\"}}",
                "not a valid label name",
            ),
            (
                "{\"host\":\"h\",\"port\":1,\"labels\":{\"__x\":\"x\"}}",
                "reserved",
            ),
            (
                "{\"host\":\"h\",\"port\":1,\"labels\":{\"service\":\"x\"}}",
                "set from the key",
            ),
            (
                "{\"host\":\"h\",\"port\":1,\"labels\":{\"a\":[1]}}",
                "not text",
            ),
        ];
        for (value, why) in cases {
            let error = parse("/service/a/1", value).unwrap_err();
            assert!(error.contains(why), "{value:?}: {error}");
        }
        let error = parse_registration("/service/a/1", b"\xff\xfe", P).unwrap_err();
        assert!(error.contains("not UTF-8"), "{error}");
    }

    #[test]
    fn bad_keys_say_why() {
        for key in [
            "/service/a",
            "/service/",
            "/service/a/",
            "/service//1",
            "/service/a//1",
        ] {
            let error = parse(key, "h:1").unwrap_err();
            assert!(error.contains("too few segments"), "{key}: {error}");
        }
        assert!(parse("/other/a/1", "h:1")
            .unwrap_err()
            .contains("not under /service/"));
    }

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(file_name("monitor"), "monitor.json");
        assert_eq!(file_name("my svc/v1:x"), "my_svc_v1_x.json");
        assert_eq!(file_name("a.b-c_D9"), "a.b-c_D9.json");
        assert_eq!(file_name(".hidden"), "_hidden.json");
    }

    #[test]
    fn files_are_sorted_deterministic_and_complete() {
        let mut registry = Registry::default();
        let mut b = registration("monitor", "b", "h2:80");
        b.metrics_path = "/api/metrics".into();
        b.labels.insert("env".into(), "prod".into());
        assert!(registry.apply_put("/service/monitor/b", b.clone()));
        assert!(!registry.apply_put("/service/monitor/b", b));
        registry.apply_put("/service/monitor/a", registration("monitor", "a", "h1:80"));
        registry.apply_put("/service/db x/1", registration("db x", "1", "db:5432"));
        assert_eq!((registry.targets(), registry.services()), (3, 2));
        let files = registry.files();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["db_x.json", "monitor.json"]
        );
        let monitor = String::from_utf8(files["monitor.json"].clone()).unwrap();
        assert_eq!(
            monitor,
            r#"[
  {
    "targets": [
      "h1:80"
    ],
    "labels": {
      "service": "monitor",
      "service_id": "a"
    }
  },
  {
    "targets": [
      "h2:80"
    ],
    "labels": {
      "__metrics_path__": "/api/metrics",
      "env": "prod",
      "service": "monitor",
      "service_id": "b"
    }
  }
]
"#
        );
        // The same registrations in another order give the same bytes.
        let mut again = Registry::default();
        again.replace_all(registry.by_key.clone().into_iter().rev());
        assert_eq!(again.files(), files);

        assert_eq!(
            registry.apply_delete("/service/db x/1").map(|r| r.name),
            Some("db x".to_string())
        );
        assert_eq!(registry.file("db_x.json"), None);
        assert_eq!(registry.apply_delete("/service/db x/1"), None);
    }

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

    /// The target files in `dir`: name -> contents.
    fn read_files(dir: &Path) -> BTreeMap<String, String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return BTreeMap::new();
        };
        entries
            .map(|e| e.unwrap())
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(e.path()).unwrap_or_default())
            })
            .collect()
    }

    /// The targets of one file as (service_id, address) pairs.
    fn targets_of(dir: &Path, file: &str) -> Option<Vec<(String, String)>> {
        let text = std::fs::read_to_string(dir.join(file)).ok()?;
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
        std::fs::create_dir_all(&targets).unwrap();
        std::fs::write(targets.join("gone.json"), "[]").unwrap();
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
            serde_json::from_slice(&std::fs::read(targets.join("monitor.json")).unwrap()).unwrap();
        assert_eq!(
            file[1]["labels"],
            serde_json::json!({"__metrics_path__": "/actuator/metrics", "service": "monitor",
                               "service_id": "2", "zone": "a"})
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
            || !targets.join("short.json").exists(),
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
