//! The services of the stack: `bind`, `prometheus`, `grafana`, the optional `etcd`,
//! `alertmanager`, `pushgateway`, `node_exporter` and `blackbox_exporter`, and the agent; their images, ports and bind addresses,
//! with the host ports of all of them checked for clashes.

use std::net::{IpAddr, Ipv4Addr};

use super::values::read_labels;
use crate::manifest::reader::{self, Obj, Reader};
use crate::manifest::spec;
use crate::manifest::yaml::{Node, Pos, Value};
use crate::manifest::{GRAFANA_IMAGE, PROMETHEUS_IMAGE};
use crate::model::{
    Duration, Grafana, Prometheus, Service, ALERTMANAGER, BLACKBOX, ETCD, GRAFANA, NODE_EXPORTER,
    PROMETHEUS, PUSHGATEWAY,
};

pub(super) fn read_bind(r: &mut Reader, node: &Node) -> IpAddr {
    let text = r.string(node, "bind").unwrap_or_default();
    match text.trim().parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            let hint = if text == "localhost" {
                "write 127.0.0.1"
            } else {
                "an IP address: 127.0.0.1 (this machine only), 0.0.0.0 (every interface), or one interface's address"
            };
            r.error(
                node.pos,
                format!("`bind` must be an IP address, found `{text}`"),
                Some(hint.into()),
            );
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }
}

/// Host ports of all services, checked for duplicates once every service is read.
#[derive(Default)]
pub(super) struct PortTable {
    pub(super) entries: Vec<(u16, &'static str, Pos, bool)>,
}

impl PortTable {
    fn add(&mut self, port: u16, service: &'static str, pos: Pos, explicit: bool) {
        self.entries.push((port, service, pos, explicit));
    }

    pub(super) fn check(&self, r: &mut Reader) {
        for (i, (port, service, pos, explicit)) in self.entries.iter().enumerate() {
            if let Some((_, first, first_pos, first_explicit)) =
                self.entries[..i].iter().find(|e| e.0 == *port)
            {
                let (at, other, at_explicit) = if *explicit {
                    (*pos, *first, *first_explicit)
                } else {
                    (*first_pos, *service, false)
                };
                let whose = if at_explicit {
                    format!("`{other}`")
                } else {
                    format!("`{other}` (its default)")
                };
                r.error(
                    at,
                    format!("port {port} is used by both `{service}` and `{first}`"),
                    Some(format!("choose another port; {whose} already has {port}")),
                );
            }
        }
    }
}

pub(super) fn read_service(
    r: &mut Reader,
    obj: Option<&Obj>,
    name: &'static str,
    image: &str,
    port: u16,
    bind: IpAddr,
    ports: &mut PortTable,
) -> Service {
    let mut service = Service {
        image: image.to_string(),
        bind,
        port,
    };
    let Some(obj) = obj else {
        ports.add(port, name, Pos::default(), false);
        return service;
    };
    if let Some(node) = obj.declares("image").then(|| obj.get("image")).flatten() {
        let image = r.string(node, "image").unwrap_or_default();
        if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
            r.error(
                node.pos,
                format!("invalid image reference `{image}`"),
                Some("e.g. `prom/prometheus:v3.5.0` or `registry.local/prometheus:custom`".into()),
            );
        }
        service.image = image;
    }
    match obj.get("port") {
        Some(node) => {
            if let Some(p) = r.port(node, "port") {
                service.port = p;
            }
            ports.add(service.port, name, node.pos, true);
        }
        None => ports.add(port, name, obj.pos(), false),
    }
    if let Some(node) = obj.get("bind") {
        service.bind = read_bind(r, node);
    }
    service
}

