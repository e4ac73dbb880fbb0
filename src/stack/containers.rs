//! The desired containers: what each service of a validated [`Stack`] runs as, derived purely
//! from the model and the rendered tree. The planner compares these with what the engine
//! reports; `docker.rs` turns them into API calls.
//!
//! Two hashes per container, both stored as labels. The spec hash covers how the container is
//! created (image, command, environment, mounts, ports); a change means recreate. The config
//! hash also covers the contents of the rendered files the service reads at start or reload; a
//! change there alone means reload (Prometheus, Alertmanager, Grafana), which docker compose
//! cannot notice at all.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::host_url;
use crate::model::{self, Stack};
use crate::render::{grafana, Tree};

pub const LABEL_PROJECT: &str = "io.monstack.project";
pub const LABEL_SERVICE: &str = "io.monstack.service";
pub const LABEL_SPEC_HASH: &str = "io.monstack.spec-hash";
pub const LABEL_CONFIG_HASH: &str = "io.monstack.config-hash";
pub const LABEL_VERSION: &str = "io.monstack.version";
/// On volumes: the directory of the manifest that created them, so `down --volumes` from
/// another directory cannot remove them by a shared project name.
pub const LABEL_DIR: &str = "io.monstack.dir";

/// Services in the order they are listed, planned and shown.
pub const SERVICES: [&str; 9] = [
    model::PROMETHEUS,
    model::GRAFANA,
    model::ETCD,
    model::ALERTMANAGER,
    model::PUSHGATEWAY,
    model::NODE_EXPORTER,
    model::BLACKBOX,
    model::INFLUXDB,
    model::AGENT,
];

/// The network of a container in the host's network namespace (node_exporter): it publishes
/// no ports and has no name on the stack's network.
pub const HOST_NETWORK: &str = "host";

/// Where the agent's container sees `.monstack/agent/` (its `agent.yml`).
pub const AGENT_CONFIG_MOUNT: &str = "/etc/monstack-agent";

pub fn network_name(project: &str) -> String {
    format!("monstack-{project}")
}

pub fn container_name(project: &str, service: &str) -> String {
    format!("monstack-{project}-{service}")
}

pub fn volume_name(project: &str, service: &str) -> String {
    format!("monstack-{project}-{service}-data")
}

/// How a running service takes a new configuration without a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reload {
    /// `SIGHUP` through the engine (Prometheus runs without `--web.enable-lifecycle`). The
    /// engine (moby 20.10 to 28 at least) marks a container that got any `docker kill` as stopped
    /// by hand: under `unless-stopped` it is then not restarted after a crash, nor with the
    /// daemon, and without a stop signal of its own the next exit ends it for good even under
    /// `always`. So Prometheus runs with `always` and `SIGTERM` as its stop signal (tested).
    Prometheus,
    /// `POST /-/reload`.
    Alertmanager,
    /// `POST /api/admin/provisioning/{datasources,dashboards,alerting}/reload`.
    Grafana,
    /// Nothing to reload (no configuration files).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MountSource {
    /// An absolute host directory.
    Bind(String),
    /// A named volume (kept by `down`, removed by `down --volumes`).
    Volume(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
    /// Bind propagation (`rslave`: mounts the host makes later appear inside too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

/// Everything needed to create one service's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    pub service: &'static str,
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Vec<String>,
    /// `uid:gid` to run as instead of the image's user (the agent writes files as the host user).
    pub user: Option<String>,
    /// Sorted by name.
    pub env: Vec<(String, String)>,
    /// Environment that must not force a recreate when it changes (Grafana reads its admin
    /// password from the environment only on first start; later changes go through its API).
    #[serde(skip)]
    pub env_unhashed: Vec<(String, String)>,
    /// Supplementary groups: the host group owning the rendered secret files (mode 0640), so
    /// the service can read them whatever user its image runs as. Where that group has other
    /// members, `.monstack/` is 0700 and keeps them out (see [`crate::files::OwnerGroup`]); the
    /// containers keep their images' users, who own their data volumes.
    pub group_add: Vec<String>,
    pub mounts: Vec<Mount>,
    /// With [`HOST_NETWORK`], where the service listens on the host rather than a published port.
    pub port: PublishedPort,
    /// The stack's network, or [`HOST_NETWORK`].
    pub network: String,
    /// `host`: the host's PID namespace (node_exporter sees every process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<&'static str>,
    /// Capabilities beyond the engine's default set (the blackbox exporter's ICMP needs
    /// `NET_RAW`, which hardened engines drop).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Name on the stack's network: the service name.
    pub alias: String,
    pub extra_hosts: Vec<String>,
    /// The engine's restart policy: `unless-stopped`, or `always` for a service monstack sends
    /// signals to (see [`Reload::Prometheus`]).
    pub restart: &'static str,
    /// The signal `docker stop` sends, when set on the container. Set where monstack sends
    /// other signals: the engine then takes them for what they are, not for a stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<&'static str>,
    pub reload: Reload,
    /// Paths (relative to `.monstack/`) of the rendered files whose contents are in the config
    /// hash: the ones the service reads at start or reload.
    #[serde(skip)]
    pub config_files: Vec<String>,
    #[serde(skip)]
    pub spec_hash: String,
    #[serde(skip)]
    pub config_hash: String,
}

impl ContainerSpec {
    /// Labels the container is created with; `plan` reads them back.
    pub fn labels(&self, project: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_PROJECT.to_string(), project.to_string()),
            (LABEL_SERVICE.to_string(), self.service.to_string()),
            (LABEL_SPEC_HASH.to_string(), self.spec_hash.clone()),
            (LABEL_CONFIG_HASH.to_string(), self.config_hash.clone()),
            (
                LABEL_VERSION.to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ])
    }

    /// The URL the service is reached at from this machine.
    pub fn url(&self) -> String {
        host_url(self.port.host_ip, self.port.host_port)
    }
}

