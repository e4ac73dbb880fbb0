//! Reconciling the engine with the manifest (`monstack up`): render, check everything that can
//! fail before changing anything (images, ports), write the files, apply the plan (create,
//! recreate, start, reload and confirm), wait until every service is ready, apply Grafana's
//! password.

mod apply;
mod grafana;
mod host;
mod images;
mod influxdb;
mod ports;
mod readiness;
mod reload;

pub use reload::{job_names, reload_prometheus};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::future::join_all;

use crate::cli::PullPolicy;
use crate::clients;
use crate::error::Result;
use crate::layout::OUT_DIR;
use crate::model::{self, Stack};
use crate::output::Printer;
use crate::render;
use crate::render::write::write_schema;
use crate::stack::containers::{self, HostContext, MountSource};
use crate::stack::docker::Engine;
use crate::stack::plan::{self, Action};
use crate::stack::secrets;
use crate::stack::state::{mount_identity, AppliedState};

pub struct Options {
    pub pull: PullPolicy,
    pub timeout: Duration,
}

/// What `up` did, for the command to show.
pub struct Report {
    pub project: String,
    /// Whether anything was created, recreated, started, reloaded or removed.
    pub changed: bool,
    /// Every service with its URL on the host, all ready.
    pub services: Vec<(String, String)>,
    /// The generated Grafana login, on the first start of Grafana only.
    pub grafana_login: Option<GrafanaLogin>,
}

pub struct GrafanaLogin {
    pub user: String,
    pub password: String,
    /// Where the password is kept, relative to the manifest's directory.
    pub kept_in: PathBuf,
}

