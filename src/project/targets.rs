//! `add-target` and `remove-target`: the manifest edited in place (comments kept), validated
//! before anything is written, the job's target file rewritten; a running Prometheus reloaded
//! (and the reload confirmed) only when its job list changed, then watched until it lists the
//! new targets.

use std::path::Path;
use std::time::{Duration, Instant};

use super::register::{check_address, parse_labels};
use crate::clients::{self, Health};
use crate::error::{Error, Result};
use crate::layout::OUT_DIR;
use crate::manifest::edit::{self, EditError, JobSettings};
use crate::model::{self, Duration as PromDuration, Stack};
use crate::project::Context;
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
    pub fallback_scrape_protocol: Option<String>,
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
        fallback_scrape_protocol: args.fallback_scrape_protocol,
        labels: parse_labels(&args.labels)?,
    };
    let text = crate::project::read_manifest_text(ctx, "targets are kept in the manifest")?;
    let edit = edit::add_targets(&text, &args.job, &args.addrs, &settings).map_err(edit_error)?;
    let stack = apply(ctx, &text, &edit.text).await?;
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
    apply(ctx, &text, &edit.text).await?;
    if addrs.is_empty() {
        ctx.printer.status("Removed", &format!("job {job}"));
    } else {
        ctx.printer
            .status("Removed", &format!("{} from job {job}", addrs.join(", ")));
    }
    Ok(())
}

pub(crate) fn edit_error(e: EditError) -> Error {
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
pub(crate) async fn apply(ctx: &Context, old_text: &str, text: &str) -> Result<Stack> {
    let written = crate::project::edit::write(ctx, old_text, text)?;
    let config_changed = written
        .report
        .written
        .iter()
        .any(|p| p == render::prometheus::CONFIG_PATH);
    if config_changed {
        let out_dir = written.stack().root.join(OUT_DIR);
        // A reload Prometheus refuses undoes the edit (the manifest and the files).
        reload_if_running(ctx, written.stack(), &written.tree, &out_dir).await?;
    }
    Ok(written.keep())
}

/// The stack's Prometheus when it answers, else `None` (the stack is not up: files suffice).
pub(crate) async fn running_prometheus(stack: &Stack) -> Option<clients::Prometheus> {
    let client = clients::http_client().ok()?;
    let url = crate::model::host_url(stack.prometheus.service.bind, stack.prometheus.service.port);
    let prometheus = clients::Prometheus::new(&client, url);
    matches!(prometheus.ready().await, Ok(true)).then_some(prometheus)
}

pub(crate) async fn reload_if_running(
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
    // Prometheus reloads by a signal through the engine that runs it.
    let engine = Engine::connect().await.map_err(|e| {
        crate::error::hinted(
            format!("the job list changed and Prometheus must reload, which takes the Docker Engine that runs it: {e:#}"),
            "nothing was changed; point DOCKER_HOST at the engine that runs the stack and run it again",
        )
    })?;
    // What answers at the port may be another Prometheus: only the stack's own is reloaded.
    let container = containers::container_name(&stack.project, model::PROMETHEUS);
    if !engine
        .state(&container)
        .await?
        .is_some_and(|state| state.running)
    {
        ctx.printer.note(&format!(
            "the stack's Prometheus ({container}) is not running, though something answers at {}: `monstack up` starts it with these targets",
            prometheus.base_url()
        ));
        return Ok(());
    }
    crate::stack::reconcile::reload_prometheus(
        &engine,
        &client,
        &stack.project,
        prometheus.base_url(),
        tree,
    )
    .await?;
    ctx.printer
        .status("Reloaded", "Prometheus (its job list changed)");
    // Remember the reload, so the next `up` does not repeat it.
    {
        let host = HostContext {
            out_dir,
            secret_gid: 0,
            grafana_admin_password: "",
            agent_image: None,
            host_user: (0, 0),
            host_gateway: None,
            host_root_shared: false,
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
pub(crate) async fn wait_for_targets(
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
pub(crate) fn scrape_address(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}
