//! `monstack add-target`, `remove-target` and `targets`: scrape targets changed without editing
//! prometheus.yml by hand and without restarting anything.
//!
//! An edit goes manifest text (comments kept) -> validation -> the rendered files -> Prometheus:
//! an existing job only gets its file_sd file rewritten, which Prometheus picks up by itself; a
//! new or removed job changes prometheus.yml, so Prometheus is reloaded and the reload confirmed.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::clients::{self, Health};
use crate::commands::register::{check_address, etcd_of, parse_labels};
use crate::error::{Error, Result};
use crate::files;
use crate::layout::OUT_DIR;
use crate::manifest::edit::{self, EditError, JobSettings};
use crate::model::{self, Duration as PromDuration, Stack};
use crate::project::{load, Context};
use crate::render;
use crate::stack::containers::{self, HostContext};
use crate::stack::docker::Engine;
use crate::stack::state::AppliedState;

pub struct AddTarget {
    pub job: String,
    pub addrs: Vec<String>,
    pub path: Option<String>,
    pub scheme: Option<String>,
    pub interval: Option<String>,
    pub labels: Vec<String>,
    pub wait: String,
}

pub async fn add(ctx: &Context, args: AddTarget) -> Result<()> {
    let wait = PromDuration::parse(&args.wait)
        .map_err(|e| Error::usage(format!("--wait: {e}"), Some("e.g. 15s".to_string())))?;
    for addr in &args.addrs {
        check_address(addr, &ctx.printer)?;
    }
    let settings = JobSettings {
        path: args.path,
        scheme: args.scheme,
        interval: args.interval,
        labels: parse_labels(&args.labels)?,
    };
    let text = crate::project::read_manifest_text(ctx, "targets are kept in the manifest")?;
    let edit = edit::add_targets(&text, &args.job, &args.addrs, &settings).map_err(edit_error)?;
    let stack = apply(ctx, &edit.text).await?;
    let what = if edit.created_job { "new job" } else { "job" };
    ctx.printer.status(
        "Added",
        &format!("{} to {what} {}", args.addrs.join(", "), args.job),
    );
    if let Some(prometheus) = running_prometheus(&stack).await {
        wait_for_targets(
            ctx,
            &prometheus,
            &args.job,
            &args.addrs,
            Duration::from_millis(wait.as_millis()),
        )
        .await?;
    }
    Ok(())
}

pub async fn remove(ctx: &Context, job: &str, addrs: &[String]) -> Result<()> {
    let text = crate::project::read_manifest_text(ctx, "targets are kept in the manifest")?;
    let edit = edit::remove_targets(&text, job, addrs).map_err(edit_error)?;
    apply(ctx, &edit.text).await?;
    if addrs.is_empty() {
        ctx.printer.status("Removed", &format!("job {job}"));
    } else {
        ctx.printer
            .status("Removed", &format!("{} from job {job}", addrs.join(", ")));
    }
    Ok(())
}

fn edit_error(e: EditError) -> Error {
    match e {
        EditError::Duplicate { .. } => Error::usage(
            e.to_string(),
            Some("it is scraped already; nothing was changed".to_string()),
        ),
        EditError::NotFound { .. } | EditError::NoSuchJob { .. } => Error::usage(
            e.to_string(),
            Some("`monstack targets` lists them; nothing was changed".to_string()),
        ),
        other => Error::usage(
            other.to_string(),
            Some("edit monstack.yaml by hand; nothing was changed".to_string()),
        ),
    }
}

/// Validates the edited manifest (nothing is written when it is invalid), writes it and the
/// rendered files, and reloads a running Prometheus when its configuration changed.
async fn apply(ctx: &Context, text: &str) -> Result<Stack> {
    let stack = crate::project::load_text(ctx, text)?;
    let tree = render::render(&stack).context("rendering the stack's files")?;
    let out_dir = stack.root.join(OUT_DIR);
    let mode = files::mode_of(&ctx.file);
    files::write_atomic(&ctx.file, text.as_bytes(), mode)?;
    let report = crate::render::write::write_tree(&out_dir, &tree)?;
    let config_changed = report
        .written
        .iter()
        .any(|p| p == render::prometheus::CONFIG_PATH);
    if config_changed {
        reload_if_running(ctx, &stack, &tree, &out_dir).await?;
    }
    Ok(stack)
}

/// The stack's Prometheus when it answers, else `None` (the stack is not up: files suffice).
async fn running_prometheus(stack: &Stack) -> Option<clients::Prometheus> {
    let client = clients::http_client().ok()?;
    let url = crate::model::host_url(stack.prometheus.service.bind, stack.prometheus.service.port);
    let prometheus = clients::Prometheus::new(&client, url);
    matches!(prometheus.ready().await, Ok(true)).then_some(prometheus)
}

async fn reload_if_running(
    ctx: &Context,
    stack: &Stack,
    tree: &render::Tree,
    out_dir: &Path,
) -> Result<()> {
    let Some(prometheus) = running_prometheus(stack).await else {
        ctx.printer
            .note("the stack is not running: `monstack up` starts it with these targets");
        return Ok(());
    };
    let client = clients::http_client()?;
    crate::stack::reconcile::reload_prometheus(&client, prometheus.base_url(), tree).await?;
    ctx.printer
        .status("Reloaded", "Prometheus (its job list changed)");
    // Remember the reload, so the next `up` does not repeat it.
    if let Ok(engine) = Engine::connect().await {
        let host = HostContext {
            out_dir,
            secret_gid: 0,
            grafana_admin_password: "",
            agent_image: None,
            host_user: (0, 0),
        };
        let specs = containers::desired(stack, tree, &host);
        let observed = engine.project_containers(&stack.project).await?;
        if let (Some(spec), Some(container)) = (
            specs.iter().find(|s| s.service == model::PROMETHEUS),
            observed.iter().find(|o| o.service == model::PROMETHEUS),
        ) {
            let mut state = AppliedState::load(out_dir);
            state
                .applied
                .insert(container.id.clone(), spec.config_hash.clone());
            state.save(out_dir)?;
        }
    }
    Ok(())
}

