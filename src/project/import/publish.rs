//! The imported dashboard on a running stack: pushed through Grafana's API (file provisioning
//! only polls every few seconds), and its metric names checked against what Prometheus has,
//! because "No data" panels are the usual problem with dashboards written for other exporter
//! versions.

use std::collections::BTreeSet;

use anyhow::Context as _;
use serde_json::Value;

use super::{quoted_title, Imported};
use crate::clients;
use crate::dashboards::{self, slug, stable_hash};
use crate::error::Result;
use crate::layout::OUT_DIR;
use crate::project::Context;
use crate::stack::secrets;

/// Pushes the dashboard to a running Grafana and checks its metric names against a running
/// Prometheus. Either being down is not an error: the provisioned file is enough.
pub(crate) async fn publish(ctx: &Context, imported: &Imported) -> Result<()> {
    let stack = &imported.stack;
    let client = clients::http_client()?;
    let mut running = false;
    if stack.grafana.enabled {
        let url = crate::model::host_url(stack.grafana.service.bind, stack.grafana.service.port);
        if matches!(clients::is_ready(&client, "grafana", &url).await, Ok(true)) {
            running = true;
            push(ctx, imported, &client, &url).await?;
        }
    }
    let prometheus_url =
        crate::model::host_url(stack.prometheus.service.bind, stack.prometheus.service.port);
    let prometheus = clients::Prometheus::new(&client, prometheus_url);
    if matches!(prometheus.ready().await, Ok(true)) {
        running = true;
        match prometheus.metric_names().await {
            Ok(names) => {
                let available: BTreeSet<String> = names.into_iter().collect();
                report_compatibility(ctx, &imported.json, &available);
            }
            Err(e) => ctx
                .printer
                .warn(&format!("the metric names were not checked: {e:#}")),
        }
    }
    if !running {
        ctx.printer
            .note("the stack is not running: `monstack up` starts Grafana with this dashboard");
    }
    Ok(())
}

pub(crate) async fn push(
    ctx: &Context,
    imported: &Imported,
    client: &reqwest::Client,
    url: &str,
) -> Result<()> {
    let stack = &imported.stack;
    let out_dir = stack.root.join(OUT_DIR);
    // The stored password is the one Grafana has; the manifest's is applied by the next `up`.
    let known = secrets::grafana_password(&out_dir, stack.grafana.admin_password.as_deref())?;
    let password = match known.stored {
        Some(stored) => stored,
        None if !known.generated => known.desired,
        None => {
            ctx.printer.warn(
                "Grafana answers, but its admin password is unknown (no .monstack/secrets/grafana-admin-password, no grafana.admin_password): the dashboard was not pushed; `monstack up` provisions it",
            );
            return Ok(());
        }
    };
    let grafana = clients::Grafana::new(client, url, &stack.grafana.admin_user, password);
    let pushed = async {
        let folder_uid = match &imported.folder {
            Some(title) => {
                let uid = folder_uid(title);
                grafana.ensure_folder(&uid, title).await?;
                Some(uid)
            }
            None => None,
        };
        grafana
            .push_dashboard(imported.json.clone(), folder_uid.as_deref())
            .await
    };
    let path = pushed.await.with_context(|| {
        format!(
            "the dashboard is imported (monstack.yaml, .monstack/), but the running Grafana at {} did not take it",
            grafana.base_url()
        )
    })?;
    ctx.printer.status("Pushed", "to the running Grafana");
    // A new folder means a new provider in the provisioning file, which Grafana reads only at
    // start or on request: ask now, so the provisioned copy takes over from the pushed one.
    if let Err(e) = grafana.reload_provisioning("dashboards").await {
        ctx.printer.warn(&format!(
            "Grafana did not reload its dashboard provisioning ({e:#}); `monstack up` does"
        ));
    }
    ctx.printer
        .result(&format!("{}{path}", grafana.base_url()), true);
    Ok(())
}

/// The uid of the Grafana folder with this title: a slug of it, or a hash for titles without
/// ASCII letters. Grafana's file provisioning finds folders by title, so it uses this one too.
pub(crate) fn folder_uid(title: &str) -> String {
    let uid = slug(title, dashboards::MAX_UID_LEN);
    if uid.is_empty() {
        format!("folder-{:016x}", stable_hash(title))
    } else {
        uid
    }
}

/// One line per problem: a whole family of metrics absent (the exporter is probably not
/// scraped), or one name absent with the closest name Prometheus has.
pub(crate) fn compatibility_lines(
    used: &BTreeSet<String>,
    available: &BTreeSet<String>,
) -> Vec<String> {
    let missing: Vec<&String> = used.iter().filter(|n| !available.contains(*n)).collect();
    let family = |name: &str| name.split(['_', ':']).next().unwrap_or(name).to_string();
    let families_present: BTreeSet<String> = available.iter().map(|n| family(n)).collect();
    let mut absent: std::collections::BTreeMap<String, usize> = Default::default();
    let mut lines = Vec::new();
    for name in &missing {
        let f = family(name);
        if families_present.contains(&f) {
            lines.push(match dashboards::suggest(name, available) {
                Some(near) => format!("`{name}` -> did you mean `{near}`?"),
                None => format!("`{name}`: no similar name"),
            });
        } else {
            *absent.entry(f).or_default() += 1;
        }
    }
    let mut family_lines: Vec<String> = absent
        .into_iter()
        .map(|(f, count)| {
            let names = if count == 1 { "name" } else { "names" };
            format!("`{f}_*` ({count} {names}): Prometheus has no `{f}_` metrics at all; is their exporter scraped?")
        })
        .collect();
    family_lines.extend(lines);
    family_lines
}

pub(crate) fn report_compatibility(ctx: &Context, dashboard: &Value, available: &BTreeSet<String>) {
    let used = dashboards::metric_names(dashboard);
    let missing = used.iter().filter(|n| !available.contains(*n)).count();
    if missing == 0 {
        ctx.printer.status(
            "Checked",
            &format!(
                "Prometheus has all {} metric names the dashboard queries",
                used.len()
            ),
        );
        return;
    }
    let mut text = format!(
        "{missing} of the {} metric names {} queries are not in Prometheus (their panels show \"No data\"):",
        used.len(),
        quoted_title(dashboard)
    );
    for line in compatibility_lines(&used, available) {
        text.push_str("\n  ");
        text.push_str(&line);
    }
    ctx.printer.warn(&text);
}
