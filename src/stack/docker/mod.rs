//! The only module that talks to the Docker Engine (through bollard).
//!
//! Everything it creates carries the `io.monstack.project` label, so the planner can read the
//! stack back and `down` removes exactly what `up` made.

mod networks;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{anyhow, Context};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, CreateImageOptions, KillContainerOptions,
    ListContainersOptions, ListVolumesOptions, LogsOptions, RemoveContainerOptions,
    RemoveVolumeOptions, StartContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};

use crate::output::PullProgress;
use crate::stack::containers::{
    ContainerSpec, MountSource, HOST_NETWORK, LABEL_CONFIG_HASH, LABEL_DIR, LABEL_PROJECT,
    LABEL_SERVICE, LABEL_SPEC_HASH,
};
use crate::stack::plan::Observed;

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    /// Where the daemon was reached, for messages.
    pub endpoint: String,
}

/// A container's runtime state, for readiness waits and `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub running: bool,
    pub status: String,
    pub exit_code: Option<i64>,
    pub restarting: bool,
    /// How often the engine restarted it (restart policy) since it was created.
    pub restart_count: i64,
}

/// One published port of some container on the machine, for "port taken by" messages.
#[derive(Debug, Clone)]
pub struct PublishedBy {
    pub container: String,
    pub host_port: u16,
}

fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_PROJECT}={project}")],
    )])
}

