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
pub const SERVICES: [&str; 6] = [
    model::PROMETHEUS,
    model::GRAFANA,
    model::ETCD,
    model::ALERTMANAGER,
    model::PUSHGATEWAY,
    model::AGENT,
];

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
    /// `POST /-/reload` (Prometheus with `--web.enable-lifecycle`).
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
    pub port: PublishedPort,
    pub network: String,
    /// Name on the stack's network: the service name.
    pub alias: String,
    pub extra_hosts: Vec<String>,
    pub restart: &'static str,
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
        alias: service.to_string(),
        // Lets Prometheus scrape services on the host and Alertmanager reach webhooks there.
        extra_hosts: vec!["host.docker.internal:host-gateway".to_string()],
        restart: "unless-stopped",
        reload: Reload::None,
        config_files: Vec::new(),
        spec_hash: String::new(),
        config_hash: String::new(),
    };
    let volume = |service: &str, target: &str| Mount {
        source: MountSource::Volume(volume_name(project, service)),
        target: target.to_string(),
        read_only: false,
    };
    let bind = |sub: &str, target: &str| Mount {
        source: MountSource::Bind(dir(sub)),
        target: target.to_string(),
        read_only: true,
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
    prometheus.cmd = vec![
        "--config.file=/etc/prometheus/prometheus.yml".into(),
        "--storage.tsdb.path=/prometheus".into(),
        format!("--storage.tsdb.retention.time={}", p.retention),
        "--web.enable-lifecycle".into(),
        "--web.listen-address=:9090".into(),
        format!(
            "--web.external-url={}/",
            host_url(p.service.bind, p.service.port)
        ),
    ];
    if let Some(interval) = p.discovery_reload_interval {
        prometheus
            .cmd
            .push(format!("--scrape.discovery-reload-interval={interval}"));
    }
    if let Some(size) = &p.retention_size {
        prometheus
            .cmd
            .push(format!("--storage.tsdb.retention.size={size}"));
    }
    prometheus.mounts = vec![
        bind("prometheus", "/etc/prometheus"),
        volume(model::PROMETHEUS, "/prometheus"),
    ];
    prometheus.reload = Reload::Prometheus;
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

    if let (Some(svc), Some(image)) = (&stack.agent, host.agent_image) {
        let mut agent = base(model::AGENT, svc, model::AGENT_PORT);
        agent.image = image.to_string();
        agent.entrypoint = Some(vec![crate::stack::agent_image::BINARY.to_string()]);
        agent.cmd = vec![
            "agent".into(),
            "--listen".into(),
            format!("0.0.0.0:{}", model::AGENT_PORT),
        ];
        if let (Some(discovery), Some(_)) = (&stack.discovery.etcd, &stack.etcd) {
            agent.cmd.extend([
                "--etcd".into(),
                "http://etcd:2379".into(),
                "--prefix".into(),
                discovery.prefix.clone(),
            ]);
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
                    read_only: false
                },
                Mount {
                    source: MountSource::Bind("/p/.monstack/agent".into()),
                    target: "/etc/monstack-agent".into(),
                    read_only: true
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
    fn prometheus_runs_with_lifecycle_retention_and_the_config_directory_mounted() {
        let all = specs(&testkit::full());
        let p = find(&all, "prometheus");
        assert!(p.cmd.contains(&"--web.enable-lifecycle".to_string()));
        assert!(p
            .cmd
            .contains(&"--storage.tsdb.retention.time=2w1d".to_string()));
        assert_eq!(
            p.mounts[0],
            Mount {
                source: MountSource::Bind("/p/.monstack/prometheus".into()),
                target: "/etc/prometheus".into(),
                read_only: true
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
}
