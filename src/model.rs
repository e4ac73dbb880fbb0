//! The validated stack: what the manifest means once every check has passed.
//!
//! Renderers and the planner read only this. Every value here is already
//! interpolated, defaulted and checked, so code downstream never re-validates.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

mod remote_write;
pub use remote_write::{
    CopiedFile, PrometheusMode, QueueConfig, RemoteAuth, RemoteTls, RemoteWrite, WriteRelabel,
};

/// Query parameters whose values are credentials: masked in every message, refused in a URL
/// that monstack writes into a configuration file.
pub const CREDENTIAL_QUERY_PARAMS: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "key",
    "password",
    "secret",
    "sign",
    "signature",
    "token",
];

/// Names of the services as they appear on the stack's network and in `.monstack/`.
pub const PROMETHEUS: &str = "prometheus";
pub const GRAFANA: &str = "grafana";
pub const ETCD: &str = "etcd";
pub const ALERTMANAGER: &str = "alertmanager";
pub const PUSHGATEWAY: &str = "pushgateway";
/// node_exporter: runs in the host's network and PID namespaces, so it has no name on the
/// stack's network; Prometheus reaches it through the host (see [`node_exporter_target`]).
pub const NODE_EXPORTER: &str = "node-exporter";
/// The blackbox exporter, which runs the `probes:`: `blackbox:9115` on the network.
pub const BLACKBOX: &str = "blackbox";
pub const BLACKBOX_PORT: u16 = 9115;
/// InfluxDB 1.x (`influxdb:`): `influxdb:8086` on the network.
pub const INFLUXDB: &str = "influxdb";
pub const INFLUXDB_PORT: u16 = 8086;
/// Uid of the provisioned InfluxDB datasource (when InfluxDB runs).
pub const INFLUXDB_DATASOURCE_UID: &str = "influxdb";
/// The monstack agent (etcd discovery bridge, DingTalk relay): `agent:8060` on the network.
pub const AGENT: &str = "agent";
pub const AGENT_PORT: u16 = 8060;
/// The agent's Prometheus HTTP service discovery endpoint (etcd-discovered services).
pub const AGENT_HTTP_SD_PATH: &str = "/sd/etcd";

/// Uid of the provisioned Prometheus datasource; dashboards and alert rules refer to it.
pub const PROMETHEUS_DATASOURCE_UID: &str = "prometheus";
/// Uid of the provisioned Alertmanager datasource (when Alertmanager is enabled).
pub const ALERTMANAGER_DATASOURCE_UID: &str = "alertmanager";

pub const JOB_PROMETHEUS: &str = "prometheus";
pub const JOB_PUSHGATEWAY: &str = "pushgateway";
pub const JOB_ETCD: &str = "etcd";
pub const JOB_ALERTMANAGER: &str = "alertmanager";
pub const JOB_AGENT: &str = "monstack-agent";
pub const JOB_ETCD_DISCOVERED: &str = "etcd-discovered";
/// The scrape pool of the services found in Consul (`discovery.consul`).
pub const JOB_CONSUL_DISCOVERED: &str = "consul-discovered";
pub const JOB_NODE: &str = "node";
/// The blackbox exporter's own metrics.
pub const JOB_BLACKBOX: &str = "blackbox";
/// Every probe of `probes:`, through the blackbox exporter.
pub const JOB_PROBES: &str = "probes";

/// Job names monstack generates itself; the manifest loader must reject them as job names
/// (Prometheus refuses a config with a duplicate `job_name`).
pub const RESERVED_JOB_NAMES: &[&str] = &[
    JOB_PROMETHEUS,
    JOB_PUSHGATEWAY,
    JOB_ETCD,
    JOB_ALERTMANAGER,
    JOB_AGENT,
    JOB_ETCD_DISCOVERED,
    JOB_CONSUL_DISCOVERED,
    JOB_NODE,
    JOB_BLACKBOX,
    JOB_PROBES,
];

