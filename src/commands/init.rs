//! `monstack init`: write a commented starter manifest, and the schema editors read.

use anyhow::Context as _;

use crate::cli::Lang;
use crate::error::{Error, Result};
use crate::files;
use crate::project::{detect_lang, manifest_dir, starter, Context};

pub fn run(ctx: &Context, lang: Option<Lang>, force: bool) -> Result<()> {
    let file = &ctx.file;
    if file.exists() && !force {
        return Err(Error::usage(
            format!("{} already exists", file.display()),
            Some("pass --force to overwrite it".into()),
        ));
    }
    let dir = manifest_dir(file)?;
    let both = dir.join("go.mod").is_file() && dir.join("Cargo.toml").is_file();
    if lang.is_none() && both {
        ctx.printer.note(
            "both go.mod and Cargo.toml here: starting with the Rust runtime dashboard (use --lang go for Go; add the other one with `monstack import-dashboard go-runtime`)",
        );
    }
    let lang = match lang.or_else(|| detect_lang(&dir)) {
        Some(lang) => lang,
        None => {
            ctx.printer.note("no go.mod or Cargo.toml here: starting with the Go runtime dashboard (use --lang rust for Rust)");
            Lang::Go
        }
    };
    files::write_atomic(file, starter(lang).as_bytes(), crate::files::MODE_PUBLIC)?;
    crate::render::write::write_schema(&dir.join(crate::layout::OUT_DIR))
        .context("writing the manifest's JSON Schema")?;
    ctx.printer.status(
        "Created",
        &format!(
            "{} ({} services)",
            file.display(),
            match lang {
                Lang::Go => "Go",
                Lang::Rust => "Rust",
            }
        ),
    );
    ctx.printer
        .note("next: edit the targets, then `monstack validate` and `monstack up`");
    Ok(())
}
