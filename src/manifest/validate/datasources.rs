//! `datasources:`, the extra Grafana datasources beside the provisioned Prometheus (and
//! Alertmanager): names, plugin types, URLs and uids.

use std::collections::HashMap;

use super::values::check_url;
use crate::manifest::reader::{self, Reader};
use crate::manifest::spec;
use crate::manifest::yaml::Node;
use crate::model::{Datasource, ALERTMANAGER_DATASOURCE_UID, PROMETHEUS_DATASOURCE_UID};

pub(super) fn read_datasources(r: &mut Reader, node: &Node, alertmanager: bool) -> Vec<Datasource> {
    let mut out: Vec<Datasource> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::from([("prometheus".to_string(), 0)]);
    let mut uids: HashMap<String, usize> =
        HashMap::from([(PROMETHEUS_DATASOURCE_UID.to_string(), 0)]);
    if alertmanager {
        names.insert("alertmanager".into(), 0);
        uids.insert(ALERTMANAGER_DATASOURCE_UID.into(), 0);
    }
    let mut default_line: Option<usize> = None;
    for item in r.list(node, "datasources") {
        let Some(obj) = r.object(item, &spec::DATASOURCE) else {
            continue;
        };
        let name = r.non_empty(&obj, "name").unwrap_or_default();
        if let (Some(n), false) = (obj.get("name"), name.is_empty()) {
            match names.get(&name.to_lowercase()) {
                Some(0) => r.error(
                    n.pos,
                    format!("datasource name `{name}` is taken by the provisioned one"),
                    Some("choose another name".into()),
                ),
                Some(line) => r.error(
                    n.pos,
                    format!("duplicate datasource name `{name}`"),
                    Some(format!("already defined at line {line}")),
                ),
                None => {
                    names.insert(name.to_lowercase(), n.pos.line);
                }
            }
        }
        let kind = r.non_empty(&obj, "type").unwrap_or_default();
        if let Some(n) = obj.get("type") {
            if !kind.is_empty()
                && !kind
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                r.error(
                    n.pos,
                    format!("invalid datasource type `{kind}`"),
                    Some("the Grafana plugin id, e.g. `influxdb`, `loki`, `jaeger`".into()),
                );
            }
        }
        let url = obj
            .get("url")
            .map(|n| check_url(r, n, "url"))
            .unwrap_or_default();
        let uid = match obj.get("uid") {
            Some(n) => {
                let uid = r.string(n, "uid").unwrap_or_default();
                if uid.is_empty()
                    || uid.len() > 40
                    || !uid
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    r.error(
                        n.pos,
                        format!("invalid datasource uid `{uid}`"),
                        Some("at most 40 characters: letters, digits, `-`, `_`".into()),
                    );
                }
                uid
            }
            None => slug(&name, 40),
        };
        let uid_pos = obj
            .get("uid")
            .or(obj.get("name"))
            .map_or(obj.pos(), |n| n.pos);
        if !uid.is_empty() {
            match uids.get(&uid) {
                Some(0) => r.error(
                    uid_pos,
                    format!("datasource uid `{uid}` is taken by the provisioned one"),
                    Some("set another `uid:`".into()),
                ),
                Some(line) => r.error(
                    uid_pos,
                    format!("duplicate datasource uid `{uid}`"),
                    Some(format!("already used at line {line}; set `uid:`")),
                ),
                None => {
                    uids.insert(uid.clone(), uid_pos.line);
                }
            }
        }
        let access = obj
            .get("access")
            .and_then(|n| r.enumeration(n, "access", &spec::DATASOURCE.field("access").unwrap().ty))
            .unwrap_or_else(|| "proxy".into());
        let is_default = r.opt_bool(&obj, "default", false);
        if is_default {
            let pos = obj.get("default").unwrap().pos;
            if let Some(line) = default_line {
                r.error(
                    pos,
                    "only one datasource can be the default",
                    Some(format!("another is marked `default: true` at line {line}")),
                );
            }
            default_line = Some(pos.line);
        }
        let json_data = match obj.get("json_data").map(reader::to_json) {
            Some(serde_json::Value::Object(map)) => map,
            Some(_) => {
                r.error(
                    obj.get("json_data").unwrap().pos,
                    "`json_data` must be a mapping",
                    None,
                );
                serde_json::Map::new()
            }
            None => serde_json::Map::new(),
        };
        out.push(Datasource {
            name,
            kind,
            uid,
            url,
            access,
            database: r.opt_string(&obj, "database").filter(|s| !s.is_empty()),
            user: r.opt_string(&obj, "user").filter(|s| !s.is_empty()),
            password: r.opt_string(&obj, "password").filter(|s| !s.is_empty()),
            is_default,
            json_data,
        });
    }
    out
}

pub fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(max).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_lower_case_ascii_joined_by_single_dashes() {
        for (text, max, want) in [
            ("Loki Logs", 40, "loki-logs"),
            ("  My  DB!! ", 40, "my-db"),
            ("a--b", 40, "a-b"),
            ("ümlaut", 40, "mlaut"),
            ("监控", 40, ""),
            ("abc def", 4, "abc"),
            ("abcdef", 3, "abc"),
        ] {
            assert_eq!(slug(text, max), want, "{text:?} {max}");
        }
    }
}
