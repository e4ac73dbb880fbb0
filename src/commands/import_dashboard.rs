//! `monstack import-dashboard` and `monstack dashboards`: bring a Grafana dashboard into the
//! stack so that it works on the first load, and list what the stack has.
//!
//! An import goes source -> JSON -> [`dashboards::prepare`] (datasource inputs resolved against
//! the provisioned datasources) -> `dashboards/<uid>.json` next to the manifest -> a `file:`
//! entry in `dashboards:` (comments kept) -> validation -> the rendered tree. Nothing stays
//! written when any step fails. On a running stack the dashboard is also pushed through
//! Grafana's API (file provisioning only polls every few seconds), and its metric names are
//! checked against what Prometheus has, because "No data" panels are the usual problem with
//! dashboards written for other exporter versions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use serde::Deserialize;
use serde_json::Value;

use crate::clients;
use crate::dashboards::{self, slug, stable_hash};
use crate::error::{Error, Result};
use crate::files;
use crate::layout::OUT_DIR;
use crate::manifest::edit::{self, DashboardEntry, EditError};
use crate::model::{
    DashboardSource, Stack, ALERTMANAGER_DATASOURCE_UID, PROMETHEUS_DATASOURCE_UID,
};
use crate::project::{load, Context};
use crate::render;
use crate::stack::secrets;

/// Where `grafana.com/ID` dashboards come from; `MONSTACK_GRAFANA_COM_URL` points elsewhere
/// (a mirror, or a test server).
pub const GRAFANA_COM_URL: &str = "https://grafana.com";
const GRAFANA_COM_ENV: &str = "MONSTACK_GRAFANA_COM_URL";
/// Where imported dashboard files go, relative to the manifest's directory.
pub const IMPORT_DIR: &str = "dashboards";
/// Downloads: dashboards are at most a few MB; a slow mirror still gets a minute.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_DOWNLOAD_BYTES: usize = 32 * 1024 * 1024;

pub struct Import {
    pub source: String,
    pub folder: Option<String>,
    pub force: bool,
}

/// What SOURCE names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Bundled(String),
    File(PathBuf),
    Url(String),
    GrafanaCom(u64),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Bundled(name) => write!(f, "bundled dashboard `{name}`"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Url(url) => f.write_str(url),
            Origin::GrafanaCom(id) => write!(f, "grafana.com dashboard {id}"),
        }
    }
}

pub async fn run(ctx: &Context, args: Import) -> Result<()> {
    let origin = parse_source(&args.source, |path| path.is_file())?;
    let folder = args
        .folder
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty());
    let text =
        crate::project::read_manifest_text(ctx, "imported dashboards are listed in the manifest")?;
    let stack = load(ctx)?;
    let imported = match origin {
        Origin::Bundled(name) => import_bundled(ctx, &text, &stack, &name, folder)?,
        other => {
            let bytes = fetch(&other).await?;
            let json = parse_dashboard(&bytes, &other)?;
            import_json(ctx, &text, &stack, json, &other, folder, args.force)?
        }
    };
    publish(ctx, &imported).await
}

/// What was imported, for the running stack.
struct Imported {
    stack: Stack,
    json: Value,
    folder: Option<String>,
}

