//! What runs in the cluster besides kube-prometheus-stack: the monstack agent (a Deployment and
//! a Service: etcd discovery answered over HTTP SD, the DingTalk relay) and, unless `--etcd`
//! names one the cluster has, the stack's single-member etcd (a StatefulSet with a volume, and
//! a Service).

use std::collections::BTreeMap;

use super::objects::{
    ClaimMeta, ClaimResources, ClaimSpec, Container, ContainerPort, ContainerSecurityContext,
    DeploymentSpec, DeploymentStrategy, EmptyDir, LabelSelector, Object, PodSecurityContext,
    PodSpec, PodTemplate, Probe, Resources, SeccompProfile, SecretBody, SecretVolume, ServicePort,
    ServiceSpec, Spec, StatefulSetSpec, TemplateMeta, Volume, VolumeClaimTemplate, VolumeMount,
};
use super::prometheus::ETCD_CLIENT_PORT;
use super::{Cluster, Rendered};
use crate::model;

const NAME_LABEL: &str = "app.kubernetes.io/name";
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// The user the agent's image runs as (`stack/agent_image.rs`), and etcd here.
const NOBODY: u32 = 65534;
const AGENT_CONFIG_DIR: &str = "/etc/monstack-agent";
const AGENT_TARGETS_DIR: &str = "/targets";
const ETCD_DATA_DIR: &str = "/var/lib/etcd";

pub(super) fn objects(cluster: &Cluster) -> anyhow::Result<Vec<Rendered>> {
    let mut out = Vec::new();
    if cluster.stack.agent.is_some() {
        out.extend(agent(cluster)?);
    }
    if cluster.stack.etcd.is_some() && cluster.options.etcd_url.is_none() {
        out.extend(etcd(cluster)?);
    }
    Ok(out)
}

/// The labels that select one component's pods.
fn selector(cluster: &Cluster, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.into(), format!("monstack-{component}")),
        (INSTANCE_LABEL.into(), cluster.prefix.clone()),
    ])
}

fn service(
    cluster: &Cluster,
    name: String,
    component: &str,
    port: u16,
) -> anyhow::Result<Rendered> {
    Rendered::new(&Object {
        api_version: "v1",
        kind: "Service",
        metadata: cluster.meta(name),
        body: Spec {
            spec: ServiceSpec {
                selector: selector(cluster, component),
                ports: vec![ServicePort {
                    name: "http",
                    port,
                    target_port: "http",
                    protocol: "TCP",
                }],
            },
        },
    })
}

fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: true,
        run_as_user: NOBODY,
        run_as_group: NOBODY,
        fs_group: NOBODY,
        seccomp_profile: SeccompProfile {
            kind: "RuntimeDefault",
        },
    }
}

fn agent(cluster: &Cluster) -> anyhow::Result<Vec<Rendered>> {
    let stack = cluster.stack;
    let name = cluster.agent_service();
    let mut args = vec![
        "agent".to_string(),
        "--listen".into(),
        format!("0.0.0.0:{}", model::AGENT_PORT),
    ];
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    if let Some(discovery) = &stack.discovery.etcd {
        let etcd_url = match &cluster.options.etcd_url {
            Some(url) => url.clone(),
            None => format!(
                "http://{}:{ETCD_CLIENT_PORT}",
                cluster.host(&cluster.name(model::ETCD))
            ),
        };
        args.extend(["--etcd".into(), etcd_url]);
        if cluster.options.etcd_url.is_none() {
            // The exported etcd's progress notifications (see its arguments below).
            args.extend(["--etcd-progress-interval".into(), "30s".into()]);
        }
        args.extend([
            "--prefix".into(),
            discovery.prefix.clone(),
            // The agent also keeps the target files; on a cluster nothing reads them.
            "--targets-dir".into(),
            AGENT_TARGETS_DIR.into(),
            // host.docker.internal means nothing in a pod: a loopback registration stays as
            // it was registered.
            "--keep-loopback".into(),
        ]);
        volumes.push(Volume {
            name: "targets",
            empty_dir: Some(EmptyDir { size_limit: "64Mi" }),
            secret: None,
        });
        mounts.push(VolumeMount {
            name: "targets",
            mount_path: AGENT_TARGETS_DIR,
            read_only: false,
        });
    }
    let mut out = Vec::new();
    // The DingTalk channels, with tokens and signing secrets, as render writes them for the
    // agent; links in the messages have no URL to point to from inside the cluster.
    if let Some(file) = crate::render::agent::render(stack)?.into_iter().next() {
        let mut config: crate::agent::config::ConfigFile =
            crate::manifest::yaml::from_str(file.text())?;
        config.external_url = None;
        out.push(Rendered::new(&Object {
            api_version: "v1",
            kind: "Secret",
            metadata: cluster.meta(name.clone()),
            body: SecretBody::opaque(BTreeMap::from([(
                "agent.yml".to_string(),
                crate::manifest::yaml::to_string(&config)?,
            )])),
        })?);
        args.extend(["--config".into(), format!("{AGENT_CONFIG_DIR}/agent.yml")]);
        volumes.push(Volume {
            name: "config",
            empty_dir: None,
            secret: Some(SecretVolume {
                secret_name: name.clone(),
                default_mode: 0o440,
            }),
        });
        mounts.push(VolumeMount {
            name: "config",
            mount_path: AGENT_CONFIG_DIR,
            read_only: true,
        });
    }
    let container = Container {
        name: "agent",
        image: cluster.options.agent_image.clone(),
        command: vec![],
        args,
        ports: vec![ContainerPort {
            name: "http",
            container_port: model::AGENT_PORT,
            protocol: "TCP",
        }],
        readiness_probe: Probe::http("/-/ready", 3),
        liveness_probe: Probe::http("/-/healthy", 6),
        resources: Resources {
            requests: BTreeMap::from([("cpu", "10m"), ("memory", "32Mi")]),
            limits: BTreeMap::from([("memory", "256Mi")]),
        },
        security_context: ContainerSecurityContext::default(),
        volume_mounts: mounts,
    };
    out.push(Rendered::new(&Object {
        api_version: "apps/v1",
        kind: "Deployment",
        metadata: cluster.meta(name.clone()),
        body: Spec {
            spec: DeploymentSpec {
                replicas: 1,
                selector: LabelSelector {
                    match_labels: selector(cluster, model::AGENT),
                },
                // One relay at a time: two agents would both answer, with two counters.
                strategy: DeploymentStrategy { kind: "Recreate" },
                template: PodTemplate {
                    metadata: TemplateMeta {
                        labels: selector(cluster, model::AGENT),
                    },
                    spec: PodSpec {
                        automount_service_account_token: false,
                        enable_service_links: false,
                        security_context: pod_security(),
                        containers: vec![container],
                        volumes,
                    },
                },
            },
        },
    })?);
    out.push(service(cluster, name, model::AGENT, model::AGENT_PORT)?);
    Ok(out)
}