/// What the spec builder needs beyond the model: where `.monstack/` is on the host, the group
/// owning the secret files, and Grafana's admin password (from the manifest or generated).
pub struct HostContext<'a> {
    pub out_dir: &'a Path,
    pub secret_gid: u32,
    pub grafana_admin_password: &'a str,
    /// The agent's locally built image; `None` when this executable cannot be one (then the
    /// user runs `monstack agent` on the host).
    pub agent_image: Option<&'a str>,
    /// `uid:gid` of the user running monstack: the agent writes target files as them.
    pub host_user: (u32, u32),
    /// The address `host.docker.internal` resolves to in containers (Docker's bridge), which
    /// node_exporter listens on when its `bind` is loopback; `None` when unknown.
    pub host_gateway: Option<IpAddr>,
    /// Whether the host's `/` is a shared (or slave) mount, as on systemd hosts: then
    /// node_exporter's view of it follows later mounts (`rslave`), which Docker refuses for a
    /// private mount.
    pub host_root_shared: bool,
}

/// The containers the stack needs, in [`SERVICES`] order, with their hashes computed.
pub fn desired(stack: &Stack, tree: &Tree, host: &HostContext) -> Vec<ContainerSpec> {
    let project = &stack.project;
    let network = network_name(project);
    let dir = |sub: &str| host.out_dir.join(sub).to_string_lossy().into_owned();
    let base = |service: &'static str, svc: &model::Service, container_port: u16| ContainerSpec {
        service,
        name: container_name(project, service),
        image: svc.image.clone(),
        entrypoint: None,
        cmd: Vec::new(),
        user: None,
        env: Vec::new(),
        env_unhashed: Vec::new(),
        group_add: Vec::new(),
        mounts: Vec::new(),
        port: PublishedPort {
            host_ip: svc.bind,
            host_port: svc.port,
            container_port,
        },
        network: network.clone(),
        pid_mode: None,
        cap_add: Vec::new(),
        alias: service.to_string(),
        // Lets Prometheus scrape services on the host and Alertmanager reach webhooks there.
        extra_hosts: vec!["host.docker.internal:host-gateway".to_string()],
        restart: "unless-stopped",
        stop_signal: None,
        reload: Reload::None,
        config_files: Vec::new(),
        spec_hash: String::new(),
        config_hash: String::new(),
    };
    let volume = |service: &str, target: &str| Mount {
        source: MountSource::Volume(volume_name(project, service)),
        target: target.to_string(),
        read_only: false,
        propagation: None,
    };
    let bind = |sub: &str, target: &str| Mount {
        source: MountSource::Bind(dir(sub)),
        target: target.to_string(),
        read_only: true,
        propagation: None,
    };
    let files_under = |prefix: &str, except: Option<&str>| -> Vec<String> {
        tree.files
            .iter()
            .map(|f| f.path.clone())
            .filter(|p| p.starts_with(prefix) && except.is_none_or(|e| !p.starts_with(e)))
            .collect()
    };

    let mut specs = Vec::new();

    let p = &stack.prometheus;
    let mut prometheus = base(model::PROMETHEUS, &p.service, 9090);
    prometheus.entrypoint = Some(vec!["/bin/prometheus".into()]);
    // Agent mode refuses the TSDB's flags and keeps only a WAL until the samples are sent.
    let storage = if p.mode.is_agent() {
        vec![
            "--agent".into(),
            "--storage.agent.path=/prometheus/agent".into(),
        ]
    } else {
        vec![
            "--storage.tsdb.path=/prometheus".into(),
            format!("--storage.tsdb.retention.time={}", p.retention),
        ]
    };
    prometheus.cmd = vec!["--config.file=/etc/prometheus/prometheus.yml".into()];
    prometheus.cmd.extend(storage);
    prometheus.cmd.extend([
        // No `--web.enable-lifecycle`: `/-/reload` and `/-/quit` would let anyone on the host
        // reload or stop it; monstack reloads it with SIGHUP through the engine.
        "--web.listen-address=:9090".into(),
        format!(
            "--web.external-url={}/",
            host_url(p.service.bind, p.service.port)
        ),
    ]);
    if p.remote_write_receiver {
        prometheus
            .cmd
            .push("--web.enable-remote-write-receiver".into());
    }
    if let Some(interval) = p.discovery_reload_interval {
        prometheus
            .cmd
            .push(format!("--scrape.discovery-reload-interval={interval}"));
    }
    if let (Some(size), false) = (&p.retention_size, p.mode.is_agent()) {
        prometheus
            .cmd
            .push(format!("--storage.tsdb.retention.size={size}"));
    }
    prometheus.mounts = vec![
        bind("prometheus", "/etc/prometheus"),
        volume(model::PROMETHEUS, "/prometheus"),
    ];
    // Passwords, tokens and TLS keys of `remote_write` and the Consul token: secret files
    // (0640), read by the image's user through the secret group.
    if crate::render::remote_write::reads_secrets(stack)
        || tree.get(crate::render::consul::TOKEN_PATH).is_some()
    {
        prometheus.group_add = vec![host.secret_gid.to_string()];
    }
    prometheus.reload = Reload::Prometheus;
    prometheus.restart = "always";
    prometheus.stop_signal = Some("SIGTERM");
    // Target files are picked up by file_sd without a reload: not part of the config hash.
    prometheus.config_files = files_under("prometheus/", Some("prometheus/targets/"));
    specs.push(prometheus);

    if stack.grafana.enabled {
        let g = &stack.grafana;
        let mut grafana = base(model::GRAFANA, &g.service, 3000);
        let mut env = vec![
            ("GF_SECURITY_ADMIN_USER".to_string(), g.admin_user.clone()),
            ("GF_AUTH_ANONYMOUS_ENABLED".into(), "false".into()),
            ("GF_USERS_ALLOW_SIGN_UP".into(), "false".into()),
            ("GF_ANALYTICS_REPORTING_ENABLED".into(), "false".into()),
            (
                "GF_PATHS_PROVISIONING".into(),
                "/etc/grafana/provisioning".into(),
            ),
            (
                "GF_SERVER_ROOT_URL".into(),
                format!("{}/", host_url(g.service.bind, g.service.port)),
            ),
        ];
        if let Some(smtp) = &stack.smtp {
            env.push(("GF_SMTP_ENABLED".into(), "true".into()));
            env.push(("GF_SMTP_HOST".into(), smtp.smarthost.clone()));
            env.push(("GF_SMTP_FROM_ADDRESS".into(), smtp.from.clone()));
            if let Some(user) = &smtp.username {
                env.push(("GF_SMTP_USER".into(), user.clone()));
            }
            if let Some(password) = &smtp.password {
                env.push(("GF_SMTP_PASSWORD".into(), password.clone()));
            }
            let policy = if smtp.require_tls {
                "MandatoryStartTLS"
            } else {
                "OpportunisticStartTLS"
            };
            env.push(("GF_SMTP_STARTTLS_POLICY".into(), policy.into()));
        }
        env.sort();
        grafana.env = env;
        grafana.env_unhashed = vec![(
            "GF_SECURITY_ADMIN_PASSWORD".into(),
            host.grafana_admin_password.to_string(),
        )];
        grafana.group_add = vec![host.secret_gid.to_string()];
        grafana.mounts = vec![
            bind("grafana/provisioning", "/etc/grafana/provisioning"),
            volume(model::GRAFANA, "/var/lib/grafana"),
            bind(grafana::DASHBOARDS_DIR, grafana::DASHBOARDS_MOUNT),
        ];
        grafana.reload = Reload::Grafana;
        grafana.config_files = files_under("grafana/", None);
        specs.push(grafana);
    }

    if let Some(svc) = &stack.etcd {
        let mut etcd = base(model::ETCD, svc, 2379);
        etcd.entrypoint = Some(vec!["/usr/local/bin/etcd".into()]);
        etcd.cmd = vec![
            "--name=etcd".into(),
            "--data-dir=/etcd-data".into(),
            "--listen-client-urls=http://0.0.0.0:2379".into(),
            "--advertise-client-urls=http://etcd:2379".into(),
            "--listen-peer-urls=http://0.0.0.0:2380".into(),
            "--initial-advertise-peer-urls=http://etcd:2380".into(),
            "--initial-cluster=etcd=http://etcd:2380".into(),
            // Watchers (the agent) hear from etcd at least this often, so a dead connection
            // is noticed within about a minute instead of after the 10 min default.
            "--experimental-watch-progress-notify-interval=30s".into(),
        ];
        etcd.mounts = vec![volume(model::ETCD, "/etcd-data")];
        specs.push(etcd);
    }

    if let Some(svc) = &stack.alertmanager {
        let mut am = base(model::ALERTMANAGER, svc, 9093);
        am.entrypoint = Some(vec!["/bin/alertmanager".into()]);
        am.cmd = vec![
            "--config.file=/etc/alertmanager/alertmanager.yml".into(),
            "--storage.path=/alertmanager".into(),
            "--web.listen-address=:9093".into(),
            format!("--web.external-url={}/", host_url(svc.bind, svc.port)),
            // A single Alertmanager: no gossip cluster (which also fails without a private IP).
            "--cluster.listen-address=".into(),
        ];
        // Per-receiver notification metrics (Alertmanager >= 0.27): how `alert test` tells
        // channels apart without reading the log. Older versions have no such flag.
        if model::image_version(&svc.image).is_some_and(|v| v >= (0, 27, 0)) {
            am.cmd
                .push("--enable-feature=receiver-name-in-metrics".into());
        }
        am.group_add = vec![host.secret_gid.to_string()];
        am.mounts = vec![
            bind("alertmanager", "/etc/alertmanager"),
            volume(model::ALERTMANAGER, "/alertmanager"),
        ];
        am.reload = Reload::Alertmanager;
        am.config_files = files_under("alertmanager/", None);
        specs.push(am);
    }

    if let Some(svc) = &stack.pushgateway {
        let mut pg = base(model::PUSHGATEWAY, svc, 9091);
        pg.entrypoint = Some(vec!["/bin/pushgateway".into()]);
        pg.cmd = vec!["--web.listen-address=:9091".into()];
        specs.push(pg);
    }

    if let Some(svc) = &stack.node_exporter {
        // As node_exporter's documentation prescribes for Docker: the host's network (its
        // interfaces, not the container's) and PID namespaces (its processes), the host's root
        // read-only with rslave propagation (filesystems mounted later show up too).
        let listen = node_exporter_listen(svc.bind, host.host_gateway);
        let mut node = base(model::NODE_EXPORTER, svc, svc.port);
        node.port.host_ip = listen;
        node.entrypoint = Some(vec!["/bin/node_exporter".into()]);
        node.cmd = vec![
            "--path.rootfs=/host".into(),
            format!(
                "--web.listen-address={}",
                std::net::SocketAddr::new(listen, svc.port)
            ),
            // Process counts by state, threads and PIDs (off by default).
            "--collector.processes".into(),
        ];
        node.network = HOST_NETWORK.into();
        node.pid_mode = Some("host");
        node.extra_hosts = Vec::new();
        node.mounts = vec![Mount {
            source: MountSource::Bind("/".into()),
            target: "/host".into(),
            read_only: true,
            propagation: host.host_root_shared.then_some("rslave"),
        }];
        specs.push(node);
    }

    if let Some(svc) = &stack.blackbox {
        use crate::render::blackbox::{CONFIG_DIR, CONFIG_MOUNT, CONFIG_PATH};
        let mut blackbox = base(model::BLACKBOX, svc, model::BLACKBOX_PORT);
        blackbox.entrypoint = Some(vec!["/bin/blackbox_exporter".into()]);
        blackbox.cmd = vec![
            format!("--config.file={CONFIG_MOUNT}/blackbox.yml"),
            format!("--web.listen-address=:{}", model::BLACKBOX_PORT),
        ];
        blackbox.mounts = vec![bind(CONFIG_DIR, CONFIG_MOUNT)];
        // ICMP probes open raw sockets; the official image runs as root, which has it.
        blackbox.cap_add = vec!["NET_RAW".into()];
        // Read at start: a change of modules recreates it (it starts in milliseconds).
        blackbox.config_files = vec![CONFIG_PATH.to_string()];
        specs.push(blackbox);
    }

    if let Some(influxdb) = &stack.influxdb {
        use crate::render::influxdb::{CONFIG_DIR, CONFIG_MOUNT, CONFIG_PATH, DATA_MOUNT};
        let mut influx = base(model::INFLUXDB, &influxdb.service, model::INFLUXDB_PORT);
        // influxd itself, not the official image's entrypoint script: its first-start setup
        // (INFLUXDB_DB, INFLUXDB_ADMIN_*) is monstack's job, through the API, on any image.
        influx.entrypoint = Some(vec!["/usr/bin/influxd".into()]);
        influx.cmd = vec!["-config".into(), format!("{CONFIG_MOUNT}/influxdb.conf")];
        influx.mounts = vec![
            bind(CONFIG_DIR, CONFIG_MOUNT),
            volume(model::INFLUXDB, DATA_MOUNT),
        ];
        // Read at start only.
        influx.config_files = vec![CONFIG_PATH.to_string()];
        specs.push(influx);
    }

    if let (Some(svc), Some(image)) = (&stack.agent, host.agent_image) {
        let mut agent = base(model::AGENT, svc, model::AGENT_PORT);
        agent.image = image.to_string();
        agent.entrypoint = Some(vec![crate::stack::agent_image::BINARY.to_string()]);
        agent.cmd = vec![
            "agent".into(),
            "--listen".into(),
            format!("0.0.0.0:{}", model::AGENT_PORT),
        ];
        let own_etcd = stack.etcd.is_some();
        if let Some(discovery) = stack
            .discovery
            .etcd
            .as_ref()
            .filter(|d| d.cluster.is_some() || own_etcd)
        {
            match &discovery.cluster {
                Some(cluster) => {
                    let (args, mounts) = external_etcd(cluster);
                    agent.cmd.extend(args);
                    agent.mounts.extend(mounts);
                }
                None => agent.cmd.extend([
                    "--etcd".into(),
                    "http://etcd:2379".into(),
                    "--etcd-progress-interval".into(),
                    "30s".into(),
                ]),
            }
            agent
                .cmd
                .extend(["--prefix".into(), discovery.prefix.clone()]);
            agent
                .cmd
                .extend(["--targets-dir".into(), "/targets".into()]);
            if !discovery.rewrite_loopback {
                agent.cmd.push("--keep-loopback".into());
            }
            agent.mounts.push(Mount {
                source: MountSource::Bind(dir(crate::layout::ETCD_TARGETS_DIR)),
                target: "/targets".into(),
                read_only: false,
                propagation: None,
            });
        }
        // DingTalk channels: the relay reads its channels (with tokens and secrets) from a
        // rendered file, so a channel change recreates the agent (it has nothing to reload).
        if tree.get(crate::layout::AGENT_CONFIG_PATH).is_some() {
            agent
                .cmd
                .extend(["--config".into(), format!("{AGENT_CONFIG_MOUNT}/agent.yml")]);
            agent
                .mounts
                .push(bind(crate::layout::AGENT_CONFIG_DIR, AGENT_CONFIG_MOUNT));
            agent.group_add = vec![host.secret_gid.to_string()];
            agent.config_files = vec![crate::layout::AGENT_CONFIG_PATH.to_string()];
        }
        agent.user = Some(format!("{}:{}", host.host_user.0, host.host_user.1));
        specs.push(agent);
    }

    for spec in &mut specs {
        spec.spec_hash = hash_spec(spec);
        spec.config_hash = hash_config(&spec.spec_hash, &spec.config_files, tree);
    }
    specs
}

