//! `monstack agent` (the discovery bridge in the foreground) and `monstack sync` (one listing).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::agent::{self, AgentConfig, DiscoveryConfig};
use crate::commands::render::OUT_DIR;
use crate::commands::{load, Context};
use crate::containers::host_url;
use crate::error::{Error, Result};
use crate::model::{self, Stack};

pub struct AgentArgs {
    pub etcd: Option<String>,
    pub prefix: Option<String>,
    pub targets_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

/// Discovery settings from the arguments, falling back to the manifest for what is missing.
fn discovery_config(
    ctx: &Context,
    etcd: Option<String>,
    prefix: Option<String>,
    targets_dir: Option<PathBuf>,
) -> Result<(Option<DiscoveryConfig>, Option<Stack>)> {
    // Inside the stack's container every setting is given: no manifest there.
    if let (Some(etcd_url), Some(targets_dir)) = (&etcd, &targets_dir) {
        let prefix = prefix.unwrap_or_else(|| crate::discovery::DEFAULT_PREFIX.to_string());
        return Ok((
            Some(DiscoveryConfig {
                etcd_url: etcd_url.clone(),
                prefix,
                targets_dir: targets_dir.clone(),
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
            .join(crate::render::prometheus::ETCD_TARGETS_DIR)
    });
    Ok((
        Some(DiscoveryConfig {
            etcd_url,
            prefix,
            targets_dir,
        }),
        Some(stack),
    ))
}

pub async fn run(ctx: &Context, args: AgentArgs) -> Result<()> {
    let (discovery, stack) = discovery_config(ctx, args.etcd, args.prefix, args.targets_dir)?;
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
    if discovery.is_none() {
        ctx.printer
            .note("no `discovery.etcd` in the manifest: the agent only serves its /metrics");
    }
    ctx.printer.status(
        "Agent",
        &format!("listening on http://{listen} (/metrics, /-/ready); Ctrl-C stops it"),
    );
    let shutdown = async {
        crate::commands::stop_signal().await;
    };
    agent::run(AgentConfig { listen, discovery }, shutdown).await?;
    Ok(())
}

pub async fn sync(ctx: &Context) -> Result<()> {
    let (discovery, _) = discovery_config(ctx, None, None, None)?;
    let Some(d) = discovery else {
        return Err(Error::usage(
            "the manifest has no `discovery.etcd`",
            Some("add `discovery: {etcd: {}}` (and `etcd: {}`)".to_string()),
        ));
    };
    let client = crate::api::http_client()?;
    let etcd = crate::etcd::Etcd::new(&client, &d.etcd_url);
    let report = crate::discovery::sync_once(&etcd, &d.prefix, &d.targets_dir).await?;
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
