//! `targets:`, the scrape jobs (names, addresses, path, scheme, intervals, labels), and
//! `discovery:`, the targets found in etcd.

use std::collections::{HashMap, HashSet};

use super::values::read_labels;
use crate::manifest::reader::{self, Reader};
use crate::manifest::spec::{self, Ty};
use crate::manifest::yaml::{Node, Pos, Value};
use crate::model::{
    Discovery, Duration, EtcdDiscovery, Prometheus, Scheme, ScrapeJob, RESERVED_JOB_NAMES,
    SCRAPE_PROTOCOLS,
};

pub(super) fn valid_job_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub(super) fn read_jobs(
    r: &mut Reader,
    node: &Node,
    prometheus: &Option<Prometheus>,
) -> Vec<ScrapeJob> {
    let mut jobs = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in r.list(node, "targets") {
        let Some(obj) = r.object(item, &spec::JOB) else {
            continue;
        };
        let name = r.non_empty(&obj, "job").unwrap_or_default();
        let name_pos = obj.get("job").map_or(obj.pos(), |n| n.pos);
        if !name.is_empty() {
            if !valid_job_name(&name) {
                r.error(
                    name_pos,
                    format!("invalid job name `{name}`"),
                    Some(
                        "use letters, digits, `_`, `-` and `.`, starting with a letter or digit"
                            .into(),
                    ),
                );
            } else if RESERVED_JOB_NAMES.contains(&name.as_str()) {
                r.error(
                    name_pos,
                    format!("job name `{name}` is reserved for the stack's own scrape job"),
                    Some("choose another name, e.g. `my-{name}`".replace("{name}", &name)),
                );
            } else if let Some(first_line) = seen.get(&name) {
                r.error(name_pos, format!("duplicate job name `{name}`"), Some(format!("job `{name}` is already defined at line {first_line}; add the targets there")));
            } else {
                seen.insert(name.clone(), name_pos.line);
            }
        }
        let mut targets: Vec<String> = Vec::new();
        // A set beside the list keeps the duplicate check linear (150k targets took minutes).
        let mut listed: HashSet<String> = HashSet::new();
        if let Some(list) = obj.get("targets") {
            for (addr, pos) in r.string_list(list, "targets").unwrap_or_default() {
                if let Err((message, hint)) = check_target_address(&addr) {
                    r.error(pos, message, Some(hint));
                } else if !listed.insert(addr.clone()) {
                    r.error(
                        pos,
                        format!("duplicate target `{addr}` in job `{name}`"),
                        Some("list each address once".into()),
                    );
                } else {
                    targets.push(addr);
                }
            }
        }
        let metrics_path = match obj.get("path") {
            Some(n) => {
                let path = r.string(n, "path").unwrap_or_default();
                if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
                    r.error(
                        n.pos,
                        format!("`path` must start with `/`, found `{path}`"),
                        Some("e.g. `/metrics`".into()),
                    );
                }
                path
            }
            None => "/metrics".into(),
        };
        let scheme = match obj
            .get("scheme")
            .and_then(|n| r.enumeration(n, "scheme", &spec::JOB.field("scheme").unwrap().ty))
            .as_deref()
        {
            Some("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let interval = r.opt_duration(&obj, "interval");
        let timeout = r.opt_duration(&obj, "timeout");
        for (key, value) in [("interval", interval), ("timeout", timeout)] {
            if value == Some(Duration(0)) {
                r.error(
                    obj.get(key).unwrap().pos,
                    format!("`{key}` must be longer than 0s"),
                    None,
                );
            }
        }
        // As Prometheus does: a job without a timeout of its own inherits the global one, lowered
        // to the job's interval when that is shorter. Only a timeout the job sets can be too long.
        let effective_interval = interval.or(prometheus.as_ref().map(|p| p.scrape_interval));
        if let (Some(i), Some(t)) = (effective_interval, timeout) {
            if t > i {
                let at = obj
                    .get("timeout")
                    .or(obj.get("interval"))
                    .map_or(obj.pos(), |n| n.pos);
                r.error(
                    at,
                    format!("scrape timeout {t} is longer than the interval {i} in job `{name}`"),
                    Some("set `timeout` to at most the interval".into()),
                );
            }
        }
        let labels = obj
            .get("labels")
            .map(|n| read_labels(r, n, "labels"))
            .unwrap_or_default();
        if labels.contains_key("instance") && targets.len() > 1 {
            // Identical label sets make Prometheus keep only one of the targets.
            let pos = label_key_pos(obj.get("labels"), "instance").unwrap_or(obj.pos());
            r.error(pos, format!("label `instance` on a job with {} targets makes them one target", targets.len()), Some("Prometheus sets `instance` to each target's address; drop the label, or give each target its own job".into()));
        }
        let honor_labels = r.opt_bool(&obj, "honor_labels", false);
        let fallback_scrape_protocol = obj.get("fallback_scrape_protocol").and_then(|n| {
            r.enumeration(n, "fallback_scrape_protocol", &Ty::Enum(SCRAPE_PROTOCOLS))
        });
        let mut scrape_protocols = Vec::new();
        if let Some(node) = obj.get("scrape_protocols") {
            for item in r.list(node, "scrape_protocols") {
                if let Some(protocol) =
                    r.enumeration(item, "scrape_protocols", &Ty::Enum(SCRAPE_PROTOCOLS))
                {
                    if scrape_protocols.contains(&protocol) {
                        r.error(
                            item.pos,
                            format!("`{protocol}` is listed twice in `scrape_protocols`"),
                            None,
                        );
                    }
                    scrape_protocols.push(protocol);
                }
            }
        }
        jobs.push(ScrapeJob {
            name,
            targets,
            metrics_path,
            scheme,
            interval,
            timeout,
            labels,
            honor_labels,
            fallback_scrape_protocol,
            scrape_protocols,
        });
    }
    jobs
}

fn label_key_pos(labels: Option<&Node>, name: &str) -> Option<Pos> {
    match &labels?.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| reader::scalar_text(k) == Some(name))
            .map(|(k, _)| k.pos),
        _ => None,
    }
}

