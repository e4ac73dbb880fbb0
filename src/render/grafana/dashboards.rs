//! Dashboards: one file provider per Grafana folder, and the (already prepared) dashboard JSON
//! files in the directories those providers read.

use std::collections::BTreeSet;

use anyhow::Context;
use serde::Serialize;

use super::expand::expanded_yaml;
use crate::dashboards::{slug, stable_hash};
use crate::model::Stack;
use crate::render::RenderedFile;

pub const DASHBOARD_PROVIDERS_FILE: &str = "grafana/provisioning/dashboards/monstack.yaml";
/// Where dashboard JSON files go, relative to `.monstack/`; mounted at [`DASHBOARDS_MOUNT`].
pub const DASHBOARDS_DIR: &str = "grafana/dashboards";
/// Where Grafana sees `.monstack/grafana/dashboards` inside its container.
pub const DASHBOARDS_MOUNT: &str = "/var/lib/grafana/dashboards";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DashboardProvidersFile {
    api_version: u32,
    providers: Vec<DashboardProvider>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DashboardProvider {
    name: String,
    org_id: u32,
    folder: String,
    #[serde(rename = "type")]
    kind: &'static str,
    disable_deletion: bool,
    allow_ui_updates: bool,
    update_interval_seconds: u32,
    options: ProviderOptions,
}

#[derive(Serialize)]
struct ProviderOptions {
    path: String,
}

/// Where the dashboards of one Grafana folder live.
struct FolderDir {
    /// Folder title; `None` = General.
    folder: Option<String>,
    /// Directory under [`DASHBOARDS_DIR`].
    dir: String,
    provider: String,
}

/// One directory and provider per distinct folder: General first, then folders by title.
/// Directory names are slugs, made unique when two titles slug alike.
fn folder_dirs(stack: &Stack) -> Vec<FolderDir> {
    let folders: BTreeSet<Option<&str>> = stack
        .dashboards
        .iter()
        .map(|d| d.folder.as_deref())
        .collect();
    let mut used = BTreeSet::new();
    let mut dirs = Vec::new();
    for folder in folders {
        let (dir, provider) = match folder {
            None => ("general".to_string(), "monstack".to_string()),
            Some(title) => {
                let base = slug(title, 40);
                let mut dir = if base.is_empty() {
                    format!("folder-{:08x}", stable_hash(title) as u32)
                } else {
                    base
                };
                if used.contains(&dir) {
                    dir = format!("{}-{:08x}", slug(&dir, 31), stable_hash(title) as u32);
                }
                let provider = format!("monstack-{dir}");
                (dir, provider)
            }
        };
        used.insert(dir.clone());
        dirs.push(FolderDir {
            folder: folder.map(str::to_string),
            dir,
            provider,
        });
    }
    dirs
}

pub(super) fn dashboards(stack: &Stack) -> anyhow::Result<Vec<RenderedFile>> {
    let dirs = folder_dirs(stack);
    let providers = dirs
        .iter()
        .map(|d| DashboardProvider {
            name: d.provider.clone(),
            org_id: 1,
            folder: d.folder.clone().unwrap_or_default(),
            kind: "file",
            disable_deletion: false,
            allow_ui_updates: false,
            update_interval_seconds: 10,
            options: ProviderOptions {
                path: format!("{DASHBOARDS_MOUNT}/{}", d.dir),
            },
        })
        .collect();
    let file = DashboardProvidersFile {
        api_version: 1,
        providers,
    };
    let mut files = vec![RenderedFile::new(
        DASHBOARD_PROVIDERS_FILE,
        expanded_yaml(&file).context("rendering dashboard providers")?,
    )];

    for dashboard in &stack.dashboards {
        let dir = dirs
            .iter()
            .find(|d| d.folder == dashboard.folder)
            .map(|d| d.dir.as_str())
            .expect("folder_dirs covers every dashboard's folder");
        let mut text = serde_json::to_string_pretty(&dashboard.json)
            .with_context(|| format!("rendering dashboard {}", dashboard.source))?;
        text.push('\n');
        files.push(RenderedFile::new(
            format!("{DASHBOARDS_DIR}/{dir}/{}", dashboard.file_name),
            text,
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::render::grafana::checks::check_tree;
    use crate::render::grafana::render;
    use crate::render::grafana::tests::{dashboard, file, go_runtime, paths, yaml};
    use crate::render::testkit;

    #[test]
    fn dashboards_go_to_one_provider_per_folder() {
        let mut stack = testkit::minimal();
        stack.dashboards = vec![
            dashboard(
                Some("Shop / Orders"),
                "orders.json",
                serde_json::json!({"uid": "o", "title": "O"}),
            ),
            dashboard(None, "go-runtime.json", go_runtime()),
            dashboard(
                Some("General"),
                "g.json",
                serde_json::json!({"uid": "g", "title": "G"}),
            ),
            dashboard(
                Some("Shop / Orders"),
                "more.json",
                serde_json::json!({"uid": "m", "title": "M"}),
            ),
        ];
        let files = render(&stack).unwrap();
        let providers = yaml(file(&files, DASHBOARD_PROVIDERS_FILE));
        let summary: Vec<(String, String, String)> = providers["providers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["type"], "file");
                assert_eq!(p["disableDeletion"], false);
                assert_eq!(p["allowUiUpdates"], false);
                assert_eq!(p["updateIntervalSeconds"], 10);
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["folder"].as_str().unwrap().to_string(),
                    p["options"]["path"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let general_dir = format!("general-{:08x}", stable_hash("General") as u32);
        assert_eq!(
            summary,
            [
                (
                    "monstack".into(),
                    "".into(),
                    "/var/lib/grafana/dashboards/general".into()
                ),
                (
                    format!("monstack-{general_dir}"),
                    "General".into(),
                    format!("/var/lib/grafana/dashboards/{general_dir}")
                ),
                (
                    "monstack-shop-orders".into(),
                    "Shop / Orders".into(),
                    "/var/lib/grafana/dashboards/shop-orders".into()
                ),
            ]
        );
        let dashboard_paths: Vec<&str> = paths(&files)
            .into_iter()
            .filter(|p| p.starts_with("grafana/dashboards/"))
            .collect();
        assert_eq!(
            dashboard_paths,
            [
                "grafana/dashboards/shop-orders/orders.json".to_string(),
                "grafana/dashboards/general/go-runtime.json".to_string(),
                format!("grafana/dashboards/{general_dir}/g.json"),
                "grafana/dashboards/shop-orders/more.json".to_string(),
            ]
        );
        let go = file(&files, "grafana/dashboards/general/go-runtime.json");
        assert!(go.text().ends_with("}\n"));
        assert_eq!(
            serde_json::from_str::<Value>(go.text()).unwrap(),
            go_runtime()
        );
        assert!(check_tree(&files).is_empty(), "{:?}", check_tree(&files));
    }
}