/// The version an image's tag names: `prom/alertmanager:v0.28.1` -> `(0, 28, 1)`,
/// `...:v0.28-3f2a` -> `(0, 28, 0)`. `None` for tags that name no version (`latest`, a digest, a
/// hash), whose features are then not assumed.
pub fn image_version(image: &str) -> Option<(u64, u64, u64)> {
    let name = image.split('@').next()?;
    let tag = name.rsplit('/').next()?.split_once(':')?.1;
    let tag = tag.strip_prefix('v').unwrap_or(tag);
    let mut parts = [0u64; 3];
    let mut rest = tag;
    for (i, part) in parts.iter_mut().enumerate() {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            if i < 2 {
                return None;
            }
            break;
        }
        *part = digits.parse().ok()?;
        rest = &rest[digits.len()..];
        match rest.strip_prefix('.') {
            Some(after) => rest = after,
            None if i >= 1 => break,
            None => return None,
        }
    }
    Some((parts[0], parts[1], parts[2]))
}

/// `http://127.0.0.1:9090`; an unspecified bind address (`0.0.0.0`) is reached via loopback.
pub fn host_url(ip: IpAddr, port: u16) -> String {
    let ip = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    };
    match ip {
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub project: String,
    /// Directory holding the manifest; `.monstack/` is created inside it.
    pub root: PathBuf,
    pub prometheus: Prometheus,
    pub grafana: Grafana,
    pub etcd: Option<Service>,
    pub alertmanager: Option<Service>,
    pub pushgateway: Option<Service>,
    /// node_exporter (`node_exporter:`): the host's CPU, memory, disks, network, processes.
    pub node_exporter: Option<Service>,
    /// The blackbox exporter (`blackbox_exporter:`), which runs the probes.
    pub blackbox: Option<Service>,
    /// InfluxDB 1.x (`influxdb:`), with its database, user and Grafana datasource.
    pub influxdb: Option<Influxdb>,
    /// `probes:`, in manifest order; they need the blackbox exporter.
    pub probes: Vec<Probe>,
    /// The monstack agent (etcd discovery bridge, DingTalk relay): present when the stack needs
    /// it. Its image is built by `up` from the running executable, so `image` is empty here.
    pub agent: Option<Service>,
    /// Scrape jobs from `targets:`, in manifest order.
    pub jobs: Vec<ScrapeJob>,
    pub discovery: Discovery,
    pub channels: Vec<Channel>,
    pub smtp: Option<Smtp>,
    pub alerting: Alerting,
    pub alerts: Vec<Alert>,
    /// Extra Grafana datasources besides the provisioned Prometheus (and Alertmanager).
    pub datasources: Vec<Datasource>,
    pub dashboards: Vec<Dashboard>,
    /// What the manifest asks for that works, but not as the user may expect, as
    /// `file:line:col: message` lines; printed as warnings when it loads.
    pub warnings: Vec<String>,
    /// Loaded from the built-in starter manifest (there is no monstack.yaml): messages must
    /// not point at a file that does not exist.
    pub starter: bool,
}

impl Stack {
    /// Every secret value the manifest holds, for [`redact`](crate::output::redact): SMTP and
    /// datasource passwords, Grafana's admin password, webhook, Slack and DingTalk URLs (their
    /// tokens are in the path or query) and DingTalk signing secrets.
    pub fn secrets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        out.extend(self.grafana.admin_password.as_deref());
        if let Some(smtp) = &self.smtp {
            out.extend(smtp.password.as_deref());
        }
        out.extend(
            self.datasources
                .iter()
                .filter_map(|d| d.password.as_deref()),
        );
        if let Some(influxdb) = &self.influxdb {
            out.extend(influxdb.password.as_deref());
        }
        if let Some(consul) = &self.discovery.consul {
            out.extend(consul.token.as_deref());
        }
        for channel in &self.channels {
            match &channel.kind {
                ChannelKind::Email { .. } => {}
                ChannelKind::DingTalk { url, secret, .. } => {
                    out.push(url);
                    out.extend(secret.as_deref());
                }
                ChannelKind::Webhook { url, .. } | ChannelKind::Slack { url, .. } => out.push(url),
            }
        }
        for remote in &self.prometheus.remote_write {
            out.extend(remote.secrets());
        }
        out
    }
}

/// What every containerised service has: an image and a published host address.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub image: String,
    /// Host address the port is published on (127.0.0.1 unless the manifest says otherwise).
    pub bind: IpAddr,
    /// Host port; the container port is fixed per service.
    pub port: u16,
}

/// InfluxDB 1.x with authentication on: monstack creates `database` and the admin `user` on
/// its first start, and provisions Grafana's datasource with the same login.
#[derive(Debug, Clone, PartialEq)]
pub struct Influxdb {
    pub service: Service,
    pub database: String,
    pub user: String,
    /// The manifest's, else the one generated on the first `render`/`up` and kept in
    /// `.monstack/secrets/influxdb-password` (filled in by the project layer); `None` only
    /// before that.
    pub password: Option<String>,
}