/// Waits until Prometheus lists every address in the job, then prints each one's health.
async fn wait_for_targets(
    ctx: &Context,
    prometheus: &clients::Prometheus,
    job: &str,
    addrs: &[String],
    wait: Duration,
) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        let targets = prometheus.targets().await.unwrap_or_default();
        let found: Vec<Option<&clients::Target>> = addrs
            .iter()
            .map(|addr| {
                targets
                    .iter()
                    .find(|t| t.scrape_pool == job && scrape_address(&t.scrape_url) == addr)
            })
            .collect();
        let scraped = found
            .iter()
            .all(|t| t.is_some_and(|t| t.health != Health::Unknown));
        if scraped || Instant::now() >= deadline {
            for (addr, target) in addrs.iter().zip(&found) {
                match target {
                    Some(t) if t.health == Health::Up => ctx
                        .printer
                        .status("Up", &format!("{job} {addr} ({})", t.scrape_url)),
                    Some(t) if t.health == Health::Down => ctx
                        .printer
                        .warn(&format!("{job} {addr} is down: {}", t.last_error)),
                    Some(_) => ctx.printer.note(&format!(
                        "{job} {addr}: listed by Prometheus, not scraped yet"
                    )),
                    None => ctx.printer.warn(&format!(
                        "{job} {addr}: not listed by Prometheus after {}s",
                        wait.as_secs()
                    )),
                }
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `http://host:port/metrics` -> `host:port`.
fn scrape_address(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

#[derive(Debug, Serialize)]
struct TargetRow {
    job: String,
    target: String,
    /// `manifest` or `etcd`.
    source: String,
    /// etcd: the registration key's service id.
    #[serde(skip_serializing_if = "Option::is_none")]
    service_id: Option<String>,
    /// etcd: seconds left on the registration's lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_ttl_seconds: Option<i64>,
    /// up, down, unknown, or `-` when Prometheus is not running.
    health: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    last_error: String,
}

pub async fn list(ctx: &Context, json: bool) -> Result<()> {
    let stack = load(ctx)?;
    let prometheus = running_prometheus(&stack).await;
    let scraped = match &prometheus {
        Some(p) => p.targets().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let health_of = |job: &str, addr: &str| -> (String, String) {
        if prometheus.is_none() {
            return ("-".into(), String::new());
        }
        match scraped
            .iter()
            .find(|t| t.scrape_pool == job && scrape_address(&t.scrape_url) == addr)
        {
            Some(t) => (
                format!("{:?}", t.health).to_lowercase(),
                t.last_error.clone(),
            ),
            None => ("not listed".into(), String::new()),
        }
    };
    let mut rows = Vec::new();
    for job in &stack.jobs {
        for target in &job.targets {
            let (health, last_error) = health_of(&job.name, target);
            rows.push(TargetRow {
                job: job.name.clone(),
                target: target.clone(),
                source: "manifest".into(),
                service_id: None,
                lease_ttl_seconds: None,
                health,
                last_error,
            });
        }
    }
    if let (Some(discovery), Some(_)) = (&stack.discovery.etcd, &stack.etcd) {
        let client = clients::http_client()?;
        let (etcd, _) = etcd_of(&stack, &client)?;
        match etcd.range_prefix(&discovery.prefix).await {
            Ok(range) => {
                for kv in range.kvs {
                    match crate::agent::discovery::parse_registration(
                        &kv.key,
                        &kv.value,
                        &discovery.prefix,
                    ) {
                        Ok(reg) => {
                            let ttl = if kv.lease != 0 {
                                etcd.time_to_live(kv.lease).await.ok().flatten()
                            } else {
                                None
                            };
                            let (health, last_error) =
                                health_of(crate::model::JOB_ETCD_DISCOVERED, &reg.address);
                            rows.push(TargetRow {
                                job: reg.name.clone(),
                                target: reg.address.clone(),
                                source: "etcd".into(),
                                service_id: Some(reg.id.clone()),
                                lease_ttl_seconds: ttl,
                                health,
                                last_error,
                            });
                        }
                        Err(why) => ctx.printer.warn(&format!("{}: skipped: {why}", kv.key)),
                    }
                }
            }
            Err(e) => ctx.printer.warn(&format!(
                "etcd is not reachable, discovered targets are not listed: {e:#}"
            )),
        }
    }
    if json {
        let text = serde_json::to_string_pretty(&rows).map_err(anyhow::Error::from)?;
        ctx.printer.result(&text, true);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let source = match (&r.service_id, r.lease_ttl_seconds) {
                (Some(id), Some(ttl)) => format!("etcd (id {id}, lease {ttl}s)"),
                (Some(id), None) => format!("etcd (id {id})"),
                _ => r.source.clone(),
            };
            let health = if r.last_error.is_empty() {
                r.health.clone()
            } else {
                format!("{}: {}", r.health, r.last_error)
            };
            vec![r.job.clone(), r.target.clone(), source, health]
        })
        .collect();
    ctx.printer
        .table(&["JOB", "TARGET", "SOURCE", "HEALTH"], &table);
    if prometheus.is_none() {
        ctx.printer
            .note("Prometheus is not running: no health shown");
    }
    Ok(())
}
