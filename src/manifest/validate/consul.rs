//! `discovery.consul`: the Consul agent Prometheus asks, which services and tags, the
//! datacenter and the ACL token (inline through `${VAR}`, or from a file next to the manifest).

use std::path::Path;

use super::targets::check_target_address;
use crate::manifest::reader::{scalar_text, Reader};
use crate::manifest::spec;
use crate::manifest::yaml::{Node, Pos, Value};
use crate::model::{ConsulDiscovery, Scheme};

/// Consul's own default HTTP API port.
const DEFAULT_PORT: u16 = 8500;
/// An ACL token is a UUID; anything near this size is not one.
const MAX_TOKEN_BYTES: u64 = 4096;

/// Reads `consul` under the `discovery` mapping, when it is there (the `discovery` section's
/// own keys are checked by `read_discovery`).
pub(super) fn read_consul(
    r: &mut Reader,
    discovery: &Node,
    root: &Path,
) -> Option<ConsulDiscovery> {
    let Value::Map(entries) = &discovery.value else {
        return None;
    };
    let (_, node) = entries
        .iter()
        .find(|(k, _)| scalar_text(k) == Some("consul"))?;
    let mut consul = ConsulDiscovery {
        server: format!("localhost:{DEFAULT_PORT}"),
        scheme: Scheme::Http,
        services: Vec::new(),
        tags: Vec::new(),
        datacenter: None,
        token: None,
        rewrite_loopback: true,
    };
    if node.value == Value::Null {
        consul.server = rewrite_server(&consul.server, true);
        return Some(consul);
    }
    let obj = r.object(node, &spec::CONSUL_DISCOVERY)?;
    consul.rewrite_loopback = r.opt_bool(&obj, "rewrite_loopback", true);
    if let Some(node) = obj.get("server") {
        let text = r.string(node, "server").unwrap_or_default();
        match parse_server(&text) {
            Ok((scheme, address)) => {
                consul.scheme = scheme;
                consul.server = address;
            }
            Err((message, hint)) => r.error(node.pos, message, Some(hint)),
        }
    }
    consul.server = rewrite_server(&consul.server, consul.rewrite_loopback);
    if let Some(node) = obj.get("services") {
        consul.services = names(r, node, "services");
    }
    if let Some(node) = obj.get("tags") {
        consul.tags = names(r, node, "tags");
    }
    if let Some(node) = obj.get("datacenter") {
        let dc = r.string(node, "datacenter").unwrap_or_default();
        let valid = !dc.is_empty()
            && dc
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            r.error(
                node.pos,
                format!("invalid datacenter `{dc}`"),
                Some("a Consul datacenter name: letters, digits, `-`, `_`, e.g. `dc1`".into()),
            );
        }
        consul.datacenter = Some(dc);
    }
    consul.token = match (obj.get("token"), obj.get("token_file")) {
        (Some(_), Some(file)) => {
            r.error(
                file.pos,
                "`token` and `token_file` both give the Consul token",
                Some("keep one of them".into()),
            );
            None
        }
        (Some(node), None) => {
            let token = r.string(node, "token").unwrap_or_default();
            check_token(r, node.pos, token.trim(), "`token`")
        }
        (None, Some(node)) => {
            let path = r.string(node, "token_file").unwrap_or_default();
            read_token_file(r, node.pos, root, &path)
        }
        (None, None) => None,
    };
    Some(consul)
}

/// `host:port`, `host` (Consul's port 8500), or `http(s)://host[:port]`: the scheme and the
/// address Prometheus' `server` takes.
fn parse_server(text: &str) -> Result<(Scheme, String), (String, String)> {
    let text = text.trim();
    let (scheme, rest) = match text.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((other, _)) => {
            return Err((
                format!("`server` has the scheme `{other}`; Consul's API is http or https"),
                "e.g. `consul.example.com:8500` or `https://consul.example.com:8501`".into(),
            ))
        }
        None => (Scheme::Http, text),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('@') || rest.contains('?') {
        return Err((
            format!("`server` must be the agent's address without a path or user, found `{text}`"),
            "e.g. `consul.example.com:8500`".into(),
        ));
    }
    let has_port = match rest.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => rest.contains(':'),
    };
    let address = if has_port {
        rest.to_string()
    } else {
        format!("{rest}:{DEFAULT_PORT}")
    };
    match check_target_address(&address) {
        Ok(()) => Ok((scheme, address)),
        Err((message, hint)) => Err((
            message.replacen("invalid target", "invalid `server`", 1),
            hint,
        )),
    }
}

/// A loopback `server` is the Prometheus container's own: the host's Consul agent is
/// `host.docker.internal` from there.
fn rewrite_server(address: &str, rewrite: bool) -> String {
    match address.rsplit_once(':') {
        Some((host, port)) if rewrite && is_loopback(host) => {
            format!("host.docker.internal:{port}")
        }
        _ => address.to_string(),
    }
}

pub(super) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Service names or tags: non-empty, unique, no whitespace.
fn names(r: &mut Reader, node: &Node, what: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, pos) in r.string_list(node, what).unwrap_or_default() {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            r.error(
                pos,
                format!("invalid entry `{name}` in `{what}`"),
                Some("Consul names and tags hold no spaces".into()),
            );
        } else if out.contains(&name) {
            r.error(pos, format!("`{name}` is listed twice in `{what}`"), None);
        } else {
            out.push(name);
        }
    }
    out
}

