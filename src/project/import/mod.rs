//! `monstack import-dashboard`: bring a Grafana dashboard into the
//! stack so that it works on the first load.
//!
//! An import goes source -> JSON -> [`dashboards::prepare`] (datasource inputs resolved against
//! the provisioned datasources, `le` / `quantile` selectors made to work on Prometheus 3, which
//! writes integral values as `1.0`) -> `dashboards/<uid>.json` next to the manifest -> a `file:`
//! entry in `dashboards:` (comments kept) -> validation -> the rendered tree. Nothing stays
//! written when any step fails. On a running stack the dashboard is also pushed through
//! Grafana's API (file provisioning only polls every few seconds), and its metric names are
//! checked against what Prometheus has, because "No data" panels are the usual problem with
//! dashboards written for other exporter versions.

mod publish;
mod source;

use anyhow::{anyhow, Context as _};
use serde_json::Value;

use crate::dashboards;
use crate::error::{Error, Result};
use crate::files;
use crate::manifest::edit::{self, DashboardEntry, EditError};
use crate::model::{
    DashboardSource, Stack, ALERTMANAGER_DATASOURCE_UID, PROMETHEUS_DATASOURCE_UID,
};
use crate::project::{load, Context};
use source::{fetch, parse_dashboard, parse_source, Origin};

/// Where imported dashboard files go, relative to the manifest's directory.
pub const IMPORT_DIR: &str = "dashboards";

pub struct Import {
    pub source: String,
    pub folder: Option<String>,
    pub force: bool,
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
    publish::publish(ctx, &imported).await
}

/// What was imported, for the running stack.
pub(crate) struct Imported {
    stack: Stack,
    json: Value,
    folder: Option<String>,
}

pub fn title_of(json: &Value) -> &str {
    json.get("title")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn uid_of(json: &Value) -> &str {
    json.get("uid").and_then(Value::as_str).unwrap_or_default()
}

/// The stack's provisioned datasources as `(uid, plugin type)`, as the loader gives
/// [`dashboards::prepare`].
pub(crate) fn provisioned_datasources(stack: &Stack) -> Vec<(String, String)> {
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

pub(crate) fn import_json(
    ctx: &Context,
    text: &str,
    stack: &Stack,
    json: Value,
    origin: &Origin,
    folder: Option<String>,
    force: bool,
) -> Result<Imported> {
    let (prepared, rewrites) =
        dashboards::prepare_with_rewrites(json, &provisioned_datasources(stack))
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
    if let Some(summary) = dashboards::rewrites_summary(&rewrites) {
        ctx.printer.note(&summary);
    }
    Ok(Imported {
        stack: new_stack,
        json: prepared,
        folder,
    })
}

pub(crate) fn import_bundled(
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
pub(crate) fn add_bundled(text: &str, name: &str, folder: Option<&str>) -> Result<String> {
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

pub(crate) fn quoted_title(json: &Value) -> String {
    format!("\"{}\"", title_of(json))
}

pub(crate) fn folder_note(folder: Option<&str>) -> String {
    folder.map_or(String::new(), |f| format!(", folder {f}"))
}

/// `dashboards/x.json` and `./dashboards/x.json` are one file.
pub(crate) fn is_same_file(source: &DashboardSource, relative: &str) -> bool {
    match source {
        DashboardSource::File(path) => {
            let text = path.to_string_lossy();
            text.trim_start_matches("./") == relative
        }
        DashboardSource::Bundled(_) => false,
    }
}

pub(crate) fn edit_error(e: EditError) -> Error {
    let hint = match e {
        EditError::DashboardConflict { .. } => {
            "change its `folder` in monstack.yaml instead; nothing was changed"
        }
        _ => "edit monstack.yaml by hand; nothing was changed",
    };
    Error::usage(e.to_string(), Some(hint.to_string()))
}

/// Validates the edited manifest (nothing is written when it is invalid), then writes it and
/// the rendered tree, all or nothing (see [`crate::project::edit`]).
pub(crate) fn validate_and_write(ctx: &Context, old_text: &str, text: &str) -> Result<Stack> {
    Ok(crate::project::edit::write(ctx, old_text, text)?.keep())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::publish::*;
    use super::source::*;
    use super::*;
    use crate::clients::grafana_com::*;

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