impl Engine {
    /// Connects through `DOCKER_HOST` or the default socket, checks the daemon answers and
    /// settles on an API version both sides speak.
    pub async fn connect() -> anyhow::Result<Engine> {
        let endpoint = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let unreachable = |e: &dyn std::fmt::Display| {
            crate::error::hinted(
                format!("cannot reach the Docker daemon at {endpoint}: {e}"),
                "is Docker running (`sudo systemctl start docker`)? Can you use it (`docker info`; membership of the `docker` group)? DOCKER_HOST selects another daemon",
            )
        };
        // On a Unix socket, `/_ping` answers with the daemon's API version in a header: one
        // quick round trip instead of bollard's `/version` negotiation (which costs the daemon
        // several milliseconds on every command).
        #[cfg(unix)]
        if let Some(path) = endpoint.strip_prefix("unix://") {
            let path = path.to_string();
            let pinged = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::task::spawn_blocking(move || ping_unix(&path)),
            )
            .await
            .map_err(|_| unreachable(&"no answer within 10 s"))?
            .map_err(|e| unreachable(&e))?;
            let (major, minor) = pinged.map_err(|e| unreachable(&e))?;
            let (major, minor) = std::cmp::min(
                (major, minor),
                (
                    bollard::API_DEFAULT_VERSION.major_version,
                    bollard::API_DEFAULT_VERSION.minor_version,
                ),
            );
            let version = bollard::ClientVersion {
                major_version: major,
                minor_version: minor,
            };
            let docker =
                Docker::connect_with_unix(&endpoint, 120, &version).map_err(|e| unreachable(&e))?;
            return Ok(Engine { docker, endpoint });
        }
        let docker = Docker::connect_with_defaults()
            .map_err(|e| unreachable(&e))?
            .with_timeout(Duration::from_secs(120));
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| unreachable(&"no answer within 10 s"))?
            .map_err(|e| unreachable(&e))?;
        Ok(Engine { docker, endpoint })
    }

    /// The project's containers (running or not), read back through their labels.
    pub async fn project_containers(&self, project: &str) -> anyhow::Result<Vec<Observed>> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(project_filter(project)),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .context("listing the project's containers")?;
        let mut out: Vec<Observed> = list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                Observed {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .unwrap_or_default()
                        .first()
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                    running: state == "running",
                    state,
                    spec_hash: labels.get(LABEL_SPEC_HASH).cloned().unwrap_or_default(),
                    config_hash: labels.get(LABEL_CONFIG_HASH).cloned().unwrap_or_default(),
                    image_id: c.image_id.unwrap_or_default(),
                    created: c.created.unwrap_or_default(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub async fn image_exists(&self, image: &str) -> anyhow::Result<bool> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("inspecting image {image}")),
        }
    }

    /// The id the engine has for each image reference now; references it lacks are left out.
    pub async fn image_ids(&self, images: &[&str]) -> anyhow::Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for image in images {
            match self.docker.inspect_image(image).await {
                Ok(inspect) => {
                    if let Some(id) = inspect.id {
                        out.insert(image.to_string(), id);
                    }
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => return Err(e).with_context(|| format!("inspecting image {image}")),
            }
        }
        Ok(out)
    }

    /// Pulls an image, reporting per-layer progress.
    pub async fn pull(&self, image: &str, progress: &dyn PullProgress) -> anyhow::Result<()> {
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(event) = stream.next().await {
            let info = event.map_err(|e| anyhow!("pulling {image}: {}", docker_message(&e)))?;
            if let Some(detail) = info.error_detail {
                return Err(anyhow!(
                    "pulling {image}: {}",
                    detail.message.unwrap_or_default()
                ));
            }
            let (current, total) = info
                .progress_detail
                .map(|p| {
                    (
                        p.current.map(|c| c.max(0) as u64),
                        p.total.map(|t| t.max(0) as u64),
                    )
                })
                .unwrap_or((None, None));
            progress.layer(
                image,
                info.id.as_deref().unwrap_or(""),
                info.status.as_deref().unwrap_or(""),
                current,
                total,
            );
        }
        progress.done(image);
        Ok(())
    }

    /// Creates a named volume (idempotent: the engine returns the existing one), labelled with
    /// its project and the manifest's directory `dir`.
    pub async fn ensure_volume(&self, name: &str, project: &str, dir: &str) -> anyhow::Result<()> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(HashMap::from([
                (LABEL_PROJECT.to_string(), project.to_string()),
                (LABEL_DIR.to_string(), dir.to_string()),
            ])),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .with_context(|| format!("creating volume {name}"))?;
        Ok(())
    }

    /// Creates a container from its spec (not started).
    pub async fn create(&self, spec: &ContainerSpec, project: &str) -> anyhow::Result<String> {
        let port_key = format!("{}/tcp", spec.port.container_port);
        let binds = spec
            .mounts
            .iter()
            .map(|m| {
                let source = match &m.source {
                    MountSource::Bind(path) => path.clone(),
                    MountSource::Volume(name) => name.clone(),
                };
                let options: Vec<&str> = [m.read_only.then_some("ro"), m.propagation]
                    .into_iter()
                    .flatten()
                    .collect();
                match options.is_empty() {
                    true => format!("{source}:{}", m.target),
                    false => format!("{source}:{}:{}", m.target, options.join(",")),
                }
            })
            .collect();
        let env = spec
            .env
            .iter()
            .chain(&spec.env_unhashed)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        // In the host's network namespace there is nothing to publish and no network to join.
        let host_network = spec.network == HOST_NETWORK;
        let host_config = HostConfig {
            binds: Some(binds),
            port_bindings: (!host_network).then(|| {
                HashMap::from([(
                    port_key.clone(),
                    Some(vec![PortBinding {
                        host_ip: Some(spec.port.host_ip.to_string()),
                        host_port: Some(spec.port.host_port.to_string()),
                    }]),
                )])
            }),
            extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
            pid_mode: spec.pid_mode.map(str::to_string),
            cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
            group_add: (!spec.group_add.is_empty()).then(|| spec.group_add.clone()),
            restart_policy: Some(RestartPolicy {
                name: Some(match spec.restart {
                    "always" => RestartPolicyNameEnum::ALWAYS,
                    _ => RestartPolicyNameEnum::UNLESS_STOPPED,
                }),
                maximum_retry_count: None,
            }),
            network_mode: Some(spec.network.clone()),
            ..Default::default()
        };
        let endpoint = EndpointSettings {
            aliases: Some(vec![spec.alias.clone()]),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            user: spec.user.clone(),
            entrypoint: spec.entrypoint.clone(),
            cmd: Some(spec.cmd.clone()),
            stop_signal: spec.stop_signal.map(str::to_string),
            env: Some(env),
            labels: Some(spec.labels(project).into_iter().collect()),
            exposed_ports: (!host_network).then(|| vec![port_key]),
            host_config: Some(host_config),
            networking_config: (!host_network).then(|| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = match self
            .docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            // The name is taken by a container the plan did not see: one an interrupted `up`
            // asked for, which the engine finished creating after it was listed. When it is
            // this project's, it is replaced; anyone else's is left alone.
            Err(e) if is_status(&e, 409) => {
                let labels = self
                    .docker
                    .inspect_container(&spec.name, None)
                    .await
                    .ok()
                    .and_then(|info| info.config)
                    .and_then(|config| config.labels)
                    .unwrap_or_default();
                if labels.get(LABEL_PROJECT).map(String::as_str) != Some(project) {
                    return Err(anyhow!(
                        "creating {}: a container of that name exists and is not this project's: {}",
                        spec.name,
                        docker_message(&e)
                    ));
                }
                self.remove(&spec.name).await?;
                self.docker.create_container(Some(options), body).await
            }
            other => other,
        }
        .map_err(|e| anyhow!("creating {}: {}", spec.name, docker_message(&e)))?;
        Ok(created.id)
    }

    pub async fn start(&self, name: &str) -> anyhow::Result<()> {
        match self.start_existing(name).await? {
            true => Ok(()),
            false => Err(anyhow!("starting {name}: no such container")),
        }
    }

    /// Starts a container, or says `false` when it is gone: an interrupted `up`'s create that
    /// the engine rolled back after the plan listed it.
    pub async fn start_existing(&self, name: &str) -> anyhow::Result<bool> {
        match self
            .docker
            .start_container(name, None::<StartContainerOptions>)
            .await
        {
            Ok(()) => Ok(true),
            // Already running (started by an interrupted earlier run): what we wanted.
            Err(e) if is_status(&e, 304) => Ok(true),
            Err(e) if is_status(&e, 404) => Ok(false),
            Err(e) => Err(anyhow!("starting {name}: {}", docker_message(&e))),
        }
    }

    /// Sends a signal (`SIGHUP`) to a running container's main process. The engine counts any
    /// signal as a stop by hand; see [`crate::stack::containers::Reload::Prometheus`] for what
    /// the container needs to be restarted after a crash all the same.
    pub async fn signal(&self, name: &str, signal: &str) -> anyhow::Result<()> {
        let options = KillContainerOptions {
            signal: signal.to_string(),
        };
        self.docker
            .kill_container(name, Some(options))
            .await
            .map_err(|e| anyhow!("sending {signal} to {name}: {}", docker_message(&e)))
    }

    /// Stops (10 s grace) and removes a container; its volumes stay. Missing is fine.
    pub async fn remove(&self, name: &str) -> anyhow::Result<()> {
        let stop = self
            .docker
            .stop_container(
                name,
                Some(StopContainerOptions {
                    t: Some(10),
                    signal: None,
                }),
            )
            .await;
        if let Err(e) = stop {
            if !is_status(&e, 404) && !is_status(&e, 304) {
                return Err(anyhow!("stopping {name}: {}", docker_message(&e)));
            }
        }
        match self
            .docker
            .remove_container(
                name,
                Some(RemoveContainerOptions {
                    force: true,
                    v: false,
                    link: false,
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(anyhow!("removing {name}: {}", docker_message(&e))),
        }
    }

    pub async fn state(&self, name: &str) -> anyhow::Result<Option<State>> {
        match self.docker.inspect_container(name, None).await {
            Ok(info) => {
                let restart_count = info.restart_count.unwrap_or(0);
                let s = info.state.unwrap_or_default();
                Ok(Some(State {
                    running: s.running.unwrap_or(false),
                    status: s.status.map(|st| st.to_string()).unwrap_or_default(),
                    exit_code: s.exit_code,
                    restarting: s.restarting.unwrap_or(false),
                    restart_count,
                }))
            }
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(anyhow!("inspecting {name}: {}", docker_message(&e))),
        }
    }

    /// The last `lines` lines of a container's output (stdout and stderr).
    pub async fn logs_tail(&self, name: &str, lines: usize) -> anyhow::Result<Vec<String>> {
        let mut stream = self.logs(name, false, Some(lines));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.push(chunk?);
        }
        let start = out.len().saturating_sub(lines);
        Ok(out.split_off(start))
    }

    /// A container's output as lines; with `follow`, until the container stops.
    pub fn logs(
        &self,
        name: &str,
        follow: bool,
        tail: Option<usize>,
    ) -> impl Stream<Item = anyhow::Result<String>> + use<> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        let name = name.to_string();
        let mut pending = String::new();
        self.docker
            .logs(&name, Some(options))
            .flat_map(move |chunk| {
                let lines: Vec<anyhow::Result<String>> = match chunk {
                    Ok(output) => {
                        pending.push_str(&output.to_string());
                        let mut lines = Vec::new();
                        while let Some(i) = pending.find('\n') {
                            lines.push(Ok(pending[..i].trim_end_matches('\r').to_string()));
                            pending.drain(..=i);
                        }
                        lines
                    }
                    Err(e) => vec![Err(anyhow!(
                        "reading logs of {name}: {}",
                        docker_message(&e)
                    ))],
                };
                futures_util::stream::iter(lines)
            })
    }

    pub async fn project_volumes(&self, project: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .project_volumes_with_dirs(project)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// The project's volumes, each with the manifest directory that created it (`None` for
    /// volumes from before monstack recorded it).
    pub async fn project_volumes_with_dirs(
        &self,
        project: &str,
    ) -> anyhow::Result<Vec<(String, Option<String>)>> {
        let list = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(project_filter(project)),
            }))
            .await
            .context("listing volumes")?;
        let mut volumes: Vec<(String, Option<String>)> = list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| {
                let dir = v.labels.get(LABEL_DIR).cloned();
                (v.name, dir)
            })
            .collect();
        volumes.sort();
        Ok(volumes)
    }

    pub async fn remove_volume(&self, name: &str) -> anyhow::Result<()> {
        self.docker
            .remove_volume(name, Some(RemoveVolumeOptions { force: false }))
            .await
            .map_err(|e| anyhow!("removing volume {name}: {}", docker_message(&e)))
    }

    /// Host ports published by running containers on this engine (any project), so a port
    /// conflict can name the container holding it.
    pub async fn published_ports(&self) -> anyhow::Result<Vec<PublishedBy>> {
        let list = self
            .docker
            .list_containers(None::<ListContainersOptions>)
            .await
            .context("listing containers")?;
        let mut out = Vec::new();
        for c in list {
            let name = c
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            for port in c.ports.unwrap_or_default() {
                if let Some(public) = port.public_port {
                    out.push(PublishedBy {
                        container: name.clone(),
                        host_port: public,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Builds an image from a tar build context (with its `Dockerfile`), no registry involved.
    /// `on_line` receives the builder's output.
    pub async fn build_image(
        &self,
        context: Vec<u8>,
        tag: &str,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> anyhow::Result<()> {
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(tag.to_string()),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(event) = stream.next().await {
            let info =
                event.map_err(|e| anyhow!("building image {tag}: {}", docker_message(&e)))?;
            if let Some(detail) = info.error_detail {
                return Err(anyhow!(
                    "building image {tag}: {}",
                    detail.message.unwrap_or_default()
                ));
            }
            if let Some(line) = info.stream {
                on_line(line.trim_end());
            }
        }
        Ok(())
    }

    /// Removes an image (tests clean up the images they build).
    pub async fn remove_image(&self, image: &str) -> anyhow::Result<()> {
        match self
            .docker
            .remove_image(
                image,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(anyhow!("removing image {image}: {}", docker_message(&e))),
        }
    }
}

/// `GET /_ping` over a Unix socket; returns the daemon's API version (`Api-Version` header).
#[cfg(unix)]
fn ping_unix(path: &str) -> std::io::Result<(usize, usize)> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&response);
    let bad = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected answer to /_ping ({why})"),
        )
    };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(bad(head.lines().next().unwrap_or("empty")));
    }
    let version = head
        .lines()
        .find_map(|line| {
            line.split_once(':')
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("api-version"))
                .map(|(_, v)| v.trim().to_string())
        })
        .ok_or_else(|| bad("no Api-Version header"))?;
    let (major, minor) = version
        .split_once('.')
        .ok_or_else(|| bad("malformed Api-Version"))?;
    Ok((
        major.parse().map_err(|_| bad("malformed Api-Version"))?,
        minor.parse().map_err(|_| bad("malformed Api-Version"))?,
    ))
}

fn is_status(e: &bollard::errors::Error, code: u16) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}

/// The daemon's own message when it sent one (they are the clearest), else bollard's.
fn docker_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            message.trim().to_string()
        }
        other => other.to_string(),
    }
}