fn check_token(r: &mut Reader, pos: Pos, token: &str, what: &str) -> Option<String> {
    if token.is_empty() {
        r.error(
            pos,
            format!("{what} is empty"),
            Some("leave it out when Consul's ACLs are off".into()),
        );
        return None;
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        // Never echo the token itself.
        r.error(
            pos,
            format!("{what} holds spaces or control characters"),
            Some("an ACL token is one word, such as its SecretID (a UUID)".into()),
        );
        return None;
    }
    Some(token.to_string())
}

fn read_token_file(r: &mut Reader, pos: Pos, root: &Path, path: &str) -> Option<String> {
    let read = crate::manifest::read_input(&root.join(path), MAX_TOKEN_BYTES)
        .map_err(|e| match e {
            crate::manifest::ReadError::Io(e) => super::dashboards::io_reason(&e),
            other => other.to_string(),
        })
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".into()));
    match read {
        Ok(text) => check_token(r, pos, text.trim(), &format!("the token file `{path}`")),
        Err(reason) => {
            r.error(
                pos,
                format!("cannot read the token file `{path}`: {reason}"),
                Some("paths are relative to the manifest's directory".into()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_yaml;
    use super::*;

    fn read(yaml: &str, root: &Path) -> (Option<ConsulDiscovery>, Vec<(String, Option<String>)>) {
        read_yaml(yaml, |r, node| read_consul(r, node, root))
    }

    #[test]
    fn defaults_ask_the_hosts_agent() {
        let (consul, problems) = read("consul: {}", Path::new("."));
        assert_eq!(problems, []);
        let consul = consul.unwrap();
        assert_eq!(consul.server, "host.docker.internal:8500");
        assert_eq!(consul.scheme, Scheme::Http);
        assert!(consul.rewrite_loopback && consul.services.is_empty() && consul.token.is_none());
        let (bare, problems) = read("consul:", Path::new("."));
        assert_eq!((bare, problems), (Some(consul), vec![]));
        assert_eq!(read("etcd: {}", Path::new(".")).0, None);
    }

    #[test]
    fn every_key_is_read() {
        let (consul, problems) = read(
            "consul: {server: 'https://consul.example.com', services: [web, api], tags: [prod],
                      datacenter: dc1, token: ' 5f1c9a1e-0000-4000-8000-000000000001 '}",
            Path::new("."),
        );
        assert_eq!(problems, []);
        let consul = consul.unwrap();
        assert_eq!(consul.server, "consul.example.com:8500");
        assert_eq!(consul.scheme, Scheme::Https);
        assert_eq!(consul.services, ["web", "api"]);
        assert_eq!(consul.tags, ["prod"]);
        assert_eq!(consul.datacenter.as_deref(), Some("dc1"));
        assert_eq!(
            consul.token.as_deref(),
            Some("5f1c9a1e-0000-4000-8000-000000000001")
        );
    }

    #[test]
    fn a_loopback_server_is_reached_through_the_host_unless_told_otherwise() {
        for server in [
            "localhost:8500",
            "127.0.0.1:8500",
            "'[::1]:8500'",
            "http://localhost:8500",
        ] {
            let (consul, problems) = read(&format!("consul: {{server: {server}}}"), Path::new("."));
            assert_eq!(problems, [], "{server}");
            assert_eq!(
                consul.unwrap().server,
                "host.docker.internal:8500",
                "{server}"
            );
        }
        let (consul, _) = read(
            "consul: {server: 'localhost:8500', rewrite_loopback: false}",
            Path::new("."),
        );
        assert_eq!(consul.unwrap().server, "localhost:8500");
        let (consul, _) = read("consul: {server: 'consul:8500'}", Path::new("."));
        assert_eq!(consul.unwrap().server, "consul:8500");
    }

    #[test]
    fn bad_values_are_reported_without_the_token() {
        let secret = "s3cr3t value";
        let (_, problems) = read(
            &format!(
                "consul: {{server: 'ftp://x', services: [web, web, ''], datacenter: 'dc 1', token: '{secret}'}}"
            ),
            Path::new("."),
        );
        let messages: Vec<&str> = problems.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`server` has the scheme `ftp`; Consul's API is http or https",
                "`web` is listed twice in `services`",
                "invalid entry `` in `services`",
                "invalid datacenter `dc 1`",
                "`token` holds spaces or control characters",
            ]
        );
        assert!(problems
            .iter()
            .all(|(m, h)| !m.contains(secret) && !h.as_deref().unwrap_or("").contains(secret)));
        let (_, problems) = read("consul: {server: 'consul:8500/v1'}", Path::new("."));
        assert!(problems[0].0.contains("without a path"), "{problems:?}");
        let (_, problems) = read("consul: {token: x, token_file: y}", Path::new("."));
        assert_eq!(
            problems[0].0,
            "`token` and `token_file` both give the Consul token"
        );
    }

    #[test]
    fn the_token_file_is_read_relative_to_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("consul.token"), "abc-123\n").unwrap();
        let (consul, problems) = read("consul: {token_file: consul.token}", dir.path());
        assert_eq!(problems, []);
        assert_eq!(consul.unwrap().token.as_deref(), Some("abc-123"));
        let (_, problems) = read("consul: {token_file: missing.token}", dir.path());
        assert!(
            problems[0]
                .0
                .starts_with("cannot read the token file `missing.token`"),
            "{problems:?}"
        );
        std::fs::write(dir.path().join("empty.token"), "\n").unwrap();
        let (_, problems) = read("consul: {token_file: empty.token}", dir.path());
        assert_eq!(problems[0].0, "the token file `empty.token` is empty");
    }
}