/// Where the agent container finds the files of an existing etcd cluster's TLS and user.
const ETCD_FILES_MOUNT: &str = "/etc/monstack-agent-etcd";

/// The agent's flags for an existing etcd cluster, and the read-only mounts of its files: each
/// file is mounted itself (never copied), so it stays readable by whom its owner decided; the
/// agent runs as the host user.
fn external_etcd(cluster: &model::EtcdCluster) -> (Vec<String>, Vec<Mount>) {
    let mut args = vec!["--etcd".to_string(), cluster.endpoints.join(",")];
    let mut mounts = Vec::new();
    let mut file = |flag: &str, path: &std::path::Path, name: &str| {
        let target = format!("{ETCD_FILES_MOUNT}/{name}");
        args.extend([flag.to_string(), target.clone()]);
        mounts.push(Mount {
            source: MountSource::Bind(path.to_string_lossy().into_owned()),
            target,
            read_only: true,
            propagation: None,
        });
    };
    if let Some(tls) = &cluster.tls {
        if let Some(ca) = &tls.ca {
            file("--etcd-ca", ca, "ca.pem");
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            file("--etcd-cert", cert, "cert.pem");
            file("--etcd-key", key, "key.pem");
        }
    }
    if let (Some(user), Some(password)) = (&cluster.username, &cluster.password_file) {
        file("--etcd-password-file", password, "password");
        args.extend(["--etcd-user".to_string(), user.clone()]);
    }
    (args, mounts)
}

