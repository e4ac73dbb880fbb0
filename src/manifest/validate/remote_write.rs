//! `prometheus.mode` and `prometheus.remote_write`: receivers with unique names, http(s) URLs
//! without credentials in them, presets turned into paths and tenant headers, secrets read
//! from files (never from the manifest), TLS that verifies unless told otherwise in so many
//! words, and relabel rules whose regexes Prometheus will accept.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::values::check_url;
use crate::manifest::reader::{scalar_text, Obj, Reader};
use crate::manifest::spec;
use crate::manifest::yaml::{Node, Pos, Value};
use crate::model::{CopiedFile, PrometheusMode, QueueConfig, RemoteAuth, RemoteTls, RemoteWrite};
use relabel::{name_filter, read_relabel};

/// The most a secret, certificate or CA file may hold.
const MAX_COPIED_BYTES: u64 = 1 << 20;

/// Headers Prometheus sets itself and refuses in `headers` (its `reservedHeaders`), lower-case.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// What the `prometheus` section says about remote storage.
pub(super) struct RemoteSettings {
    pub mode: PrometheusMode,
    pub remote_write: Vec<RemoteWrite>,
    pub receiver: bool,
}

pub(super) fn read_remote_settings(
    r: &mut Reader,
    obj: Option<&Obj>,
    root: &Path,
) -> RemoteSettings {
    let Some(obj) = obj else {
        return RemoteSettings {
            mode: PrometheusMode::Server,
            remote_write: Vec::new(),
            receiver: false,
        };
    };
    let mode = match obj.get("mode") {
        Some(node) => {
            let ty = spec::PROMETHEUS.field("mode").expect("declared").ty;
            match r.enumeration(node, "mode", &ty).as_deref() {
                Some("agent") => PrometheusMode::Agent,
                _ => PrometheusMode::Server,
            }
        }
        None => PrometheusMode::Server,
    };
    let remote_write = obj
        .get("remote_write")
        .map(|node| read_remote_writes(r, node, root))
        .unwrap_or_default();
    let receiver = r.opt_bool(obj, "remote_write_receiver", false);
    RemoteSettings {
        mode,
        remote_write,
        receiver,
    }
}

fn read_remote_writes(r: &mut Reader, node: &Node, root: &Path) -> Vec<RemoteWrite> {
    let mut out: Vec<RemoteWrite> = Vec::new();
    let mut names: HashMap<String, Pos> = HashMap::new();
    for item in r.list(node, "remote_write") {
        let Some(obj) = r.object(item, &spec::REMOTE_WRITE) else {
            continue;
        };
        let Some((remote, name_pos)) = read_remote(r, &obj, root) else {
            continue;
        };
        if let Some(first) = names.get(&remote.name) {
            r.error(
                name_pos,
                format!(
                    "remote_write name `{}` is used twice (first on line {})",
                    remote.name, first.line
                ),
                Some(
                    "Prometheus requires a unique name per receiver; give each a distinct `name`"
                        .into(),
                ),
            );
            continue;
        }
        names.insert(remote.name.clone(), name_pos);
        out.push(remote);
    }
    out
}