fn etcd(cluster: &Cluster) -> anyhow::Result<Vec<Rendered>> {
    let Some(svc) = &cluster.stack.etcd else {
        return Ok(vec![]);
    };
    let name = cluster.name(model::ETCD);
    let client_url = format!("http://{}:{ETCD_CLIENT_PORT}", cluster.host(&name));
    // One member, peers on loopback: nothing else ever joins it.
    let peer = "http://127.0.0.1:2380";
    let container = Container {
        name: "etcd",
        image: svc.image.clone(),
        command: vec!["/usr/local/bin/etcd".into()],
        args: vec![
            "--name=etcd".into(),
            // A directory of its own inside the volume: etcd insists on mode 0700.
            format!("--data-dir={ETCD_DATA_DIR}/data"),
            format!("--listen-client-urls=http://0.0.0.0:{ETCD_CLIENT_PORT}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=etcd={peer}"),
            // The agent's watch hears from etcd at least this often (as on Docker).
            "--experimental-watch-progress-notify-interval=30s".into(),
        ],
        ports: vec![ContainerPort {
            name: "http",
            container_port: ETCD_CLIENT_PORT,
            protocol: "TCP",
        }],
        readiness_probe: Probe::http("/health", 3),
        liveness_probe: Probe::http("/health", 6),
        resources: Resources {
            requests: BTreeMap::from([("cpu", "50m"), ("memory", "64Mi")]),
            limits: BTreeMap::from([("memory", "512Mi")]),
        },
        security_context: ContainerSecurityContext::default(),
        volume_mounts: vec![VolumeMount {
            name: "data",
            mount_path: ETCD_DATA_DIR,
            read_only: false,
        }],
    };
    Ok(vec![
        Rendered::new(&Object {
            api_version: "apps/v1",
            kind: "StatefulSet",
            metadata: cluster.meta(name.clone()),
            body: Spec {
                spec: StatefulSetSpec {
                    replicas: 1,
                    service_name: name.clone(),
                    selector: LabelSelector {
                        match_labels: selector(cluster, model::ETCD),
                    },
                    template: PodTemplate {
                        metadata: TemplateMeta {
                            labels: selector(cluster, model::ETCD),
                        },
                        spec: PodSpec {
                            automount_service_account_token: false,
                            enable_service_links: false,
                            security_context: pod_security(),
                            containers: vec![container],
                            volumes: vec![],
                        },
                    },
                    volume_claim_templates: vec![VolumeClaimTemplate {
                        metadata: ClaimMeta { name: "data" },
                        spec: ClaimSpec {
                            access_modes: vec!["ReadWriteOnce"],
                            resources: ClaimResources {
                                requests: BTreeMap::from([("storage", "1Gi")]),
                            },
                        },
                    }],
                },
            },
        })?,
        service(cluster, name, model::ETCD, ETCD_CLIENT_PORT)?,
    ])
}
