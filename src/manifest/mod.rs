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
    let mut root = match yaml::parse(source.text) {
        Ok(node) => node,
        Err(e) => {
            r.error(
                e.pos,
                format!("invalid YAML: {}", e.message),
                Some("check the indentation and quoting on this line".to_string()),
            );
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

    use super::{project_from_dir, valid_project};

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
}
