//! `monstack render`: write the generated tree into `.monstack/` next to the manifest.

use anyhow::Context as _;

use crate::error::Result;
use crate::project::{load, Context};
use crate::render;

/// The directory everything generated lives in, next to the manifest.
use crate::layout::OUT_DIR;

pub fn run(ctx: &Context) -> Result<()> {
    let mut stack = load(ctx)?;
    crate::stack::secrets::resolve_influxdb_password(&mut stack, true)?;
    let tree = render::render(&stack).context("rendering the stack's files")?;
    let out = stack.root.join(OUT_DIR);
    let report = crate::render::write::write_tree(&out, &tree)?;
    crate::render::write::write_schema(&out).context("writing the manifest's JSON Schema")?;
    let shown = out
        .strip_prefix(std::env::current_dir().unwrap_or_default())
        .unwrap_or(&out)
        .display()
        .to_string();
    let mut parts = vec![format!("{} files", tree.files.len())];
    parts.push(format!("{} changed", report.written.len()));
    if !report.removed.is_empty() {
        parts.push(format!("{} stale removed", report.removed.len()));
    }
    ctx.printer
        .status("Rendered", &format!("{shown}/ ({})", parts.join(", ")));
    Ok(())
}
