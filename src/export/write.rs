//! Writing an export to its directory: atomically per file, Secrets readable by the owner
//! alone, and only into a directory that is empty or an earlier export (its
//! `kustomization.yaml` starts with [`HEADER`]), whose files no longer exported are removed.

use std::fs;
use std::path::Path;

use anyhow::Context;

use super::{Export, HEADER, KUSTOMIZATION};
use crate::files::{write_atomic, MODE_PRIVATE, MODE_PUBLIC};

/// What [`write_dir`] changed, as file names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

/// Why a directory is not one to write into; `None` when it is.
pub fn refusal(dir: &Path) -> Option<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return None;
    };
    if entries.count() == 0 {
        return None;
    }
    match fs::read_to_string(dir.join(KUSTOMIZATION)) {
        Ok(text) if text.starts_with(HEADER) => None,
        Ok(_) => Some(format!(
            "{} has a kustomization.yaml that monstack did not write",
            dir.display()
        )),
        Err(_) => Some(format!(
            "{} is not empty and holds no earlier export",
            dir.display()
        )),
    }
}

pub fn write_dir(dir: &Path, export: &Export) -> anyhow::Result<WriteReport> {
    if let Some(reason) = refusal(dir) {
        anyhow::bail!("{reason}");
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut report = WriteReport::default();
    for file in &export.files {
        let path = dir.join(&file.path);
        let mode = if file.secret {
            MODE_PRIVATE
        } else {
            MODE_PUBLIC
        };
        let unchanged = fs::read(&path).is_ok_and(|old| old == file.contents.as_bytes())
            && crate::files::mode_of(&path) == mode;
        if !unchanged {
            write_atomic(&path, file.contents.as_bytes(), mode)?;
            report.written.push(file.path.clone());
        }
    }
    // The directory is ours: every other YAML file in it is from an earlier export.
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = export.files.iter().any(|f| f.path == name);
        if !ours && name.ends_with(".yaml") && entry.file_type().is_ok_and(|t| t.is_file()) {
            fs::remove_file(entry.path())
                .with_context(|| format!("removing stale {}", entry.path().display()))?;
            report.removed.push(name);
        }
    }
    report.removed.sort();
    Ok(report)
}
