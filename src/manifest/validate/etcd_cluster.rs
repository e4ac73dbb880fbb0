//! `discovery.etcd.endpoints`, `tls`, `username`, `password_file`: an existing etcd cluster for
//! discovery instead of the stack's own etcd.
//!
//! The agent runs in a container on the stack's network and reaches the endpoints as they are
//! written, through Docker's NAT: a member's LAN address or DNS name works (and its TLS
//! certificate is checked against that name, as on the host); this host's loopback
//! (`127.0.0.1`, `localhost`, `::1`) would be the container's own, so it is refused here with
//! the way out. The files must exist now: they are bind-mounted into the agent when it starts.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::super::reader::{Obj, Reader};
use super::super::spec;
use crate::manifest::yaml::Pos;
use crate::model::{EtcdCluster, EtcdTls};

/// The cluster when `endpoints` is given; problems are recorded in `r`.
pub(super) fn read_cluster(r: &mut Reader, e: &Obj, root: &Path) -> Option<EtcdCluster> {
    let endpoints_node = e.get("endpoints");
    let endpoints = match endpoints_node {
        Some(node) => {
            let list = r.string_list(node, "endpoints").unwrap_or_default();
            if list.is_empty() && matches!(node.value, crate::manifest::yaml::Value::Seq(_)) {
                r.error(
                    node.pos,
                    "`endpoints` is empty",
                    Some("list the members' client URLs, e.g. [https://10.0.0.11:2379]".into()),
                );
            }
            list
        }
        None => Vec::new(),
    };
    if endpoints_node.is_none() {
        for key in ["tls", "username", "password_file"] {
            if let Some(pos) = e.get(key).map(|n| n.pos) {
                r.error(
                    pos,
                    format!("`{key}` is for an existing cluster's `endpoints`, and there are none"),
                    Some(
                        "add `endpoints: [https://host:2379, ...]`, or remove it to use the \
                         stack's own etcd"
                            .into(),
                    ),
                );
            }
        }
        return None;
    }
    let mut urls: Vec<String> = Vec::new();
    let mut schemes = Vec::new();
    for (text, pos) in &endpoints {
        let Some((url, scheme)) = check_endpoint(r, text, *pos) else {
            continue;
        };
        if urls.contains(&url) {
            r.error(*pos, format!("endpoint `{text}` is listed twice"), None);
            continue;
        }
        urls.push(url);
        schemes.push((scheme, *pos));
    }
    let tls = e.get("tls").and_then(|node| read_tls(r, node, root));
    if e.has("tls") {
        if let Some((_, pos)) = schemes.iter().find(|(scheme, _)| scheme == "http") {
            r.error(
                *pos,
                "`tls` is given but this endpoint is `http://`",
                Some("with `tls` every endpoint is `https://`".into()),
            );
        }
    } else if schemes.iter().any(|(s, _)| s == "http") && schemes.iter().any(|(s, _)| s == "https")
    {
        r.error(
            schemes[0].1,
            "the endpoints mix `http://` and `https://`",
            Some("the members of one cluster serve clients the same way".into()),
        );
    }
    let username = e.get("username").and_then(|n| {
        let name = r.string(n, "username")?;
        if name.trim().is_empty() {
            r.error(n.pos, "`username` is empty", None);
            return None;
        }
        Some(name)
    });
    let password_file = e.get("password_file").and_then(|n| {
        let path = existing_file(r, n, "password_file", root)?;
        // Read again at every authentication (so a rotated one is picked up); an empty one
        // would only fail there.
        let empty =
            crate::manifest::read_input(&path, 4096).is_ok_and(|b| b.trim_ascii().is_empty());
        if empty {
            r.error(
                n.pos,
                format!(
                    "`password_file` {} is empty",
                    path.strip_prefix(root).unwrap_or(&path).display()
                ),
                Some("the file holds the etcd user's password itself".into()),
            );
            return None;
        }
        Some(path)
    });
    match (e.get("username"), e.get("password_file")) {
        (Some(n), None) => r.error(
            n.pos,
            "`username` without `password_file`",
            Some(
                "put the password in a file readable by you alone and name it in `password_file`"
                    .into(),
            ),
        ),
        (None, Some(n)) => r.error(
            n.pos,
            "`password_file` without `username`",
            Some("add `username: <etcd user>`".into()),
        ),
        _ => {}
    }
    Some(EtcdCluster {
        endpoints: urls,
        tls,
        username,
        password_file,
    })
}