fn title_of(json: &Value) -> &str {
    json.get("title")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn uid_of(json: &Value) -> &str {
    json.get("uid").and_then(Value::as_str).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// SOURCE

/// Tells the kinds of SOURCE apart. `is_file` is asked only for things that could be paths.
fn parse_source(source: &str, is_file: impl Fn(&Path) -> bool) -> Result<Origin> {
    let source = source.trim();
    if let Some(id) = source.strip_prefix("gnet:") {
        return grafana_com_id(id, source).map(Origin::GrafanaCom);
    }
    let without_scheme = source
        .strip_prefix("https://")
        .or_else(|| source.strip_prefix("http://"));
    let host_path = without_scheme.unwrap_or(source);
    let host_path = host_path.strip_prefix("www.").unwrap_or(host_path);
    if let Some(rest) = host_path.strip_prefix("grafana.com/") {
        // grafana.com/1860, and the page addresses people copy from the browser:
        // https://grafana.com/grafana/dashboards/1860-node-exporter-full/
        let rest = rest
            .strip_prefix("grafana/dashboards/")
            .or_else(|| rest.strip_prefix("dashboards/"))
            .unwrap_or(rest);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after = &rest[digits.len()..];
        if !digits.is_empty() && (after.is_empty() || after.starts_with(['-', '/', '?', '#'])) {
            return grafana_com_id(&digits, source).map(Origin::GrafanaCom);
        }
        if without_scheme.is_none() {
            return Err(Error::usage(
                format!("`{source}` names no grafana.com dashboard"),
                Some("write grafana.com/ID or gnet:ID, e.g. grafana.com/1860".into()),
            ));
        }
    }
    if without_scheme.is_some() {
        return Ok(Origin::Url(source.to_string()));
    }
    let path = PathBuf::from(source);
    let names = dashboards::bundled_names();
    if names.contains(&source) && !is_file(&path) {
        return Ok(Origin::Bundled(source.to_string()));
    }
    if is_file(&path) {
        return Ok(Origin::File(path));
    }
    let looks_like_path = source.contains(['/', '\\']) || source.ends_with(".json");
    let hint = match crate::manifest::diagnostics::closest(source, names.iter().copied()) {
        Some(near) if !looks_like_path => format!("did you mean the bundled `{near}`?"),
        _ => format!(
            "give a JSON file, an http(s) URL, grafana.com/ID, or a bundled dashboard: {}",
            names.join(", ")
        ),
    };
    let message = if looks_like_path {
        format!("{source}: no such file")
    } else {
        format!("`{source}` is not a file, a URL, grafana.com/ID or a bundled dashboard")
    };
    Err(Error::usage(message, Some(hint)))
}

fn grafana_com_id(text: &str, source: &str) -> Result<u64> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            Error::usage(
                format!("`{source}`: a grafana.com dashboard id is a number"),
                Some("e.g. grafana.com/1860 or gnet:1860".into()),
            )
        })
}

/// The client for downloads from the internet: unlike [`clients::http_client`] it honours
/// `HTTPS_PROXY`, and gives slow mirrors more time.
fn download_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("monstack/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
        .map_err(Error::from)
}

/// The bytes of a file, URL or grafana.com dashboard. Not found is the user's to fix (exit 2);
/// a network failure or a server error is not (exit 1).
async fn fetch(origin: &Origin) -> Result<Vec<u8>> {
    match origin {
        Origin::File(path) => std::fs::read(path)
            .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display()), None)),
        Origin::Url(url) => {
            let client = download_client()?;
            get(&client, url, || {
                Error::usage(
                    format!("{url}: not found (HTTP 404)"),
                    Some("check the address; nothing was changed".into()),
                )
            })
            .await
        }
        Origin::GrafanaCom(id) => {
            let client = download_client()?;
            let base = std::env::var(GRAFANA_COM_ENV)
                .ok()
                .filter(|b| !b.trim().is_empty())
                .unwrap_or_else(|| GRAFANA_COM_URL.to_string());
            let base = base.trim().trim_end_matches('/');
            let unknown = || {
                Error::usage(
                    format!("grafana.com has no dashboard {id}"),
                    Some(
                        "the id is the number in https://grafana.com/grafana/dashboards/ID; nothing was changed"
                            .into(),
                    ),
                )
            };
            let revisions_url = format!("{base}/api/dashboards/{id}/revisions");
            let body = get(&client, &revisions_url, unknown).await?;
            let revision = latest_revision(&body)
                .with_context(|| format!("reading the revisions of {origin} from {revisions_url}"))?
                .ok_or_else(unknown)?;
            let download = format!("{base}/api/dashboards/{id}/revisions/{revision}/download");
            get(&client, &download, unknown).await
        }
        Origin::Bundled(_) => unreachable!("bundled dashboards are not fetched"),
    }
}

