//! `dashboards:`, the Grafana dashboards to provision: bundled ones by name, or JSON files
//! beside the manifest, each prepared for the stack's datasources and given a unique uid.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::dashboards;
use crate::manifest::diagnostics::closest;
use crate::manifest::reader::Reader;
use crate::manifest::spec;
use crate::manifest::yaml::{Node, Value};
use crate::model::{
    Dashboard, DashboardSource, Datasource, ALERTMANAGER_DATASOURCE_UID, PROMETHEUS_DATASOURCE_UID,
};

pub(super) fn read_dashboards(
    r: &mut Reader,
    node: &Node,
    root: &Path,
    datasources: &[Datasource],
    alertmanager: bool,
) -> Vec<Dashboard> {
    let mut available: Vec<(String, String)> =
        vec![(PROMETHEUS_DATASOURCE_UID.into(), "prometheus".into())];
    if alertmanager {
        available.push((ALERTMANAGER_DATASOURCE_UID.into(), "alertmanager".into()));
    }
    available.extend(datasources.iter().map(|d| (d.uid.clone(), d.kind.clone())));
    let bundled_names = dashboards::bundled_names();
    let mut out: Vec<Dashboard> = Vec::new();
    let mut uids: HashMap<String, usize> = HashMap::new();
    for item in r.list(node, "dashboards") {
        let (source, folder, pos) = match &item.value {
            Value::Scalar { text, .. } => (DashboardSource::Bundled(text.clone()), None, item.pos),
            _ => {
                let Some(obj) = r.object(item, &spec::DASHBOARD) else {
                    continue;
                };
                let folder = r
                    .opt_string(&obj, "folder")
                    .filter(|f| !f.trim().is_empty());
                match (obj.get("bundled"), obj.get("file")) {
                    (Some(b), None) => (
                        DashboardSource::Bundled(r.string(b, "bundled").unwrap_or_default()),
                        folder,
                        b.pos,
                    ),
                    (None, Some(f)) => (
                        DashboardSource::File(PathBuf::from(
                            r.string(f, "file").unwrap_or_default(),
                        )),
                        folder,
                        f.pos,
                    ),
                    _ => {
                        r.error(
                            obj.pos(),
                            "a dashboard needs exactly one of `bundled` or `file`",
                            Some("e.g. `- file: dashboards/orders.json` or `- go-runtime`".into()),
                        );
                        continue;
                    }
                }
            }
        };
        let json = match &source {
            DashboardSource::Bundled(name) => match dashboards::bundled(name) {
                Some(json) => json,
                None => {
                    let hint = match closest(name, bundled_names.iter().copied()) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!(
                            "bundled dashboards: {}; for a file write `- file: {name}`",
                            bundled_names.join(", ")
                        ),
                    };
                    r.error(
                        pos,
                        format!("unknown bundled dashboard `{name}`"),
                        Some(hint),
                    );
                    continue;
                }
            },
            DashboardSource::File(path) => {
                let full = root.join(path);
                // Like the manifest: a regular file only (a FIFO would hang), with a cap.
                let read = crate::manifest::read_input(&full, 32 * 1024 * 1024)
                    .map_err(|e| match e {
                        crate::manifest::ReadError::Io(e) => io_reason(&e),
                        other => other.to_string(),
                    })
                    .and_then(|bytes| {
                        String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
                    });
                let text = match read {
                    Ok(text) => text,
                    Err(reason) => {
                        r.error(
                            pos,
                            format!("cannot read dashboard `{}`: {reason}", path.display()),
                            Some("paths are relative to the manifest's directory".into()),
                        );
                        continue;
                    }
                };
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(json) if json.is_object() => json,
                    Ok(_) => {
                        r.error(
                            pos,
                            format!("dashboard `{}` is not a JSON object", path.display()),
                            Some(
                                "export it from Grafana with Share > Export > Save to file".into(),
                            ),
                        );
                        continue;
                    }
                    Err(e) => {
                        r.error(
                            pos,
                            format!(
                                "dashboard `{}` is not valid JSON: {} (line {}, column {})",
                                path.display(),
                                e,
                                e.line(),
                                e.column()
                            ),
                            None,
                        );
                        continue;
                    }
                }
            }
        };
        let json = match dashboards::prepare(json, &available) {
            Ok(json) => json,
            Err(e) => {
                r.error(pos, format!("dashboard `{source}`: {e}"), Some(e.hint()));
                continue;
            }
        };
        let uid = json
            .get("uid")
            .and_then(|u| u.as_str())
            .unwrap_or_default()
            .to_string();
        if let Some(line) = uids.get(&uid) {
            r.error(pos, format!("dashboard `{source}` has the uid `{uid}`, like the dashboard at line {line}"), Some("Grafana refuses two dashboards with one uid; change the `uid` in one of the files".into()));
            continue;
        }
        uids.insert(uid.clone(), pos.line);
        out.push(Dashboard {
            source,
            folder,
            file_name: format!("{uid}.json"),
            json,
        });
    }
    out
}

pub(super) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