pub(super) fn read_prometheus(
    r: &mut Reader,
    node: Option<&Node>,
    bind: IpAddr,
    ports: &mut PortTable,
    root: &std::path::Path,
) -> Option<Prometheus> {
    let obj = match node {
        Some(node) => Some(r.object(node, &spec::PROMETHEUS)?),
        None => None,
    };
    let service = read_service(
        r,
        obj.as_ref(),
        PROMETHEUS,
        PROMETHEUS_IMAGE,
        9090,
        bind,
        ports,
    );
    let get = |r: &mut Reader, key| obj.as_ref().and_then(|o| r.opt_duration(o, key));
    let retention = get(r, "retention").unwrap_or(Duration::from_secs(15 * 86_400));
    let scrape_interval = get(r, "scrape_interval").unwrap_or(Duration::from_secs(15));
    let explicit_timeout = get(r, "scrape_timeout");
    let scrape_timeout = explicit_timeout.unwrap_or(Duration::from_secs(10).min(scrape_interval));
    let evaluation_interval = get(r, "evaluation_interval").unwrap_or(scrape_interval);
    if let Some(obj) = &obj {
        for key in ["scrape_interval", "evaluation_interval", "retention"] {
            if let (Some(node), Some(Duration(0))) = (obj.get(key), get(r, key)) {
                r.error(node.pos, format!("`{key}` must be longer than 0s"), None);
            }
        }
        if let (Some(node), true) = (obj.get("scrape_timeout"), scrape_timeout > scrape_interval) {
            r.error(node.pos, format!("`scrape_timeout` ({scrape_timeout}) is longer than `scrape_interval` ({scrape_interval})"), Some("Prometheus requires the timeout to be at most the interval".into()));
        }
    }
    let retention_size = obj.as_ref().and_then(|o| {
        let node = o.get("retention_size")?;
        let text = r.string(node, "retention_size")?;
        let units = ["KB", "MB", "GB", "TB", "PB", "EB", "B"];
        let ok = units.iter().any(|u| {
            text.strip_suffix(u)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        });
        if !ok {
            r.error(
                node.pos,
                format!("`retention_size` must be a size such as `10GB`, found `{text}`"),
                Some("units: B, KB, MB, GB, TB, PB, EB".into()),
            );
        }
        Some(text)
    });
    let discovery_reload_interval = match obj
        .as_ref()
        .and_then(|o| o.get("discovery_reload_interval"))
    {
        Some(node) => r.duration(node, "discovery_reload_interval"),
        // The flag exists since Prometheus 2.45: set when the image's tag names such a version
        // (the pinned one does), left out for a tag that names none (`latest`, a digest).
        None if crate::model::image_version(&service.image).is_some_and(|v| v >= (2, 45, 0)) => {
            Some(Duration::from_secs(1))
        }
        None => None,
    };
    let external_labels = obj
        .as_ref()
        .and_then(|o| o.get("external_labels"))
        .map(|n| read_labels(r, n, "external_labels"))
        .unwrap_or_default();
    let remote = super::remote_write::read_remote_settings(r, obj.as_ref(), root);
    Some(Prometheus {
        service,
        retention,
        retention_size,
        scrape_interval,
        scrape_timeout,
        evaluation_interval,
        external_labels,
        discovery_reload_interval,
        mode: remote.mode,
        remote_write: remote.remote_write,
        remote_write_receiver: remote.receiver,
    })
}

pub(super) fn read_grafana(
    r: &mut Reader,
    node: Option<&Node>,
    bind: IpAddr,
    ports: &mut PortTable,
) -> Option<Grafana> {
    let toggle = node.and_then(reader::scalar_text);
    if toggle == Some("false") {
        let service = Service {
            image: GRAFANA_IMAGE.into(),
            bind,
            port: 3000,
        };
        return Some(Grafana {
            enabled: false,
            service,
            admin_user: "admin".into(),
            admin_password: None,
        });
    }
    let obj = match node {
        Some(node) if toggle != Some("true") => Some(r.object(node, &spec::GRAFANA)?),
        _ => None,
    };
    let service = read_service(r, obj.as_ref(), GRAFANA, GRAFANA_IMAGE, 3000, bind, ports);
    let admin_user = obj
        .as_ref()
        .and_then(|o| r.non_empty(o, "admin_user"))
        .unwrap_or_else(|| "admin".into());
    let admin_password = obj.as_ref().and_then(|o| {
        let node = o.get("admin_password")?;
        let password = r.string(node, "admin_password")?;
        if password.is_empty() {
            return None;
        }
        if ["admin", "password", admin_user.as_str()].contains(&password.as_str()) || password.len() < 8 {
            r.error(node.pos, "`admin_password` is too weak", Some("use at least 8 characters, not `admin`; or leave it empty and monstack generates one".into()));
        }
        Some(password)
    });
    Some(Grafana {
        enabled: true,
        service,
        admin_user,
        admin_password,
    })
}