fn read_remote(r: &mut Reader, obj: &Obj, root: &Path) -> Option<(RemoteWrite, Pos)> {
    let url_node = obj.get("url")?;
    let url = check_url(r, url_node, "url");
    let authority = authority(&url);
    if authority.contains('@') {
        // Credentials in the URL would end up in prometheus.yml and in Prometheus' metrics.
        r.error(
            url_node.pos,
            "`url` holds credentials (`user:password@`)",
            Some("put them in `basic_auth: {username: ..., password_file: ...}`".into()),
        );
    }
    // A credential in the query would sit in prometheus.yml, which more than monstack reads.
    if let Some((_, query)) = url.split_once('?') {
        let credential = query.split('&').find_map(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            crate::model::CREDENTIAL_QUERY_PARAMS
                .contains(&name.to_ascii_lowercase().as_str())
                .then_some(name)
        });
        if let Some(name) = credential {
            r.error(
                url_node.pos,
                format!("`url` holds a credential in its query (`{name}=`)"),
                Some("pass it from a file: `bearer_token_file: ...` or `basic_auth: {username: ..., password_file: ...}`".into()),
            );
        }
    }
    let (name, name_pos) = match obj.get("name") {
        Some(node) => {
            let name = r.string(node, "name").unwrap_or_default();
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
            if !ok {
                r.error(
                    node.pos,
                    format!("invalid remote_write name `{name}`"),
                    Some("letters, digits, `_`, `-`, `.` and `:`".into()),
                );
            }
            (name, node.pos)
        }
        None => (authority.to_string(), url_node.pos),
    };

    let mut headers = BTreeMap::new();
    let mut header_pos: HashMap<String, Pos> = HashMap::new();
    if let Some(node) = obj.get("headers") {
        for (header, pos, value, _) in r.string_map(node, "headers").unwrap_or_default() {
            let lower = header.to_ascii_lowercase();
            let token = !header.is_empty()
                && header
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
            if !token {
                r.error(
                    pos,
                    format!("invalid header name `{header}`"),
                    Some("header names are letters, digits and `-`".into()),
                );
            } else if lower == "authorization" {
                r.error(
                    pos,
                    "the `Authorization` header cannot be set in `headers`",
                    Some(
                        "use `basic_auth` or `bearer_token_file`: their secrets stay in files"
                            .into(),
                    ),
                );
            } else if RESERVED_HEADERS.contains(&lower.as_str()) {
                r.error(
                    pos,
                    format!("Prometheus sets `{header}` itself and refuses it in `headers`"),
                    None,
                );
            } else if value.chars().any(|c| c.is_control() && c != '\t') {
                // A line break would start another header (or end them).
                r.error(
                    pos,
                    format!("the value of header `{header}` holds a control character"),
                    Some("a header value is one line of text".into()),
                );
            } else if header_pos.insert(lower, pos).is_some() {
                r.error(pos, format!("header `{header}` is set twice"), None);
            }
            headers.insert(header, value);
        }
    }

    let preset = obj
        .get("preset")
        .and_then(|n| r.enumeration(n, "preset", &spec::REMOTE_WRITE.field("preset")?.ty));
    let tenant = obj.get("tenant").and_then(|node| {
        let text = r.string(node, "tenant")?;
        if text.trim().is_empty() || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            r.error(
                node.pos,
                "`tenant` must be a non-empty name without spaces",
                None,
            );
            return None;
        }
        Some((text, node.pos))
    });
    let url = match preset.as_deref() {
        Some(preset) => apply_preset(
            r,
            preset,
            &url,
            url_node.pos,
            tenant.as_ref(),
            &mut headers,
            &header_pos,
        ),
        None => {
            if let Some((_, pos)) = &tenant {
                r.error(*pos, "`tenant` needs a `preset`, which says where the tenant goes", Some("add `preset: mimir`, `thanos` or `victoriametrics`, or set the header yourself in `headers`".into()));
            }
            url
        }
    };

    let auth = read_auth(r, obj, root);
    let tls = obj.get("tls").and_then(|node| read_tls(r, node, root));
    let remote_timeout = r.opt_duration(obj, "remote_timeout");
    let queue = obj
        .get("queue_config")
        .and_then(|node| read_queue(r, node))
        .unwrap_or_default();
    let mut relabel = Vec::new();
    for (key, action) in [("keep", "keep"), ("drop", "drop")] {
        if let Some(rule) = obj.get(key).and_then(|n| name_filter(r, n, key, action)) {
            relabel.push(rule);
        }
    }
    if let Some(node) = obj.get("write_relabel_configs") {
        for item in r.list(node, "write_relabel_configs") {
            if let Some(rule) = read_relabel(r, item) {
                relabel.push(rule);
            }
        }
    }
    let remote = RemoteWrite {
        name,
        url,
        headers,
        auth,
        tls,
        remote_timeout,
        queue,
        relabel,
    };
    Some((remote, name_pos))
}

/// `host[:port]` of an http(s) URL, userinfo included (so the caller can refuse it).
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// The path after the authority (`""` for `https://host`).
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    rest.find('/').map_or("", |i| &rest[i..])
}

