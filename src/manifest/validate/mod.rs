//! Reading a parsed, interpolated manifest into a [`Stack`]: the walk over the top-level
//! sections, and the checks that span several of them (channels need Alertmanager, Grafana's
//! sections need Grafana, the agent's port counts only when something needs the agent). Each
//! section has its own file.

mod agent_mode;
mod alerts;
mod channels;
mod consul;
mod dashboards;
mod datasources;
mod etcd_cluster;
mod influxdb;
mod probes;
mod remote_write;
mod services;
mod targets;
mod values;

use std::net::{IpAddr, Ipv4Addr};

use super::{
    project_from_dir, valid_project, Source, ALERTMANAGER_IMAGE, BLACKBOX_IMAGE, ETCD_IMAGE,
    NODE_EXPORTER_IMAGE, PUSHGATEWAY_IMAGE,
};
use crate::manifest::reader::Reader;
use crate::manifest::spec;
use crate::manifest::yaml::Node;
use crate::model::{AlertEngine, ChannelKind, Stack, AGENT, AGENT_PORT};

pub use alerts::check_brackets;
pub use datasources::slug;
pub use targets::check_target_address;

use alerts::{read_alerting, read_alerts};
use channels::{read_channels, read_smtp};
use dashboards::read_dashboards;
use datasources::read_datasources;
use probes::read_probes;
use services::{
    read_bind, read_grafana, read_optional_service, read_prometheus, read_service, PortTable,
};
use targets::{read_discovery, read_jobs};

pub(super) fn read_stack(root: &Node, source: &Source, r: &mut Reader) -> Option<Stack> {
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
    let prometheus = read_prometheus(r, m.get("prometheus"), bind, &mut ports, source.root);
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
    let node_exporter = read_optional_service(
        r,
        &m,
        "node_exporter",
        &spec::NODE_EXPORTER,
        NODE_EXPORTER_IMAGE,
        9100,
        bind,
        &mut ports,
    );
    let blackbox = read_optional_service(
        r,
        &m,
        "blackbox_exporter",
        &spec::BLACKBOX_EXPORTER,
        BLACKBOX_IMAGE,
        crate::model::BLACKBOX_PORT,
        bind,
        &mut ports,
    );
    let influxdb = influxdb::read_influxdb(r, &m, &project, bind, &mut ports);
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
    let probes = m
        .get("probes")
        .map(|n| read_probes(r, n, &prometheus))
        .unwrap_or_default();
    if blackbox.is_none() && !probes.is_empty() {
        let pos = m.key_pos("probes").unwrap_or(m.pos());
        r.error(
            pos,
            "probes need the blackbox exporter, and the `blackbox_exporter` service is not enabled",
            Some("add `blackbox_exporter: {}`".into()),
        );
    }
    let mut discovery = m
        .get("discovery")
        .map(|n| read_discovery(r, n, etcd.is_some(), source.root))
        .unwrap_or_default();
    discovery.consul = m
        .get("discovery")
        .and_then(|n| consul::read_consul(r, n, source.root));
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
    // The edge profile: no Grafana, no rules; what asks for them is an error.
    let agent_mode = prometheus.as_ref().is_some_and(|p| p.mode.is_agent());
    let mut grafana = grafana;
    let mut alerting = alerting;
    if let (true, Some(p)) = (agent_mode, &prometheus) {
        agent_mode::check(r, &m, m.get("prometheus"), p);
        if let Some(g) = grafana.as_mut() {
            g.enabled = false;
        }
        alerting.builtin = false;
    }
    let mut warnings = Vec::new();
    if !agent_mode && grafana.as_ref().is_some_and(|g| !g.enabled) {
        // Dashboards and datasources are still rendered (for another Grafana, or for later):
        // a warning. Grafana-engine alerting would deliver nothing: an error.
        for key in ["dashboards", "datasources"] {
            if m.has(key) {
                let pos = m.key_pos(key).unwrap_or(m.pos());
                warnings.push(format!(
                    "{}:{}:{}: `{key}` are rendered but not shown: Grafana is disabled (`grafana: false`)",
                    source.display_name, pos.line, pos.col
                ));
            }
        }
        if alerting.engine == AlertEngine::Grafana {
            let pos = m.key_pos("alerting").unwrap_or(m.pos());
            r.error(
                pos,
                "`alerting` needs Grafana, which is disabled (`grafana: false`)",
                Some("remove this section, or enable Grafana".into()),
            );
        }
    }
    let secret_files = remote_write::warnings(m.get("prometheus"), source.root)
        .into_iter()
        .chain(remote_write::discovery_warnings(
            m.get("discovery"),
            source.root,
        ));
    for (pos, message) in secret_files {
        warnings.push(format!(
            "{}:{}:{}: {message}",
            source.display_name, pos.line, pos.col
        ));
    }
    if let Some(p) = prometheus
        .as_ref()
        .filter(|p| p.remote_write_receiver && !p.service.bind.is_loopback())
    {
        // Prometheus has no login of its own: what reaches it may write and read every series.
        let pos = m.key_pos("prometheus").unwrap_or(m.pos());
        warnings.push(format!(
            "{}:{}:{}: `remote_write_receiver` on {}:{}: anyone who reaches that address can write samples and query every series, without a password; keep it on an address only your hosts reach, or put an authenticating proxy in front",
            source.display_name, pos.line, pos.col, p.service.bind, p.service.port
        ));
    }
    let needs_agent = discovery.etcd.is_some()
        || channels
            .iter()
            .any(|c| matches!(c.kind, ChannelKind::DingTalk { .. }));
    if needs_agent {
        ports.entries.extend(agent_ports.entries);
    }
    ports.check(r);
    let mut datasources = m
        .get("datasources")
        .map(|n| read_datasources(r, n, alertmanager.is_some()))
        .unwrap_or_default();
    if let Some(influxdb) = &influxdb {
        influxdb::check_datasources(r, &m, &datasources);
        datasources.push(influxdb::datasource(influxdb));
    }
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
        node_exporter,
        blackbox,
        influxdb,
        probes,
        agent: needs_agent.then_some(agent_service),
        jobs,
        discovery,
        channels,
        smtp,
        alerting,
        alerts,
        datasources,
        dashboards,
        warnings,
        starter: false,
    })
}

/// Runs `read` on the parsed `yaml` and returns its result with the problems it recorded, as
/// (message, hint) pairs.
#[cfg(test)]
fn read_yaml<T>(
    yaml: &str,
    read: impl FnOnce(&mut Reader, &Node) -> T,
) -> (T, Vec<(String, Option<String>)>) {
    let node = crate::manifest::yaml::parse(yaml).expect("the test's YAML parses");
    let mut r = Reader {
        diagnostics: crate::manifest::diagnostics::Diagnostics::new("monstack.yaml", yaml),
    };
    let out = read(&mut r, &node);
    let problems = r.diagnostics.items.into_iter();
    (out, problems.map(|d| (d.message, d.hint)).collect())
}