/// `{"items": [{"revision": N}, ...]}` -> the highest N; `None` when there is none.
fn latest_revision(body: &[u8]) -> anyhow::Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Revisions {
        #[serde(default)]
        items: Vec<Revision>,
    }
    #[derive(Deserialize)]
    struct Revision {
        revision: u64,
    }
    let revisions: Revisions = serde_json::from_slice(body).map_err(|e| {
        anyhow!(
            "expected {{\"items\": [{{\"revision\": N}}]}}: {e}: {}",
            snippet(body)
        )
    })?;
    Ok(revisions.items.iter().map(|r| r.revision).max())
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    not_found: impl FnOnce() -> Error,
) -> Result<Vec<u8>> {
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .with_context(|| format!("downloading {url}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(not_found());
    }
    if let Some(length) = response.content_length() {
        if length > MAX_DOWNLOAD_BYTES as u64 {
            return Err(
                anyhow!("downloading {url}: {length} bytes is too large for a dashboard").into(),
            );
        }
    }
    let body = response
        .bytes()
        .await
        .with_context(|| format!("downloading {url}"))?;
    if !status.is_success() {
        return Err(anyhow!("downloading {url}: HTTP {status}: {}", snippet(&body)).into());
    }
    if body.len() > MAX_DOWNLOAD_BYTES {
        return Err(anyhow!("downloading {url}: the answer is too large for a dashboard").into());
    }
    Ok(body.to_vec())
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Parses the downloaded or read bytes into a dashboard object. Grafana's own
/// `GET /api/dashboards/uid/X` answer (`{"dashboard": {...}, "meta": {...}}`) is unwrapped.
fn parse_dashboard(bytes: &[u8], origin: &Origin) -> Result<Value> {
    let json: Value = serde_json::from_slice(bytes).map_err(|e| {
        let looks_html = snippet(bytes).trim_start().starts_with('<');
        Error::usage(
            format!(
                "{origin} is not JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
            Some(if looks_html {
                "that is a web page; use the dashboard's JSON (Export > Save to file, or its download link)".into()
            } else {
                "a dashboard is the JSON Grafana exports (Share > Export > Save to file)".into()
            }),
        )
    })?;
    let json = match json {
        Value::Object(mut map)
            if !map.contains_key("panels")
                && !map.contains_key("rows")
                && map.get("dashboard").is_some_and(Value::is_object) =>
        {
            map.remove("dashboard").expect("checked above")
        }
        other => other,
    };
    let is_dashboard = json.as_object().is_some_and(|map| {
        map.contains_key("panels") || map.contains_key("rows") || map.contains_key("title")
    });
    if !is_dashboard {
        return Err(Error::usage(
            format!("{origin} is not a Grafana dashboard: expected a JSON object with `title` and `panels`"),
            Some("a dashboard is the JSON Grafana exports (Share > Export > Save to file)".into()),
        ));
    }
    Ok(json)
}

// ---------------------------------------------------------------------------------------------
// Into the project

/// The stack's provisioned datasources as `(uid, plugin type)`, as the loader gives
/// [`dashboards::prepare`].
fn provisioned_datasources(stack: &Stack) -> Vec<(String, String)> {
    let mut out = vec![(PROMETHEUS_DATASOURCE_UID.into(), "prometheus".into())];
    if stack.alertmanager.is_some() {
        out.push((ALERTMANAGER_DATASOURCE_UID.into(), "alertmanager".into()));
    }
    out.extend(
        stack
            .datasources
            .iter()
            .map(|d| (d.uid.clone(), d.kind.clone())),
    );
    out
}

fn import_json(
    ctx: &Context,
    text: &str,
    stack: &Stack,
    json: Value,
    origin: &Origin,
    folder: Option<String>,
    force: bool,
) -> Result<Imported> {
    let prepared = dashboards::prepare(json, &provisioned_datasources(stack))
        .map_err(|e| Error::usage(format!("{origin}: {e}"), Some(e.hint())))?;
    let uid = uid_of(&prepared).to_string();
    let relative = format!("{IMPORT_DIR}/{uid}.json");
    if let Some(other) = stack
        .dashboards
        .iter()
        .find(|d| uid_of(&d.json) == uid && !is_same_file(&d.source, &relative))
    {
        return Err(Error::usage(
            format!(
                "the manifest already has a dashboard with the uid `{uid}`: {}",
                other.source
            ),
            Some("remove it from `dashboards:` first, or change the uid in one of them; nothing was changed".into()),
        ));
    }

    let mut contents = serde_json::to_string_pretty(&prepared).context("writing the dashboard")?;
    contents.push('\n');
    let path = stack.root.join(&relative);
    let previous = match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(anyhow!(e)
                .context(format!("reading {}", path.display()))
                .into())
        }
    };
    // Importing dashboards/x.json itself rewrites it in place: no --force needed for that.
    let in_place = matches!(origin, Origin::File(source)
        if std::fs::canonicalize(source).ok() == std::fs::canonicalize(&path).ok());
    if previous
        .as_ref()
        .is_some_and(|old| old != contents.as_bytes())
        && !force
        && !in_place
    {
        return Err(Error::usage(
            format!("{relative} exists and holds another version of this dashboard"),
            Some("add --force to replace it; nothing was changed".into()),
        ));
    }
    let edited = edit::add_dashboard(
        text,
        DashboardEntry::File {
            path: relative.clone(),
            folder: folder.clone(),
        },
    )
    .map_err(edit_error)?;

    // The loader reads the file the manifest names, so it must be in place to validate the
    // edit; it is taken back when validation or rendering fails.
    let dir = stack.root.join(IMPORT_DIR);
    let created_dir = !dir.exists();
    let undo = |previous: &Option<Vec<u8>>| {
        match previous {
            Some(bytes) => {
                let _ = files::write_atomic(&path, bytes, files::MODE_PUBLIC);
            }
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
        if created_dir {
            let _ = std::fs::remove_dir(&dir);
        }
    };
    if previous.as_deref() != Some(contents.as_bytes()) {
        files::write_atomic(&path, contents.as_bytes(), files::MODE_PUBLIC)?;
    }
    let result = validate_and_write(ctx, text, &edited);
    if result.is_err() {
        undo(&previous);
    }
    let new_stack = result?;

    let action = match &previous {
        None => "Imported",
        Some(old) if old != contents.as_bytes() => "Replaced",
        Some(_) => "Unchanged",
    };
    ctx.printer.status(
        action,
        &format!(
            "{} (uid {uid}) from {origin} into {relative}{}",
            quoted_title(&prepared),
            folder_note(folder.as_deref())
        ),
    );
    Ok(Imported {
        stack: new_stack,
        json: prepared,
        folder,
    })
}

fn import_bundled(
    ctx: &Context,
    text: &str,
    stack: &Stack,
    name: &str,
    folder: Option<String>,
) -> Result<Imported> {
    let json = dashboards::bundled(name).expect("parse_source checked the name");
    let listed = stack
        .dashboards
        .iter()
        .find(|d| d.source == DashboardSource::Bundled(name.to_string()));
    let edited = match listed {
        Some(d) if d.folder == folder => text.to_string(),
        Some(d) => {
            return Err(Error::usage(
                format!(
                    "the bundled dashboard `{name}` is already listed, in the folder {}",
                    d.folder.as_deref().unwrap_or("General")
                ),
                Some("change its `folder` in monstack.yaml; nothing was changed".into()),
            ))
        }
        None => add_bundled(text, name, folder.as_deref())?,
    };
    let new_stack = validate_and_write(ctx, text, &edited)?;
    let action = if listed.is_some() {
        "Unchanged"
    } else {
        "Added"
    };
    ctx.printer.status(
        action,
        &format!(
            "bundled dashboard {name} ({}){}",
            quoted_title(&json),
            folder_note(folder.as_deref())
        ),
    );
    let json = new_stack
        .dashboards
        .iter()
        .find(|d| d.source == DashboardSource::Bundled(name.to_string()))
        .map(|d| d.json.clone())
        .unwrap_or(json);
    Ok(Imported {
        stack: new_stack,
        json,
        folder,
    })
}

/// `- name`, or `{bundled: name, folder: F}` with a folder. [`edit::add_dashboard`] writes
/// the folder only for files, so the entry is written as a file entry with a placeholder path
/// whose `file:` key is then renamed (the caller checked that the name is not listed yet).
fn add_bundled(text: &str, name: &str, folder: Option<&str>) -> Result<String> {
    let Some(folder) = folder else {
        return edit::add_dashboard(text, DashboardEntry::Bundled(name.to_string()))
            .map_err(edit_error);
    };
    const PLACEHOLDER: &str = "monstack-bundled-dashboard-placeholder";
    if text.contains(PLACEHOLDER) {
        return Err(anyhow!("the manifest contains `{PLACEHOLDER}`; remove it").into());
    }
    let edited = edit::add_dashboard(
        text,
        DashboardEntry::File {
            path: PLACEHOLDER.to_string(),
            folder: Some(folder.to_string()),
        },
    )
    .map_err(edit_error)?;
    let entry = format!("file: {PLACEHOLDER}");
    if edited.matches(&entry).count() != 1 {
        return Err(anyhow!("internal error: could not place the bundled dashboard entry").into());
    }
    Ok(edited.replacen(&entry, &format!("bundled: {name}"), 1))
}

fn quoted_title(json: &Value) -> String {
    format!("\"{}\"", title_of(json))
}

fn folder_note(folder: Option<&str>) -> String {
    folder.map_or(String::new(), |f| format!(", folder {f}"))
}

/// `dashboards/x.json` and `./dashboards/x.json` are one file.
fn is_same_file(source: &DashboardSource, relative: &str) -> bool {
    match source {
        DashboardSource::File(path) => {
            let text = path.to_string_lossy();
            text.trim_start_matches("./") == relative
        }
        DashboardSource::Bundled(_) => false,
    }
}

fn edit_error(e: EditError) -> Error {
    let hint = match e {
        EditError::DashboardConflict { .. } => {
            "change its `folder` in monstack.yaml instead; nothing was changed"
        }
        _ => "edit monstack.yaml by hand; nothing was changed",
    };
    Error::usage(e.to_string(), Some(hint.to_string()))
}

/// Loads the edited manifest (nothing is written when it is invalid), then writes it and the
/// rendered tree.
fn validate_and_write(ctx: &Context, old_text: &str, text: &str) -> Result<Stack> {
    let stack = crate::project::load_text(ctx, text)?;
    let tree = render::render(&stack).context("rendering the stack's files")?;
    if text != old_text {
        files::write_atomic(&ctx.file, text.as_bytes(), files::mode_of(&ctx.file))?;
    }
    crate::render::write::write_tree(&stack.root.join(OUT_DIR), &tree)?;
    Ok(stack)
}

// ---------------------------------------------------------------------------------------------
// The running stack

/// Pushes the dashboard to a running Grafana and checks its metric names against a running
/// Prometheus. Either being down is not an error: the provisioned file is enough.
async fn publish(ctx: &Context, imported: &Imported) -> Result<()> {
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

async fn push(
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
fn folder_uid(title: &str) -> String {
    let uid = slug(title, dashboards::MAX_UID_LEN);
    if uid.is_empty() {
        format!("folder-{:016x}", stable_hash(title))
    } else {
        uid
    }
}

/// One line per problem: a whole family of metrics absent (the exporter is probably not
/// scraped), or one name absent with the closest name Prometheus has.
fn compatibility_lines(used: &BTreeSet<String>, available: &BTreeSet<String>) -> Vec<String> {
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

fn report_compatibility(ctx: &Context, dashboard: &Value, available: &BTreeSet<String>) {
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

// ---------------------------------------------------------------------------------------------
// `monstack dashboards`

pub fn list(ctx: &Context) -> Result<()> {
    let bundled: Vec<Vec<String>> = dashboards::bundled_names()
        .into_iter()
        .filter_map(|name| {
            let json = dashboards::bundled(name)?;
            Some(vec![
                name.to_string(),
                title_of(&json).to_string(),
                uid_of(&json).to_string(),
            ])
        })
        .collect();
    ctx.printer
        .result("Bundled (monstack import-dashboard NAME):", false);
    ctx.printer.table(&["NAME", "TITLE", "UID"], &bundled);
    let stack = load(ctx)?;
    let rows: Vec<Vec<String>> = stack
        .dashboards
        .iter()
        .map(|d| {
            vec![
                d.source.to_string(),
                d.folder.clone().unwrap_or_else(|| "General".into()),
                uid_of(&d.json).to_string(),
                title_of(&d.json).to_string(),
            ]
        })
        .collect();
    ctx.printer.result("", false);
    ctx.printer
        .result(&format!("In {}:", ctx.file.display()), false);
    if rows.is_empty() {
        ctx.printer.result("(none)", false);
    } else {
        ctx.printer
            .table(&["SOURCE", "FOLDER", "UID", "TITLE"], &rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Result<Origin> {
        parse_source(source, |path| path == Path::new("exists.json"))
    }

    #[test]
    fn sources_are_told_apart() {
        assert_eq!(parse("gnet:1860").unwrap(), Origin::GrafanaCom(1860));
        assert_eq!(parse("grafana.com/1860").unwrap(), Origin::GrafanaCom(1860));
        assert_eq!(
            parse("https://grafana.com/grafana/dashboards/1860-node-exporter-full/").unwrap(),
            Origin::GrafanaCom(1860)
        );
        assert_eq!(
            parse("https://www.grafana.com/dashboards/7362").unwrap(),
            Origin::GrafanaCom(7362)
        );
        assert_eq!(
            parse("https://example.com/d.json").unwrap(),
            Origin::Url("https://example.com/d.json".into())
        );
        assert_eq!(
            parse("https://grafana.com/api/other").unwrap(),
            Origin::Url("https://grafana.com/api/other".into())
        );
        assert_eq!(
            parse("exists.json").unwrap(),
            Origin::File("exists.json".into())
        );
        assert_eq!(
            parse("go-runtime").unwrap(),
            Origin::Bundled("go-runtime".into())
        );
        for bad in [
            "gnet:abc",
            "gnet:0",
            "grafana.com/x",
            "missing.json",
            "go-runtim",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let Error::Usage { hint, .. } = parse("go-runtim").unwrap_err() else {
            panic!()
        };
        assert!(hint.unwrap().contains("go-runtime"));
    }

    #[test]
    fn revisions_pick_the_highest() {
        let body = br#"{"items":[{"revision":3,"x":1},{"revision":12},{"revision":7}],"total":3}"#;
        assert_eq!(latest_revision(body).unwrap(), Some(12));
        assert_eq!(latest_revision(br#"{"items":[]}"#).unwrap(), None);
        assert!(latest_revision(b"<html>").is_err());
    }

    #[test]
    fn dashboards_are_recognised_and_unwrapped() {
        let origin = Origin::File("d.json".into());
        assert!(parse_dashboard(b"{\"title\": \"x\", \"panels\": []}", &origin).is_ok());
        let wrapped = br#"{"dashboard": {"title": "x", "panels": []}, "meta": {}}"#;
        assert_eq!(parse_dashboard(wrapped, &origin).unwrap()["title"], "x");
        for bad in [&b"<html></html>"[..], b"[1, 2]", b"{\"items\": []}", b""] {
            let err = parse_dashboard(bad, &origin).unwrap_err();
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn compatibility_groups_absent_families_and_suggests_close_names() {
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        let used = set(&[
            "node_memory_MemTotal",
            "node_cpu_seconds_total",
            "apache_up",
            "apache_workers",
            "node_weird_thing",
        ]);
        let available = set(&["node_memory_MemTotal_bytes", "node_cpu_seconds_total", "up"]);
        assert_eq!(
            compatibility_lines(&used, &available),
            [
                "`apache_*` (2 names): Prometheus has no `apache_` metrics at all; is their exporter scraped?",
                "`node_memory_MemTotal` -> did you mean `node_memory_MemTotal_bytes`?",
                "`node_weird_thing`: no similar name",
            ]
        );
    }

    #[test]
    fn folder_uids() {
        assert_eq!(folder_uid("Shop / Orders"), "shop-orders");
        assert!(folder_uid("订单").starts_with("folder-"));
    }

    #[test]
    fn bundled_entries_with_a_folder() {
        let text = "project: p\ndashboards:\n  - go-runtime  # ours\n";
        assert_eq!(
            add_bundled(text, "rust-runtime", Some("Rust")).unwrap(),
            "project: p\ndashboards:\n  - go-runtime  # ours\n  - bundled: rust-runtime\n    folder: Rust\n"
        );
        assert_eq!(
            add_bundled("dashboards: [go-runtime]\n", "rust-runtime", Some("R")).unwrap(),
            "dashboards: [go-runtime, {bundled: rust-runtime, folder: R}]\n"
        );
        assert_eq!(
            add_bundled(text, "rust-runtime", None).unwrap(),
            "project: p\ndashboards:\n  - go-runtime  # ours\n  - rust-runtime\n"
        );
    }
}