/// A preset's path appended to the base URL, and its tenant header added.
fn apply_preset(
    r: &mut Reader,
    preset: &str,
    base: &str,
    url_pos: Pos,
    tenant: Option<&(String, Pos)>,
    headers: &mut BTreeMap<String, String>,
    header_pos: &HashMap<String, Pos>,
) -> String {
    let (path, header) = match preset {
        "mimir" => ("/api/v1/push".to_string(), Some("X-Scope-OrgID")),
        "thanos" => ("/api/v1/receive".to_string(), Some("THANOS-TENANT")),
        _ => match tenant {
            Some((tenant, pos)) => {
                if !valid_vm_tenant(tenant) {
                    r.error(*pos, format!("`{tenant}` is not a VictoriaMetrics tenant"), Some("the cluster version's tenants are `accountID` or `accountID:projectID`, whole numbers below 2^32, e.g. `42` or `42:7`".into()));
                }
                (format!("/insert/{tenant}/prometheus/api/v1/write"), None)
            }
            None => ("/api/v1/write".to_string(), None),
        },
    };
    if base.contains(['?', '#']) {
        r.error(
            url_pos,
            format!("with `preset: {preset}`, `url` is the receiver's base URL and takes no query"),
            Some(format!("e.g. https://{}", authority(base))),
        );
    }
    let trimmed = path_of(base).trim_end_matches('/');
    let known = [
        "/api/v1/push",
        "/api/v1/receive",
        "/api/v1/write",
        "/prometheus/api/v1/write",
    ];
    if known.iter().any(|p| trimmed.ends_with(p)) {
        r.error(
            url_pos,
            format!("`url` already ends with {trimmed}, and `preset: {preset}` adds {path}"),
            Some(format!(
                "give the base URL, https://{}, or leave out the preset",
                authority(base)
            )),
        );
    }
    if let (Some(header), Some((tenant, _))) = (header, tenant) {
        if let Some(pos) = header_pos.get(&header.to_ascii_lowercase()) {
            r.error(
                *pos,
                format!("`{header}` is set both in `headers` and by `tenant`"),
                Some("keep one of them".into()),
            );
        }
        headers.insert(header.to_string(), tenant.clone());
    }
    format!("{}{path}", base.trim_end_matches('/'))
}

/// `accountID` or `accountID:projectID`, each a 32-bit unsigned number.
fn valid_vm_tenant(tenant: &str) -> bool {
    let mut parts = tenant.split(':');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && p.parse::<u32>().is_ok()
        })
    };
    let first = ok(parts.next());
    match (parts.next(), parts.next()) {
        (None, _) => first,
        (Some(second), None) => first && ok(Some(second)),
        _ => false,
    }
}

fn read_auth(r: &mut Reader, obj: &Obj, root: &Path) -> Option<RemoteAuth> {
    let basic = obj.get("basic_auth").and_then(|node| {
        let auth = r.object(node, &spec::BASIC_AUTH)?;
        let username = r.non_empty(&auth, "username")?;
        let password = copy_file(r, auth.get("password_file")?, "password_file", root, true)?;
        Some(RemoteAuth::Basic { username, password })
    });
    let bearer = obj.get("bearer_token_file").and_then(|node| {
        let token = copy_file(r, node, "bearer_token_file", root, true)?;
        Some(RemoteAuth::Bearer { token })
    });
    if obj.has("basic_auth") && obj.has("bearer_token_file") {
        let pos = obj.key_pos("bearer_token_file").unwrap_or(obj.pos());
        r.error(
            pos,
            "a receiver takes `basic_auth` or `bearer_token_file`, not both",
            None,
        );
        return None;
    }
    basic.or(bearer)
}

fn read_tls(r: &mut Reader, node: &Node, root: &Path) -> Option<RemoteTls> {
    let tls = r.object(node, &spec::TLS)?;
    let ca = tls
        .get("ca_file")
        .and_then(|n| copy_file(r, n, "ca_file", root, false));
    let cert = tls
        .get("cert_file")
        .and_then(|n| copy_file(r, n, "cert_file", root, false));
    let key = tls
        .get("key_file")
        .and_then(|n| copy_file(r, n, "key_file", root, true));
    let client = match (cert, key, tls.get("cert_file"), tls.get("key_file")) {
        (Some(cert), Some(key), _, _) => Some((cert, key)),
        (_, _, Some(n), None) | (_, _, None, Some(n)) => {
            r.error(
                n.pos,
                "a client certificate needs both `cert_file` and `key_file`",
                None,
            );
            None
        }
        _ => None,
    };
    let server_name = r.opt_string(&tls, "server_name").filter(|s| !s.is_empty());
    let insecure_skip_verify = r.opt_bool(&tls, "insecure_skip_verify", false);
    Some(RemoteTls {
        ca,
        client,
        server_name,
        insecure_skip_verify,
    })
}

/// Reads a file the manifest names (relative to the manifest's directory), with a limit.
fn copy_file(
    r: &mut Reader,
    node: &Node,
    what: &str,
    root: &Path,
    secret: bool,
) -> Option<CopiedFile> {
    let source = r.string(node, what)?;
    if source.trim().is_empty() {
        r.error(node.pos, format!("`{what}` is empty"), None);
        return None;
    }
    let path = root.join(&source);
    match crate::manifest::read_input(&path, MAX_COPIED_BYTES) {
        Ok(contents) => {
            if secret && String::from_utf8_lossy(&contents).trim().is_empty() {
                r.error(
                    node.pos,
                    format!("`{what}` {source} is empty"),
                    Some("the file holds the secret itself, on one line".into()),
                );
                return None;
            }
            Some(CopiedFile { source, contents })
        }
        Err(e) => {
            let hint = if e.is_not_found() {
                Some(format!(
                    "paths are relative to the manifest's directory, {}",
                    root.display()
                ))
            } else {
                None
            };
            r.error(
                node.pos,
                format!("cannot read `{what}` {source}: {e}"),
                hint,
            );
            None
        }
    }
}

