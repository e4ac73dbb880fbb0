//! `monstack down`: remove the stack's containers and network; data volumes stay unless
//! `--volumes`. Works from the project name alone, so a broken manifest cannot block it.

use futures_util::future::join_all;

use crate::error::Result;
use crate::project::{project_name, Context};
use crate::stack::containers;
use crate::stack::docker::Engine;

pub async fn run(ctx: &Context, volumes: bool) -> Result<()> {
    let project = project_name(ctx)?;
    let engine = Engine::connect().await?;
    let found = engine.project_containers(&project).await?;
    let removals = join_all(found.iter().map(|c| engine.remove(&c.name))).await;
    for (container, result) in found.iter().zip(removals) {
        result?;
        ctx.printer.status("Removed", &container.name);
    }
    if engine
        .remove_network(&containers::network_name(&project))
        .await?
    {
        ctx.printer.status(
            "Removed",
            &format!("network {}", containers::network_name(&project)),
        );
    }
    let kept = engine.project_volumes(&project).await?;
    if volumes {
        for volume in &kept {
            engine.remove_volume(volume).await?;
            ctx.printer.status("Removed", &format!("volume {volume}"));
        }
    } else if !kept.is_empty() {
        ctx.printer.note(&format!(
            "kept {} data volume(s); `monstack down --volumes` removes them",
            kept.len()
        ));
    }
    if found.is_empty() && !volumes {
        ctx.printer.status(
            "Nothing",
            &format!("to remove: no containers of project {project}"),
        );
    }
    Ok(())
}
