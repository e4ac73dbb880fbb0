//! One service's action carried out on the engine, and the host identity containers get.

use super::reload::reload;
use crate::model::Stack;
use crate::render::Tree;
use crate::stack::containers::ContainerSpec;
use crate::stack::docker::Engine;
use crate::stack::plan::{Action, Observed};

/// Carries out one service's action. Returns the (container id, config hash) to remember
/// after a reload.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    engine: &Engine,
    client: &reqwest::Client,
    stack: &Stack,
    tree: &Tree,
    spec: &ContainerSpec,
    current: Option<&Observed>,
    action: &Action,
    stored_password: &Option<String>,
) -> anyhow::Result<Option<(String, String)>> {
    match action {
        Action::Create { .. } => {
            engine.create(spec, &stack.project).await?;
            engine.start(&spec.name).await?;
        }
        Action::Recreate { .. } => {
            engine.remove(&spec.name).await?;
            engine.create(spec, &stack.project).await?;
            engine.start(&spec.name).await?;
        }
        Action::Start { .. } => {
            if !engine.start_existing(&spec.name).await? {
                // Listed a moment ago, gone now: made afresh, as a missing one would be.
                engine.create(spec, &stack.project).await?;
                engine.start(&spec.name).await?;
                return Ok(None);
            }
            if let Some(current) = current {
                return Ok(Some((current.id.clone(), spec.config_hash.clone())));
            }
        }
        Action::Reload { .. } => {
            reload(engine, client, stack, tree, spec, stored_password).await?;
            if let Some(current) = current {
                return Ok(Some((current.id.clone(), spec.config_hash.clone())));
            }
        }
        Action::Keep { .. } | Action::Remove { .. } => {}
    }
    Ok(None)
}

/// `uid:gid` of the user running monstack.
pub fn host_user() -> (u32, u32) {
    #[cfg(unix)]
    {
        // SAFETY: geteuid/getegid have no preconditions and cannot fail.
        unsafe { (libc::geteuid(), libc::getegid()) }
    }
    #[cfg(not(unix))]
    {
        (0, 0)
    }
}

/// The group owning the rendered secret files: ours.
pub fn secret_gid() -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: getegid has no preconditions and cannot fail.
        unsafe { libc::getegid() }
    }
    #[cfg(not(unix))]
    {
        0
    }
}