/// Where Prometheus scrapes node_exporter, which listens in the host's network namespace: a
/// loopback or unspecified `bind` means "this machine", reached from the stack's network as
/// `host.docker.internal` (node_exporter then listens on that address, Docker's bridge, not on
/// the network); any other address is the host's own and is scraped as it is.
pub fn node_exporter_target(service: &Service) -> String {
    match service.bind {
        ip if ip.is_loopback() || ip.is_unspecified() => {
            format!("host.docker.internal:{}", service.port)
        }
        IpAddr::V6(v6) => format!("[{v6}]:{}", service.port),
        IpAddr::V4(v4) => format!("{v4}:{}", service.port),
    }
}

/// One entry of `probes:`: an endpoint checked from the outside by the blackbox exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub kind: ProbeKind,
    /// A URL (http), `host:port` (tcp) or a host (icmp): the `instance` label.
    pub target: String,
    /// HTTP status codes that count as success; empty = any 2xx (the blackbox default).
    pub status: Vec<u16>,
    /// Per-probe override of the global scrape interval.
    pub interval: Option<Duration>,
    /// Per-probe override of the scrape timeout; the blackbox exporter gives up half a second
    /// before it (its `--timeout-offset`), so its answer arrives in time.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProbeKind {
    Http,
    Tcp,
    Icmp,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [ProbeKind::Http, ProbeKind::Tcp, ProbeKind::Icmp];

    /// The manifest key: `http`, `tcp`, `icmp`.
    pub fn key(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Icmp => "icmp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prometheus {
    pub service: Service,
    pub retention: Duration,
    /// Prometheus size-based retention such as `10GB`, passed through.
    pub retention_size: Option<String>,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    pub external_labels: BTreeMap<String, String>,
    /// `--scrape.discovery-reload-interval` (Prometheus >= 2.45): how soon new targets are
    /// scraped. Set to 1s on the pinned image; `None` leaves Prometheus' default (5s).
    pub discovery_reload_interval: Option<Duration>,
    /// Server (default) or agent (scrape and forward only).
    pub mode: PrometheusMode,
    /// Receivers every sample is sent to, in manifest order; at least one in agent mode.
    pub remote_write: Vec<RemoteWrite>,
    /// `--web.enable-remote-write-receiver`: accept samples others send (server mode only).
    pub remote_write_receiver: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grafana {
    /// `grafana: false` leaves Grafana out (when one runs elsewhere); on by default.
    pub enabled: bool,
    pub service: Service,
    pub admin_user: String,
    /// `None`: generated on first `up` and kept in `.monstack/secrets/`.
    pub admin_password: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeJob {
    pub name: String,
    /// `host:port` addresses, in manifest order.
    pub targets: Vec<String>,
    pub metrics_path: String,
    pub scheme: Scheme,
    /// Per-job override of the global scrape interval.
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    /// Labels attached to every target of the job.
    pub labels: BTreeMap<String, String>,
    pub honor_labels: bool,
    /// How to parse a scrape whose Content-Type is missing or not a Prometheus one
    /// (Prometheus >= 3.0 drops it otherwise), e.g. `PrometheusText0.0.4`.
    pub fallback_scrape_protocol: Option<String>,
    /// The protocols Prometheus offers, in order of preference (Prometheus >= 2.49).
    pub scrape_protocols: Vec<String>,
}

/// Prometheus' scrape protocol names (`scrape_protocols`, `fallback_scrape_protocol`).
pub const SCRAPE_PROTOCOLS: &[&str] = &[
    "PrometheusProto",
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText1.0.0",
    "PrometheusText0.0.4",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Discovery {
    pub etcd: Option<EtcdDiscovery>,
    /// `discovery.consul`: Prometheus asks a Consul agent's catalog itself (`consul_sd_configs`).
    pub consul: Option<ConsulDiscovery>,
}

/// Services registered in Consul, scraped through Prometheus' own Consul discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsulDiscovery {
    /// `host:port` of the Consul agent as Prometheus reaches it: a loopback address of the
    /// manifest is already `host.docker.internal` here (unless `rewrite_loopback: false`).
    pub server: String,
    pub scheme: Scheme,
    /// Only these services; empty = every service but Consul's own `consul`.
    pub services: Vec<String>,
    /// Only instances carrying all of these tags.
    pub tags: Vec<String>,
    /// `None`: the agent's own datacenter (Prometheus asks `/v1/agent/self`).
    pub datacenter: Option<String>,
    /// The ACL token, from `token` or `token_file`; rendered into a file of its own (0640),
    /// never into prometheus.yml.
    pub token: Option<String>,
    /// Instances registered at a loopback address are scraped at `host.docker.internal`.
    pub rewrite_loopback: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EtcdDiscovery {
    /// Key prefix services register under, always ending in `/`.
    pub prefix: String,
    /// Rewrite registrations of the host's loopback (`localhost`, 127.0.0.0/8, `::1`) to
    /// `host.docker.internal`: a service registering from the host never means Prometheus'
    /// own loopback. Default true.
    pub rewrite_loopback: bool,
    /// An etcd cluster that already exists (`discovery.etcd.endpoints`), used instead of the
    /// stack's own etcd; `None`: the stack's `etcd` service.
    pub cluster: Option<EtcdCluster>,
}

/// How to reach an existing etcd cluster: the members' client URLs (tried in turn), TLS and
/// auth. The paths are absolute (resolved against the manifest's directory) and were files
/// when the manifest was read. The password itself is never held here: it is read from
/// `password_file` each time the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EtcdCluster {
    /// `http(s)://host:port`, without a trailing `/`.
    pub endpoints: Vec<String>,
    pub tls: Option<EtcdTls>,
    pub username: Option<String>,
    pub password_file: Option<std::path::PathBuf>,
}

/// TLS to the etcd members. Without `ca` the members' certificates must chain to a public root;
/// `cert` and `key` (PEM) are the client's identity, both or neither.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EtcdTls {
    pub ca: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Unique; also the Alertmanager receiver and Grafana contact point name.
    pub name: String,
    pub send_resolved: bool,
    pub kind: ChannelKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChannelKind {
    Email {
        to: Vec<String>,
    },
    DingTalk {
        /// The robot's full webhook URL (`https://oapi.dingtalk.com/robot/send?access_token=...`).
        url: String,
        /// Signing secret (`SEC...`) when the robot uses signed requests.
        secret: Option<String>,
        /// A keyword the robot requires in every message.
        keyword: Option<String>,
        at_mobiles: Vec<String>,
        at_all: bool,
    },
    Webhook {
        url: String,
        /// 0 = no limit.
        max_alerts: u32,
    },
    Slack {
        url: String,
        channel: Option<String>,
        username: Option<String>,
    },
}

impl ChannelKind {
    pub fn kind_name(&self) -> &'static str {
        match self {
            ChannelKind::Email { .. } => "email",
            ChannelKind::DingTalk { .. } => "dingtalk",
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Slack { .. } => "slack",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    /// `host:port`.
    pub smarthost: String,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub require_tls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertEngine {
    Alertmanager,
    Grafana,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alerting {
    pub engine: AlertEngine,
    /// Channels for alerts that name none themselves (and the root route). Resolved:
    /// the manifest's `alerting.notify`, or every channel when it is absent.
    pub default_notify: Vec<String>,
    pub group_by: Vec<String>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// The built-in alert pack (`alerting.builtin`, on by default): target down, failed config
    /// reloads, rule and notification failures, agent down, TSDB growth.
    pub builtin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Unique, a valid Prometheus label value made of `[A-Za-z0-9_]`.
    pub name: String,
    pub expr: String,
    pub for_: Duration,
    pub severity: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    /// Extra labels (severity is added separately).
    pub labels: BTreeMap<String, String>,
    /// Channels this alert goes to, as written in the manifest. Empty: `alerting.default_notify`.
    pub notify: Vec<String>,
}

impl Alert {
    /// The channels this alert is actually delivered to.
    pub fn channels<'a>(&'a self, alerting: &'a Alerting) -> &'a [String] {
        if self.notify.is_empty() {
            &alerting.default_notify
        } else {
            &self.notify
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Datasource {
    pub name: String,
    /// Grafana plugin type: `influxdb`, `loki`, `jaeger`, ...
    pub kind: String,
    pub uid: String,
    pub url: String,
    pub access: String,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub is_default: bool,
    /// Type-specific settings passed through to Grafana as `jsonData`.
    pub json_data: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// Where it came from, for messages: `go-runtime` or `dashboards/orders.json`.
    pub source: DashboardSource,
    /// Grafana folder title; `None` = General.
    pub folder: Option<String>,
    /// File name under `.monstack/grafana/dashboards/<folder>/`.
    pub file_name: String,
    /// The dashboard JSON, already prepared for file provisioning by
    /// [`crate::dashboards::prepare`] (datasource references resolved, `__inputs` removed).
    pub json: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DashboardSource {
    Bundled(String),
    File(PathBuf),
}

impl fmt::Display for DashboardSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DashboardSource::Bundled(name) => f.write_str(name),
            DashboardSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A Prometheus-style duration (`90s`, `1h30m`, `15d`), kept in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

impl Duration {
    pub fn from_secs(secs: u64) -> Duration {
        Duration(secs * 1000)
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }

    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Parses Prometheus' duration syntax: one or more `<number><unit>` with units
    /// `y w d h m s ms` in decreasing order, each at most once (`1h30m`, `500ms`).
    pub fn parse(text: &str) -> Result<Duration, String> {
        if text.is_empty() {
            return Err("empty duration".into());
        }
        let mut rest = text;
        let mut total: u64 = 0;
        let mut last_unit = usize::MAX;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!("`{text}` is not a duration"));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{text}` is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit_text = &rest[..unit_len];
            let unit = match UNITS.iter().position(|(u, _)| *u == unit_text) {
                Some(unit) => unit,
                None if unit_text.is_empty() => return Err(format!("`{text}` has no unit")),
                None => {
                    return Err(format!(
                        "`{text}` has an unknown unit `{}`",
                        unit_text.trim()
                    ))
                }
            };
            if last_unit != usize::MAX && unit <= last_unit {
                return Err(format!(
                    "`{text}`: units must appear once each, largest first"
                ));
            }
            last_unit = unit;
            rest = &rest[unit_len..];
            total = number
                .checked_mul(UNITS[unit].1)
                .and_then(|ms| total.checked_add(ms))
                .ok_or_else(|| format!("`{text}` is too large"))?;
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    /// Canonical Prometheus form: `0s`, `15s`, `1m30s`, `2w` (what Prometheus itself prints).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, ms) in UNITS {
            if rest >= ms {
                write!(f, "{}{}", rest / ms, unit)?;
                rest %= ms;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_versions_are_read_from_tags() {
        assert_eq!(image_version("prom/alertmanager:v0.28.1"), Some((0, 28, 1)));
        assert_eq!(
            image_version("quay.io/coreos/etcd:v3.5.21"),
            Some((3, 5, 21))
        );
        assert_eq!(
            image_version("localhost:5000/prom/prometheus:v3.5.0"),
            Some((3, 5, 0))
        );
        assert_eq!(
            image_version("monstack-test/alertmanager:v0.28-3f2a9c"),
            Some((0, 28, 0))
        );
        assert_eq!(image_version("grafana/grafana:12.1.1"), Some((12, 1, 1)));
        assert_eq!(image_version("prom/alertmanager:latest"), None);
        assert_eq!(image_version("prom/alertmanager"), None);
        assert_eq!(image_version("localhost:5000/prom/alertmanager"), None);
        assert_eq!(image_version("monstack-test/alertmanager:3f2a9c"), None);
        assert_eq!(image_version("prom/alertmanager@sha256:abc"), None);
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(Duration::parse("15s"), Ok(Duration(15_000)));
        assert_eq!(Duration::parse("1h30m"), Ok(Duration(5_400_000)));
        assert_eq!(Duration::parse("500ms"), Ok(Duration(500)));
        assert_eq!(Duration::parse("1m500ms"), Ok(Duration(60_500)));
        assert_eq!(Duration::parse("15d"), Ok(Duration(15 * 86_400_000)));
        assert_eq!(Duration::parse("0s"), Ok(Duration(0)));
        for bad in [
            "",
            "15",
            "s",
            "1.5h",
            "10sec",
            "30m1h",
            "1m1m",
            "-5s",
            "99999999999999999999y",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn durations_print_canonically() {
        for (text, canonical) in [
            ("90s", "1m30s"),
            ("15d", "2w1d"),
            ("0s", "0s"),
            ("1500ms", "1s500ms"),
            ("60m", "1h"),
        ] {
            assert_eq!(Duration::parse(text).unwrap().to_string(), canonical);
        }
    }
}
