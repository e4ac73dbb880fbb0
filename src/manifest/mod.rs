//! `monstack.yaml` -> validated [`Stack`].
//!
//! Steps: parse into a positioned tree, interpolate `${VAR}`s, read every section against the
//! [`spec`] (types, unknown keys), then cross-check (duplicates, references between sections,
//! ports). Every problem is collected and reported together with `file:line:col` and a hint;
//! nothing is returned unless the whole manifest is valid. This file holds the entry point and
//! what the whole manifest shares; the sections are read in `validate`.

pub mod diagnostics;
pub mod edit;
pub mod interpolate;
pub mod promql;
pub mod reader;
pub mod spec;
mod validate;
pub mod yaml;

use std::path::Path;

use diagnostics::Diagnostics;
use interpolate::{interpolate, InterpolationError, Lookup};
use reader::Reader;

use crate::model::Stack;
use yaml::{Node, Pos, Value};

use validate::read_stack;
pub use validate::{check_brackets, check_target_address, slug};

/// The default manifest file name.
pub const FILE_NAME: &str = "monstack.yaml";

/// Default images, pinned to current stable releases. Each is overridable in the manifest.
pub const PROMETHEUS_IMAGE: &str = "prom/prometheus:v3.5.0";
pub const GRAFANA_IMAGE: &str = "grafana/grafana:12.1.1";
pub const ETCD_IMAGE: &str = "quay.io/coreos/etcd:v3.5.21";
pub const ALERTMANAGER_IMAGE: &str = "prom/alertmanager:v0.28.1";
pub const PUSHGATEWAY_IMAGE: &str = "prom/pushgateway:v1.11.1";
pub const NODE_EXPORTER_IMAGE: &str = "prom/node-exporter:v1.9.1";
pub const BLACKBOX_IMAGE: &str = "prom/blackbox-exporter:v0.27.0";
/// The official image's newest 1.x release.
pub const INFLUXDB_IMAGE: &str = "influxdb:1.12.2";

/// Where a manifest came from: its text, the name to show in messages, and the directory
/// relative paths (dashboard files) and the default project name come from.
pub struct Source<'a> {
    pub text: &'a str,
    pub display_name: &'a str,
    pub root: &'a Path,
}

/// Parses and validates a manifest. `env` resolves `${VAR}`s.
pub fn load(source: &Source, env: Lookup) -> Result<Stack, Diagnostics> {
    let mut r = Reader {
        diagnostics: Diagnostics::new(source.display_name, source.text),
    };
    if source.text.trim_start_matches('\u{feff}').trim().is_empty() {
        // Most likely truncated by accident (`> monstack.yaml`); running the defaults instead
        // would bring up a stack nobody asked for. A file of comments alone is a choice.
        r.error(
            Pos {
                line: 1,
                col: 1,
                offset: 0,
            },
            format!("{} is empty", source.display_name),
            Some(
                "run `monstack init` to write a starter manifest (a manifest of only comments uses every default)"
                    .into(),
            ),
        );
        return Err(r.diagnostics);
    }
    let mut root = match yaml::parse(source.text) {
        Ok(node) => node,
        Err(e) => {
            let hint = e
                .hint
                .unwrap_or_else(|| "check the indentation and quoting on this line".to_string());
            r.error(e.pos, format!("invalid YAML: {}", e.message), Some(hint));
            return Err(r.diagnostics);
        }
    };
    interpolate_tree(&mut root, env, &mut r.diagnostics);
    let stack = if root.value == Value::Null {
        Some(read_empty(source, &mut r))
    } else {
        read_stack(&root, source, &mut r)
    };
    match stack {
        Some(stack) if r.diagnostics.is_empty() => Ok(stack),
        _ => Err(r.diagnostics.sorted()),
    }
}

fn interpolate_tree(node: &mut Node, env: Lookup, d: &mut Diagnostics) {
    match &mut node.value {
        Value::Scalar { text, .. } => {
            if !text.contains("${") {
                return;
            }
            match interpolate(text, env) {
                Ok(value) => *text = value,
                Err(InterpolationError::Unset(name)) => {
                    let var = name.split(' ').next().unwrap_or(&name).to_string();
                    d.poison(
                        node.pos,
                        format!("environment variable {name} is not set"),
                        Some(format!(
                            "export {var}=..., or give a default: ${{{var}:-default}}"
                        )),
                    );
                }
                Err(InterpolationError::Malformed(message)) => {
                    d.poison(
                        node.pos,
                        message,
                        Some("write `$${` for a literal `${`".into()),
                    );
                }
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|n| interpolate_tree(n, env, d)),
        Value::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, v)| interpolate_tree(v, env, d)),
        Value::Null => {}
    }
}

fn read_empty(source: &Source, r: &mut Reader) -> Stack {
    let empty = Node {
        pos: Pos {
            line: 1,
            col: 1,
            offset: 0,
        },
        value: Value::Map(vec![]),
    };
    read_stack(&empty, source, r).expect("an empty mapping is a valid manifest")
}