fn read_queue(r: &mut Reader, node: &Node) -> Option<QueueConfig> {
    let q = r.object(node, &spec::QUEUE_CONFIG)?;
    let int = |r: &mut Reader, key: &str| {
        let Some(spec::Ty::Int { min, max }) = spec::QUEUE_CONFIG.field(key).map(|f| f.ty) else {
            return None;
        };
        q.get(key)
            .and_then(|n| r.int(n, key, min, max))
            .map(|n| n as u64)
    };
    let config = QueueConfig {
        capacity: int(r, "capacity"),
        max_shards: int(r, "max_shards"),
        min_shards: int(r, "min_shards"),
        max_samples_per_send: int(r, "max_samples_per_send"),
        batch_send_deadline: r.opt_duration(&q, "batch_send_deadline"),
        min_backoff: r.opt_duration(&q, "min_backoff"),
        max_backoff: r.opt_duration(&q, "max_backoff"),
    };
    if let (Some(min), Some(max), Some(n)) =
        (config.min_shards, config.max_shards, q.get("min_shards"))
    {
        if min > max {
            r.error(
                n.pos,
                format!("`min_shards` ({min}) is more than `max_shards` ({max})"),
                None,
            );
        }
    }
    if let (Some(min), Some(max), Some(n)) =
        (config.min_backoff, config.max_backoff, q.get("min_backoff"))
    {
        if min > max {
            r.error(
                n.pos,
                format!("`min_backoff` ({min}) is longer than `max_backoff` ({max})"),
                None,
            );
        }
    }
    Some(config)
}

/// What works but deserves a second look, as (position, message): verification switched off,
/// and secret files any user of this machine can read.
pub(super) fn warnings(prometheus: Option<&Node>, root: &Path) -> Vec<(Pos, String)> {
    let mut out = Vec::new();
    let Some(list) = prometheus.and_then(|p| child(p, "remote_write")) else {
        return out;
    };
    let Value::Seq(items) = &list.value else {
        return out;
    };
    for item in items {
        let name = child(item, "name")
            .or_else(|| child(item, "url"))
            .and_then(scalar_text)
            .unwrap_or("a receiver");
        let tls = child(item, "tls");
        if let Some(node) = tls.and_then(|t| child(t, "insecure_skip_verify")) {
            if scalar_text(node) == Some("true") {
                out.push((node.pos, format!("remote_write `{name}`: TLS verification is off (`insecure_skip_verify: true`): anyone on the path can read and change the samples")));
            }
        }
        let basic = child(item, "basic_auth");
        let secret_files = [
            basic.and_then(|b| child(b, "password_file")),
            child(item, "bearer_token_file"),
            tls.and_then(|t| child(t, "key_file")),
        ];
        out.extend(
            secret_files
                .into_iter()
                .flatten()
                .filter_map(|n| readable_by_all(n, root)),
        );
    }
    out
}

/// The secret files `discovery` names (the etcd cluster's password file and TLS key, the
/// Consul token file) that every user of the machine can read.
pub(super) fn discovery_warnings(discovery: Option<&Node>, root: &Path) -> Vec<(Pos, String)> {
    let etcd = discovery.and_then(|d| child(d, "etcd"));
    let consul = discovery.and_then(|d| child(d, "consul"));
    [
        etcd.and_then(|e| child(e, "password_file")),
        etcd.and_then(|e| child(e, "tls"))
            .and_then(|t| child(t, "key")),
        consul.and_then(|c| child(c, "token_file")),
    ]
    .into_iter()
    .flatten()
    .filter_map(|n| readable_by_all(n, root))
    .collect()
}

/// A warning when the file a node names (relative to the manifest) can be read by every user.
fn readable_by_all(node: &Node, root: &Path) -> Option<(Pos, String)> {
    let file = scalar_text(node)?;
    let mode = std::fs::metadata(root.join(file)).map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode()
    });
    mode.is_ok_and(|m| m & 0o004 != 0).then(|| {
        (
            node.pos,
            format!("{file} holds a secret and every user of this machine can read it: `chmod 600 {file}`"),
        )
    })
}

fn child<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, v)| scalar_text(k) == Some(key) && v.value != Value::Null)
            .map(|(_, v)| v),
        _ => None,
    }
}

mod relabel;

#[cfg(test)]
mod tests;
