//! The project on disk: which manifest a command works on, its directory, loading it (the
//! built-in starter when there is none), the project's name, and the schema written beside it.

use std::path::{Path, PathBuf};

use crate::cli::Lang;
use crate::error::{Error, Result};
use crate::manifest::{self, Source};
use crate::model::Stack;
use crate::output::Printer;

pub mod edit;
pub mod import;
pub mod lock;
pub mod register;
pub mod targets;

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

/// Validates manifest text meant for `ctx.file` (an edited manifest, before it is written).
pub fn load_text(ctx: &Context, text: &str) -> Result<Stack> {
    let root = manifest_dir(&ctx.file)?;
    let display = ctx.file.display().to_string();
    let env = |name: &str| std::env::var(name).ok();
    let source = Source {
        text,
        display_name: &display,
        root: &root,
    };
    load_source(&source, &env, &ctx.printer)
}

/// The manifest's text for commands that edit it; a missing file is an input error pointing at
/// `init` (`kept`: what the manifest holds for this command, for the hint). Read as
/// [`load`] reads it: a regular file, within the size limit, UTF-8.
pub fn read_manifest_text(ctx: &Context, kept: &str) -> Result<String> {
    let display = ctx.file.display().to_string();
    match manifest::read_input(&ctx.file, manifest::MAX_MANIFEST_BYTES) {
        Ok(bytes) => manifest::decode(bytes, &display).map_err(Error::Manifest),
        Err(e) if e.is_not_found() => Err(Error::usage(
            format!("{display} does not exist"),
            Some(format!("run `monstack init` first; {kept}")),
        )),
        Err(e) => Err(Error::usage(
            format!("cannot read {display}: {e}"),
            Some("give the path of the manifest, a YAML file".to_string()),
        )),
    }
}

/// The project name for commands that only read (`logs`): the manifest's when it loads, else
/// its `project:` key, else the directory's name.
pub fn project_name(ctx: &Context) -> Result<String> {
    match load_quiet(ctx) {
        Ok(stack) => Ok(stack.project),
        Err(_) => {
            let root = manifest_dir(&ctx.file)?;
            let from_key = manifest::read_input(&ctx.file, manifest::MAX_MANIFEST_BYTES)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| project_key(&text));
            Ok(from_key.unwrap_or_else(|| manifest::project_from_dir(&root)))
        }
    }
}

/// The project a destructive command (`down`) may act on, and how it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenProject {
    pub name: String,
    /// The manifest's directory, which owns the project's volumes; `None` when the user named
    /// the project with `--project` (then volumes of any directory are its own).
    pub root: Option<PathBuf>,
    /// Why this is the project, for the user: `None` when the manifest loaded.
    pub note: Option<String>,
}

/// Proves which project `down` acts on, never guessing: `--project NAME`; else the manifest
/// when it loads (the built-in starter where there is none); else the `project:` key of a
/// manifest that fails validation, read tolerantly. A broken manifest that names no project is
/// refused (exit 2): falling back to the directory's name once took down another project.
pub fn proven_project(ctx: &Context, explicit: Option<&str>) -> Result<ProvenProject> {
    if let Some(name) = explicit {
        if !manifest::valid_project(name) {
            return Err(Error::usage(
                format!("`{name}` is not a project name"),
                Some("project names are lowercase letters, digits, `-` and `_`".to_string()),
            ));
        }
        return Ok(ProvenProject {
            name: name.to_string(),
            root: None,
            note: None,
        });
    }
    let root = manifest_dir(&ctx.file)?;
    let error = match load_quiet(ctx) {
        Ok(stack) => {
            return Ok(ProvenProject {
                name: stack.project,
                root: Some(root),
                note: None,
            })
        }
        Err(error) => error,
    };
    let from_key = manifest::read_input(&ctx.file, manifest::MAX_MANIFEST_BYTES)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| project_key(&text));
    match from_key {
        Some(name) if manifest::valid_project(&name) => Ok(ProvenProject {
            note: Some(format!(
                "{} does not load ({}); acting on its `project: {name}`",
                ctx.file.display(),
                first_line(&error)
            )),
            name,
            root: Some(root),
        }),
        _ => Err(Error::usage(
            format!(
                "cannot tell which project to act on: {} does not load and names no project",
                ctx.file.display()
            ),
            Some(
                "fix the manifest (`monstack validate` shows where), or name the project: `--project NAME`"
                    .to_string(),
            ),
        )),
    }
}

