//! The target files: the registrations the agent knows ([`Registry`]), grouped one file_sd file
//! per service, and writing them into the targets directory (atomically, only when changed).
//!
//! A service's file lives in one of 16 shard directories (`<dir>/<shard>/<service>.json`, see
//! [`crate::layout::etcd_target_shard`]), each its own file_sd config in prometheus.yml, and is
//! written through a temp file in `<dir>/.tmp/`, which no file_sd config watches. Prometheus
//! re-reads every file of a config whenever anything changes in its directory; this way one
//! registration is one change (the rename) in one shard, and Prometheus re-reads that shard
//! once, about a sixteenth of the services, instead of every file four times.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::registration::{Registration, DEFAULT_METRICS_PATH};
use crate::files::{write_atomic_unsynced_via, MODE_PUBLIC};
use crate::layout::{
    etcd_target_shard, etcd_target_shards, is_etcd_target_shard, ETCD_TARGETS_PLACEHOLDER,
    ETCD_TARGETS_TMP,
};

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

/// Where the target file named `file` ([`file_name`]) lives under the targets directory `dir`.
pub fn target_path(dir: &Path, file: &str) -> PathBuf {
    dir.join(etcd_target_shard(file)).join(file)
}

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

    /// Every instance of every service as one Prometheus HTTP SD answer
    /// (`[{"targets": [...], "labels": {...}}]`), with the labels of the target files.
    pub fn http_sd(&self) -> Vec<u8> {
        serde_json::to_vec(&groups(self.by_key.iter().collect()))
            .expect("target groups always serialize")
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

/// One service's file_sd file: its instances, sorted, as pretty JSON.
fn render_file(members: Vec<(&String, &Registration)>) -> Vec<u8> {
    let mut contents =
        serde_json::to_vec_pretty(&groups(members)).expect("target groups always serialize");
    contents.push(b'\n');
    contents
}

/// One target group per instance, sorted by service, id and key: the same groups in a file_sd
/// file and in the HTTP SD answer.
fn groups<'a>(mut members: Vec<(&'a String, &'a Registration)>) -> Vec<TargetGroup<'a>> {
    members.sort_by(|(ka, a), (kb, b)| (&a.name, &a.id, ka).cmp(&(&b.name, &b.id, kb)));
    members
        .into_iter()
        .map(|(_, r)| {
            let mut labels: BTreeMap<&str, &str> = r
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            labels.insert("service", &r.name);
            labels.insert("service_id", &r.id);
            // The service's name as its `job`, as `monstack targets` lists it, so that
            // `up{job="order"}` and the dashboards' job variables find it (a registration's
            // own `job` label wins). The scrape pool stays `etcd-discovered`.
            labels.entry("job").or_insert(&r.name);
            if r.metrics_path != DEFAULT_METRICS_PATH {
                labels.insert("__metrics_path__", &r.metrics_path);
            }
            TargetGroup {
                targets: [&r.address],
                labels,
            }
        })
        .collect()
}

/// Writes `files` into their shards of `dir` (only those that changed) and removes every other
/// target file the agent owns there: a service's file in a shard it is not in, files of services
/// that are gone, the flat layout's files from before the shards (`<dir>/*.json`, also its
/// placeholder), and temp files a crash left. Returns the names written and removed.
pub(super) fn write_all(
    dir: &Path,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<(Vec<String>, Vec<String>)> {
    prepare(dir)?;
    let mut written = Vec::new();
    for (name, contents) in files {
        if write_if_changed(dir, name, contents)? {
            written.push(name.clone());
        }
    }
    let mut removed = Vec::new();
    for entry in read_dir(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let flat =
            name.ends_with(".json") && (!name.starts_with('.') || name == ETCD_TARGETS_PLACEHOLDER);
        if kind.is_file() && flat {
            // The flat layout: Prometheus no longer reads these, and the placeholder went to
            // the shards.
            remove_file(&entry.path())?;
            if name != ETCD_TARGETS_PLACEHOLDER {
                removed.push(name);
            }
        } else if kind.is_dir() && is_etcd_target_shard(&name) {
            for file in read_dir(&entry.path())? {
                let file_name = file.file_name().to_string_lossy().into_owned();
                let is_file = file.file_type().map(|t| t.is_file()).unwrap_or(false);
                // Dot-files are not ours: the placeholder `render` writes.
                if is_file
                    && file_name.ends_with(".json")
                    && !file_name.starts_with('.')
                    && !(files.contains_key(&file_name) && etcd_target_shard(&file_name) == name)
                {
                    remove_file(&file.path())?;
                    removed.push(file_name);
                }
            }
        } else if kind.is_dir() && name == ETCD_TARGETS_TMP {
            for file in read_dir(&entry.path())? {
                let file_name = file.file_name().to_string_lossy().into_owned();
                if file_name.ends_with(".tmp") {
                    remove_file(&file.path())?;
                }
            }
        }
    }
    removed.sort();
    Ok((written, removed))
}

/// Creates `dir`, its temp directory and every shard directory, so that a Prometheus started
/// before the first registration watches them all.
pub(super) fn prepare(dir: &Path) -> Result<()> {
    for sub in etcd_target_shards().chain([ETCD_TARGETS_TMP.to_string()]) {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
        .with_context(|| format!("reading {}", dir.display()))
}

/// Writes the target file `file` of `dir` through `dir/.tmp/`; returns whether it was written:
/// an identical file is left alone, so Prometheus is not woken for nothing.
pub(super) fn write_if_changed(dir: &Path, file: &str, contents: &[u8]) -> Result<bool> {
    let path = target_path(dir, file);
    if std::fs::read(&path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    write_atomic_unsynced_via(&path, &dir.join(ETCD_TARGETS_TMP), contents, MODE_PUBLIC)?;
    Ok(true)
}

pub(super) fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(name: &str, id: &str, address: &str) -> Registration {
        Registration {
            name: name.into(),
            id: id.into(),
            address: address.into(),
            metrics_path: "/metrics".into(),
            labels: BTreeMap::new(),
            registered_as: None,
        }
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
      "job": "monitor",
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
      "job": "monitor",
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

    /// Every file under `dir`, as paths relative to it.
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                out.extend(
                    tree(&entry.path())
                        .into_iter()
                        .map(|f| format!("{name}/{f}")),
                );
            } else {
                out.push(name);
            }
        }
        out.sort();
        out
    }

    #[test]
    fn files_go_to_their_shard_and_everything_else_the_agent_owns_is_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let write = |path: &str| {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "[]\n").unwrap();
        };
        // The flat layout of before the shards: a service's file, and its placeholder.
        write("api.json");
        write(".monstack-empty.json");
        // Render's placeholder in a shard, a file in the wrong shard, one of a gone service, a
        // temp file a crash left, and things that are not ours.
        write("09/.monstack-empty.json");
        write("00/api.json");
        write("03/monitor.json");
        write(".tmp/.api.json.1.0.tmp");
        write("README");
        write("notes/x.json");
        write(".hidden.json");
        let files = BTreeMap::from([("api.json".to_string(), b"[1]\n".to_vec())]);
        let (written, removed) = write_all(dir, &files).unwrap();
        assert_eq!(written, ["api.json"]);
        assert_eq!(removed, ["api.json", "api.json", "monitor.json"]);
        assert_eq!(target_path(dir, "api.json"), dir.join("09/api.json"));
        assert_eq!(
            tree(dir),
            [
                ".hidden.json",
                "09/.monstack-empty.json",
                "09/api.json",
                "README",
                "notes/x.json"
            ]
        );
        assert_eq!(std::fs::read(dir.join("09/api.json")).unwrap(), b"[1]\n");
        // Every shard and the temp directory exist, for a Prometheus to watch from the start.
        for shard in etcd_target_shards() {
            assert!(dir.join(&shard).is_dir(), "{shard}");
        }
        assert!(dir.join(ETCD_TARGETS_TMP).is_dir());
        // Unchanged: nothing written, nothing removed.
        assert_eq!(
            write_all(dir, &files).unwrap(),
            (Vec::<String>::new(), Vec::<String>::new())
        );
    }
}