/// `http(s)://host:port` and nothing else; returns it without a trailing `/`, and its scheme.
fn check_endpoint(r: &mut Reader, text: &str, pos: Pos) -> Option<(String, String)> {
    let example = "e.g. `https://10.0.0.11:2379`".to_string();
    if !text.contains("://") {
        r.error(
            pos,
            format!("endpoint `{text}` has no scheme"),
            Some(format!("write `https://{text}` (or `http://` without TLS)")),
        );
        return None;
    }
    let Ok(url) = reqwest::Url::parse(text) else {
        r.error(
            pos,
            format!("endpoint `{text}` is not a URL"),
            Some(example),
        );
        return None;
    };
    let scheme = url.scheme().to_string();
    if scheme != "http" && scheme != "https" {
        r.error(
            pos,
            format!("endpoint `{text}`: the scheme must be http or https, found `{scheme}`"),
            Some(example),
        );
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the URL holds a password.
        r.error(
            pos,
            "this endpoint carries credentials (`user:password@`), which do not go into the URL",
            Some("use `username` and `password_file`".into()),
        );
        return None;
    }
    if (url.path() != "/" && !url.path().is_empty()) || url.query().is_some() {
        r.error(
            pos,
            format!("endpoint `{text}` has a path or a query"),
            Some("a member's client URL is only scheme, host and port".into()),
        );
        return None;
    }
    let host = url.host_str().unwrap_or_default();
    if url.port().is_none() {
        r.error(
            pos,
            format!("endpoint `{text}` has no port"),
            Some(format!(
                "etcd serves clients on 2379: `{scheme}://{host}:2379`"
            )),
        );
        return None;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        r.error(
            pos,
            format!("endpoint `{text}` is this host's loopback, which the agent's container cannot reach"),
            Some(
                "list an address of this host that containers reach (its LAN address, or \
                 Docker's bridge 172.17.0.1 when etcd listens there; with TLS it must be in the \
                 member's certificate)"
                    .into(),
            ),
        );
        return None;
    }
    Some((text.trim_end_matches('/').to_string(), scheme))
}

fn read_tls(r: &mut Reader, node: &crate::manifest::yaml::Node, root: &Path) -> Option<EtcdTls> {
    let obj = r.object(node, &spec::ETCD_TLS)?;
    let file = |r: &mut Reader, key: &str| {
        obj.get(key)
            .and_then(|n| existing_file(r, n, &format!("tls.{key}"), root))
    };
    let tls = EtcdTls {
        ca: file(r, "ca"),
        cert: file(r, "cert"),
        key: file(r, "key"),
    };
    match (obj.get("cert"), obj.get("key")) {
        (Some(n), None) => r.error(
            n.pos,
            "`tls.cert` without `tls.key`",
            Some("the client certificate needs its private key".into()),
        ),
        (None, Some(n)) => r.error(
            n.pos,
            "`tls.key` without `tls.cert`",
            Some("add `cert:`, the certificate of that key".into()),
        ),
        _ => {}
    }
    Some(tls)
}

/// The file `node` names, resolved against the manifest's directory; an error unless it is a
/// regular file now.
fn existing_file(
    r: &mut Reader,
    node: &crate::manifest::yaml::Node,
    what: &str,
    root: &Path,
) -> Option<PathBuf> {
    let text = r.string(node, what)?;
    if text.trim().is_empty() {
        r.error(node.pos, format!("`{what}` is empty"), None);
        return None;
    }
    let path = root.join(&text);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Some(path),
        Ok(_) => {
            r.error(node.pos, format!("`{what}`: {text} is not a file"), None);
            None
        }
        Err(e) => {
            r.error(
                node.pos,
                format!("`{what}`: cannot read {text}: {e}"),
                Some(format!(
                    "paths are relative to the manifest's directory (this one is {})",
                    path.display()
                )),
            );
            None
        }
    }
}
