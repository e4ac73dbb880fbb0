//! The manifest's shape, declared once: which keys each mapping accepts, their types and docs.
//!
//! The reader rejects keys not listed here (with a "did you mean"), and `monstack schema`
//! prints a JSON Schema generated from the same tables, so the two cannot drift apart.

use serde_json::{json, Map, Value};

mod remote_write;
pub use remote_write::{
    BASIC_AUTH, PRESETS, QUEUE_CONFIG, RELABEL_ACTIONS, REMOTE_WRITE, TLS, WRITE_RELABEL,
};

#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    /// A string from a fixed set.
    Enum(&'static [&'static str]),
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// Prometheus duration such as `15s`, `1h30m`.
    Duration,
    StrList,
    /// A list of whole numbers in a range (HTTP status codes).
    IntList {
        min: i64,
        max: i64,
    },
    /// A list of strings, each from a fixed set.
    EnumList(&'static [&'static str]),
    /// A mapping of label names (or other keys) to strings.
    StrMap,
    /// Any mapping, passed through (Grafana `jsonData`).
    AnyMap,
    Obj(&'static Section),
    /// An optional service: its mapping, or `true`/`false`, or nothing (`etcd:` = enabled).
    Toggle(&'static Section),
    List(&'static Section),
    /// `- go-runtime` or `- {file: ..., folder: ...}`.
    DashboardList(&'static Section),
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub doc: &'static str,
}

#[derive(Debug)]
pub struct Section {
    /// Used in messages: "unknown field `x` in a scrape job".
    pub what: &'static str,
    pub doc: &'static str,
    pub fields: &'static [Field],
}

impl Section {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|f| f.name)
    }
}

const fn opt(name: &'static str, ty: Ty, doc: &'static str) -> Field {
    Field {
        name,
        ty,
        required: false,
        doc,
    }
}

const fn req(name: &'static str, ty: Ty, doc: &'static str) -> Field {
    Field {
        name,
        ty,
        required: true,
        doc,
    }
}

const PORT: Ty = Ty::Int { min: 1, max: 65535 };

macro_rules! service_fields {
    ($image:literal, $port:literal) => {
        [
            opt(
                "image",
                Ty::Str,
                concat!("Container image. Default: ", $image, "."),
            ),
            opt(
                "port",
                PORT,
                concat!(
                    "Host port the service is published on. Default: ",
                    $port,
                    "."
                ),
            ),
            opt(
                "bind",
                Ty::Str,
                "Host address the port is bound to. Default: the top-level `bind` (127.0.0.1).",
            ),
        ]
    };
}

const PROMETHEUS_SERVICE: [Field; 3] = service_fields!("prom/prometheus (pinned)", "9090");

pub static PROMETHEUS: Section = Section {
    what: "`prometheus`",
    doc: "Prometheus: always part of the stack.",
    fields: &[
        PROMETHEUS_SERVICE[0],
        PROMETHEUS_SERVICE[1],
        PROMETHEUS_SERVICE[2],
        opt("retention", Ty::Duration, "How long samples are kept. Default: 15d."),
        opt("retention_size", Ty::Str, "Maximum TSDB size (`10GB`, `512MB`), in addition to `retention`."),
        opt("discovery_reload_interval", Ty::Duration, "How soon Prometheus scrapes newly discovered targets (--scrape.discovery-reload-interval, Prometheus >= 2.45). Default: 1s when the image's tag names Prometheus >= 2.45 (the pinned one does), else Prometheus' own 5s. New targets still wait for Prometheus' fixed 5 s discovery update tick."),
        opt("scrape_interval", Ty::Duration, "Default scrape interval. Default: 15s."),
        opt("scrape_timeout", Ty::Duration, "Default scrape timeout, at most the interval. Default: 10s (or the interval when shorter)."),
        opt("evaluation_interval", Ty::Duration, "How often alert rules are evaluated. Default: the scrape interval."),
        opt("external_labels", Ty::StrMap, "Labels added to every series and alert leaving this Prometheus."),
        remote_write::PROMETHEUS_FIELDS[0],
        remote_write::PROMETHEUS_FIELDS[1],
        remote_write::PROMETHEUS_FIELDS[2],
    ],
};

const GRAFANA_SERVICE: [Field; 3] = service_fields!("grafana/grafana (pinned)", "3000");

pub static GRAFANA: Section = Section {
    what: "`grafana`",
    doc: "Grafana: always part of the stack. Anonymous access is off.",
    fields: &[
        GRAFANA_SERVICE[0],
        GRAFANA_SERVICE[1],
        GRAFANA_SERVICE[2],
        opt("admin_user", Ty::Str, "Administrator login. Default: admin."),
        opt("admin_password", Ty::Str, "Administrator password. Empty or absent: 24 random characters generated on first `up`, kept in .monstack/secrets/."),
    ],
};

const ETCD_SERVICE: [Field; 3] = service_fields!("quay.io/coreos/etcd (pinned)", "2379");
pub static ETCD: Section = Section {
    what: "`etcd`",
    doc: "etcd, where services register for discovery. Present = enabled.",
    fields: &ETCD_SERVICE,
};

const ALERTMANAGER_SERVICE: [Field; 3] = service_fields!("prom/alertmanager (pinned)", "9093");
pub static ALERTMANAGER: Section = Section {
    what: "`alertmanager`",
    doc: "Alertmanager, which routes alerts to channels. Present = enabled.",
    fields: &ALERTMANAGER_SERVICE,
};

const PUSHGATEWAY_SERVICE: [Field; 3] = service_fields!("prom/pushgateway (pinned)", "9091");
pub static PUSHGATEWAY: Section = Section {
    what: "`pushgateway`",
    doc: "Pushgateway for batch jobs, scraped with honor_labels. Present = enabled.",
    fields: &PUSHGATEWAY_SERVICE,
};

const NODE_EXPORTER_SERVICE: [Field; 3] = service_fields!("prom/node-exporter (pinned)", "9100");
pub static NODE_EXPORTER: Section = Section {
    what: "`node_exporter`",
    doc: "node_exporter: the host's CPU, memory, disks, network and processes, scraped as job `node`. It runs in the host's network and PID namespaces with the host's root mounted read-only, as its documentation prescribes. Present = enabled.",
    fields: &[
        NODE_EXPORTER_SERVICE[0],
        NODE_EXPORTER_SERVICE[1],
        opt("bind", Ty::Str, "Host address node_exporter listens on. Default: the top-level `bind`; a loopback address (the default 127.0.0.1) means the address of Docker's bridge, which the stack's containers reach as host.docker.internal and the network does not."),
    ],
};

const BLACKBOX_SERVICE: [Field; 3] = service_fields!("prom/blackbox-exporter (pinned)", "9115");
pub static BLACKBOX_EXPORTER: Section = Section {
    what: "`blackbox_exporter`",
    doc: "The blackbox exporter, which runs the `probes:`. Present = enabled.",
    fields: &BLACKBOX_SERVICE,
};

const INFLUXDB_SERVICE: [Field; 3] =
    service_fields!("influxdb:1.12.2 (official image, 1.x)", "8086");
pub static INFLUXDB: Section = Section {
    what: "`influxdb`",
    doc: "InfluxDB 1.x with authentication on, its database and admin user created on first start, and a Grafana datasource `InfluxDB` (uid influxdb). Present = enabled.",
    fields: &[
        INFLUXDB_SERVICE[0],
        INFLUXDB_SERVICE[1],
        INFLUXDB_SERVICE[2],
        opt("database", Ty::Str, "Database created on first start. Default: the project name."),
        opt("user", Ty::Str, "Admin user created on first start; Grafana logs in as it. Default: monstack."),
        opt("password", Ty::Str, "That user's password; use ${INFLUXDB_PASSWORD} rather than writing it here. Empty or absent: 24 random characters generated on the first render or up, kept in .monstack/secrets/influxdb-password."),
    ],
};

pub static PROBE: Section = Section {
    what: "a probe",
    doc: "An endpoint checked from the outside by the blackbox exporter: exactly one of http, tcp, icmp.",
    fields: &[
        opt("http", Ty::Str, "An http(s) URL, fetched with GET; success is an expected status code."),
        opt("tcp", Ty::Str, "`host:port`; success is an accepted connection."),
        opt("icmp", Ty::Str, "A host name or IP address; success is an echo reply."),
        opt("status", Ty::IntList { min: 100, max: 599 }, "HTTP status codes that count as success (http only). Default: any 2xx."),
        opt("interval", Ty::Duration, "How often the probe runs. Default: prometheus.scrape_interval."),
        opt("timeout", Ty::Duration, "How long the probe may take, at most the interval and at least 1s; the blackbox exporter gives up half a second before. Default: prometheus.scrape_timeout, lowered to the interval."),
    ],
};

pub static AGENT: Section = Section {
    what: "`agent`",
    doc: "The monstack agent (etcd discovery bridge, DingTalk relay). It runs when the stack needs it; these settings only place it.",
    fields: &[
        opt("port", PORT, "Host port of the agent's HTTP API and /metrics. Default: 8060."),
        opt("bind", Ty::Str, "Host address the port is bound to. Default: the top-level `bind`."),
    ],
};

pub static JOB: Section = Section {
    what: "a scrape job",
    doc: "One Prometheus scrape job; its targets live in a file_sd file, so they change without a reload.",
    fields: &[
        req("job", Ty::Str, "Job name (the `job` label). Unique; letters, digits, `_`, `-`, `.`."),
        opt("targets", Ty::StrList, "`host:port` addresses. From a container, the host is `host.docker.internal`."),
        opt("path", Ty::Str, "Metrics path. Default: /metrics."),
        opt("scheme", Ty::Enum(&["http", "https"]), "Default: http."),
        opt("interval", Ty::Duration, "Scrape interval for this job. Default: prometheus.scrape_interval."),
        opt("timeout", Ty::Duration, "Scrape timeout for this job, at most its interval."),
        opt("labels", Ty::StrMap, "Labels attached to every target of the job."),
        opt("honor_labels", Ty::Bool, "Keep the scraped `job`/`instance` labels on conflict. Default: false."),
        opt("fallback_scrape_protocol", Ty::Enum(crate::model::SCRAPE_PROTOCOLS), "How to parse a scrape without a Prometheus Content-Type (Prometheus 3 drops it otherwise), e.g. PrometheusText0.0.4 for a service that answers text/plain or application/octet-stream."),
        opt("scrape_protocols", Ty::EnumList(crate::model::SCRAPE_PROTOCOLS), "The protocols Prometheus asks for, in order of preference. Default: Prometheus' own."),
    ],
};

pub static ETCD_DISCOVERY: Section = Section {
    what: "`discovery.etcd`",
    doc: "Scrape every service registered in the stack's etcd under a prefix (`/service/{name}/{id}`, with a lease).",
    fields: &[
        opt("prefix", Ty::Str, "Key prefix. Default: /service/."),
        opt("rewrite_loopback", Ty::Bool, "Scrape registrations of localhost, 127.0.0.0/8 or ::1 at host.docker.internal (Prometheus' own loopback is its container's). Default: true."),
        opt("endpoints", Ty::StrList, "Client URLs of the members of an existing etcd cluster (`https://10.0.0.11:2379`), used instead of the stack's own `etcd`, tried in turn when one fails."),
        opt("tls", Ty::Obj(&ETCD_TLS), "TLS to the endpoints (all `https://`)."),
        opt("username", Ty::Str, "An etcd user (etcd's auth); needs `password_file`."),
        opt("password_file", Ty::Str, "A file holding the user's password (a trailing newline is ignored), relative to the manifest. Mounted read-only into the agent, never copied."),
    ],
};

pub static ETCD_TLS: Section = Section {
    what: "`discovery.etcd.tls`",
    doc: "TLS to an existing etcd cluster; PEM files, relative to the manifest, mounted read-only into the agent.",
    fields: &[
        opt("ca", Ty::Str, "The CA that signed the members' certificates (the only one trusted). Default: the public roots."),
        opt("cert", Ty::Str, "The client certificate (etcd's --client-cert-auth); needs `key`."),
        opt("key", Ty::Str, "The client's private key, unencrypted PKCS#8, RSA or EC; needs `cert`."),
    ],
};

pub static DISCOVERY: Section = Section {
    what: "`discovery`",
    doc: "Automatic discovery of scrape targets.",
    fields: &[
        opt(
            "etcd",
            Ty::Obj(&ETCD_DISCOVERY),
            "etcd service discovery: the stack's `etcd` service, or an existing cluster's `endpoints`.",
        ),
        opt(
            "consul",
            Ty::Obj(&CONSUL_DISCOVERY),
            "Consul service discovery: Prometheus asks a Consul agent's catalog.",
        ),
    ],
};

pub static CONSUL_DISCOVERY: Section = Section {
    what: "`discovery.consul`",
    doc: "Scrape the services registered in Consul, through Prometheus' consul_sd_configs (job label: the service's name).",
    fields: &[
        opt("server", Ty::Str, "The Consul agent's HTTP API as `host:port`, or `http(s)://host:port`. From the stack's containers a service on this machine is host.docker.internal; localhost is rewritten to it (see rewrite_loopback). The agent must listen where containers reach it (Consul's default client_addr 127.0.0.1 is not). Default: localhost:8500."),
        opt("services", Ty::StrList, "Only these services. Default: every service except Consul's own `consul`."),
        opt("tags", Ty::StrList, "Only instances that carry all of these tags."),
        opt("datacenter", Ty::Str, "Datacenter to ask. Default: the agent's own."),
        opt("token", Ty::Str, "ACL token; use ${CONSUL_TOKEN} rather than writing it here. It is rendered into a file of its own (0640), never into prometheus.yml."),
        opt("token_file", Ty::Str, "File holding the ACL token, relative to the manifest (instead of `token`)."),
        opt("rewrite_loopback", Ty::Bool, "Scrape instances registered at localhost, 127.0.0.0/8 or ::1 at host.docker.internal, and reach a loopback `server` there too (Prometheus' own loopback is its container's). Default: true."),
    ],
};

pub static EMAIL: Section = Section {
    what: "an email channel",
    doc: "Email through the top-level `smtp` server.",
    fields: &[req("to", Ty::StrList, "Recipient addresses.")],
};

pub static DINGTALK: Section = Section {
    what: "a dingtalk channel",
    doc: "A DingTalk group robot, relayed by the monstack agent (Alertmanager has no DingTalk receiver).",
    fields: &[
        req("url", Ty::Str, "The robot's full webhook URL, https://oapi.dingtalk.com/robot/send?access_token=..."),
        opt("secret", Ty::Str, "Signing secret (SEC...) when the robot uses signed requests."),
        opt("keyword", Ty::Str, "A keyword the robot requires in every message."),
        opt("at_mobiles", Ty::StrList, "Mobile numbers to @mention."),
        opt("at_all", Ty::Bool, "@mention everyone. Default: false."),
    ],
};

pub static WEBHOOK: Section = Section {
    what: "a webhook channel",
    doc: "Alertmanager's webhook payload POSTed to a URL.",
    fields: &[
        req("url", Ty::Str, "The URL to POST to."),
        opt(
            "max_alerts",
            Ty::Int {
                min: 0,
                max: 100_000,
            },
            "At most this many alerts per message; 0 = all.",
        ),
    ],
};

pub static SLACK: Section = Section {
    what: "a slack channel",
    doc: "A Slack incoming webhook.",
    fields: &[
        req("url", Ty::Str, "The incoming webhook URL."),
        opt("channel", Ty::Str, "Channel override, `#ops`."),
        opt("username", Ty::Str, "Sender name override."),
    ],
};

/// The channel kinds; a channel has exactly one.
pub const CHANNEL_KINDS: [&str; 4] = ["email", "dingtalk", "webhook", "slack"];

pub static CHANNEL: Section = Section {
    what: "a channel",
    doc: "Where alerts go: a name and exactly one of email, dingtalk, webhook, slack.",
    fields: &[
        req(
            "name",
            Ty::Str,
            "Unique name; alerts refer to it in `notify`.",
        ),
        opt(
            "send_resolved",
            Ty::Bool,
            "Also notify when the alert resolves. Default: true.",
        ),
        opt("email", Ty::Obj(&EMAIL), "Send by email."),
        opt("dingtalk", Ty::Obj(&DINGTALK), "Send to a DingTalk robot."),
        opt("webhook", Ty::Obj(&WEBHOOK), "POST to a webhook."),
        opt("slack", Ty::Obj(&SLACK), "Send to Slack."),
    ],
};

pub static SMTP: Section = Section {
    what: "`smtp`",
    doc: "The mail server email channels use.",
    fields: &[
        req(
            "host",
            Ty::Str,
            "`host:port` of the SMTP server (465 = implicit TLS, 587 = STARTTLS).",
        ),
        req("from", Ty::Str, "Sender address."),
        opt("user", Ty::Str, "Login user."),
        opt(
            "password",
            Ty::Str,
            "Login password; use ${SMTP_PASSWORD} rather than writing it here.",
        ),
        opt(
            "require_tls",
            Ty::Bool,
            "Require STARTTLS. Default: true, except on port 465 (implicit TLS).",
        ),
    ],
};

pub static ALERTING: Section = Section {
    what: "`alerting`",
    doc: "How alerts are evaluated and routed.",
    fields: &[
        opt("engine", Ty::Enum(&["alertmanager", "grafana"]), "alertmanager (Prometheus rules + Alertmanager, default) or grafana (Grafana alert rules and contact points)."),
        opt("notify", Ty::StrList, "Channels for alerts that name none. Default: every channel."),
        opt("group_by", Ty::StrList, "Labels that group alerts into one notification. Default: [alertname, job]."),
        opt("group_wait", Ty::Duration, "Wait before the first notification of a group. Default: 30s."),
        opt("group_interval", Ty::Duration, "Wait before notifying about new alerts in a group. Default: 5m."),
        opt("repeat_interval", Ty::Duration, "Re-send a still-firing alert after this long. Default: 4h."),
        opt("builtin", Ty::Bool, "The built-in alerts (target down, config reload failed, rule and notification failures, agent down, TSDB filling up; with node_exporter a filesystem filling up and memory pressure; with probes a failing probe), sent to alerting.notify. Default: true."),
    ],
};

pub static ALERT: Section = Section {
    what: "an alert",
    doc: "A Prometheus alerting rule: it fires for every series its expression returns.",
    fields: &[
        req(
            "name",
            Ty::Str,
            "Alert name (the `alertname` label). Unique; letters, digits and `_`.",
        ),
        req("expr", Ty::Str, "PromQL expression."),
        opt(
            "for",
            Ty::Duration,
            "How long the expression must hold before the alert fires. Default: 0s.",
        ),
        opt(
            "severity",
            Ty::Str,
            "The `severity` label. Default: warning.",
        ),
        opt(
            "summary",
            Ty::Str,
            "Summary annotation; `{{ $labels.x }}` and `{{ $value }}` are expanded.",
        ),
        opt("description", Ty::Str, "Description annotation."),
        opt("labels", Ty::StrMap, "Extra labels."),
        opt(
            "notify",
            Ty::StrList,
            "Channel names. Default: alerting.notify (every channel).",
        ),
    ],
};

pub static DATASOURCE: Section = Section {
    what: "a datasource",
    doc: "An extra Grafana datasource.",
    fields: &[
        req("name", Ty::Str, "Display name, unique."),
        req(
            "type",
            Ty::Str,
            "Grafana plugin id: influxdb, loki, jaeger, zipkin, elasticsearch, ...",
        ),
        req(
            "url",
            Ty::Str,
            "URL as Grafana (inside the stack's network) reaches it.",
        ),
        opt(
            "uid",
            Ty::Str,
            "Stable uid dashboards refer to. Default: derived from the name.",
        ),
        opt("access", Ty::Enum(&["proxy", "direct"]), "Default: proxy."),
        opt(
            "database",
            Ty::Str,
            "Database name (InfluxDB 1.x, SQL datasources).",
        ),
        opt("user", Ty::Str, "Login user."),
        opt(
            "password",
            Ty::Str,
            "Login password (stored encrypted by Grafana).",
        ),
        opt(
            "default",
            Ty::Bool,
            "Make this the default datasource instead of Prometheus.",
        ),
        opt(
            "json_data",
            Ty::AnyMap,
            "Type-specific settings, passed to Grafana as jsonData.",
        ),
    ],
};

pub static DASHBOARD: Section = Section {
    what: "a dashboard",
    doc: "A bundled dashboard by name (`- go-runtime`), or a mapping.",
    fields: &[
        opt("bundled", Ty::Str, "Name of a bundled dashboard."),
        opt(
            "file",
            Ty::Str,
            "Path of a dashboard JSON file, relative to the manifest.",
        ),
        opt("folder", Ty::Str, "Grafana folder. Default: General."),
    ],
};

pub static MANIFEST: Section = Section {
    what: "the manifest",
    doc: "monstack.yaml: one file describing a whole monitoring stack.",
    fields: &[
        opt("version", Ty::Int { min: 1, max: 1 }, "Manifest format version. Default: 1."),
        opt("project", Ty::Str, "Project name, used in container and network names. Default: the directory's name."),
        opt("bind", Ty::Str, "Host address every published port is bound to. Default: 127.0.0.1 (this machine only)."),
        opt("prometheus", Ty::Obj(&PROMETHEUS), "Prometheus settings."),
        opt("grafana", Ty::Toggle(&GRAFANA), "Grafana settings; `false` leaves Grafana out (when you run one elsewhere)."),
        opt("etcd", Ty::Toggle(&ETCD), "etcd service; present = enabled."),
        opt("alertmanager", Ty::Toggle(&ALERTMANAGER), "Alertmanager service; present = enabled."),
        opt("pushgateway", Ty::Toggle(&PUSHGATEWAY), "Pushgateway service; present = enabled."),
        opt("node_exporter", Ty::Toggle(&NODE_EXPORTER), "node_exporter (host metrics, job `node`); present = enabled."),
        opt("blackbox_exporter", Ty::Toggle(&BLACKBOX_EXPORTER), "Blackbox exporter (runs the probes); present = enabled."),
        opt("influxdb", Ty::Toggle(&INFLUXDB), "InfluxDB 1.x with a Grafana datasource; present = enabled."),
        opt("agent", Ty::Obj(&AGENT), "Where the monstack agent is published (it runs when discovery or a DingTalk channel needs it)."),
        opt("targets", Ty::List(&JOB), "Scrape jobs."),
        opt("probes", Ty::List(&PROBE), "Endpoints checked from the outside (http, tcp, icmp) by the blackbox exporter."),
        opt("discovery", Ty::Obj(&DISCOVERY), "Service discovery."),
        opt("channels", Ty::List(&CHANNEL), "Where alerts are delivered."),
        opt("smtp", Ty::Obj(&SMTP), "SMTP server for email channels."),
        opt("alerting", Ty::Obj(&ALERTING), "Alert evaluation and routing."),
        opt("alerts", Ty::List(&ALERT), "Alerting rules."),
        opt("datasources", Ty::List(&DATASOURCE), "Extra Grafana datasources."),
        opt("dashboards", Ty::DashboardList(&DASHBOARD), "Dashboards provisioned into Grafana."),
    ],
};

/// The JSON Schema (draft 2020-12) of the manifest, for editors (`# yaml-language-server: $schema=`).
pub fn json_schema(bundled_dashboards: &[&str]) -> Value {
    let mut schema = section_schema(&MANIFEST, bundled_dashboards);
    let obj = schema.as_object_mut().expect("a section is an object");
    let mut head = Map::new();
    head.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    head.insert(
        "$id".into(),
        json!("https://monstack.dev/schema/monstack-v1.json"),
    );
    head.insert("title".into(), json!("monstack.yaml"));
    head.extend(std::mem::take(obj));
    Value::Object(head)
}

fn section_schema(section: &Section, bundled: &[&str]) -> Value {
    let mut properties = Map::new();
    for field in section.fields {
        let mut schema = type_schema(&field.ty, bundled);
        if let Some(obj) = schema.as_object_mut() {
            obj.insert("description".into(), json!(field.doc));
        }
        properties.insert(field.name.into(), schema);
    }
    let required: Vec<&str> = section
        .fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let mut schema = json!({
        "type": "object",
        "description": section.doc,
        "additionalProperties": false,
        "properties": properties,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// `${VAR}` may stand for any scalar, so every scalar also accepts an interpolation string.
const INTERPOLATED: &str = r"^.*\$\{[A-Za-z_][A-Za-z0-9_]*.*\}.*$";

fn type_schema(ty: &Ty, bundled: &[&str]) -> Value {
    match ty {
        Ty::Str => json!({"type": "string"}),
        Ty::Enum(values) => json!({"enum": values}),
        Ty::Int { min, max } => json!({"anyOf": [
            {"type": "integer", "minimum": min, "maximum": max},
            {"type": "string", "pattern": INTERPOLATED},
        ]}),
        Ty::Bool => {
            json!({"anyOf": [{"type": "boolean"}, {"type": "string", "pattern": INTERPOLATED}]})
        }
        Ty::Duration => json!({
            "type": "string",
            "pattern": r"^(([0-9]+(y|w|d|h|m|s|ms))+|.*\$\{.*\}.*)$",
        }),
        Ty::StrList => json!({"type": "array", "items": {"type": "string"}}),
        Ty::IntList { min, max } => json!({"type": "array", "items": {"anyOf": [
            {"type": "integer", "minimum": min, "maximum": max},
            {"type": "string", "pattern": INTERPOLATED},
        ]}}),
        Ty::EnumList(values) => json!({"type": "array", "items": {"enum": values}}),
        Ty::StrMap => {
            json!({"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}})
        }
        Ty::AnyMap => json!({"type": "object"}),
        Ty::Obj(section) => section_schema(section, bundled),
        Ty::Toggle(section) => json!({"anyOf": [
            section_schema(section, bundled),
            {"type": ["boolean", "null"]},
        ]}),
        Ty::List(section) => json!({"type": "array", "items": section_schema(section, bundled)}),
        Ty::DashboardList(section) => json!({"type": "array", "items": {"anyOf": [
            {"enum": bundled, "description": "A bundled dashboard."},
            section_schema(section, bundled),
        ]}}),
    }
}
