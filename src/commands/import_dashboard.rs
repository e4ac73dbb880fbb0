//! `monstack import-dashboard` and `monstack dashboards`: bring a Grafana dashboard into the
//! stack (see [`crate::project::import`]), and list what the stack has.

use crate::dashboards;
use crate::error::Result;
use crate::project::import::{self, title_of, uid_of, Import};
use crate::project::{load, Context};

pub async fn run(ctx: &Context, args: Import) -> Result<()> {
    import::run(ctx, args).await
}

pub fn list(ctx: &Context) -> Result<()> {
    let bundled: Vec<Vec<String>> = dashboards::bundled_names()
        .into_iter()
        .filter_map(|name| {
            let json = dashboards::bundled(name)?;
            Some(vec![
                name.to_string(),
                title_of(&json).to_string(),
                uid_of(&json).to_string(),
            ])
        })
        .collect();
    ctx.printer
        .result("Bundled (monstack import-dashboard NAME):", false);
    ctx.printer.table(&["NAME", "TITLE", "UID"], &bundled);
    let stack = load(ctx)?;
    let rows: Vec<Vec<String>> = stack
        .dashboards
        .iter()
        .map(|d| {
            vec![
                d.source.to_string(),
                d.folder.clone().unwrap_or_else(|| "General".into()),
                uid_of(&d.json).to_string(),
                title_of(&d.json).to_string(),
            ]
        })
        .collect();
    ctx.printer.result("", false);
    ctx.printer
        .result(&format!("In {}:", ctx.file.display()), false);
    if rows.is_empty() {
        ctx.printer.result("(none)", false);
    } else {
        ctx.printer
            .table(&["SOURCE", "FOLDER", "UID", "TITLE"], &rows);
    }
    Ok(())
}
