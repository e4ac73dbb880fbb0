//! `probes:`, the endpoints the blackbox exporter checks from the outside: one of `http` (a
//! URL), `tcp` (`host:port`) or `icmp` (a host), with expected status codes, interval and
//! timeout.

use std::collections::HashMap;

use super::targets::check_target_address;
use crate::manifest::reader::Reader;
use crate::manifest::spec;
use crate::manifest::yaml::{Node, Pos};
use crate::model::{Duration, Probe, ProbeKind, Prometheus};

/// The shortest timeout that leaves the blackbox exporter time to probe: it gives up half a
/// second before the scrape timeout (`--timeout-offset`).
const MIN_TIMEOUT: Duration = Duration(1000);

pub(super) fn read_probes(
    r: &mut Reader,
    node: &Node,
    prometheus: &Option<Prometheus>,
) -> Vec<Probe> {
    let mut probes = Vec::new();
    // (kind, target) -> line: one target is one `instance`, probed once per kind.
    let mut seen: HashMap<(ProbeKind, String), usize> = HashMap::new();
    for item in r.list(node, "probes") {
        let Some(obj) = r.object(item, &spec::PROBE) else {
            continue;
        };
        let kinds: Vec<ProbeKind> = ProbeKind::ALL
            .into_iter()
            .filter(|k| obj.key_pos(k.key()).is_some())
            .collect();
        let keys = || ProbeKind::ALL.map(ProbeKind::key).join(", ");
        let kind = match kinds[..] {
            [kind] => kind,
            [] => {
                r.error(
                    obj.pos(),
                    "a probe needs one of http, tcp, icmp",
                    Some("e.g. `- http: https://shop.example.com/healthz`".to_string()),
                );
                continue;
            }
            [_, second, ..] => {
                r.error(
                    obj.key_pos(second.key()).unwrap_or(obj.pos()),
                    format!("a probe has exactly one of {}", keys()),
                    Some("make one probe per check".to_string()),
                );
                continue;
            }
        };
        let Some(target_node) = obj.get(kind.key()) else {
            r.error(
                obj.key_pos(kind.key()).unwrap_or(obj.pos()),
                format!("`{}` needs a target", kind.key()),
                Some(example(kind).to_string()),
            );
            continue;
        };
        let Some(target) = r.string(target_node, kind.key()) else {
            continue;
        };
        let target = target.trim().to_string();
        if let Err((message, hint)) = check_probe_target(kind, &target) {
            r.error(target_node.pos, message, Some(hint));
            continue;
        }
        match seen.get(&(kind, target.clone())) {
            Some(line) => r.error(
                target_node.pos,
                format!("duplicate {} probe of `{target}`", kind.key()),
                Some(format!("it is already probed at line {line}")),
            ),
            None => {
                seen.insert((kind, target.clone()), target_node.pos.line);
            }
        }

        let mut status = Vec::new();
        if let Some(list) = obj.get("status") {
            if kind != ProbeKind::Http {
                r.error(
                    obj.key_pos("status").unwrap_or(list.pos),
                    format!("`status` applies to http probes, not {}", kind.key()),
                    Some("remove it".to_string()),
                );
            }
            for (text, pos) in r.string_list(list, "status").unwrap_or_default() {
                match text.trim().parse::<u16>() {
                    Ok(code) if (100..=599).contains(&code) => {
                        if status.contains(&code) {
                            r.error(pos, format!("status {code} is listed twice"), None);
                        }
                        status.push(code);
                    }
                    _ => r.error(
                        pos,
                        format!("`{text}` is not an HTTP status code"),
                        Some("status codes are 100 to 599, e.g. `status: [200, 301]`".into()),
                    ),
                }
            }
            if status.is_empty() && kind == ProbeKind::Http {
                r.error(
                    list.pos,
                    "`status` is empty",
                    Some("list the expected codes, or remove it for any 2xx".to_string()),
                );
            }
            status.sort_unstable();
        }

        let interval = r.opt_duration(&obj, "interval");
        let timeout = r.opt_duration(&obj, "timeout");
        if interval == Some(Duration(0)) {
            r.error(
                pos_of(&obj, "interval"),
                "`interval` must be longer than 0s",
                None,
            );
        }
        if let Some(t) = timeout.filter(|t| *t < MIN_TIMEOUT) {
            r.error(
                pos_of(&obj, "timeout"),
                format!("`timeout` {t} is too short for a probe"),
                Some(
                    "at least 1s: the blackbox exporter gives up half a second before the timeout"
                        .into(),
                ),
            );
        }
        let effective_interval = interval.or(prometheus.as_ref().map(|p| p.scrape_interval));
        if let (Some(i), Some(t)) = (effective_interval, timeout) {
            if t > i {
                r.error(
                    pos_of(&obj, "timeout"),
                    format!("probe timeout {t} is longer than its interval {i}"),
                    Some("set `timeout` to at most the interval".into()),
                );
            }
        }
        probes.push(Probe {
            kind,
            target,
            status,
            interval,
            timeout,
        });
    }
    probes
}