pub async fn up(stack: &Stack, options: &Options, printer: &Printer) -> Result<Report> {
    let tree = render::render(stack).context("rendering the stack's files")?;
    let out_dir = stack.root.join(OUT_DIR);
    let engine = Engine::connect().await?;

    let password = secrets::grafana_password(&out_dir, stack.grafana.admin_password.as_deref())?;
    let agent_image = images::prepare_agent_image(&engine, stack, printer).await?;
    let host_gateway = host::node_exporter_gateway(&engine, stack).await?;
    let host = HostContext {
        out_dir: &out_dir,
        secret_gid: apply::secret_gid(),
        grafana_admin_password: &password.desired,
        agent_image: agent_image.as_deref(),
        host_user: apply::host_user(),
        host_gateway,
        host_root_shared: host::root_is_shared(),
    };
    let specs = containers::desired(stack, &tree, &host);
    let observed = engine.project_containers(&stack.project).await?;
    let mut state = AppliedState::load(&out_dir);
    let actions = plan::plan(&specs, &observed, &state.applied);

    // Everything that can fail before a change happens comes first: images, then ports.
    let progress = printer.progress();
    images::ensure_images(
        &engine,
        &specs,
        &actions,
        options.pull,
        &progress,
        stack.starter,
    )
    .await?;
    // What each image reference names now (after `--pull always`, or a rebuild under the same
    // tag): a container running an older image is recreated.
    let mut references: Vec<&str> = specs.iter().map(|s| s.image.as_str()).collect();
    references.sort_unstable();
    references.dedup();
    let image_ids = engine.image_ids(&references).await?;
    let actions = plan::recreate_changed_images(actions, &specs, &observed, &image_ids);
    // A `.monstack/` deleted or replaced under the running stack: its containers still see the
    // old directories.
    let mounts_now: BTreeMap<String, _> = specs
        .iter()
        .map(|s| (s.service.to_string(), mount_identity(s)))
        .collect();
    let actions = plan::repair(actions, &observed, &state.mounts, &mounts_now);
    ports::check_ports(&engine, &specs, &actions, &observed).await?;

    let written = crate::render::write::write_tree(&out_dir, &tree)?;
    // A file a running service reads that had to be rewritten though the manifest did not
    // change (edited by hand, or deleted): the service reloads it.
    let actions = repair_files(actions, &specs, &written.written, &progress);
    let changing = actions.iter().any(Action::changes_anything);
    // A generated password is kept before any container gets it: an `up` that fails later
    // (a slow first start, Ctrl-C) must not leave Grafana with a password nobody saved.
    if password.generated && password.stored.is_none() {
        secrets::store_grafana_password(&out_dir, &password.desired)?;
    }
    write_schema(&out_dir).context("writing the manifest's JSON Schema")?;
    if !written.written.is_empty() {
        tracing::debug!("wrote {:?}", written.written);
    }

    if changing {
        for action in actions.iter().filter(|a| a.changes_anything()) {
            progress.line(&format!("  {action}"));
        }
    }

    engine
        .ensure_network(&containers::network_name(&stack.project), &stack.project)
        .await?;
    let existing_volumes = engine.project_volumes(&stack.project).await?;
    let grafana_volume = containers::volume_name(&stack.project, model::GRAFANA);
    let grafana_is_new = stack.grafana.enabled && !existing_volumes.contains(&grafana_volume);
    for spec in &specs {
        for mount in &spec.mounts {
            if let MountSource::Volume(name) = &mount.source {
                if !existing_volumes.contains(name) {
                    engine
                        .ensure_volume(name, &stack.project, &stack.root.display().to_string())
                        .await?;
                }
            }
        }
    }

    // Orphans first (they may hold ports), then every service in parallel.
    for action in &actions {
        if let Action::Remove { name, .. } = action {
            engine.remove(name).await?;
            progress.line(&format!("removed {name}"));
        }
    }
    let client = clients::http_client()?;
    let results = join_all(actions.iter().filter_map(|action| {
        let service = match action {
            Action::Remove { .. } => return None,
            Action::Create { service }
            | Action::Recreate { service, .. }
            | Action::Start { service }
            | Action::Reload { service }
            | Action::Keep { service } => service,
        };
        let spec = specs.iter().find(|s| s.service == service)?;
        let current = observed.iter().find(|o| o.service == *service);
        Some(apply::apply(
            &engine,
            &client,
            stack,
            &tree,
            spec,
            current,
            action,
            &password.stored,
        ))
    }))
    .await;
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(Some((id, hash))) => {
                state.applied.insert(id, hash);
            }
            Ok(None) => {}
            Err(e) => failures.push(e),
        }
    }
    // Forget containers that no longer exist; remember what the live ones mount.
    let live = if changing {
        Some(engine.project_containers(&stack.project).await?)
    } else {
        None
    };
    let live_ids: Vec<(String, String)> = match &live {
        Some(live) => live
            .iter()
            .map(|o| (o.id.clone(), o.service.clone()))
            .collect(),
        None => observed
            .iter()
            .map(|o| (o.id.clone(), o.service.clone()))
            .collect(),
    };
    let mut mounts = BTreeMap::new();
    for (id, service) in &live_ids {
        if let Some(spec) = specs.iter().find(|s| s.service == service.as_str()) {
            let identity: BTreeMap<String, u64> = mount_identity(spec)
                .into_iter()
                .map(|(path, dir)| (path, dir.inode))
                .collect();
            if !identity.is_empty() {
                mounts.insert(id.clone(), identity);
            }
        }
    }
    if changing || mounts != state.mounts {
        state
            .applied
            .retain(|id, _| live_ids.iter().any(|(live, _)| live == id));
        state.mounts = mounts;
        state.save(&out_dir)?;
    }
    if let Some(first) = failures.into_iter().next() {
        return Err(first.into());
    }

    readiness::wait_ready(
        &engine,
        &client,
        &specs,
        options.timeout,
        &progress,
        printer,
    )
    .await?;

    if let (Some(influx), Some(spec)) = (
        &stack.influxdb,
        specs.iter().find(|s| s.service == model::INFLUXDB),
    ) {
        if influxdb::ensure_database(&client, &spec.url(), influx).await? {
            progress.line(&format!(
                "  created InfluxDB's user `{}` and database `{}`",
                influx.user, influx.database
            ));
        }
    }

    if stack.grafana.enabled {
        grafana::apply_grafana_password(
            &client,
            stack,
            &specs,
            &password,
            grafana_is_new,
            &out_dir,
            printer,
        )
        .await?;
    }

    Ok(Report {
        project: stack.project.clone(),
        changed: changing,
        services: specs
            .iter()
            .map(|s| (s.service.to_string(), s.url()))
            .collect(),
        grafana_login: (password.generated && grafana_is_new).then(|| GrafanaLogin {
            user: stack.grafana.admin_user.clone(),
            password: password.desired.clone(),
            kept_in: secrets::password_path(Path::new(OUT_DIR)),
        }),
    })
}

/// Turns `Keep` into `Reload` for a service whose configuration files were rewritten although
/// nothing in the manifest changed (someone edited or deleted them), saying so.
fn repair_files(
    actions: Vec<Action>,
    specs: &[containers::ContainerSpec],
    written: &[String],
    progress: &crate::output::Progress,
) -> Vec<Action> {
    actions
        .into_iter()
        .map(|action| {
            let Action::Keep { service } = &action else {
                return action;
            };
            let Some(spec) = specs.iter().find(|s| s.service == service.as_str()) else {
                return action;
            };
            let repaired: Vec<&String> = written
                .iter()
                .filter(|path| spec.config_files.contains(path))
                .collect();
            if repaired.is_empty() {
                return action;
            }
            for path in &repaired {
                progress.line(&format!(
                    "repaired .monstack/{path} (it differed from what the manifest renders)"
                ));
            }
            match spec.reload {
                // Read at start only: a new container reads the repaired file.
                containers::Reload::None => Action::Recreate {
                    service: service.clone(),
                    reason: "a file it reads was repaired".into(),
                },
                _ => Action::Reload {
                    service: service.clone(),
                },
            }
        })
        .collect()
}
