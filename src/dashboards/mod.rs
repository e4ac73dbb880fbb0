//! Grafana dashboards: the ones bundled with monstack, and preparing any dashboard for file
//! provisioning.
//!
//! Grafana's file provisioning loads dashboard JSON as it is: unlike the import API it does not
//! substitute `__inputs` placeholders such as `${DS_PROMETHEUS}`, so an exported dashboard shows
//! "Datasource ${DS_PROMETHEUS} was not found" on every panel. [`prepare`] does that substitution
//! ahead of time, against the datasources monstack provisions.
//!
//! It also rewrites `le` and `quantile` selectors that match only one Prometheus version's
//! spelling of integral values (`quantile="1"` is stored as `"1.0"` by Prometheus 3).
//!
//! The bundled dashboards live here; the rest is split by what it is for: `provision`
//! ([`prepare`]), `promql` (the metric names a dashboard queries, [`metric_names`] and
//! [`suggest`]), `selectors` (`le` / `quantile` selectors for Prometheus 2 and 3,
//! [`rewrite_dashboard`]) and `uid` (the uids and slugs Grafana accepts), all re-exported here.

mod promql;
mod provision;
mod selectors;
mod uid;

use include_dir::{include_dir, Dir};
use serde_json::Value;

pub use promql::{metric_names, suggest};
pub use provision::{prepare, prepare_with_rewrites, PrepareError};
pub use selectors::{
    both_forms, rewrite_dashboard, rewrite_expr, rewrites_summary, single_form_selectors,
    SelectorRewrite, FLOAT_FORM_LABELS,
};
pub use uid::{is_valid_uid, MAX_UID_LEN};
pub(crate) use uid::{slug, stable_hash};

static BUNDLED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/dashboards");

/// Names of the bundled dashboards (`dashboards/*.json` file stems), sorted.
pub fn bundled_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = BUNDLED
        .files()
        .filter(|file| file.path().extension().is_some_and(|ext| ext == "json"))
        .filter_map(|file| file.path().file_stem()?.to_str())
        .collect();
    names.sort_unstable();
    names
}

/// The bundled dashboard called `name` (a file stem such as `go-runtime`), parsed.
pub fn bundled(name: &str) -> Option<Value> {
    let file = BUNDLED.get_file(format!("{name}.json"))?;
    // Every bundled file is parsed by the unit tests, so this cannot fail in a release.
    let json = serde_json::from_slice(file.contents())
        .unwrap_or_else(|err| panic!("bundled dashboard {name}.json is not valid JSON: {err}"));
    Some(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bundled_names_are_sorted_file_stems() {
        let names = bundled_names();
        assert!(names.contains(&"go-runtime"), "{names:?}");
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert!(bundled("no-such-dashboard").is_none());
    }

    #[test]
    fn go_runtime_dashboard_is_complete() {
        let json = bundled("go-runtime").unwrap();
        assert_eq!(json["uid"], "monstack-go-runtime");
        assert_eq!(json["title"], "Go runtime");
        assert_eq!(json["schemaVersion"], 39);
        let vars: Vec<&str> = json["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(vars, ["datasource", "job", "instance"]);
        let instance = &json["templating"]["list"][2];
        assert_eq!(instance["multi"], true);
        assert_eq!(instance["includeAll"], true);

        let panels = json["panels"].as_array().unwrap();
        let ds = json!({"type": "prometheus", "uid": "${datasource}"});
        let mut ids = Vec::new();
        let mut exprs = String::new();
        for panel in panels {
            let title = panel["title"].as_str().unwrap();
            ids.push(panel["id"].as_u64().unwrap());
            assert_eq!(panel["datasource"], ds, "{title}");
            assert!(
                !panel["description"].as_str().unwrap().is_empty(),
                "{title}"
            );
            assert!(
                panel["fieldConfig"]["defaults"]["unit"].is_string(),
                "{title}"
            );
            let grid = &panel["gridPos"];
            let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
            assert!(x + w <= 24, "{title} leaves the 24-column grid");
            for target in panel["targets"].as_array().unwrap() {
                assert_eq!(target["datasource"], ds, "{title}");
                exprs.push_str(target["expr"].as_str().unwrap());
                exprs.push('\n');
            }
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), panels.len(), "panel ids must be unique");
        for metric in [
            "go_goroutines",
            "go_threads",
            "go_gc_duration_seconds{",
            "rate(go_gc_duration_seconds_count",
            "go_memstats_heap_inuse_bytes",
            "go_memstats_heap_alloc_bytes",
            "go_memstats_heap_objects",
            "rate(go_memstats_alloc_bytes_total",
            "rate(process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "time() - process_start_time_seconds",
        ] {
            assert!(exprs.contains(metric), "no panel shows {metric}");
        }
        assert!(!rects_overlap(panels), "panels overlap");
    }

    fn rects_overlap(panels: &[Value]) -> bool {
        let rect = |p: &Value| {
            let g = &p["gridPos"];
            (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            )
        };
        panels.iter().enumerate().any(|(i, a)| {
            panels[i + 1..].iter().any(|b| {
                let (ax, ay, aw, ah) = rect(a);
                let (bx, by, bw, bh) = rect(b);
                ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah
            })
        })
    }
}