fn first_line(error: &Error) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The top-level `project:` of a manifest that may not even parse: from the YAML tree when it
/// parses, else from a `project: NAME` line at column 0.
pub fn project_key(text: &str) -> Option<String> {
    if let Ok(node) = manifest::yaml::parse(text) {
        if let manifest::yaml::Value::Map(entries) = node.value {
            return entries
                .iter()
                .find(|(k, _)| manifest::reader::scalar_text(k) == Some("project"))
                .and_then(|(_, v)| manifest::reader::scalar_text(v).map(str::to_string));
        }
        return None;
    }
    text.lines().find_map(|line| {
        let value = line.strip_prefix("project:")?;
        let value = value.split(" #").next().unwrap_or(value).trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// [`load`] without the "using the built-in starter" note.
fn load_quiet(ctx: &Context) -> Result<Stack> {
    let quiet = Context {
        file: ctx.file.clone(),
        file_explicit: ctx.file_explicit,
        printer: Printer::new(true, crate::output::ColorChoice::Never),
    };
    load(&quiet)
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
pub fn manifest_dir(file: &Path) -> Result<PathBuf> {
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
    let text = match manifest::read_input(&ctx.file, manifest::MAX_MANIFEST_BYTES) {
        Ok(bytes) => manifest::decode(bytes, &display).map_err(Error::Manifest)?,
        Err(e) if e.is_not_found() && !ctx.file_explicit => {
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
            let mut stack = load_source(&source, &env, &ctx.printer)?;
            stack.starter = true;
            return Ok(stack);
        }
        Err(e) if e.is_not_found() => {
            return Err(Error::usage(
                format!("{display} does not exist"),
                Some("check the path, or run `monstack init` to create one".into()),
            ));
        }
        Err(e) => {
            return Err(Error::usage(
                format!("cannot read {display}: {e}"),
                Some("give the path of the manifest, a YAML file".to_string()),
            ))
        }
    };
    let root = manifest_dir(&ctx.file)?;
    let env = |name: &str| std::env::var(name).ok();
    let source = Source {
        text: &text,
        display_name: &display,
        root: &root,
    };
    load_source(&source, &env, &ctx.printer)
}

impl Context {
    /// Takes the project's lock (see [`lock`]) for a command that changes the project.
    pub fn lock(&self) -> Result<lock::ProjectLock> {
        let root = manifest_dir(&self.file)?;
        lock::acquire(&root, lock::timeout_from_env()?, &self.printer)
    }
}

/// Loads a manifest and registers the secrets it holds for redaction, so no message printed
/// from here on shows them.
fn load_source(
    source: &Source,
    env: manifest::interpolate::Lookup,
    printer: &Printer,
) -> Result<Stack> {
    let mut stack = manifest::load(source, env).map_err(Error::Manifest)?;
    // A generated InfluxDB password, when one was generated before (`render` and `up` make it).
    crate::stack::secrets::resolve_influxdb_password(&mut stack, false)?;
    for warning in &stack.warnings {
        printer.warn(warning);
    }
    for secret in stack.secrets() {
        crate::output::redact::register(secret);
    }
    Ok(stack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_key_is_read_from_a_manifest_that_does_not_parse() {
        assert_eq!(
            project_key("project: shop\ntargets: [\n").as_deref(),
            Some("shop")
        );
        assert_eq!(
            project_key("project: \"shop\"  # ours\n: :\n").as_deref(),
            Some("shop")
        );
        assert_eq!(project_key("project: shop\n").as_deref(), Some("shop"));
        assert_eq!(project_key("targets: [\n"), None);
        assert_eq!(project_key("other:\n  project: nested\ntargets: [\n"), None);
        assert_eq!(project_key("- project: x\n"), None);
    }
}
