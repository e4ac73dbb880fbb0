//! Reloads that are confirmed: a service counts as reloaded only when it reports the
//! configuration it was given (Prometheus' jobs, Alertmanager's receivers).

use anyhow::anyhow;

use crate::clients::{self, ReloadError};
use crate::model::{self, Stack};
use crate::render::Tree;
use crate::stack::containers::{self, ContainerSpec, Reload};
use crate::stack::docker::Engine;

/// Reloads a running service and confirms the new configuration is the one it runs.
pub async fn reload(
    engine: &Engine,
    client: &reqwest::Client,
    stack: &Stack,
    tree: &Tree,
    spec: &ContainerSpec,
    stored_password: &Option<String>,
) -> anyhow::Result<()> {
    let url = spec.url();
    match spec.reload {
        Reload::Prometheus => reload_prometheus(engine, client, &stack.project, &url, tree).await?,
        Reload::Alertmanager => {
            let am = clients::Alertmanager::new(client, &url);
            am.reload()
                .await
                .map_err(|e| reload_error("Alertmanager", e))?;
            let want: Vec<String> = if stack.alerting.engine == model::AlertEngine::Grafana {
                vec![crate::render::alertmanager::DEFAULT_RECEIVER.to_string()]
            } else {
                stack
                    .channels
                    .iter()
                    .map(|c| c.name.clone())
                    .chain([crate::render::alertmanager::DEFAULT_RECEIVER.to_string()])
                    .collect()
            };
            confirm(
                "Alertmanager",
                "receivers",
                want,
                am.loaded_receivers().await?,
            )?;
        }
        Reload::Grafana => {
            let password = stored_password.clone().unwrap_or_default();
            let grafana = clients::Grafana::new(client, &url, &stack.grafana.admin_user, password);
            for area in ["datasources", "dashboards", "alerting"] {
                grafana.reload_provisioning(area).await?;
            }
        }
        Reload::None => {}
    }
    Ok(())
}

/// Reloads Prometheus and confirms it runs the rendered job list (`add-target` uses it too).
/// The stack's Prometheus runs without `--web.enable-lifecycle` (so nobody on the host can make
/// it reload or quit over HTTP): the reload is a `SIGHUP` through the Docker Engine, its outcome
/// Prometheus' own metrics, a refusal's reason its log.
pub async fn reload_prometheus(
    engine: &Engine,
    client: &reqwest::Client,
    project: &str,
    url: &str,
    tree: &Tree,
) -> anyhow::Result<()> {
    let prometheus = clients::Prometheus::new(client, url);
    let container = containers::container_name(project, model::PROMETHEUS);
    prometheus
        .reload_by_signal(engine.signal(&container, "SIGHUP"), || {
            engine.logs_tail(&container, RELOAD_LOG_LINES)
        })
        .await
        .map_err(|e| reload_error("Prometheus", e))?;
    confirm(
        "Prometheus",
        "jobs",
        job_names(tree)?,
        prometheus.loaded_job_names().await?,
    )
}

/// How much of Prometheus' log a refused reload is looked for in.
const RELOAD_LOG_LINES: usize = 400;

fn reload_error(service: &str, error: ReloadError) -> anyhow::Error {
    match error {
        ReloadError::Rejected(message) => crate::error::hinted(
            format!("{service} rejected the new configuration, and keeps running the previous one:\n  {message}"),
            "fix the manifest and run `monstack up` again",
        ),
        // The chain is kept: a hint inside it still reaches the printer.
        ReloadError::Other(e) => e.context(format!("reloading {service}")),
    }
}

/// A reload is only done when the service reports the configuration it was given.
fn confirm(
    service: &str,
    what: &str,
    mut want: Vec<String>,
    mut loaded: Vec<String>,
) -> anyhow::Result<()> {
    want.sort();
    loaded.sort();
    if want != loaded {
        return Err(anyhow!(
            "{service} reloaded, but has {what} {loaded:?} instead of {want:?}"
        ));
    }
    Ok(())
}

pub fn job_names(tree: &Tree) -> anyhow::Result<Vec<String>> {
    let file = tree
        .get(crate::render::prometheus::CONFIG_PATH)
        .ok_or_else(|| anyhow!("prometheus.yml was not rendered"))?;
    let config: serde_json::Value = crate::manifest::yaml::from_str(file.text())?;
    Ok(config["scrape_configs"]
        .as_array()
        .map(|jobs| {
            jobs.iter()
                .filter_map(|j| j["job_name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}
