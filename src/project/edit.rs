//! One change to the project by an editing command (add-target, remove-target,
//! import-dashboard): the edited manifest is validated and rendered before anything is
//! written, then the manifest and the rendered tree are written; when anything after that
//! fails (writing `.monstack/`, reloading Prometheus), the manifest is put back byte-identical
//! and the tree rendered from it again. Nothing is half-applied.

use anyhow::Context as _;

use crate::error::Result;
use crate::files;
use crate::layout::OUT_DIR;
use crate::model::Stack;
use crate::project::{load_text, Context};
use crate::render::{self, write::WriteReport, Tree};

/// A written edit that is undone on drop unless [`Written::keep`] is called.
pub struct Written<'a> {
    ctx: &'a Context,
    old_text: String,
    mode: u32,
    kept: bool,
    stack: Option<Stack>,
    pub tree: Tree,
    pub report: WriteReport,
}

/// Validates and renders `text` (the edited manifest), then writes it and the tree. On a
/// failure here, what was written is undone before returning.
pub fn write<'a>(ctx: &'a Context, old_text: &str, text: &str) -> Result<Written<'a>> {
    let stack = load_text(ctx, text)?;
    let tree = render::render(&stack).context("rendering the stack's files")?;
    let mode = files::mode_of(&ctx.file);
    let mut written = Written {
        ctx,
        old_text: old_text.to_string(),
        mode,
        kept: false,
        report: WriteReport::default(),
        tree,
        stack: Some(stack),
    };
    if text != old_text {
        files::write_atomic(&ctx.file, text.as_bytes(), mode)?;
    }
    // On an error, `written` drops here and puts the old manifest and tree back.
    let out_dir = written.stack().root.join(OUT_DIR);
    written.report = render::write::write_tree(&out_dir, &written.tree)?;
    Ok(written)
}

impl Written<'_> {
    /// The stack of the edited manifest.
    pub fn stack(&self) -> &Stack {
        self.stack.as_ref().expect("present until kept")
    }

    /// The change stands.
    pub fn keep(mut self) -> Stack {
        self.kept = true;
        self.stack.take().expect("present until kept")
    }
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let path = &self.ctx.file;
        if std::fs::read(path).is_ok_and(|now| now != self.old_text.as_bytes()) {
            if let Err(e) = files::write_atomic(path, self.old_text.as_bytes(), self.mode) {
                self.ctx.printer.warn(&format!(
                    "putting {} back failed: {e:#}; it holds the edit",
                    path.display()
                ));
                return;
            }
        }
        // The tree of the old manifest, so `.monstack/` matches it again.
        let restored = load_text(self.ctx, &self.old_text).ok().and_then(|old| {
            let tree = render::render(&old).ok()?;
            render::write::write_tree(&old.root.join(OUT_DIR), &tree).ok()
        });
        if restored.is_none() {
            self.ctx
                .printer
                .warn("the rendered files could not be put back; `monstack render` rewrites them");
        }
    }
}
