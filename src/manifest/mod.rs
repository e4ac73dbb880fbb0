//! `monstack.yaml` -> validated [`Stack`].
//!
//! Steps: parse into a positioned tree, interpolate `${VAR}`s, read every section against the
//! [`spec`] (types, unknown keys), then cross-check (duplicates, references between sections,
//! ports). Every problem is collected and reported together with `file:line:col` and a hint;
//! nothing is returned unless the whole manifest is valid.

pub mod diagnostics;
pub mod edit;
pub mod interpolate;
pub mod promql;
pub mod reader;
pub mod spec;
pub mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use diagnostics::{closest, Diagnostics};
use interpolate::{interpolate, InterpolationError, Lookup};
use reader::{Obj, Reader};

use crate::dashboards;
use crate::model::RESERVED_JOB_NAMES;
use crate::model::*;
use yaml::{Node, Pos, Value};

/// The default manifest file name.
pub const FILE_NAME: &str = "monstack.yaml";

/// Default images, pinned to current stable releases. Each is overridable in the manifest.
pub const PROMETHEUS_IMAGE: &str = "prom/prometheus:v3.5.0";
pub const GRAFANA_IMAGE: &str = "grafana/grafana:12.1.1";
pub const ETCD_IMAGE: &str = "quay.io/coreos/etcd:v3.5.21";
pub const ALERTMANAGER_IMAGE: &str = "prom/alertmanager:v0.28.1";
pub const PUSHGATEWAY_IMAGE: &str = "prom/pushgateway:v1.11.1";

/// Where a manifest came from: its text, the name to show in messages, and the directory
/// relative paths (dashboard files) and the default project name come from.
pub struct Source<'a> {
    pub text: &'a str,
    pub display_name: &'a str,
    pub root: &'a Path,
}

/// Parses and validates a manifest. `env` resolves `${VAR}`s.
pub fn load(source: &Source, env: Lookup) -> Result<Stack, Diagnostics> {
    let mut r = Reader {
        diagnostics: Diagnostics::new(source.display_name, source.text),
    };
    let mut root = match yaml::parse(source.text) {
        Ok(node) => node,
        Err(e) => {
            r.error(
                e.pos,
                format!("invalid YAML: {}", e.message),
                Some("check the indentation and quoting on this line".to_string()),
            );
            return Err(r.diagnostics);
        }
    };
    interpolate_tree(&mut root, env, &mut r.diagnostics);
    let stack = if root.value == Value::Null {
        Some(read_empty(source, &mut r))
    } else {
        read_stack(&root, source, &mut r)
    };
    match stack {
        Some(stack) if r.diagnostics.is_empty() => Ok(stack),
        _ => Err(r.diagnostics.sorted()),
    }
}

fn interpolate_tree(node: &mut Node, env: Lookup, d: &mut Diagnostics) {
    match &mut node.value {
        Value::Scalar { text, .. } => {
            if !text.contains("${") {
                return;
            }
            match interpolate(text, env) {
                Ok(value) => *text = value,
                Err(InterpolationError::Unset(name)) => {
                    let var = name.split(' ').next().unwrap_or(&name).to_string();
                    d.poison(
                        node.pos,
                        format!("environment variable {name} is not set"),
                        Some(format!(
                            "export {var}=..., or give a default: ${{{var}:-default}}"
                        )),
                    );
                }
                Err(InterpolationError::Malformed(message)) => {
                    d.poison(
                        node.pos,
                        message,
                        Some("write `$${` for a literal `${`".into()),
                    );
                }
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|n| interpolate_tree(n, env, d)),
        Value::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, v)| interpolate_tree(v, env, d)),
        Value::Null => {}
    }
}

fn read_empty(source: &Source, r: &mut Reader) -> Stack {
    let empty = Node {
        pos: Pos {
            line: 1,
            col: 1,
            offset: 0,
        },
        value: Value::Map(vec![]),
    };
    read_stack(&empty, source, r).expect("an empty mapping is a valid manifest")
}

/// The project name from the directory: lower-cased, anything Docker rejects replaced by `-`.
pub fn project_from_dir(root: &Path) -> String {
    let name = root
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_lowercase();
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches(|c| c == '-' || c == '_').to_string()
}