fn pos_of(obj: &crate::manifest::reader::Obj, key: &str) -> Pos {
    obj.get(key).map_or(obj.pos(), |n| n.pos)
}

fn example(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Http => "e.g. `http: https://shop.example.com/healthz`",
        ProbeKind::Tcp => "e.g. `tcp: db.example.com:5432`",
        ProbeKind::Icmp => "e.g. `icmp: 10.0.0.1`",
    }
}

/// What the blackbox exporter can probe from inside the stack's network: an http(s) URL with a
/// host, `host:port`, or a bare host. `localhost` there is the exporter's own container.
pub(super) fn check_probe_target(kind: ProbeKind, target: &str) -> Result<(), (String, String)> {
    let bad = |why: String, hint: &str| Err((why, hint.to_string()));
    let host = match kind {
        ProbeKind::Http => {
            let Some(rest) = target
                .strip_prefix("http://")
                .or_else(|| target.strip_prefix("https://"))
            else {
                return bad(
                    format!("invalid http probe `{target}`: not an http:// or https:// URL"),
                    "e.g. `https://shop.example.com/healthz`; for a port without HTTP use `tcp:`",
                );
            };
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host_port = authority.rsplit('@').next().unwrap_or_default();
            if target.contains(char::is_whitespace) || host_port.is_empty() {
                return bad(
                    format!("invalid http probe `{target}`: no host, or a space in the URL"),
                    "e.g. `https://shop.example.com/healthz`",
                );
            }
            match host_port.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
                None => host_port.split(':').next().unwrap_or_default().to_string(),
            }
        }
        ProbeKind::Tcp => {
            if let Err((message, hint)) = check_target_address(target) {
                let message = message.replacen("invalid target", "invalid tcp probe", 1);
                return Err((message, hint));
            }
            let (host, _) = target.rsplit_once(':').unwrap_or((target, ""));
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        }
        ProbeKind::Icmp => {
            let is_ip = target.parse::<std::net::IpAddr>().is_ok();
            let is_name = !target.is_empty()
                && target.len() <= 253
                && target.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if !is_ip && !is_name {
                return bad(
                    format!("invalid icmp probe `{target}`: not a host name or IP address"),
                    "icmp probes name a host, without a port or scheme: e.g. `10.0.0.1` or `db.example.com`",
                );
            }
            target.to_string()
        }
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return bad(
            format!(
                "{} probe `{target}`: inside the stack, `{host}` is the blackbox exporter's own container",
                kind.key()
            ),
            "a service on this machine is `host.docker.internal`, one of the stack by its name (`prometheus:9090`)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::read_yaml;
    use super::*;

    fn read(yaml: &str) -> (Vec<Probe>, Vec<(String, Option<String>)>) {
        read_yaml(yaml, |r, node| read_probes(r, node, &None))
    }

    #[test]
    fn each_kind_reads_with_its_settings() {
        let (probes, problems) = read(
            "- {http: 'https://shop.example.com/healthz', status: [301, 200], interval: 30s, timeout: 5s}\n\
             - tcp: db.example.com:5432\n\
             - icmp: 10.0.0.1\n",
        );
        assert_eq!(problems, []);
        assert_eq!(
            probes,
            [
                Probe {
                    kind: ProbeKind::Http,
                    target: "https://shop.example.com/healthz".into(),
                    status: vec![200, 301],
                    interval: Some(Duration::from_secs(30)),
                    timeout: Some(Duration::from_secs(5)),
                },
                Probe {
                    kind: ProbeKind::Tcp,
                    target: "db.example.com:5432".into(),
                    status: vec![],
                    interval: None,
                    timeout: None,
                },
                Probe {
                    kind: ProbeKind::Icmp,
                    target: "10.0.0.1".into(),
                    status: vec![],
                    interval: None,
                    timeout: None,
                },
            ]
        );
    }

    #[test]
    fn a_probe_has_exactly_one_kind() {
        let (_, problems) = read("- {status: [200]}\n- {http: 'http://a/', tcp: 'a:1'}\n");
        let messages: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            messages,
            [
                "a probe needs one of http, tcp, icmp",
                "a probe has exactly one of http, tcp, icmp"
            ]
        );
    }

    #[test]
    fn bad_targets_say_what_a_target_of_that_kind_looks_like() {
        for (yaml, message) in [
            ("- http: shop.example.com", "invalid http probe `shop.example.com`: not an http:// or https:// URL"),
            ("- http: 'https:///x'", "invalid http probe `https:///x`: no host, or a space in the URL"),
            ("- tcp: db.example.com", "invalid tcp probe `db.example.com`: the port is missing"),
            ("- tcp: 'http://db:5432'", "invalid tcp probe `http://db:5432`: targets are `host:port`, without a scheme"),
            ("- icmp: '10.0.0.1:80'", "invalid icmp probe `10.0.0.1:80`: not a host name or IP address"),
            ("- http: 'http://localhost:8080/'", "http probe `http://localhost:8080/`: inside the stack, `localhost` is the blackbox exporter's own container"),
            ("- tcp: '127.0.0.1:5432'", "tcp probe `127.0.0.1:5432`: inside the stack, `127.0.0.1` is the blackbox exporter's own container"),
            ("- icmp: '::1'", "icmp probe `::1`: inside the stack, `::1` is the blackbox exporter's own container"),
        ] {
            let (probes, problems) = read(yaml);
            assert!(probes.is_empty(), "{yaml}");
            assert_eq!(problems.len(), 1, "{yaml}: {problems:?}");
            assert_eq!(problems[0].0, message, "{yaml}");
        }
        let (_, problems) = read("- http: 'http://localhost:8080/'");
        assert!(problems[0]
            .1
            .as_deref()
            .unwrap()
            .contains("host.docker.internal"));
    }

    #[test]
    fn status_codes_are_http_only_in_range_and_listed_once() {
        let (_, problems) = read(
            "- {tcp: 'db:5432', status: [200]}\n- {http: 'http://a/', status: [200, 200, 700, x]}\n- {http: 'http://b/', status: []}\n",
        );
        let messages: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`status` applies to http probes, not tcp",
                "status 200 is listed twice",
                "`700` is not an HTTP status code",
                "`x` is not an HTTP status code",
                "`status` is empty"
            ]
        );
    }

    #[test]
    fn timeouts_fit_the_interval_and_leave_the_exporter_time() {
        let (_, problems) = read(
            "- {http: 'http://a/', interval: 10s, timeout: 20s}\n- {tcp: 'a:1', timeout: 500ms}\n- {icmp: a, interval: 0s}\n",
        );
        let messages: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            messages,
            [
                "probe timeout 20s is longer than its interval 10s",
                "`timeout` 500ms is too short for a probe",
                "`interval` must be longer than 0s"
            ]
        );
    }

    #[test]
    fn the_same_target_is_probed_once_per_kind() {
        let (probes, problems) =
            read("- http: 'http://a/'\n- http: 'http://a/'\n- tcp: 'a:80'\n- icmp: a\n");
        assert_eq!(probes.len(), 4);
        assert_eq!(
            problems,
            [(
                "duplicate http probe of `http://a/`".to_string(),
                Some("it is already probed at line 1".to_string())
            )]
        );
    }
}
