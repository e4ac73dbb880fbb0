//! `monstack up`: render, reconcile the containers with the plan, wait until every service is
//! ready, apply Grafana's password, and show where everything is.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use futures_util::future::join_all;

use crate::cli::PullPolicy;
use crate::clients::{self, ReloadError};
use crate::commands::{load, write_schema, Context};
use crate::error::{Error, Result};
use crate::files;
use crate::layout::OUT_DIR;
use crate::model::{self, Stack};
use crate::output::{Progress, PullBars};
use crate::render::{self, Tree};
use crate::stack::containers::{self, ContainerSpec, HostContext, MountSource, Reload};
use crate::stack::docker::Engine;
use crate::stack::plan::{self, Action, Observed};
use crate::stack::secrets;

pub struct Options {
    pub pull: PullPolicy,
    pub timeout: Duration,
}

/// What `up` remembers between runs (`.monstack/state.json`): the config hash each container
/// has applied through a reload, since container labels cannot change after creation.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AppliedState {
    #[serde(default)]
    pub applied: BTreeMap<String, String>,
}

impl AppliedState {
    pub fn load(out_dir: &Path) -> AppliedState {
        std::fs::read(out_dir.join(crate::layout::STATE_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, out_dir: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        files::write_atomic(
            &out_dir.join(crate::layout::STATE_FILE),
            text.as_bytes(),
            files::MODE_PUBLIC,
        )
    }
}

pub async fn run(ctx: &Context, options: Options) -> Result<()> {
    let stack = load(ctx)?;
    let tree = render::render(&stack).context("rendering the stack's files")?;
    let out_dir = stack.root.join(OUT_DIR);
    let engine = Engine::connect().await?;
    let printer = &ctx.printer;

    let password = secrets::grafana_password(&out_dir, stack.grafana.admin_password.as_deref())?;
    let agent_image = prepare_agent_image(&engine, &stack, printer).await?;
    let host = HostContext {
        out_dir: &out_dir,
        secret_gid: secret_gid(),
        grafana_admin_password: &password.desired,
        agent_image: agent_image.as_deref(),
        host_user: host_user(),
    };
    let specs = containers::desired(&stack, &tree, &host);
    let observed = engine.project_containers(&stack.project).await?;
    let mut state = AppliedState::load(&out_dir);
    let actions = plan::plan(&specs, &observed, &state.applied);
    let changing = actions.iter().any(Action::changes_anything);

    // Everything that can fail before a change happens comes first: images, then ports.
    let progress = printer.progress();
    ensure_images(&engine, &specs, &actions, options.pull, &progress).await?;
    check_ports(&engine, &specs, &actions, &observed).await?;

    let written = crate::render::write::write_tree(&out_dir, &tree)?;
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
                    engine.ensure_volume(name, &stack.project).await?;
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
        Some(apply(
            &engine,
            &client,
            &stack,
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
    // Forget containers that no longer exist.
    if changing {
        let live: Vec<String> = engine
            .project_containers(&stack.project)
            .await?
            .into_iter()
            .map(|o| o.id)
            .collect();
        state.applied.retain(|id, _| live.contains(id));
        state.save(&out_dir)?;
    }
    if let Some(first) = failures.into_iter().next() {
        return Err(first.into());
    }

    wait_ready(
        &engine,
        &client,
        &specs,
        options.timeout,
        &progress,
        printer,
    )
    .await?;

    if stack.grafana.enabled {
        apply_grafana_password(
            &client,
            &stack,
            &specs,
            &password,
            grafana_is_new,
            &out_dir,
            printer,
        )
        .await?;
    }

    if !changing {
        printer.status(
            "Unchanged",
            &format!("{}: every service is up to date", stack.project),
        );
    }
    let rows: Vec<Vec<String>> = specs
        .iter()
        .map(|s| vec![s.service.to_string(), "ready".to_string(), s.url()])
        .collect();
    printer.table(&["SERVICE", "STATE", "URL"], &rows);
    if password.generated && grafana_is_new {
        printer.result(
            &format!(
                "\nGrafana login: {} / {}\n(shown once; kept in {})",
                stack.grafana.admin_user,
                password.desired,
                secrets::password_path(Path::new(OUT_DIR)).display()
            ),
            true,
        );
    }
    Ok(())
}

/// The agent's image, built from this executable when missing. `None` when the stack needs no
/// agent, or when this executable cannot run in a Linux container (then the user is told to
/// run `monstack agent` on the host).
async fn prepare_agent_image(
    engine: &Engine,
    stack: &Stack,
    printer: &crate::output::Printer,
) -> Result<Option<String>> {
    if stack.agent.is_none() {
        return Ok(None);
    }
    if let Some(reason) = crate::stack::agent_image::unsupported_reason() {
        printer.note(&format!("{reason}: the agent does not run in the stack; run `monstack agent` on this machine (it reads this manifest)"));
        return Ok(None);
    }
    let exe = std::env::current_exe().context("finding the monstack executable")?;
    // A cheap identity of the executable (no need to read it on every `up`).
    let meta = std::fs::metadata(&exe).with_context(|| format!("reading {}", exe.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let identity = format!("{}:{}:{modified}", exe.display(), meta.len());
    let tag = crate::stack::agent_image::tag(identity.as_bytes());
    if !engine.image_exists(&tag).await? {
        printer.status(
            "Building",
            &format!("the agent image {tag} from {}", exe.display()),
        );
        let context = crate::stack::agent_image::build_context(&exe)?;
        let mut lines = Vec::new();
        engine
            .build_image(context, &tag, &mut |line| lines.push(line.to_string()))
            .await
            .map_err(|e| anyhow!("{e:#}\n  builder output:\n    {}", lines.join("\n    ")))?;
    }
    Ok(Some(tag))
}

/// `uid:gid` of the user running monstack.
fn host_user() -> (u32, u32) {
    #[cfg(unix)]
    {
        // SAFETY: geteuid/getegid have no preconditions and cannot fail.
        unsafe { (libc::geteuid(), libc::getegid()) }
    }
    #[cfg(not(unix))]
    {
        (0, 0)
    }
}

/// The group owning the rendered secret files: ours.
fn secret_gid() -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: getegid has no preconditions and cannot fail.
        unsafe { libc::getegid() }
    }
    #[cfg(not(unix))]
    {
        0
    }
}

async fn ensure_images(
    engine: &Engine,
    specs: &[ContainerSpec],
    actions: &[Action],
    policy: PullPolicy,
    progress: &Progress,
) -> Result<()> {
    let mut needed: Vec<&str> = Vec::new();
    for spec in specs {
        let creates = actions.iter().any(|a| a.needs_port() == Some(spec.service));
        if (creates || policy == PullPolicy::Always) && !needed.contains(&spec.image.as_str()) {
            needed.push(&spec.image);
        }
    }
    let bars = PullBars::new(progress);
    for image in needed {
        let present = engine.image_exists(image).await?;
        match policy {
            PullPolicy::Never if !present => {
                return Err(Error::usage(
                    format!("image {image} is not on this machine and --pull never was given"),
                    Some("pull or build it, or run with --pull missing".to_string()),
                ))
            }
            PullPolicy::Missing if present => continue,
            PullPolicy::Never => continue,
            _ => {}
        }
        progress.line(&format!("pulling {image}"));
        engine.pull(image, &bars).await.map_err(|e| {
            anyhow!("{e:#}\n  hint: check the image names in the manifest (`<service>.image`) and the network; nothing was changed")
        })?;
    }
    Ok(())
}

/// Every host port a container is about to take must be free, or held by this project.
async fn check_ports(
    engine: &Engine,
    specs: &[ContainerSpec],
    actions: &[Action],
    observed: &[Observed],
) -> Result<()> {
    let mut published: Option<Vec<crate::stack::docker::PublishedBy>> = None;
    for action in actions {
        let Some(service) = action.needs_port() else {
            continue;
        };
        let Some(spec) = specs.iter().find(|s| s.service == service) else {
            continue;
        };
        let port = spec.port.host_port;
        if std::net::TcpListener::bind((spec.port.host_ip, port)).is_ok() {
            continue;
        }
        // A container an interrupted `up` created and the engine has started since it was
        // listed holds its own port: it is the one this action starts.
        if matches!(action, Action::Start { .. })
            && engine
                .state(&spec.name)
                .await?
                .is_some_and(|state| state.running)
        {
            continue;
        }
        if published.is_none() {
            published = Some(engine.published_ports().await?);
        }
        let holder = published
            .as_ref()
            .and_then(|list| list.iter().find(|p| p.host_port == port));
        if let Some(holder) = holder {
            if observed.iter().any(|o| o.name == holder.container) {
                // Ours: the container being recreated, or an orphan removed before creating.
                continue;
            }
        }
        let by = match holder {
            Some(holder) => format!("the container {}", holder.container),
            None => "another program".to_string(),
        };
        return Err(Error::usage(
            format!("port {port} for {service} is already in use by {by}; nothing was changed"),
            Some(format!("stop it, or give {service} another port in the manifest (`{service}: {{port: ...}}`)")),
        ));
    }
    Ok(())
}

/// Carries out one service's action. Returns the (container id, config hash) to remember
/// after a reload.
#[allow(clippy::too_many_arguments)]
async fn apply(
    engine: &Engine,
    client: &reqwest::Client,
    stack: &Stack,
    tree: &Tree,
    spec: &ContainerSpec,
    current: Option<&Observed>,
    action: &Action,
    stored_password: &Option<String>,
) -> anyhow::Result<Option<(String, String)>> {
    match action {
        Action::Create { .. } => {
            engine.create(spec, &stack.project).await?;
            engine.start(&spec.name).await?;
        }
        Action::Recreate { .. } => {
            engine.remove(&spec.name).await?;
            engine.create(spec, &stack.project).await?;
            engine.start(&spec.name).await?;
        }
        Action::Start { .. } => {
            engine.start(&spec.name).await?;
            if let Some(current) = current {
                return Ok(Some((current.id.clone(), spec.config_hash.clone())));
            }
        }
        Action::Reload { .. } => {
            reload(client, stack, tree, spec, stored_password).await?;
            if let Some(current) = current {
                return Ok(Some((current.id.clone(), spec.config_hash.clone())));
            }
        }
        Action::Keep { .. } | Action::Remove { .. } => {}
    }
    Ok(None)
}

/// Reloads a running service and confirms the new configuration is the one it runs.
async fn reload(
    client: &reqwest::Client,
    stack: &Stack,
    tree: &Tree,
    spec: &ContainerSpec,
    stored_password: &Option<String>,
) -> anyhow::Result<()> {
    let url = spec.url();
    match spec.reload {
        Reload::Prometheus => reload_prometheus(client, &url, tree).await?,
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
pub async fn reload_prometheus(
    client: &reqwest::Client,
    url: &str,
    tree: &Tree,
) -> anyhow::Result<()> {
    let prometheus = clients::Prometheus::new(client, url);
    prometheus
        .reload()
        .await
        .map_err(|e| reload_error("Prometheus", e))?;
    confirm(
        "Prometheus",
        "jobs",
        job_names(tree)?,
        prometheus.loaded_job_names().await?,
    )
}

fn reload_error(service: &str, error: ReloadError) -> anyhow::Error {
    match error {
        ReloadError::Rejected(message) => anyhow!(
            "{service} rejected the new configuration, and keeps running the previous one:\n  {message}\n  hint: fix the manifest and run `monstack up` again"
        ),
        other => anyhow!("reloading {service}: {other}"),
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

/// Waits until every service answers its readiness check. A container that stops, or a
/// service not ready in time, fails with its last 20 log lines.
async fn wait_ready(
    engine: &Engine,
    client: &reqwest::Client,
    specs: &[ContainerSpec],
    timeout: Duration,
    progress: &Progress,
    printer: &crate::output::Printer,
) -> Result<()> {
    let started = Instant::now();
    let waits = specs.iter().map(|spec| async move {
        let task = progress.task(spec.service, "waiting until ready");
        let outcome = wait_one(engine, client, spec, started, timeout).await;
        match &outcome {
            Ok(()) => task.ok(&format!("ready ({:.1}s)", started.elapsed().as_secs_f64())),
            Err(why) => task.fail(why),
        }
        outcome.map_err(|why| (spec, why))
    });
    let failures: Vec<(&ContainerSpec, String)> = join_all(waits)
        .await
        .into_iter()
        .filter_map(|r| r.err())
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    for (spec, _) in &failures {
        let lines = engine.logs_tail(&spec.name, 20).await.unwrap_or_default();
        printer.note(&format!("last {} log lines of {}:", lines.len(), spec.name));
        for line in lines {
            eprintln!("  {} | {line}", spec.service);
        }
    }
    let names: Vec<String> = failures
        .iter()
        .map(|(s, why)| format!("{} ({why})", s.service))
        .collect();
    Err(Error::Other(anyhow!(
        "not ready: {}\n  hint: see the log lines above; `monstack logs SERVICE` shows more",
        names.join(", ")
    )))
}

async fn wait_one(
    engine: &Engine,
    client: &reqwest::Client,
    spec: &ContainerSpec,
    started: Instant,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let url = spec.url();
    let deadline = started + timeout;
    // Read lazily: a service that is ready at the first probe costs no inspect call.
    let mut restarts_before: Option<i64> = None;
    let mut last_state_check = Instant::now() - Duration::from_secs(5);
    // Quick probes first (services often become ready within tens of milliseconds), then
    // backing off to a calm pace.
    let mut pause = Duration::from_millis(25);
    loop {
        if let Ok(true) = clients::is_ready(client, spec.service, &url).await {
            return Ok(());
        }
        if restarts_before.is_none() {
            restarts_before = Some(match engine.state(&spec.name).await {
                Ok(Some(state)) => state.restart_count,
                _ => 0,
            });
        }
        let restarts_before = restarts_before.unwrap_or(0);
        if last_state_check.elapsed() >= Duration::from_secs(1) {
            last_state_check = Instant::now();
            match engine.state(&spec.name).await {
                Ok(Some(state))
                    if !state.running && !state.restarting && state.status != "created" =>
                {
                    return Err(format!(
                        "the container {} (exit code {})",
                        state.status,
                        state.exit_code.unwrap_or(-1)
                    ));
                }
                // The restart policy brings a crashing service back again and again: a
                // container that restarted while we wait for it is not going to get ready.
                Ok(Some(state)) if state.restarting || state.restart_count > restarts_before => {
                    return Err(format!(
                        "the container keeps exiting (exit code {}) and restarting",
                        state.exit_code.unwrap_or(-1)
                    ));
                }
                Ok(None) => return Err("the container is gone".into()),
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("not ready after {}s at {url}", timeout.as_secs()));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Grafana reads its admin password from the environment only on its first start: afterwards a
/// changed password is applied through its API, authenticated with the stored one.
async fn apply_grafana_password(
    client: &reqwest::Client,
    stack: &Stack,
    specs: &[ContainerSpec],
    password: &secrets::GrafanaPassword,
    fresh_volume: bool,
    out_dir: &Path,
    printer: &crate::output::Printer,
) -> Result<()> {
    let Some(spec) = specs.iter().find(|s| s.service == model::GRAFANA) else {
        return Ok(());
    };
    if fresh_volume || password.stored.is_none() {
        if !fresh_volume && password.stored.is_none() {
            printer.warn("Grafana's data volume is older than .monstack/secrets/: it keeps the admin password it had; put that password into .monstack/secrets/grafana-admin-password to let monstack manage it");
        }
        secrets::store_grafana_password(out_dir, &password.desired)?;
        return Ok(());
    }
    if password.needs_change() {
        let stored = password.stored.clone().unwrap_or_default();
        let grafana = clients::Grafana::new(client, spec.url(), &stack.grafana.admin_user, stored);
        grafana.change_admin_password(&password.desired).await?;
        secrets::store_grafana_password(out_dir, &password.desired)?;
        printer.status("Changed", "Grafana's admin password (from the manifest)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{ColorChoice, Printer};
    use crate::render::testkit;
    use wiremock::matchers::{basic_auth, body_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// The full test stack with Grafana published where the mock server listens.
    fn grafana_specs(server: &MockServer, out_dir: &Path) -> (Stack, Vec<ContainerSpec>) {
        let mut stack = testkit::full();
        stack.grafana.service.port = server.address().port();
        let tree = render::render(&stack).unwrap();
        let host = HostContext {
            out_dir,
            secret_gid: 0,
            grafana_admin_password: "unused",
            agent_image: Some("monstack-agent:test"),
            host_user: (1000, 1000),
        };
        let specs = containers::desired(&stack, &tree, &host);
        (stack, specs)
    }

    fn quiet() -> Printer {
        Printer::new(true, ColorChoice::Never)
    }

    #[tokio::test]
    async fn a_changed_manifest_password_is_applied_through_the_api_with_the_stored_one() {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path("/api/user/password"))
            .and(basic_auth("admin", "old-password-1"))
            .and(body_json(serde_json::json!({"oldPassword": "old-password-1", "newPassword": "new-password-2", "confirmNew": "new-password-2"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"message": "User password changed"})))
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        secrets::store_grafana_password(dir.path(), "old-password-1").unwrap();
        let (stack, specs) = grafana_specs(&server, dir.path());
        let password = secrets::grafana_password(dir.path(), Some("new-password-2")).unwrap();
        let client = clients::http_client().unwrap();
        apply_grafana_password(
            &client,
            &stack,
            &specs,
            &password,
            false,
            dir.path(),
            &quiet(),
        )
        .await
        .unwrap();
        assert_eq!(
            secrets::grafana_password(dir.path(), None).unwrap().desired,
            "new-password-2"
        );
    }

    #[tokio::test]
    async fn a_first_start_takes_the_password_from_the_environment_without_api_calls() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let (stack, specs) = grafana_specs(&server, dir.path());
        let password = secrets::grafana_password(dir.path(), None).unwrap();
        assert!(password.generated);
        let grafana = specs.iter().find(|s| s.service == "grafana").unwrap();
        assert!(
            grafana.env_unhashed.is_empty()
                || grafana.env_unhashed[0].0 == "GF_SECURITY_ADMIN_PASSWORD"
        );
        let client = clients::http_client().unwrap();
        apply_grafana_password(
            &client,
            &stack,
            &specs,
            &password,
            true,
            dir.path(),
            &quiet(),
        )
        .await
        .unwrap();
        assert_eq!(
            secrets::grafana_password(dir.path(), None).unwrap().desired,
            password.desired
        );
    }

    #[tokio::test]
    async fn a_refused_stored_password_is_an_error_and_nothing_is_recorded() {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path("/api/user/password"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"message": "Invalid username or password"})),
            )
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        secrets::store_grafana_password(dir.path(), "stale-password").unwrap();
        let (stack, specs) = grafana_specs(&server, dir.path());
        let password = secrets::grafana_password(dir.path(), Some("wanted-password")).unwrap();
        let client = clients::http_client().unwrap();
        let error = apply_grafana_password(
            &client,
            &stack,
            &specs,
            &password,
            false,
            dir.path(),
            &quiet(),
        )
        .await
        .unwrap_err();
        let Error::Other(error) = error else {
            panic!("expected a plain failure: {error}")
        };
        let text = format!("{error:#}");
        assert!(text.contains("refused the stored admin password"), "{text}");
        assert!(
            !text.contains("stale-password") && !text.contains("wanted-password"),
            "{text}"
        );
        assert_eq!(
            secrets::grafana_password(dir.path(), None).unwrap().desired,
            "stale-password"
        );
    }
}
