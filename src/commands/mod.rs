//! One file per subcommand, glue only. This module turns the parsed command line into work and
//! holds what several commands share: finding and loading the manifest.

mod init;
mod render;
mod validate;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;

use crate::cli::{Cli, Command, Lang};
use crate::error::{Error, Result};
use crate::manifest::{self, Source};
use crate::model::Stack;
use crate::output::Printer;

/// The starter manifest `init` writes and `render` uses when there is none.
pub const STARTER: &str = include_str!("../../assets/monstack.yaml");

/// Settings every command gets, free of clap types.
pub struct Context {
    /// The manifest path as the user gave it, or `monstack.yaml`.
    pub file: PathBuf,
    /// Whether the user named the file (`-f`): then a missing file is an error.
    pub file_explicit: bool,
    pub printer: Printer,
}

pub fn run(cli: Cli) -> Result<()> {
    let printer = Printer::new(cli.quiet, cli.color);
    let ctx = Context {
        file_explicit: cli.file.is_some(),
        file: cli
            .file
            .unwrap_or_else(|| PathBuf::from(manifest::FILE_NAME)),
        printer,
    };
    match cli.command {
        Command::Init { lang, force } => init::run(&ctx, lang, force),
        Command::Validate => validate::run(&ctx),
        Command::Render => render::run(&ctx),
        Command::Schema => {
            let schema = manifest::spec::json_schema(&crate::dashboards::bundled_names());
            let text = serde_json::to_string_pretty(&schema).context("printing the schema")?;
            ctx.printer.result(&text, true);
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "monstack",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// The starter manifest for a language.
pub fn starter(lang: Lang) -> String {
    let (name, dashboard) = match lang {
        Lang::Go => ("go", "go-runtime"),
        Lang::Rust => ("rust", "rust-runtime"),
    };
    STARTER
        .replace("__LANG__", name)
        .replace("__DASHBOARD__", dashboard)
}

/// Guesses the language of the project in `dir` from its build files.
pub fn detect_lang(dir: &Path) -> Option<Lang> {
    if dir.join("Cargo.toml").is_file() {
        Some(Lang::Rust)
    } else if dir.join("go.mod").is_file() {
        Some(Lang::Go)
    } else {
        None
    }
}

/// The directory a manifest path lives in, absolute.
fn manifest_dir(file: &Path) -> Result<PathBuf> {
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(parent).map_err(|e| {
        Error::usage(
            format!("cannot use the directory of {}: {e}", file.display()),
            None,
        )
    })
}

/// Reads and validates the manifest. Without one (and without `-f`), the built-in starter is
/// used, and the user is told so.
pub fn load(ctx: &Context) -> Result<Stack> {
    let display = ctx.file.display().to_string();
    let text = match std::fs::read_to_string(&ctx.file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ctx.file_explicit => {
            let root = manifest_dir(&ctx.file)?;
            let lang = detect_lang(&root).unwrap_or(Lang::Go);
            ctx.printer.note(&format!(
                "no {display} here: using the built-in starter manifest (run `monstack init` to get an editable copy)"
            ));
            let text = starter(lang);
            let env = |name: &str| std::env::var(name).ok();
            let source = Source {
                text: &text,
                display_name: "<built-in starter manifest>",
                root: &root,
            };
            return manifest::load(&source, &env).map_err(Error::Manifest);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::usage(
                format!("{display} does not exist"),
                Some("check the path, or run `monstack init` to create one".into()),
            ));
        }
        Err(e) => return Err(Error::usage(format!("cannot read {display}: {e}"), None)),
    };
    let root = manifest_dir(&ctx.file)?;
    let env = |name: &str| std::env::var(name).ok();
    let source = Source {
        text: &text,
        display_name: &display,
        root: &root,
    };
    manifest::load(&source, &env).map_err(Error::Manifest)
}

/// Writes `.monstack/monstack.schema.json` (what the manifest's first line points editors at)
/// and `.monstack/.gitignore`.
pub fn write_schema(out: &Path) -> anyhow::Result<()> {
    let schema = manifest::spec::json_schema(&crate::dashboards::bundled_names());
    let mut text = serde_json::to_string_pretty(&schema)?;
    text.push('\n');
    crate::fsutil::write_atomic(
        &out.join(crate::fsutil::SCHEMA_FILE),
        text.as_bytes(),
        crate::fsutil::MODE_PUBLIC,
    )?;
    crate::fsutil::write_atomic(
        &out.join(".gitignore"),
        crate::render::GITIGNORE.as_bytes(),
        crate::fsutil::MODE_PUBLIC,
    )
}