/// `host:port` as Prometheus wants it: no scheme, no path, a port in range.
pub fn check_target_address(addr: &str) -> Result<(), (String, String)> {
    let bad =
        |why: &str, hint: &str| Err((format!("invalid target `{addr}`: {why}"), hint.to_string()));
    if let Some((scheme, rest)) = addr.split_once("://") {
        let host = rest.split('/').next().unwrap_or(rest);
        let hint = format!(
            "write `{host}`{}",
            if scheme == "https" {
                " and set `scheme: https`"
            } else {
                ""
            }
        );
        return bad("targets are `host:port`, without a scheme", &hint);
    }
    if addr.contains('/') {
        return bad(
            "targets are `host:port`, without a path",
            "set the job's `path:` for the metrics path",
        );
    }
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        match rest.split_once("]:") {
            Some((h, p)) if h.parse::<std::net::Ipv6Addr>().is_ok() => (h, p),
            _ => {
                return bad(
                    "IPv6 addresses are written `[::1]:9100`",
                    "e.g. `[2001:db8::1]:9100`",
                )
            }
        }
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p),
            Some(_) => return bad("IPv6 addresses need brackets", "e.g. `[2001:db8::1]:9100`"),
            None => return bad("the port is missing", &format!("e.g. `{addr}:9100`")),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !host_ok && !addr.starts_with('[') {
        return bad(
            "the host is not a valid hostname or IP address",
            "e.g. `host.docker.internal:8080` or `10.0.0.5:9100`",
        );
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(()),
        Ok(p) => bad(&format!("port {p} is out of range"), "ports are 1 to 65535"),
        Err(_) => bad(
            "the port is not a number",
            "e.g. `host.docker.internal:8080`",
        ),
    }
}