/// The address node_exporter listens on in the host's network namespace: its `bind`, except
/// that loopback (the default) would be out of Prometheus' reach, so it becomes Docker's bridge
/// address, which containers reach as `host.docker.internal` and other machines do not.
pub fn node_exporter_listen(bind: IpAddr, host_gateway: Option<IpAddr>) -> IpAddr {
    match host_gateway {
        Some(gateway) if bind.is_loopback() => gateway,
        _ => bind,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_spec(spec: &ContainerSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    hex(&Sha256::digest(&json))[..16].to_string()
}

fn hash_config(spec_hash: &str, files: &[String], tree: &Tree) -> String {
    let mut hasher = Sha256::new();
    hasher.update(spec_hash.as_bytes());
    for path in files {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        if let Some(file) = tree.get(path) {
            hasher.update((file.contents.len() as u64).to_le_bytes());
            hasher.update(&file.contents);
        }
    }
    hex(&hasher.finalize())[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{render, testkit};

    fn specs(stack: &Stack) -> Vec<ContainerSpec> {
        let tree = render(stack).unwrap();
        let host = HostContext {
            out_dir: Path::new("/p/.monstack"),
            secret_gid: 1000,
            grafana_admin_password: "pw-123456789",
            agent_image: Some("monstack-agent:test"),
            host_user: (1000, 1000),
            host_gateway: None,
            host_root_shared: false,
        };
        desired(stack, &tree, &host)
    }

    fn find<'a>(specs: &'a [ContainerSpec], service: &str) -> &'a ContainerSpec {
        specs.iter().find(|s| s.service == service).unwrap()
    }

    #[test]
    fn the_agent_bridges_etcd_into_the_target_directory_as_the_host_user() {
        let all = specs(&testkit::full());
        let agent = find(&all, "agent");
        assert_eq!(agent.image, "monstack-agent:test");
        assert_eq!(
            agent.entrypoint.as_deref(),
            Some(&["/monstack".to_string()][..])
        );
        assert_eq!(
            agent.cmd,
            [
                "agent",
                "--listen",
                "0.0.0.0:8060",
                "--etcd",
                "http://etcd:2379",
                "--etcd-progress-interval",
                "30s",
                "--prefix",
                "/service/",
                "--targets-dir",
                "/targets",
                "--config",
                "/etc/monstack-agent/agent.yml"
            ]
        );
        assert_eq!(
            agent.mounts,
            [
                Mount {
                    source: MountSource::Bind("/p/.monstack/prometheus/targets/etcd".into()),
                    target: "/targets".into(),
                    read_only: false,
                    propagation: None
                },
                Mount {
                    source: MountSource::Bind("/p/.monstack/agent".into()),
                    target: "/etc/monstack-agent".into(),
                    read_only: true,
                    propagation: None
                }
            ]
        );
        assert_eq!(agent.user.as_deref(), Some("1000:1000"));
        assert_eq!(agent.port.container_port, 8060);
        // Without an image (a macOS executable), no agent container: the user runs `monstack agent`.
        let stack = testkit::full();
        let tree = render(&stack).unwrap();
        let host = HostContext {
            out_dir: Path::new("/p/.monstack"),
            secret_gid: 0,
            grafana_admin_password: "x",
            agent_image: None,
            host_user: (0, 0),
            host_gateway: None,
            host_root_shared: false,
        };
        assert!(desired(&stack, &tree, &host)
            .iter()
            .all(|s| s.service != "agent"));
        // The pinned Prometheus scrapes new targets after 1s instead of 5s.
        assert!(find(&all, "prometheus")
            .cmd
            .contains(&"--scrape.discovery-reload-interval=1s".to_string()));
    }

    /// The same spec whether the user's group is private or shared: a shared group is kept out
    /// by `.monstack/` being 0700 (render::write), not by running the readers as the host
    /// user. Alertmanager and Grafana keep their images' users (65534, 472), who own their data
    /// volumes: as the host user Alertmanager could no longer save its silences and
    /// notification log there, nor Grafana write a database it created before.
    #[test]
    fn readers_of_secret_files_get_their_group_and_keep_the_users_owning_their_data() {
        let all = specs(&testkit::full());
        for service in ["alertmanager", "grafana"] {
            let spec = find(&all, service);
            assert_eq!(spec.group_add, ["1000"], "{service}");
            assert_eq!(spec.user, None, "{service} runs as its image's user");
            assert!(
                spec.mounts
                    .iter()
                    .any(|m| matches!(m.source, MountSource::Volume(_)) && !m.read_only),
                "{service} has a data volume"
            );
        }
        // The agent writes target files as the host user, and reads agent.yml as its owner.
        let agent = find(&all, "agent");
        assert_eq!(agent.user.as_deref(), Some("1000:1000"));
        assert_eq!(agent.group_add, ["1000"]);
        // Services that read no secret get no group.
        for service in ["prometheus", "etcd", "pushgateway"] {
            assert!(find(&all, service).group_add.is_empty(), "{service}");
        }
    }

    /// `discovery.etcd.endpoints`: no etcd container; the agent gets the endpoints and its files
    /// mounted read-only one by one (never copied), and runs as the host user who can read them.
    #[test]
    fn an_existing_etcd_cluster_replaces_the_stacks_etcd_and_its_files_are_mounted_read_only() {
        let mut stack = testkit::full();
        stack.etcd = None;
        stack.discovery.etcd.as_mut().unwrap().cluster = Some(model::EtcdCluster {
            endpoints: vec![
                "https://10.0.0.11:2379".into(),
                "https://etcd-2.lan:2379".into(),
            ],
            tls: Some(model::EtcdTls {
                ca: Some("/srv/etcd/ca.pem".into()),
                cert: Some("/srv/etcd/agent.pem".into()),
                key: Some("/srv/etcd/agent-key.pem".into()),
            }),
            username: Some("monstack".into()),
            password_file: Some("/srv/etcd/password".into()),
        });
        let all = specs(&stack);
        assert!(all.iter().all(|s| s.service != "etcd"));
        let agent = find(&all, "agent");
        let cmd = agent.cmd.join(" ");
        assert!(
            cmd.starts_with(
                "agent --listen 0.0.0.0:8060 --etcd https://10.0.0.11:2379,https://etcd-2.lan:2379 \
                 --etcd-ca /etc/monstack-agent-etcd/ca.pem \
                 --etcd-cert /etc/monstack-agent-etcd/cert.pem \
                 --etcd-key /etc/monstack-agent-etcd/key.pem \
                 --etcd-password-file /etc/monstack-agent-etcd/password --etcd-user monstack \
                 --prefix /service/ --targets-dir /targets"
            ),
            "{cmd}"
        );
        let files: Vec<(String, String, bool)> = agent
            .mounts
            .iter()
            .filter_map(|m| match &m.source {
                MountSource::Bind(source) if source.starts_with("/srv/") => {
                    Some((source.clone(), m.target.clone(), m.read_only))
                }
                _ => None,
            })
            .collect();
        let expected = [
            ("/srv/etcd/ca.pem", "ca.pem"),
            ("/srv/etcd/agent.pem", "cert.pem"),
            ("/srv/etcd/agent-key.pem", "key.pem"),
            ("/srv/etcd/password", "password"),
        ]
        .map(|(s, t)| (s.to_string(), format!("/etc/monstack-agent-etcd/{t}"), true));
        assert_eq!(files, expected);
        assert_eq!(agent.user.as_deref(), Some("1000:1000"));
        assert_eq!(
            agent.network,
            network_name(&stack.project),
            "the stack's network"
        );
    }

    #[test]
    fn the_agent_reads_its_dingtalk_channels_from_a_secret_file_and_restarts_on_change() {
        let stack = testkit::full();
        let all = specs(&stack);
        let agent = find(&all, "agent");
        assert_eq!(agent.group_add, ["1000"], "agent.yml is a 0640 secret");
        assert_eq!(agent.config_files, ["agent/agent.yml"]);
        assert_eq!(agent.reload, Reload::None);
        // A new signing secret changes only the file: the config hash, so a recreate.
        let mut changed = stack.clone();
        for channel in &mut changed.channels {
            if let model::ChannelKind::DingTalk { secret, .. } = &mut channel.kind {
                *secret = Some("SECother".into());
            }
        }
        let after = specs(&changed);
        assert_eq!(find(&after, "agent").spec_hash, agent.spec_hash);
        assert_ne!(find(&after, "agent").config_hash, agent.config_hash);
        // Without DingTalk channels: no file, no flag, no mount.
        let mut no_ding = stack.clone();
        no_ding
            .channels
            .retain(|c| !matches!(c.kind, model::ChannelKind::DingTalk { .. }));
        no_ding.alerting.default_notify.retain(|n| n != "ops-ding");
        for alert in &mut no_ding.alerts {
            alert.notify.retain(|n| n != "ops-ding");
        }
        let all = specs(&no_ding);
        let agent = find(&all, "agent");
        assert!(!agent.cmd.contains(&"--config".to_string()));
        assert_eq!(agent.mounts.len(), 1);
        assert!(agent.group_add.is_empty());
        assert!(agent.config_files.is_empty());
        // Without discovery, DingTalk alone: the agent gets only --listen and --config.
        let mut ding_only = stack.clone();
        ding_only.discovery.etcd = None;
        let all = specs(&ding_only);
        assert_eq!(
            find(&all, "agent").cmd,
            [
                "agent",
                "--listen",
                "0.0.0.0:8060",
                "--config",
                "/etc/monstack-agent/agent.yml"
            ]
        );
    }

    #[test]
    fn every_enabled_service_gets_a_container_named_after_the_project() {
        let full = specs(&testkit::full());
        let names: Vec<&str> = full.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "monstack-shop-prometheus",
                "monstack-shop-grafana",
                "monstack-shop-etcd",
                "monstack-shop-alertmanager",
                "monstack-shop-pushgateway",
                "monstack-shop-agent"
            ]
        );
        let minimal = specs(&testkit::minimal());
        assert_eq!(
            minimal.iter().map(|s| s.service).collect::<Vec<_>>(),
            ["prometheus", "grafana"]
        );
        for spec in &full {
            assert_eq!(spec.network, "monstack-shop");
            assert_eq!(spec.alias, spec.service);
            assert_eq!(spec.extra_hosts, ["host.docker.internal:host-gateway"]);
            assert_eq!(
                spec.port.host_ip.to_string(),
                "127.0.0.1",
                "{} must bind to loopback by default",
                spec.service
            );
        }
    }

    #[test]
    fn prometheus_runs_without_lifecycle_with_retention_and_the_config_directory_mounted() {
        let all = specs(&testkit::full());
        let p = find(&all, "prometheus");
        assert!(
            !p.cmd.iter().any(|a| a.contains("lifecycle")),
            "no HTTP endpoint may reload or stop it"
        );
        // Reloaded by signals through the engine: restarted after a crash all the same.
        assert_eq!((p.restart, p.stop_signal), ("always", Some("SIGTERM")));
        for other in all.iter().filter(|s| s.service != "prometheus") {
            assert_eq!(
                (other.restart, other.stop_signal),
                ("unless-stopped", None),
                "{}",
                other.service
            );
        }
        assert!(p
            .cmd
            .contains(&"--storage.tsdb.retention.time=2w1d".to_string()));
        assert_eq!(
            p.mounts[0],
            Mount {
                source: MountSource::Bind("/p/.monstack/prometheus".into()),
                target: "/etc/prometheus".into(),
                read_only: true,
                propagation: None
            }
        );
        assert_eq!(
            p.mounts[1].source,
            MountSource::Volume("monstack-shop-prometheus-data".into())
        );
        assert!(p
            .config_files
            .contains(&"prometheus/prometheus.yml".to_string()));
        assert!(
            p.config_files
                .iter()
                .all(|f| !f.starts_with("prometheus/targets/")),
            "target files need no reload"
        );
    }

    #[test]
    fn grafana_is_secure_by_default_and_its_password_does_not_force_a_recreate() {
        let all = specs(&testkit::full());
        let g = find(&all, "grafana");
        let env: BTreeMap<_, _> = g.env.iter().cloned().collect();
        assert_eq!(env["GF_AUTH_ANONYMOUS_ENABLED"], "false");
        assert_eq!(env["GF_SECURITY_ADMIN_USER"], "admin");
        assert!(
            !env.contains_key("GF_SECURITY_ADMIN_PASSWORD"),
            "the password is not hashed"
        );
        assert_eq!(
            g.env_unhashed,
            [(
                "GF_SECURITY_ADMIN_PASSWORD".to_string(),
                "pw-123456789".to_string()
            )]
        );
        assert_eq!(env["GF_SMTP_HOST"], "smtp.example.com:465");
        assert_eq!(g.group_add, ["1000"]);
        let mut stack = testkit::full();
        let before = g.spec_hash.clone();
        let tree = render(&stack).unwrap();
        let other = desired(
            &stack,
            &tree,
            &HostContext {
                out_dir: Path::new("/p/.monstack"),
                secret_gid: 1000,
                grafana_admin_password: "another-password",
                agent_image: Some("monstack-agent:test"),
                host_user: (1000, 1000),
                host_gateway: None,
                host_root_shared: false,
            },
        );
        assert_eq!(find(&other, "grafana").spec_hash, before);
        stack.grafana.admin_user = "root".into();
        assert_ne!(find(&specs(&stack), "grafana").spec_hash, before);
    }

    #[test]
    fn hashes_separate_spec_changes_from_config_changes() {
        let stack = testkit::full();
        let before = specs(&stack);
        // An alert change touches only the rules file: same spec, new config hash.
        let mut changed = stack.clone();
        changed.alerts[0].for_ = crate::model::Duration::from_secs(600);
        let after = specs(&changed);
        let (b, a) = (find(&before, "prometheus"), find(&after, "prometheus"));
        assert_eq!(b.spec_hash, a.spec_hash);
        assert_ne!(b.config_hash, a.config_hash);
        assert_eq!(
            find(&before, "etcd").config_hash,
            find(&after, "etcd").config_hash
        );
        // A new target only changes a file_sd file: nothing changes for the container.
        let mut targets = stack.clone();
        targets.jobs[0]
            .targets
            .push("host.docker.internal:9999".into());
        assert_eq!(
            find(&specs(&targets), "prometheus").config_hash,
            b.config_hash
        );
        // Retention is a flag: the container must be recreated.
        let mut retention = stack.clone();
        retention.prometheus.retention = crate::model::Duration::from_secs(86_400);
        assert_ne!(
            find(&specs(&retention), "prometheus").spec_hash,
            b.spec_hash
        );
    }

    #[test]
    fn node_exporter_runs_in_the_hosts_namespaces_with_the_root_read_only() {
        let stack = testkit::exporters();
        let tree = render(&stack).unwrap();
        let gateway: IpAddr = "172.17.0.1".parse().unwrap();
        let host = HostContext {
            out_dir: Path::new("/p/.monstack"),
            secret_gid: 1000,
            grafana_admin_password: "pw-123456789",
            agent_image: Some("monstack-agent:test"),
            host_user: (1000, 1000),
            host_gateway: Some(gateway),
            host_root_shared: true,
        };
        let all = desired(&stack, &tree, &host);
        let node = find(&all, "node-exporter");
        assert_eq!(node.image, "prom/node-exporter:v1.9.1");
        assert_eq!(node.network, HOST_NETWORK);
        assert_eq!(node.pid_mode, Some("host"));
        assert!(node.extra_hosts.is_empty());
        assert_eq!(
            node.cmd,
            [
                "--path.rootfs=/host",
                "--web.listen-address=172.17.0.1:9100",
                "--collector.processes"
            ]
        );
        assert_eq!(
            node.mounts,
            [Mount {
                source: MountSource::Bind("/".into()),
                target: "/host".into(),
                read_only: true,
                propagation: Some("rslave")
            }]
        );
        // A private `/` (some VMs and containers): Docker refuses rslave there.
        let private = HostContext {
            host_root_shared: false,
            ..host
        };
        let all_private = desired(&stack, &tree, &private);
        assert_eq!(
            find(&all_private, "node-exporter").mounts[0].propagation,
            None
        );
        // Readiness, `status` and the port check look where it listens.
        assert_eq!(node.url(), "http://172.17.0.1:9100");
        assert_eq!(node.user, None, "the image's own user (nobody)");
        // An address of its own is kept: 0.0.0.0 exposes it, as `bind` says.
        for (bind, listen) in [("0.0.0.0", "0.0.0.0"), ("10.0.0.7", "10.0.0.7")] {
            let bind: IpAddr = bind.parse().unwrap();
            assert_eq!(
                node_exporter_listen(bind, Some(gateway)).to_string(),
                listen
            );
        }
    }

    #[test]
    fn the_blackbox_exporter_reads_its_modules_and_may_ping() {
        let all = specs(&testkit::exporters());
        let blackbox = find(&all, "blackbox");
        assert_eq!(blackbox.image, "prom/blackbox-exporter:v0.27.0");
        assert_eq!(
            blackbox.cmd,
            [
                "--config.file=/etc/blackbox_exporter/blackbox.yml",
                "--web.listen-address=:9115"
            ]
        );
        assert_eq!(blackbox.mounts[0].target, "/etc/blackbox_exporter");
        assert_eq!(blackbox.cap_add, ["NET_RAW"]);
        assert_eq!(blackbox.config_files, ["blackbox/blackbox.yml"]);
        assert_eq!(blackbox.network, "monstack-shop");
        assert_eq!(blackbox.port.container_port, 9115);
        let names: Vec<&str> = all.iter().map(|s| s.service).collect();
        assert_eq!(
            names,
            [
                "prometheus",
                "grafana",
                "etcd",
                "alertmanager",
                "pushgateway",
                "node-exporter",
                "blackbox",
                "agent"
            ]
        );
    }

    #[test]
    fn new_settings_leave_the_hashes_of_existing_containers_alone() {
        // Fields added for node_exporter and the blackbox exporter are left out of the spec
        // when unused, so upgrading monstack recreates nothing.
        let all = specs(&testkit::full());
        let json = serde_json::to_string(find(&all, "prometheus")).unwrap();
        for field in ["pid_mode", "cap_add", "propagation"] {
            assert!(!json.contains(field), "{field} in {json}");
        }
    }

    #[test]
    fn labels_carry_project_service_hashes_and_version() {
        let all = specs(&testkit::full());
        let labels = find(&all, "etcd").labels("shop");
        assert_eq!(labels[LABEL_PROJECT], "shop");
        assert_eq!(labels[LABEL_SERVICE], "etcd");
        assert_eq!(labels[LABEL_VERSION], env!("CARGO_PKG_VERSION"));
        assert_eq!(labels[LABEL_SPEC_HASH].len(), 16);
    }

    #[test]
    fn unspecified_bind_addresses_are_reached_over_loopback() {
        assert_eq!(
            host_url("0.0.0.0".parse().unwrap(), 9090),
            "http://127.0.0.1:9090"
        );
        assert_eq!(
            host_url("10.1.2.3".parse().unwrap(), 3000),
            "http://10.1.2.3:3000"
        );
        assert_eq!(host_url("::".parse().unwrap(), 3000), "http://[::1]:3000");
    }

    #[test]
    fn alertmanager_names_receivers_in_its_metrics_when_its_version_can() {
        let flag = "--enable-feature=receiver-name-in-metrics".to_string();
        let cmd_for = |image: &str| {
            let mut stack = testkit::full();
            stack.alertmanager.as_mut().unwrap().image = image.to_string();
            find(&specs(&stack), "alertmanager").cmd.clone()
        };
        assert!(cmd_for("prom/alertmanager:v0.28.1").contains(&flag));
        assert!(cmd_for("prom/alertmanager:v0.33.1").contains(&flag));
        assert!(!cmd_for("prom/alertmanager:v0.25.0").contains(&flag));
        assert!(!cmd_for("prom/alertmanager:latest").contains(&flag));
    }

    #[test]
    fn an_agent_runs_prometheus_with_agent_storage_and_a_reader_of_secrets_gets_the_group() {
        let mut stack = crate::render::testkit::minimal();
        stack.prometheus.mode = model::PrometheusMode::Agent;
        stack.prometheus.retention_size = Some("1GB".into());
        stack.grafana.enabled = false;
        stack.prometheus.remote_write = vec![model::RemoteWrite {
            name: "central".into(),
            url: "https://central.example.com/api/v1/write".into(),
            headers: BTreeMap::new(),
            auth: Some(model::RemoteAuth::Bearer {
                token: model::CopiedFile {
                    source: "token".into(),
                    contents: b"t0ken".to_vec(),
                },
            }),
            tls: None,
            remote_timeout: None,
            queue: model::QueueConfig::default(),
            relabel: vec![],
        }];
        let all = specs(&stack);
        assert_eq!(
            all.iter().map(|s| s.service).collect::<Vec<_>>(),
            ["prometheus"],
            "an agent stack runs no Grafana"
        );
        let prometheus = find(&all, "prometheus");
        assert!(prometheus.cmd.contains(&"--agent".to_string()));
        assert!(prometheus
            .cmd
            .contains(&"--storage.agent.path=/prometheus/agent".to_string()));
        assert!(
            prometheus
                .cmd
                .iter()
                .all(|a| !a.starts_with("--storage.tsdb")),
            "Prometheus refuses TSDB flags in agent mode: {:?}",
            prometheus.cmd
        );
        assert_eq!(prometheus.group_add, ["1000"], "it reads the token file");
        // The token is in the config hash (a rotation reloads), not in the spec.
        assert!(prometheus
            .config_files
            .contains(&"prometheus/remote_write/1-central/token".to_string()));
        // A server that accepts remote writes says so on its command line.
        let mut server = crate::render::testkit::minimal();
        server.prometheus.remote_write_receiver = true;
        let all = specs(&server);
        let prometheus = find(&all, "prometheus");
        assert!(prometheus
            .cmd
            .contains(&"--web.enable-remote-write-receiver".to_string()));
        assert!(prometheus.group_add.is_empty());
    }

    #[test]
    fn influxdb_runs_influxd_with_its_config_and_a_volume_on_loopback() {
        let all = specs(&testkit::with_influxdb());
        let influx = all.iter().find(|s| s.service == model::INFLUXDB).unwrap();
        assert_eq!(
            influx.entrypoint.as_deref(),
            Some(&["/usr/bin/influxd".to_string()][..])
        );
        assert_eq!(influx.cmd, ["-config", "/etc/influxdb/influxdb.conf"]);
        assert!(influx.port.host_ip.is_loopback());
        assert_eq!(
            (influx.port.host_port, influx.port.container_port),
            (8086, 8086)
        );
        assert_eq!(influx.mounts.len(), 2);
        assert!(influx.mounts[0].read_only);
        assert_eq!(
            influx.mounts[1].source,
            MountSource::Volume("monstack-minimal-influxdb-data".into())
        );
        assert!(influx.env.is_empty(), "no password in its environment");
        assert_eq!(influx.config_files, ["influxdb/influxdb.conf"]);
        // The Consul token is read through the secret group.
        let mut stack = testkit::minimal();
        let prometheus = |stack: &Stack| specs(stack).remove(0);
        assert!(prometheus(&stack).group_add.is_empty());
        stack.discovery.consul = Some(crate::model::ConsulDiscovery {
            token: Some("t-1".into()),
            ..testkit::consul()
        });
        assert_eq!(prometheus(&stack).group_add, ["1000"]);
    }
}