/// The most a manifest file may hold. A large real one is a few hundred KB.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// Why a file the user named was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A FIFO would block the read until someone writes, a device like `/dev/zero` never ends,
    /// a directory has no text: only regular files (or links to them) are read.
    #[error("it is {0}, not a regular file")]
    NotAFile(&'static str),
    #[error("it holds more than {} MiB, the most it may", .0 >> 20)]
    TooLarge(u64),
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads a file the user named (a manifest, a dashboard) with a size limit. What it is is
/// checked before it is opened, and again on the opened file (it may have been swapped in
/// between); the open does not wait for a FIFO's writer.
pub fn read_input(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;

    check_regular(&std::fs::metadata(path)?, limit)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    check_regular(&file.metadata()?, limit)?;
    let mut bytes = Vec::new();
    // A file that grows while it is read is still cut off at the limit.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

fn check_regular(metadata: &std::fs::Metadata, limit: u64) -> Result<(), ReadError> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return if metadata.len() > limit {
            Err(ReadError::TooLarge(limit))
        } else {
            Ok(())
        };
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Err(ReadError::NotAFile("a named pipe (FIFO)"));
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Err(ReadError::NotAFile("a device"));
        }
        if kind.is_socket() {
            return Err(ReadError::NotAFile("a socket"));
        }
    }
    Err(ReadError::NotAFile(if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }))
}

/// A manifest's bytes as text: UTF-8, or a problem at the line and column of the first byte
/// that is not (the rest of the file is shown with that byte replaced).
pub fn decode(bytes: Vec<u8>, display_name: &str) -> Result<String, Diagnostics> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        let prefix = std::str::from_utf8(&bytes[..valid]).expect("valid up to here");
        let mut d = Diagnostics::new(display_name, String::from_utf8_lossy(&bytes));
        d.error(
            yaml::pos_at(prefix, valid),
            format!(
                "{display_name} is not UTF-8 text: byte 0x{:02X} cannot be read",
                bytes[valid]
            ),
            Some("save the file as UTF-8".into()),
        );
        d
    })
}

/// The project name from the directory: lower-cased, anything Docker rejects replaced by `-`.
pub fn project_from_dir(root: &Path) -> String {
    let name = root
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_lowercase();
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches(|c| c == '-' || c == '_').to_string()
}

pub fn valid_project(name: &str) -> bool {
    name.len() <= 48
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::project_from_dir;
    use super::{decode, load, read_input, valid_project, ReadError, Source};

    #[test]
    fn the_project_name_from_a_directory_is_what_docker_accepts() {
        for (dir, want) in [
            ("/home/me/shop", "shop"),
            ("/home/me/My Project", "my-project"),
            ("/srv/web.app", "web-app"),
            ("/srv/_stack-", "stack"),
            ("/srv/Ünïcode", "n-code"),
            ("/", ""),
        ] {
            assert_eq!(project_from_dir(Path::new(dir)), want, "{dir}");
        }
    }

    #[test]
    fn project_names_are_lower_case_and_at_most_48_characters() {
        let longest = "p".repeat(48);
        for name in ["shop", "9to5", "a_b-c", &longest] {
            assert!(valid_project(name), "{name}");
        }
        let too_long = "p".repeat(49);
        for name in ["", "-a", "_a", "Shop", "a.b", "a b", &too_long] {
            assert!(!valid_project(name), "{name}");
        }
    }

    fn load_text(text: &str) -> Result<crate::model::Stack, super::Diagnostics> {
        let source = Source {
            text,
            display_name: "monstack.yaml",
            root: Path::new("/srv/shop"),
        };
        load(&source, &|_| None)
    }

    #[test]
    fn an_empty_manifest_is_refused_and_one_of_comments_uses_the_defaults() {
        for text in ["", "   \n\n\t\n", "\u{feff}", "\u{feff}\n  \n"] {
            let d = load_text(text).unwrap_err();
            assert_eq!(
                d.headlines(),
                ["monstack.yaml:1:1: monstack.yaml is empty"],
                "{text:?}"
            );
            assert!(d.to_string().contains("monstack init"));
        }
        assert_eq!(load_text("# all defaults\n").unwrap().project, "shop");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_an_error_at_their_line_and_column() {
        let d = decode(
            b"project: shop\n\nbind: \"\xff\"\n".to_vec(),
            "monstack.yaml",
        )
        .unwrap_err();
        assert_eq!(
            d.headlines(),
            ["monstack.yaml:3:8: monstack.yaml is not UTF-8 text: byte 0xFF cannot be read"]
        );
        // Latin-1 `é` after UTF-8 `ü` on the same line: the column counts characters.
        let d = decode(b"a: \xc3\xbc \xe9\n".to_vec(), "m.yaml").unwrap_err();
        assert_eq!(d.items[0].pos.line, 1);
        assert_eq!(d.items[0].pos.col, 6);
        assert_eq!(decode(b"a: 1\n".to_vec(), "m.yaml").unwrap(), "a: 1\n");
    }

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.yaml");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        for (path, kind) in [
            (fifo.as_path(), "a named pipe (FIFO)"),
            (dir.path(), "a directory"),
            (Path::new("/dev/zero"), "a device"),
        ] {
            match read_input(path, 1024) {
                Err(ReadError::NotAFile(k)) => assert_eq!(k, kind),
                other => panic!("{}: {other:?}", path.display()),
            }
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let file = dir.path().join("m.yaml");
        std::fs::write(&file, "x".repeat(2048)).unwrap();
        let error = read_input(&file, 1024).unwrap_err();
        assert!(matches!(error, ReadError::TooLarge(1024)), "{error:?}");
        assert_eq!(read_input(&file, 2048).unwrap().len(), 2048);
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_input(&link, 4096).unwrap().len(), 2048);
        assert!(read_input(&dir.path().join("none"), 1)
            .unwrap_err()
            .is_not_found());
        assert_eq!(
            ReadError::NotAFile("a directory").to_string(),
            "it is a directory, not a regular file"
        );
        assert_eq!(
            ReadError::TooLarge(16 << 20).to_string(),
            "it holds more than 16 MiB, the most it may"
        );
    }
}
