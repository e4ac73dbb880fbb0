//! `monstack down`: remove the stack's containers and network; data volumes stay unless
//! `--volumes`. Acts only on a project it can prove (see [`proven_project`]): a broken
//! manifest that names no project is refused rather than guessed from the directory, and
//! volumes another directory created are left alone unless `--project` names them.

use futures_util::future::join_all;

use crate::error::Result;
use crate::project::{proven_project, Context};
use crate::stack::containers;
use crate::stack::docker::Engine;

pub async fn run(ctx: &Context, volumes: bool, explicit: Option<&str>) -> Result<()> {
    let proven = proven_project(ctx, explicit)?;
    if let Some(note) = &proven.note {
        ctx.printer.note(note);
    }
    let project = proven.name.clone();
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
    let kept = engine.project_volumes_with_dirs(&project).await?;
    if volumes {
        let here = proven.root.as_ref().map(|r| r.display().to_string());
        for (volume, dir) in &kept {
            match (&here, dir) {
                (Some(here), Some(dir)) if dir != here => {
                    ctx.printer.warn(&format!(
                        "kept volume {volume}: it belongs to project {project} in {dir}, not to {here}; `monstack down --volumes --project {project}` removes it"
                    ));
                    continue;
                }
                _ => {}
            }
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