fn valid_project(name: &str) -> bool {
    name.len() <= 48
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn read_stack(root: &Node, source: &Source, r: &mut Reader) -> Option<Stack> {
    let m = r.object(root, &spec::MANIFEST)?;

    if let Some(node) = m.get("version") {
        r.int(node, "version", 1, 1);
    }
    let project = match m.get("project") {
        Some(node) => {
            let name = r.string(node, "project").unwrap_or_default();
            if !valid_project(&name) {
                r.error(node.pos, format!("invalid project name `{name}`"), Some("use lower-case letters, digits, `-` and `_`, starting with a letter or digit (at most 48)".into()));
            }
            name
        }
        None => {
            let name = project_from_dir(source.root);
            if !valid_project(&name) {
                r.error(
                    m.pos(),
                    format!(
                        "cannot derive a project name from the directory `{}`",
                        source.root.display()
                    ),
                    Some("set `project: <name>` in the manifest".into()),
                );
            }
            name
        }
    };
    let bind = match m.get("bind") {
        Some(node) => read_bind(r, node),
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };

    let mut ports = PortTable::default();
    let prometheus = read_prometheus(r, m.get("prometheus"), bind, &mut ports);
    let grafana = read_grafana(r, m.get("grafana"), bind, &mut ports);
    let etcd = read_optional_service(
        r,
        &m,
        "etcd",
        &spec::ETCD,
        ETCD_IMAGE,
        2379,
        bind,
        &mut ports,
    );
    let alertmanager = read_optional_service(
        r,
        &m,
        "alertmanager",
        &spec::ALERTMANAGER,
        ALERTMANAGER_IMAGE,
        9093,
        bind,
        &mut ports,
    );
    let pushgateway = read_optional_service(
        r,
        &m,
        "pushgateway",
        &spec::PUSHGATEWAY,
        PUSHGATEWAY_IMAGE,
        9091,
        bind,
        &mut ports,
    );
    let agent_obj = match m.get("agent") {
        Some(node) => r.object(node, &spec::AGENT),
        None => None,
    };
    // Its port takes part in the duplicate check only when the stack needs the agent.
    let mut agent_ports = PortTable::default();
    let agent_service = read_service(
        r,
        agent_obj.as_ref(),
        AGENT,
        "",
        AGENT_PORT,
        bind,
        &mut agent_ports,
    );

    let jobs = m
        .get("targets")
        .map(|n| read_jobs(r, n, &prometheus))
        .unwrap_or_default();
    let discovery = m
        .get("discovery")
        .map(|n| read_discovery(r, n, etcd.is_some()))
        .unwrap_or_default();
    let smtp = m.get("smtp").and_then(|n| read_smtp(r, n));
    let channels = m
        .get("channels")
        .map(|n| read_channels(r, n, m.has("smtp")))
        .unwrap_or_default();
    let channel_names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
    let alerting = read_alerting(r, m.get("alerting"), &channel_names, &prometheus);
    let alerts = m
        .get("alerts")
        .map(|n| read_alerts(r, n, &channel_names))
        .unwrap_or_default();
    if alerting.engine == AlertEngine::Alertmanager
        && alertmanager.is_none()
        && !channels.is_empty()
    {
        let pos = m.key_pos("channels").unwrap_or(m.pos());
        r.error(pos, "channels need Alertmanager to deliver alerts, and the `alertmanager` service is not enabled", Some("add `alertmanager: {}`, or set `alerting: {engine: grafana}` to let Grafana deliver them".into()));
    }
    if grafana.as_ref().is_some_and(|g| !g.enabled) {
        let needs: [(&str, bool); 3] = [
            ("dashboards", m.has("dashboards")),
            ("datasources", m.has("datasources")),
            ("alerting", alerting.engine == AlertEngine::Grafana),
        ];
        for (key, used) in needs {
            if used {
                let pos = m.key_pos(key).unwrap_or(m.pos());
                r.error(
                    pos,
                    format!("`{key}` needs Grafana, which is disabled (`grafana: false`)"),
                    Some("remove this section, or enable Grafana".into()),
                );
            }
        }
    }
    let needs_agent = discovery.etcd.is_some()
        || channels
            .iter()
            .any(|c| matches!(c.kind, ChannelKind::DingTalk { .. }));
    if needs_agent {
        ports.entries.extend(agent_ports.entries);
    }
    ports.check(r);
    let datasources = m
        .get("datasources")
        .map(|n| read_datasources(r, n, alertmanager.is_some()))
        .unwrap_or_default();
    let dashboards = m
        .get("dashboards")
        .map(|n| read_dashboards(r, n, source.root, &datasources, alertmanager.is_some()))
        .unwrap_or_default();

    Some(Stack {
        project,
        root: source.root.to_path_buf(),
        prometheus: prometheus?,
        grafana: grafana?,
        etcd,
        alertmanager,
        pushgateway,
        agent: needs_agent.then_some(agent_service),
        jobs,
        discovery,
        channels,
        smtp,
        alerting,
        alerts,
        datasources,
        dashboards,
    })
}

fn read_bind(r: &mut Reader, node: &Node) -> IpAddr {
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
struct PortTable {
    entries: Vec<(u16, &'static str, Pos, bool)>,
}

impl PortTable {
    fn add(&mut self, port: u16, service: &'static str, pos: Pos, explicit: bool) {
        self.entries.push((port, service, pos, explicit));
    }

    fn check(&self, r: &mut Reader) {
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

fn read_service(
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

fn read_prometheus(
    r: &mut Reader,
    node: Option<&Node>,
    bind: IpAddr,
    ports: &mut PortTable,
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
        // The flag exists since Prometheus 2.45: only assumed for the pinned image.
        None if service.image == PROMETHEUS_IMAGE => Some(Duration::from_secs(1)),
        None => None,
    };
    let external_labels = obj
        .as_ref()
        .and_then(|o| o.get("external_labels"))
        .map(|n| read_labels(r, n, "external_labels"))
        .unwrap_or_default();
    Some(Prometheus {
        service,
        retention,
        retention_size,
        scrape_interval,
        scrape_timeout,
        evaluation_interval,
        external_labels,
        discovery_reload_interval,
    })
}

fn read_grafana(
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
fn read_optional_service(
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

fn valid_label_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn read_labels(r: &mut Reader, node: &Node, what: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (name, name_pos, value, _) in r.string_map(node, what).unwrap_or_default() {
        if !valid_label_name(&name) {
            r.error(
                name_pos,
                format!("invalid label name `{name}`"),
                Some("label names are letters, digits and `_`, not starting with a digit".into()),
            );
        } else if name.starts_with("__") {
            r.error(
                name_pos,
                format!("label name `{name}` is reserved"),
                Some("names starting with `__` are internal to Prometheus".into()),
            );
        }
        labels.insert(name, value);
    }
    labels
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

fn valid_job_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn read_jobs(r: &mut Reader, node: &Node, prometheus: &Option<Prometheus>) -> Vec<ScrapeJob> {
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
        if let Some(list) = obj.get("targets") {
            for (addr, pos) in r.string_list(list, "targets").unwrap_or_default() {
                if let Err((message, hint)) = check_target_address(&addr) {
                    r.error(pos, message, Some(hint));
                } else if targets.contains(&addr) {
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
        let effective_interval = interval.or(prometheus.as_ref().map(|p| p.scrape_interval));
        let effective_timeout = timeout.or(prometheus.as_ref().map(|p| p.scrape_timeout));
        if let (Some(i), Some(t)) = (effective_interval, effective_timeout) {
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
        jobs.push(ScrapeJob {
            name,
            targets,
            metrics_path,
            scheme,
            interval,
            timeout,
            labels,
            honor_labels,
        });
    }
    jobs
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

fn read_discovery(r: &mut Reader, node: &Node, etcd_enabled: bool) -> Discovery {
    let Some(obj) = r.object(node, &spec::DISCOVERY) else {
        return Discovery::default();
    };
    let Some(key_pos) = obj.key_pos("etcd") else {
        return Discovery::default();
    };
    let mut prefix = "/service/".to_string();
    if let Some(etcd) = obj.get("etcd") {
        if let Some(e) = r.object(etcd, &spec::ETCD_DISCOVERY) {
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
    if !etcd_enabled {
        r.error(
            key_pos,
            "etcd discovery needs the `etcd` service, which is not enabled",
            Some("add `etcd: {}` at the top level".into()),
        );
    }
    Discovery {
        etcd: Some(EtcdDiscovery { prefix }),
    }
}

fn read_smtp(r: &mut Reader, node: &Node) -> Option<Smtp> {
    let obj = r.object(node, &spec::SMTP)?;
    let smarthost = r.non_empty(&obj, "host").unwrap_or_default();
    if let Some(n) = obj.get("host") {
        if !smarthost.is_empty() && check_target_address(&smarthost).is_err() {
            r.error(
                n.pos,
                format!("`host` must be `host:port`, found `{smarthost}`"),
                Some("e.g. `smtp.example.com:587`".into()),
            );
        }
    }
    let from = r.non_empty(&obj, "from").unwrap_or_default();
    if let Some(n) = obj.get("from") {
        if !from.is_empty() && !looks_like_email(&from) {
            r.error(
                n.pos,
                format!("`from` is not an email address: `{from}`"),
                None,
            );
        }
    }
    let username = r.opt_string(&obj, "user").filter(|s| !s.is_empty());
    let password = r.opt_string(&obj, "password").filter(|s| !s.is_empty());
    // Port 465 is implicit TLS (the connection is encrypted from the start and offers no
    // STARTTLS); everywhere else STARTTLS is required unless the manifest says otherwise.
    let require_tls = r.opt_bool(&obj, "require_tls", !smarthost.ends_with(":465"));
    Some(Smtp {
        smarthost,
        from,
        username,
        password,
        require_tls,
    })
}

fn looks_like_email(text: &str) -> bool {
    let addr = text
        .rsplit_once('<')
        .map_or(text, |(_, a)| a.trim_end_matches('>'));
    matches!(addr.split_once('@'), Some((user, domain)) if !user.is_empty() && !domain.is_empty() && !addr.contains(char::is_whitespace))
}

fn check_url(r: &mut Reader, node: &Node, what: &str) -> String {
    let url = r.string(node, what).unwrap_or_default();
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !url.contains(char::is_whitespace);
    if !ok {
        // The URL may carry a token: do not echo it.
        r.error(
            node.pos,
            format!("`{what}` must be an http:// or https:// URL"),
            Some("e.g. https://hooks.example.com/alerts".into()),
        );
    }
    url
}

fn read_channels(r: &mut Reader, node: &Node, has_smtp: bool) -> Vec<Channel> {
    let mut channels = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in r.list(node, "channels") {
        let Some(obj) = r.object(item, &spec::CHANNEL) else {
            continue;
        };
        let name = r.non_empty(&obj, "name").unwrap_or_default();
        if let Some(n) = obj.get("name") {
            if !name.is_empty() {
                let valid = name.len() <= 40
                    && name
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphanumeric())
                    && name.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    });
                if !valid {
                    r.error(
                        n.pos,
                        format!("invalid channel name `{name}`"),
                        Some("use lower-case letters, digits, `-` and `_` (at most 40)".into()),
                    );
                } else if name.starts_with("monstack") {
                    r.error(
                        n.pos,
                        format!("channel name `{name}` is reserved"),
                        Some("names starting with `monstack` are used by the stack itself".into()),
                    );
                } else if let Some(line) = seen.get(&name) {
                    r.error(
                        n.pos,
                        format!("duplicate channel name `{name}`"),
                        Some(format!("`{name}` is already defined at line {line}")),
                    );
                } else {
                    seen.insert(name.clone(), n.pos.line);
                }
            }
        }
        let kinds: Vec<&str> = spec::CHANNEL_KINDS
            .into_iter()
            .filter(|k| obj.key_pos(k).is_some())
            .collect();
        if kinds.len() != 1 {
            let (message, pos) = if kinds.is_empty() {
                (format!("channel `{name}` has no kind"), obj.pos())
            } else {
                (
                    format!(
                        "channel `{name}` has {} kinds ({}); a channel has exactly one",
                        kinds.len(),
                        kinds.join(", ")
                    ),
                    obj.key_pos(kinds[1]).unwrap(),
                )
            };
            r.error(
                pos,
                message,
                Some(format!(
                    "add one of: {}; make one channel per destination",
                    spec::CHANNEL_KINDS.join(", ")
                )),
            );
            continue;
        }
        let kind_key = kinds[0];
        let send_resolved = r.opt_bool(&obj, "send_resolved", true);
        let Some(kind_node) = obj.get(kind_key) else {
            r.error(
                obj.key_pos(kind_key).unwrap(),
                format!("`{kind_key}` needs its settings"),
                Some(format!("e.g. `{kind_key}: {{url: ...}}`")),
            );
            continue;
        };
        let kind = match kind_key {
            "email" => {
                let Some(e) = r.object(kind_node, &spec::EMAIL) else {
                    continue;
                };
                if !has_smtp {
                    r.error(obj.key_pos("email").unwrap(), format!("email channel `{name}` needs an SMTP server, and there is no `smtp` section"), Some("add `smtp: {host: smtp.example.com:587, from: alerts@example.com, user: ..., password: ${SMTP_PASSWORD}}`".into()));
                }
                let mut to = Vec::new();
                if let Some(list) = e.get("to") {
                    let addresses = r.string_list(list, "to").unwrap_or_default();
                    if addresses.is_empty() {
                        r.error(
                            list.pos,
                            "`to` is empty",
                            Some("list at least one address".into()),
                        );
                    }
                    for (addr, pos) in addresses {
                        if !looks_like_email(&addr) {
                            r.error(pos, format!("`{addr}` is not an email address"), None);
                        }
                        to.push(addr);
                    }
                }
                ChannelKind::Email { to }
            }
            "dingtalk" => {
                let Some(e) = r.object(kind_node, &spec::DINGTALK) else {
                    continue;
                };
                let url = e
                    .get("url")
                    .map(|n| check_url(r, n, "url"))
                    .unwrap_or_default();
                let secret = r.opt_string(&e, "secret").filter(|s| !s.is_empty());
                let keyword = r.opt_string(&e, "keyword").filter(|s| !s.is_empty());
                let at_mobiles = e
                    .get("at_mobiles")
                    .and_then(|n| r.string_list(n, "at_mobiles"))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(m, _)| m)
                    .collect();
                let at_all = r.opt_bool(&e, "at_all", false);
                ChannelKind::DingTalk {
                    url,
                    secret,
                    keyword,
                    at_mobiles,
                    at_all,
                }
            }
            "webhook" => {
                let Some(e) = r.object(kind_node, &spec::WEBHOOK) else {
                    continue;
                };
                let url = e
                    .get("url")
                    .map(|n| check_url(r, n, "url"))
                    .unwrap_or_default();
                let max_alerts = e
                    .get("max_alerts")
                    .and_then(|n| r.int(n, "max_alerts", 0, 100_000))
                    .unwrap_or(0) as u32;
                ChannelKind::Webhook { url, max_alerts }
            }
            _ => {
                let Some(e) = r.object(kind_node, &spec::SLACK) else {
                    continue;
                };
                let url = e
                    .get("url")
                    .map(|n| check_url(r, n, "url"))
                    .unwrap_or_default();
                let channel = r.opt_string(&e, "channel").filter(|s| !s.is_empty());
                let username = r.opt_string(&e, "username").filter(|s| !s.is_empty());
                ChannelKind::Slack {
                    url,
                    channel,
                    username,
                }
            }
        };
        channels.push(Channel {
            name,
            send_resolved,
            kind,
        });
    }
    channels
}

/// Checks a list of channel names; returns the valid ones.
fn read_channel_refs(r: &mut Reader, node: &Node, what: &str, channels: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, pos) in r.string_list(node, what).unwrap_or_default() {
        if !channels.contains(&name.as_str()) {
            let hint = match closest(&name, channels.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None if channels.is_empty() => "define it under `channels:`".to_string(),
                None => format!("defined channels: {}", channels.join(", ")),
            };
            r.error(pos, format!("undefined channel `{name}`"), Some(hint));
        } else if out.contains(&name) {
            r.error(pos, format!("channel `{name}` is listed twice"), None);
        } else {
            out.push(name);
        }
    }
    out
}

fn read_alerting(
    r: &mut Reader,
    node: Option<&Node>,
    channels: &[&str],
    prometheus: &Option<Prometheus>,
) -> Alerting {
    let _ = prometheus;
    let mut alerting = Alerting {
        engine: AlertEngine::Alertmanager,
        default_notify: channels.iter().map(|c| c.to_string()).collect(),
        group_by: vec!["alertname".into(), "job".into()],
        group_wait: Duration::from_secs(30),
        group_interval: Duration::from_secs(300),
        repeat_interval: Duration::from_secs(4 * 3600),
        builtin: true,
    };
    let Some(obj) = node.and_then(|n| r.object(n, &spec::ALERTING)) else {
        return alerting;
    };
    if let Some(n) = obj.get("engine") {
        if r.enumeration(n, "engine", &spec::ALERTING.field("engine").unwrap().ty)
            .as_deref()
            == Some("grafana")
        {
            alerting.engine = AlertEngine::Grafana;
        }
    }
    if let Some(n) = obj.get("notify") {
        alerting.default_notify = read_channel_refs(r, n, "notify", channels);
    }
    if let Some(n) = obj.get("group_by") {
        let labels = r.string_list(n, "group_by").unwrap_or_default();
        for (label, pos) in &labels {
            if label != "..." && !valid_label_name(label) {
                r.error(
                    *pos,
                    format!("invalid label name `{label}` in `group_by`"),
                    Some("`...` groups by every label".into()),
                );
            }
        }
        alerting.group_by = labels.into_iter().map(|(l, _)| l).collect();
    }
    for (key, slot) in [
        ("group_wait", &mut alerting.group_wait),
        ("group_interval", &mut alerting.group_interval),
        ("repeat_interval", &mut alerting.repeat_interval),
    ] {
        if let Some(d) = r.opt_duration(&obj, key) {
            *slot = d;
        }
    }
    if let Some(builtin) = obj.get("builtin").and_then(|n| r.bool(n, "builtin")) {
        alerting.builtin = builtin;
    }
    alerting
}

fn read_alerts(r: &mut Reader, node: &Node, channels: &[&str]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in r.list(node, "alerts") {
        let Some(obj) = r.object(item, &spec::ALERT) else {
            continue;
        };
        let name = r.non_empty(&obj, "name").unwrap_or_default();
        if let Some(n) = obj.get("name") {
            if !name.is_empty() {
                if !valid_label_name(&name) {
                    r.error(
                        n.pos,
                        format!("invalid alert name `{name}`"),
                        Some("use letters, digits and `_`, e.g. `HighErrorRate`".into()),
                    );
                } else if let Some(line) = seen.get(&name) {
                    r.error(
                        n.pos,
                        format!("duplicate alert name `{name}`"),
                        Some(format!("`{name}` is already defined at line {line}")),
                    );
                } else {
                    seen.insert(name.clone(), n.pos.line);
                }
            }
        }
        let expr = r.non_empty(&obj, "expr").unwrap_or_default();
        if let Some(n) = obj.get("expr") {
            if let Err(problem) = check_brackets(&expr) {
                r.error(n.pos, format!("`expr` is not valid PromQL: {problem}"), Some("quote expressions containing `{` or `:` in YAML: expr: 'up{job=\"x\"} == 0'".into()));
            }
        }
        let for_ = r.opt_duration(&obj, "for").unwrap_or(Duration(0));
        let severity = match obj.get("severity") {
            Some(n) => {
                let s = r.string(n, "severity").unwrap_or_default();
                if s.trim().is_empty() {
                    r.error(
                        n.pos,
                        "`severity` is empty",
                        Some("e.g. `warning` or `critical`".into()),
                    );
                }
                s
            }
            None => "warning".into(),
        };
        let summary = r.opt_string(&obj, "summary");
        let description = r.opt_string(&obj, "description");
        let labels = obj
            .get("labels")
            .map(|n| read_labels(r, n, "labels"))
            .unwrap_or_default();
        if let Some(n) = obj.get("labels") {
            for reserved in ["severity", "alertname"] {
                if labels.contains_key(reserved) {
                    r.error(
                        n.pos,
                        format!("label `{reserved}` is set by monstack"),
                        Some(if reserved == "severity" {
                            "use the alert's `severity:` field".into()
                        } else {
                            "the alert's `name` is its alertname".to_string()
                        }),
                    );
                }
            }
        }
        let notify = obj
            .get("notify")
            .map(|n| read_channel_refs(r, n, "notify", channels))
            .unwrap_or_default();
        alerts.push(Alert {
            name,
            expr,
            for_,
            severity,
            summary,
            description,
            labels,
            notify,
        });
    }
    alerts
}

/// A cheap sanity check of PromQL (the full grammar is checked by Prometheus on load):
/// brackets balanced and strings closed.
pub fn check_brackets(expr: &str) -> Result<(), String> {
    let mut stack = Vec::new();
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let quote = c;
                loop {
                    match chars.next() {
                        None => return Err(format!("unclosed string starting with {quote}")),
                        Some('\\') if quote != '`' => {
                            chars.next();
                        }
                        Some(q) if q == quote => break,
                        Some(_) => {}
                    }
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Err(format!("unexpected `{c}`"));
                }
            }
            '#' => break,
            _ => {}
        }
    }
    match stack.last() {
        Some(open) => Err(format!("unclosed `{open}`")),
        None => Ok(()),
    }
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

fn read_datasources(r: &mut Reader, node: &Node, alertmanager: bool) -> Vec<Datasource> {
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

fn read_dashboards(
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
                let text = match std::fs::read_to_string(&full) {
                    Ok(text) => text,
                    Err(e) => {
                        r.error(
                            pos,
                            format!(
                                "cannot read dashboard `{}`: {}",
                                path.display(),
                                io_reason(&e)
                            ),
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

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