/// `etcd: {}` / `etcd:` / `etcd: true` enable a service; `etcd: false` or no key leave it off.
#[allow(clippy::too_many_arguments)]
pub(super) fn read_optional_service(
    r: &mut Reader,
    m: &Obj,
    key: &str,
    section: &'static spec::Section,
    image: &str,
    port: u16,
    bind: IpAddr,
    ports: &mut PortTable,
) -> Option<Service> {
    let name: &'static str = match key {
        "etcd" => ETCD,
        "alertmanager" => ALERTMANAGER,
        "node_exporter" => NODE_EXPORTER,
        "blackbox_exporter" => BLACKBOX,
        "influxdb" => crate::model::INFLUXDB,
        _ => PUSHGATEWAY,
    };
    let key_pos = m.key_pos(key)?;
    let node = m.get(key);
    match node.map(|n| &n.value) {
        Some(Value::Scalar { text, .. }) if text == "false" => None,
        // `etcd:` or `etcd: true`: enabled with defaults; a port clash points at the key.
        None | Some(Value::Scalar { text: _, .. })
            if node.is_none_or(|n| reader::scalar_text(n) == Some("true")) =>
        {
            let service = read_service(r, None, name, image, port, bind, ports);
            if let Some(last) = ports.entries.last_mut() {
                last.2 = key_pos;
            }
            Some(service)
        }
        _ => {
            let obj = r.object(node?, section)?;
            Some(read_service(r, Some(&obj), name, image, port, bind, ports))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::super::read_yaml;
    use super::{read_bind, PortTable};
    use crate::manifest::yaml::Pos;
    use crate::model::{ALERTMANAGER, GRAFANA, PROMETHEUS, PUSHGATEWAY};

    #[test]
    fn bind_is_an_ip_address() {
        for (yaml, ip) in [
            ("127.0.0.1", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ("0.0.0.0", IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            ("' 10.0.0.5 '", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))),
            ("'::1'", IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ] {
            assert_eq!(read_yaml(yaml, read_bind), (ip, vec![]), "{yaml}");
        }
    }

    #[test]
    fn a_bind_that_is_not_an_ip_address_is_reported_and_falls_back_to_localhost() {
        let (ip, problems) = read_yaml("localhost", read_bind);
        assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            problems,
            [(
                "`bind` must be an IP address, found `localhost`".to_string(),
                Some("write 127.0.0.1".to_string())
            )]
        );
        let (ip, problems) = read_yaml("eth0", read_bind);
        assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(problems.len(), 1);
        assert!(problems[0]
            .1
            .as_ref()
            .unwrap()
            .contains("0.0.0.0 (every interface)"));
    }

    #[test]
    fn a_port_clash_points_at_the_explicit_port_and_names_the_default() {
        let explicit = Pos {
            line: 3,
            col: 9,
            offset: 30,
        };
        let mut ports = PortTable::default();
        ports.add(9090, PROMETHEUS, Pos::default(), false);
        ports.add(3000, GRAFANA, Pos::default(), false);
        ports.add(9090, GRAFANA, explicit, true);
        let mut at = Vec::new();
        let (_, problems) = read_yaml("~", |r, _| {
            ports.check(r);
            at = r.diagnostics.items.iter().map(|d| d.pos).collect();
        });
        assert_eq!(at, [explicit]);
        assert_eq!(
            problems,
            [(
                "port 9090 is used by both `grafana` and `prometheus`".to_string(),
                Some(
                    "choose another port; `prometheus` (its default) already has 9090".to_string()
                )
            )]
        );
    }

    #[test]
    fn a_clash_of_two_defaults_points_at_the_first() {
        let first = Pos {
            line: 7,
            col: 1,
            offset: 80,
        };
        let mut ports = PortTable::default();
        ports.add(9093, ALERTMANAGER, first, false);
        ports.add(9093, PUSHGATEWAY, Pos::default(), false);
        let mut at = Vec::new();
        let (_, problems) = read_yaml("~", |r, _| {
            ports.check(r);
            at = r.diagnostics.items.iter().map(|d| d.pos).collect();
        });
        assert_eq!(at, [first]);
        assert_eq!(
            problems[0].1.as_deref(),
            Some("choose another port; `pushgateway` (its default) already has 9093")
        );
        let mut distinct = PortTable::default();
        distinct.add(9090, PROMETHEUS, Pos::default(), false);
        distinct.add(9091, PUSHGATEWAY, Pos::default(), false);
        let (_, problems) = read_yaml("~", |r, _| distinct.check(r));
        assert_eq!(problems, []);
    }

    #[test]
    fn the_discovery_reload_flag_follows_the_image_version() {
        use crate::manifest::{load, Source};
        let root = std::path::Path::new(".");
        let interval = |image: &str| {
            let text = format!("project: p\nprometheus:\n  image: \"{image}\"\n");
            let source = Source {
                text: &text,
                display_name: "monstack.yaml",
                root,
            };
            load(&source, &|_| None)
                .unwrap()
                .prometheus
                .discovery_reload_interval
                .map(|d| d.to_string())
        };
        assert_eq!(
            interval(crate::manifest::PROMETHEUS_IMAGE).as_deref(),
            Some("1s")
        );
        assert_eq!(
            interval("registry.local/prom/prometheus:v3.5.3").as_deref(),
            Some("1s")
        );
        assert_eq!(interval("prom/prometheus:v2.45.0").as_deref(), Some("1s"));
        assert_eq!(interval("prom/prometheus:v2.44.0"), None);
        assert_eq!(interval("prom/prometheus:latest"), None);
    }
}
