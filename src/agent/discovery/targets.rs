//! The target files: the registrations the agent knows ([`Registry`]), grouped one file_sd file
//! per service, and writing them into the targets directory (atomically, only when changed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::registration::{Registration, DEFAULT_METRICS_PATH};
use crate::files::{write_atomic_unsynced, MODE_PUBLIC};

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
        .collect();
    let mut contents = serde_json::to_vec_pretty(&groups).expect("target groups always serialize");
    contents.push(b'\n');
    contents
}

/// Writes `files` into `dir` (only those that changed) and removes every other `*.json` there.
/// Returns the names written and removed.
pub(super) fn write_all(
    dir: &Path,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<(Vec<String>, Vec<String>)> {
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
        // Dot-files are not ours: our temp files, and the placeholder `render` writes.
        if is_file
            && name.ends_with(".json")
            && !name.starts_with('.')
            && !files.contains_key(&name)
        {
            remove_file(&entry.path())?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok((written, removed))
}

/// Returns whether the file was written: an identical file is left alone, so Prometheus is not
/// woken for nothing.
pub(super) fn write_if_changed(path: &Path, contents: &[u8]) -> Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    write_atomic_unsynced(path, contents, MODE_PUBLIC)?;
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

    #[test]
    fn dot_files_in_the_targets_directory_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".monstack-empty.json"), "[]\n").unwrap();
        std::fs::write(dir.path().join("gone.json"), "[]\n").unwrap();
        let files = BTreeMap::from([("api.json".to_string(), b"[]\n".to_vec())]);
        let (written, removed) = write_all(dir.path(), &files).unwrap();
        assert_eq!(
            (written, removed),
            (vec!["api.json".into()], vec!["gone.json".into()])
        );
        assert!(dir.path().join(".monstack-empty.json").exists());
    }
}
