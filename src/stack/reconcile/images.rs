//! Images before anything changes: the agent's, built from this executable, and the
//! services', pulled by the pull policy.

use anyhow::{anyhow, Context as _};

use crate::cli::PullPolicy;
use crate::error::{Error, Result};
use crate::model::Stack;
use crate::output::{Printer, Progress, PullBars};
use crate::stack::containers::ContainerSpec;
use crate::stack::docker::Engine;
use crate::stack::plan::Action;

/// The agent's image, built from this executable when missing. `None` when the stack needs no
/// agent, or when this executable cannot run in a Linux container (then the user is told to
/// run `monstack agent` on the host).
pub async fn prepare_agent_image(
    engine: &Engine,
    stack: &Stack,
    printer: &Printer,
) -> Result<Option<String>> {
    if stack.agent.is_none() {
        return Ok(None);
    }
    if let Some(reason) = crate::stack::agent_image::unsupported_reason() {
        printer.note(&format!("{reason}: the agent does not run in the stack; run `monstack agent` on this machine (it reads this manifest)"));
        return Ok(None);
    }
    let exe = std::env::current_exe().context("finding the monstack executable")?;
    // A cheap identity of the executable (no need to read it on every `up`).
    let meta = std::fs::metadata(&exe).with_context(|| format!("reading {}", exe.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let identity = format!("{}:{}:{modified}", exe.display(), meta.len());
    let tag = crate::stack::agent_image::tag(identity.as_bytes());
    if !engine.image_exists(&tag).await? {
        printer.status(
            "Building",
            &format!("the agent image {tag} from {}", exe.display()),
        );
        let context = crate::stack::agent_image::build_context(&exe)?;
        let mut lines = Vec::new();
        engine
            .build_image(context, &tag, &mut |line| lines.push(line.to_string()))
            .await
            .map_err(|e| anyhow!("{e:#}\n  builder output:\n    {}", lines.join("\n    ")))?;
    }
    Ok(Some(tag))
}

pub async fn ensure_images(
    engine: &Engine,
    specs: &[ContainerSpec],
    actions: &[Action],
    policy: PullPolicy,
    progress: &Progress,
    starter: bool,
) -> Result<()> {
    let mut needed: Vec<&str> = Vec::new();
    for spec in specs {
        let creates = actions.iter().any(|a| a.needs_port() == Some(spec.service));
        if (creates || policy == PullPolicy::Always) && !needed.contains(&spec.image.as_str()) {
            needed.push(&spec.image);
        }
    }
    let bars = PullBars::new(progress);
    for image in needed {
        let present = engine.image_exists(image).await?;
        match policy {
            PullPolicy::Never if !present => {
                return Err(Error::usage(
                    format!("image {image} is not on this machine and --pull never was given"),
                    Some("pull or build it, or run with --pull missing".to_string()),
                ))
            }
            PullPolicy::Missing if present => continue,
            PullPolicy::Never => continue,
            _ => {}
        }
        progress.line(&format!("pulling {image}"));
        engine.pull(image, &bars).await.map_err(|e| {
            let hint = if starter {
                "the built-in starter manifest pins these images: check the network (or a registry mirror); `monstack init` writes an editable monstack.yaml whose `<service>.image` can name another; nothing was changed"
            } else {
                "check the image names in the manifest (`<service>.image`) and the network; nothing was changed"
            };
            crate::error::hinted(e, hint)
        })?;
    }
    Ok(())
}