pub(super) fn read_discovery(
    r: &mut Reader,
    node: &Node,
    etcd_enabled: bool,
    root: &std::path::Path,
) -> Discovery {
    let Some(obj) = r.object(node, &spec::DISCOVERY) else {
        return Discovery::default();
    };
    let Some(key_pos) = obj.key_pos("etcd") else {
        return Discovery::default();
    };
    let mut prefix = "/service/".to_string();
    let mut rewrite_loopback = true;
    let mut cluster = None;
    if let Some(etcd) = obj.get("etcd") {
        if let Some(e) = r.object(etcd, &spec::ETCD_DISCOVERY) {
            cluster = super::etcd_cluster::read_cluster(r, &e, root);
            rewrite_loopback = r.opt_bool(&e, "rewrite_loopback", true);
            if let Some(n) = e.get("prefix") {
                prefix = r.string(n, "prefix").unwrap_or_default();
                if !prefix.starts_with('/') {
                    r.error(
                        n.pos,
                        format!("`prefix` must start with `/`, found `{prefix}`"),
                        Some("e.g. `/service/`".into()),
                    );
                }
                if !prefix.ends_with('/') {
                    prefix.push('/');
                }
            }
        }
    }
    match (etcd_enabled, cluster.is_some()) {
        (false, false) => r.error(
            key_pos,
            "etcd discovery needs the `etcd` service, which is not enabled",
            Some(
                "add `etcd: {}` at the top level, or list an existing cluster's \
                 `discovery.etcd.endpoints`"
                    .into(),
            ),
        ),
        (true, true) => r.error(
            key_pos,
            "`discovery.etcd.endpoints` names an existing cluster, and the stack's own `etcd` \
             is enabled too",
            Some("remove the top-level `etcd:`: discovery uses the endpoints".into()),
        ),
        _ => {}
    }
    Discovery {
        etcd: Some(EtcdDiscovery {
            prefix,
            rewrite_loopback,
            cluster,
        }),
        consul: None,
    }
}

#[cfg(test)]
mod tests {
    use super::{check_target_address, valid_job_name};

    #[test]
    fn job_names_start_with_a_letter_or_digit_and_use_few_punctuation_marks() {
        let longest = "j".repeat(128);
        for name in [
            "node",
            "order-service",
            "web.front",
            "a_b",
            "9lives",
            &longest,
        ] {
            assert!(valid_job_name(name), "{name}");
        }
        let too_long = "j".repeat(129);
        for name in [
            "", "-node", ".hidden", "_x", "my job", "a/b", "a:b", "ünï", &too_long,
        ] {
            assert!(!valid_job_name(name), "{name}");
        }
    }

    #[test]
    fn target_addresses_are_host_and_port() {
        for addr in [
            "localhost:9100",
            "10.0.0.5:9100",
            "host.docker.internal:8080",
            "my_host:1",
            "[::1]:9100",
            "[2001:db8::1]:65535",
        ] {
            assert_eq!(check_target_address(addr), Ok(()), "{addr}");
        }
    }

    #[test]
    fn a_bad_target_address_says_what_is_wrong_and_how_to_write_it() {
        let why = |addr: &str| check_target_address(addr).unwrap_err();
        assert_eq!(
            why("https://api.example.com/metrics"),
            (
                "invalid target `https://api.example.com/metrics`: targets are `host:port`, without a scheme".to_string(),
                "write `api.example.com` and set `scheme: https`".to_string()
            )
        );
        assert_eq!(why("http://a:80").1, "write `a:80`");
        assert_eq!(
            why("node"),
            (
                "invalid target `node`: the port is missing".to_string(),
                "e.g. `node:9100`".to_string()
            )
        );
        let long_label = format!("{}:80", "a".repeat(64));
        for (addr, problem) in [
            ("a:80/metrics", "targets are `host:port`, without a path"),
            ("::1:9100", "IPv6 addresses need brackets"),
            ("[::1]9100", "IPv6 addresses are written `[::1]:9100`"),
            ("[not-ip]:80", "IPv6 addresses are written `[::1]:9100`"),
            ("-bad-:80", "the host is not a valid hostname or IP address"),
            ("a..b:80", "the host is not a valid hostname or IP address"),
            (":80", "the host is not a valid hostname or IP address"),
            (
                &long_label,
                "the host is not a valid hostname or IP address",
            ),
            ("host:0", "port 0 is out of range"),
            ("host:65536", "port 65536 is out of range"),
            ("host:http", "the port is not a number"),
            ("host:-1", "the port is not a number"),
        ] {
            assert_eq!(why(addr).0, format!("invalid target `{addr}`: {problem}"));
        }
    }
}
