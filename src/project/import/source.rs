//! What SOURCE names (a bundled dashboard, a file, a URL, grafana.com/ID) and getting its JSON.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

use crate::clients::grafana_com::{
    download_client, get, latest_revision, snippet, GRAFANA_COM_ENV, GRAFANA_COM_URL,
    MAX_DOWNLOAD_BYTES,
};
use crate::dashboards;
use crate::error::{Error, Result};

/// What SOURCE names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
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

/// Tells the kinds of SOURCE apart. `is_file` is asked only for things that could be paths.
pub(crate) fn parse_source(source: &str, is_file: impl Fn(&Path) -> bool) -> Result<Origin> {
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
    // Something is there, but not a file: say what, rather than "no such file".
    let not_a_file = match crate::manifest::read_input(&path, MAX_DOWNLOAD_BYTES as u64) {
        Err(e @ crate::manifest::ReadError::NotAFile(_)) => Some(e),
        _ => None,
    };
    let message = if let Some(why) = not_a_file {
        format!("cannot read {source}: {why}")
    } else if looks_like_path {
        format!("{source}: no such file")
    } else {
        format!("`{source}` is not a file, a URL, grafana.com/ID or a bundled dashboard")
    };
    Err(Error::usage(message, Some(hint)))
}

pub(crate) fn grafana_com_id(text: &str, source: &str) -> Result<u64> {
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

/// The bytes of a file, URL or grafana.com dashboard. Not found is the user's to fix (exit 2);
/// a network failure or a server error is not (exit 1).
pub(crate) async fn fetch(origin: &Origin) -> Result<Vec<u8>> {
    match origin {
        // The cap of a download applies to a file too; a FIFO or a device is refused unread.
        Origin::File(path) => {
            crate::manifest::read_input(path, MAX_DOWNLOAD_BYTES as u64).map_err(|e| {
                Error::usage(
                    format!("cannot read {}: {e}", path.display()),
                    Some("give a dashboard's JSON file".into()),
                )
            })
        }
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

/// Parses the downloaded or read bytes into a dashboard object. Grafana's own
/// `GET /api/dashboards/uid/X` answer (`{"dashboard": {...}, "meta": {...}}`) is unwrapped.
pub(crate) fn parse_dashboard(bytes: &[u8], origin: &Origin) -> Result<Value> {
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
