//! `monstack agent` (the discovery bridge and the DingTalk relay in the foreground) and
//! `monstack sync` (one listing).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::agent::{self, AgentConfig, ConfigFile, DiscoveryConfig};
use crate::cli::EtcdAccess;
use crate::error::{Error, Result};
use crate::layout::OUT_DIR;
use crate::model::host_url;
use crate::model::{self, EtcdCluster, EtcdTls, Stack};
use crate::project::{load, Context};

pub struct AgentArgs {
    /// etcd endpoints (empty: from the manifest).
    pub etcd: Vec<String>,
    pub etcd_access: EtcdAccess,
    pub prefix: Option<String>,
    pub targets_dir: Option<PathBuf>,
    pub listen: Option<String>,
    /// The agent's config file (DingTalk channels).
    pub config: Option<PathBuf>,
    pub keep_loopback: bool,
}

/// The progress notification interval of the stack's own etcd (its command line).
const OWN_ETCD_PROGRESS: Duration = Duration::from_secs(30);
/// etcd's default `--experimental-watch-progress-notify-interval`.
const ETCD_DEFAULT_PROGRESS: Duration = Duration::from_secs(600);

/// `base` with what the flags say on top: endpoints, TLS files, user.
fn with_flags(mut base: EtcdCluster, endpoints: &[String], access: &EtcdAccess) -> EtcdCluster {
    if !endpoints.is_empty() {
        base.endpoints = endpoints.to_vec();
    }
    if access.etcd_ca.is_some() || access.etcd_cert.is_some() {
        let tls = base.tls.get_or_insert_with(EtcdTls::default);
        if let Some(ca) = &access.etcd_ca {
            tls.ca = Some(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&access.etcd_cert, &access.etcd_key) {
            tls.cert = Some(cert.clone());
            tls.key = Some(key.clone());
        }
    }
    if let (Some(user), Some(file)) = (&access.etcd_user, &access.etcd_password_file) {
        base.username = Some(user.clone());
        base.password_file = Some(file.clone());
    }
    base
}

/// Twice the progress interval and a margin: the longest an open watch may stay silent.
fn idle_timeout(access: &EtcdAccess, default: Duration) -> Result<Duration> {
    let interval = match &access.etcd_progress_interval {
        Some(text) => model::Duration::parse(text)
            .map(|d| Duration::from_millis(d.as_millis()))
            .map_err(|e| {
                Error::usage(
                    format!("--etcd-progress-interval: {e}"),
                    Some(
                        "e.g. 10m, the cluster's --experimental-watch-progress-notify-interval"
                            .to_string(),
                    ),
                )
            })?,
        None => default,
    };
    Ok(interval * 2 + Duration::from_secs(15))
}

/// Discovery settings from the arguments, falling back to the manifest for what is missing.
fn discovery_config(
    ctx: &Context,
    etcd: &[String],
    access: &EtcdAccess,
    prefix: Option<String>,
    targets_dir: Option<PathBuf>,
    config: Option<&PathBuf>,
) -> Result<(Option<DiscoveryConfig>, Option<Stack>)> {
    // With --config (as in the stack's container, which has no manifest) the options say
    // everything: discovery only with both --etcd and --targets-dir.
    if config.is_some() && (etcd.is_empty() == targets_dir.is_some()) {
        return Err(Error::usage(
            "with --config, --etcd and --targets-dir go together",
            Some("pass both for discovery, or neither".to_string()),
        ));
    }
    if config.is_some() && etcd.is_empty() {
        return Ok((None, None));
    }
    if let (false, Some(targets_dir)) = (etcd.is_empty(), &targets_dir) {
        let prefix = prefix.unwrap_or_else(|| crate::agent::discovery::DEFAULT_PREFIX.to_string());
        return Ok((
            Some(DiscoveryConfig {
                etcd: with_flags(EtcdCluster::default(), etcd, access),
                watch_idle_timeout: idle_timeout(access, ETCD_DEFAULT_PROGRESS)?,
                prefix,
                targets_dir: targets_dir.clone(),
                rewrite_loopback: true,
            }),
            None,
        ));
    }
    let stack = load(ctx)?;
    let Some(discovery) = &stack.discovery.etcd else {
        return Ok((None, Some(stack)));
    };
    let (base, progress) = match (&discovery.cluster, &stack.etcd) {
        (Some(cluster), _) => (cluster.clone(), ETCD_DEFAULT_PROGRESS),
        (None, Some(svc)) => (
            EtcdCluster {
                endpoints: vec![host_url(svc.bind, svc.port)],
                ..EtcdCluster::default()
            },
            OWN_ETCD_PROGRESS,
        ),
        (None, None) if !etcd.is_empty() => (EtcdCluster::default(), ETCD_DEFAULT_PROGRESS),
        (None, None) => {
            return Err(Error::usage(
                "the manifest has no etcd",
                Some("pass --etcd URL".to_string()),
            ))
        }
    };
    let prefix = prefix.unwrap_or_else(|| discovery.prefix.clone());
    let targets_dir = targets_dir.unwrap_or_else(|| {
        stack
            .root
            .join(OUT_DIR)
            .join(crate::layout::ETCD_TARGETS_DIR)
    });
    Ok((
        Some(DiscoveryConfig {
            etcd: with_flags(base, etcd, access),
            watch_idle_timeout: idle_timeout(access, progress)?,
            prefix,
            targets_dir,
            rewrite_loopback: discovery.rewrite_loopback,
        }),
        Some(stack),
    ))
}

pub async fn run(ctx: &Context, args: AgentArgs) -> Result<()> {
    let (mut discovery, stack) = discovery_config(
        ctx,
        &args.etcd,
        &args.etcd_access,
        args.prefix,
        args.targets_dir,
        args.config.as_ref(),
    )?;
    if args.keep_loopback {
        if let Some(d) = discovery.as_mut() {
            d.rewrite_loopback = false;
        }
    }
    // On the host without options: the file `monstack render` wrote, if the stack has one.
    let config_path = args.config.or_else(|| {
        stack
            .as_ref()
            .map(|s| s.root.join(OUT_DIR).join(crate::layout::AGENT_CONFIG_PATH))
            .filter(|p| p.is_file())
    });
    let file = match &config_path {
        Some(path) => ConfigFile::load(path).map_err(|e| {
            Error::usage(
                format!("{e:#}"),
                Some("run `monstack render` to write .monstack/agent/agent.yml".to_string()),
            )
        })?,
        None => ConfigFile::default(),
    };
    let listen = match (&args.listen, &stack) {
        (Some(text), _) => text.parse::<SocketAddr>().map_err(|e| {
            Error::usage(
                format!("--listen `{text}`: {e}"),
                Some("e.g. 127.0.0.1:8060".to_string()),
            )
        })?,
        (None, Some(stack)) => match &stack.agent {
            Some(svc) => SocketAddr::new(svc.bind, svc.port),
            None => SocketAddr::new(stack.prometheus.service.bind, model::AGENT_PORT),
        },
        (None, None) => SocketAddr::from(([127, 0, 0, 1], model::AGENT_PORT)),
    };
    if discovery.is_none() && file.dingtalk.is_empty() {
        ctx.printer.note(
            "no `discovery.etcd` and no DingTalk channel: the agent only serves its /metrics",
        );
    }
    if !file.dingtalk.is_empty() {
        let names: Vec<&str> = file.dingtalk.keys().map(String::as_str).collect();
        ctx.printer.status(
            "DingTalk",
            &format!(
                "relaying POST /dingtalk/<channel> for {} ({})",
                names.join(", "),
                config_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        );
    }
    ctx.printer.status(
        "Agent",
        &format!("listening on http://{listen} (/metrics, /-/ready); Ctrl-C stops it"),
    );
    let shutdown = async {
        crate::signal::stop_signal().await;
    };
    agent::run(
        AgentConfig {
            listen,
            discovery,
            file,
        },
        shutdown,
    )
    .await?;
    Ok(())
}

pub async fn sync(ctx: &Context) -> Result<()> {
    let (discovery, stack) = discovery_config(ctx, &[], &EtcdAccess::default(), None, None, None)?;
    let Some(d) = discovery else {
        return Err(Error::usage(
            "the manifest has no `discovery.etcd`",
            Some("add `discovery: {etcd: {}}` (and `etcd: {}`)".to_string()),
        ));
    };
    // A running agent keeps the files current from its watch; a snapshot written beside it
    // could put back an older state than the one it has applied (a service gone, or back).
    if let Some(running) = match &stack {
        Some(stack) => running_agent(stack).await,
        None => None,
    } {
        return Err(Error::usage(
            format!("the stack's agent is running ({running}) and keeps the target files current"),
            Some(
                "`monstack sync` is for when no agent runs; `monstack targets` shows what it discovered"
                    .to_string(),
            ),
        ));
    }
    let etcd = crate::clients::etcd::Etcd::connect(&d.etcd)?;
    crate::agent::discovery::set_rewrite_loopback(d.rewrite_loopback);
    let report = crate::agent::discovery::sync_once(&etcd, &d.prefix, &d.targets_dir).await?;
    for skipped in &report.skipped {
        ctx.printer.warn(&format!("{skipped:?}"));
    }
    ctx.printer.status(
        "Synced",
        &format!(
            "{} service(s), {} target(s) at etcd revision {} ({} file(s) written, {} removed)",
            report.services,
            report.targets,
            report.revision,
            report.written.len(),
            report.removed.len()
        ),
    );
    Ok(())
}

/// Where the project's agent runs, if it does: its container, or something answering
/// `/-/ready` at the agent's port (`monstack agent` on the host).
async fn running_agent(stack: &Stack) -> Option<String> {
    if let Ok(engine) = crate::stack::docker::Engine::connect().await {
        let container =
            crate::stack::containers::container_name(&stack.project, crate::model::AGENT);
        if let Ok(Some(state)) = engine.state(&container).await {
            if state.running {
                return Some(format!("container {container}"));
            }
        }
    }
    let agent = stack.agent.as_ref()?;
    let url = host_url(agent.bind, agent.port);
    let client = crate::clients::http_client().ok()?;
    let ready = crate::clients::is_ready(&client, crate::model::AGENT, &url).await;
    matches!(ready, Ok(true)).then(|| format!("answering at {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn flags_override_the_manifests_cluster_and_set_the_watch_idle_timeout() {
        let manifest = EtcdCluster {
            endpoints: vec!["https://10.0.0.11:2379".into()],
            tls: Some(EtcdTls {
                ca: Some("/m/ca.pem".into()),
                ..EtcdTls::default()
            }),
            username: Some("monstack".into()),
            password_file: Some("/m/password".into()),
        };
        let access = EtcdAccess {
            etcd_cert: Some("/f/cert.pem".into()),
            etcd_key: Some("/f/key.pem".into()),
            ..EtcdAccess::default()
        };
        let merged = with_flags(manifest.clone(), &["https://a:2379".into()], &access);
        assert_eq!(merged.endpoints, ["https://a:2379"]);
        let tls = merged.tls.unwrap();
        assert_eq!(tls.ca.as_deref(), Some(Path::new("/m/ca.pem")));
        assert_eq!(tls.cert.as_deref(), Some(Path::new("/f/cert.pem")));
        assert_eq!(merged.username.as_deref(), Some("monstack"));
        assert_eq!(
            with_flags(manifest.clone(), &[], &EtcdAccess::default()),
            manifest
        );

        let default = idle_timeout(&EtcdAccess::default(), ETCD_DEFAULT_PROGRESS).unwrap();
        assert_eq!(default, Duration::from_secs(20 * 60 + 15));
        let own = idle_timeout(&EtcdAccess::default(), OWN_ETCD_PROGRESS).unwrap();
        assert_eq!(own, Duration::from_secs(75));
        let given = EtcdAccess {
            etcd_progress_interval: Some("1s".into()),
            ..EtcdAccess::default()
        };
        assert_eq!(
            idle_timeout(&given, OWN_ETCD_PROGRESS).unwrap(),
            Duration::from_secs(17)
        );
        let bad = EtcdAccess {
            etcd_progress_interval: Some("soon".into()),
            ..EtcdAccess::default()
        };
        assert!(idle_timeout(&bad, OWN_ETCD_PROGRESS).is_err());
    }
}
