//! `monstack agent` (the discovery bridge and the DingTalk relay in the foreground) and
//! `monstack sync` (one listing).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::agent::{self, AgentConfig, ConfigFile, DiscoveryConfig};
use crate::error::{Error, Result};
use crate::layout::OUT_DIR;
use crate::model::host_url;
use crate::model::{self, Stack};
use crate::project::{load, Context};

pub struct AgentArgs {
    pub etcd: Option<String>,
    pub prefix: Option<String>,
    pub targets_dir: Option<PathBuf>,
    pub listen: Option<String>,
    /// The agent's config file (DingTalk channels).
    pub config: Option<PathBuf>,
    pub keep_loopback: bool,
}

/// Discovery settings from the arguments, falling back to the manifest for what is missing.
fn discovery_config(
    ctx: &Context,
    etcd: Option<String>,
    prefix: Option<String>,
    targets_dir: Option<PathBuf>,
    config: Option<&PathBuf>,
) -> Result<(Option<DiscoveryConfig>, Option<Stack>)> {
    // With --config (as in the stack's container, which has no manifest) the options say
    // everything: discovery only with both --etcd and --targets-dir.
    if config.is_some() && (etcd.is_some() != targets_dir.is_some()) {
        return Err(Error::usage(
            "with --config, --etcd and --targets-dir go together",
            Some("pass both for discovery, or neither".to_string()),
        ));
    }
    if config.is_some() && etcd.is_none() {
        return Ok((None, None));
    }
    if let (Some(etcd_url), Some(targets_dir)) = (&etcd, &targets_dir) {
        let prefix = prefix.unwrap_or_else(|| crate::agent::discovery::DEFAULT_PREFIX.to_string());
        return Ok((
            Some(DiscoveryConfig {
                etcd_url: etcd_url.clone(),
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
    let etcd_url = match (etcd, &stack.etcd) {
        (Some(url), _) => url,
        (None, Some(svc)) => host_url(svc.bind, svc.port),
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
            etcd_url,
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
        args.etcd,
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
    let (discovery, _) = discovery_config(ctx, None, None, None, None)?;
    let Some(d) = discovery else {
        return Err(Error::usage(
            "the manifest has no `discovery.etcd`",
            Some("add `discovery: {etcd: {}}` (and `etcd: {}`)".to_string()),
        ));
    };
    let client = crate::clients::http_client()?;
    let etcd = crate::clients::etcd::Etcd::new(&client, &d.etcd_url);
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
