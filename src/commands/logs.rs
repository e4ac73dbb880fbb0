//! `monstack logs`: the services' output, each line prefixed by its service like compose does.

use futures_util::stream::{select_all, StreamExt};

use crate::error::{Error, Result};
use crate::project::{project_name, Context};
use crate::stack::containers::SERVICES;
use crate::stack::docker::Engine;

pub async fn run(
    ctx: &Context,
    services: &[String],
    follow: bool,
    tail: Option<usize>,
) -> Result<()> {
    for service in services {
        if !SERVICES.contains(&service.as_str()) {
            let hint = match crate::manifest::diagnostics::closest(service, SERVICES) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("services: {}", SERVICES.join(", ")),
            };
            return Err(Error::usage(
                format!("unknown service `{service}`"),
                Some(hint),
            ));
        }
    }
    let project = project_name(ctx)?;
    let engine = Engine::connect().await?;
    let running = engine.project_containers(&project).await?;
    let chosen: Vec<_> = running
        .iter()
        .filter(|c| services.is_empty() || services.contains(&c.service))
        .collect();
    if chosen.is_empty() {
        return Err(Error::usage(
            format!("no containers of project {project} to show"),
            Some("start the stack with `monstack up`".to_string()),
        ));
    }
    let width = chosen.iter().map(|c| c.service.len()).max().unwrap_or(0);
    let streams = chosen.iter().map(|c| {
        let prefix = format!("{:<width$} | ", c.service);
        engine
            .logs(&c.name, follow, tail)
            .map(move |line| line.map(|l| format!("{prefix}{l}")))
            .boxed()
    });
    let mut merged = select_all(streams);
    while let Some(line) = merged.next().await {
        ctx.printer.result(&line?, true);
    }
    Ok(())
}
