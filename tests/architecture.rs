//! The folders are the stages of the data path (README, "Architecture"), and this keeps it so:
//! it reads every `crate::...` path in `src/` (test code aside) and fails when a module reaches
//! into a later stage, when files import each other in a circle, when anything but a command
//! imports `commands`, or when a file grows past the size a reader takes in at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stages in data-path order; a module may use its own stage and earlier ones only. The
/// longest matching prefix decides a module's stage.
const STAGES: &[(&str, u32)] = &[
    // Leaves everything may use.
    ("files", 0),
    ("logging", 7),
    // The agent's config file schema: render writes it, the agent reads it.
    ("agent::config", 7),
    ("model", 1),
    ("layout", 2),
    ("dashboards", 3),
    ("manifest", 4),
    ("error", 5),
    ("output", 6),
    ("cli", 7),
    ("render", 8),
    // Reads the validated model and render's output; only commands use it.
    ("export", 9),
    ("signal", 9),
    ("project", 13),
    ("clients", 10),
    ("agent", 11),
    ("stack", 12),
    ("commands", 14),
    ("lib", 15),
    ("main", 15),
];

/// Code lines (not blank, not comments, tests aside) a source file may hold.
const MAX_CODE_LINES: usize = 600;

fn stage_of(module: &str) -> u32 {
    STAGES
        .iter()
        .filter(|(prefix, _)| module == *prefix || module.starts_with(&format!("{prefix}::")))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, stage)| *stage)
        .unwrap_or_else(|| panic!("module {module} has no stage in tests/architecture.rs"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/stack/docker.rs` -> `stack::docker`, `src/agent/mod.rs` -> `agent`.
fn module_name(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Modules that exist only for tests (`#[cfg(test)] mod x;` in their parent).
fn test_only_modules(src: &Path, files: &[PathBuf]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in files {
        let module = module_name(src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let mut cfg_test = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("#[cfg(test)]") {
                cfg_test = true;
                continue;
            }
            if cfg_test {
                let item = line
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub ");
                if let Some(name) = item.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                    let parent = if module == "lib" || module == "main" {
                        String::new()
                    } else {
                        format!("{module}::")
                    };
                    out.insert(format!("{parent}{}", name.trim()));
                }
            }
            if !line.is_empty() {
                cfg_test = false;
            }
        }
    }
    out
}

/// The file's code without test items (`#[cfg(test)]` and the item after it) and comments.
fn code_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            // Skip the next item: up to its closing brace at depth 0, or a `;` line.
            let mut depth = 0i32;
            let mut opened = false;
            for next in lines.by_ref() {
                depth += next.matches('{').count() as i32 - next.matches('}').count() as i32;
                opened |= next.contains('{');
                if (opened && depth <= 0) || (!opened && next.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        if !code.trim().is_empty() {
            out.push(code.to_string());
        }
    }
    out
}

/// The modules a file's code names through `crate::` (the longest path that is a module).
fn references(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add_path = |path: &str| {
        let parts: Vec<&str> = path.split("::").collect();
        for k in (1..=parts.len()).rev() {
            let candidate = parts[..k].join("::");
            if modules.contains(&candidate) {
                out.insert(candidate);
                break;
            }
        }
    };
    let bytes = code.as_bytes();
    let mut start = 0;
    while let Some(found) = code[start..].find("crate::") {
        let at = start + found + "crate::".len();
        start = at;
        if bytes.get(at) == Some(&b'{') {
            // `use crate::{a::b, c}`: each item's path.
            let end = code[at..].find('}').map(|e| at + e).unwrap_or(code.len());
            for item in code[at + 1..end].split(',') {
                let item = item.trim().split(' ').next().unwrap_or("");
                add_path(item.trim_matches(|c| c == '{' || c == '}'));
            }
            continue;
        }
        let end = code[at..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map(|e| at + e)
            .unwrap_or(code.len());
        add_path(code[at..end].trim_end_matches(':'));
    }
    out
}

struct House {
    /// Module -> the modules of ours it uses.
    graph: BTreeMap<String, BTreeSet<String>>,
    sizes: BTreeMap<String, usize>,
}

fn house() -> House {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let test_only = test_only_modules(&src, &files);
    let is_test_only = |module: &str| {
        test_only
            .iter()
            .any(|t| module == t || module.starts_with(&format!("{t}::")))
    };
    let modules: BTreeSet<String> = files.iter().map(|f| module_name(&src, f)).collect();
    let mut graph = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for file in &files {
        let module = module_name(&src, file);
        if is_test_only(&module) {
            continue;
        }
        let code = code_lines(&std::fs::read_to_string(file).unwrap());
        sizes.insert(module.clone(), code.len());
        let refs = references(&code.join("\n"), &modules)
            .into_iter()
            .filter(|r| r != &module && !is_test_only(r))
            .collect();
        graph.insert(module, refs);
    }
    House { graph, sizes }
}

#[test]
fn no_module_uses_a_later_stage() {
    let house = house();
    let mut wrong = Vec::new();
    for (module, refs) in &house.graph {
        for r in refs {
            let (from, to) = (stage_of(module), stage_of(r));
            if to > from {
                wrong.push(format!("{module} (stage {from}) uses {r} (stage {to})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the data path:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn nothing_but_commands_imports_commands() {
    let house = house();
    let wrong: Vec<String> = house
        .graph
        .iter()
        .filter(|(m, _)| !m.starts_with("commands") && *m != "lib" && *m != "main")
        .flat_map(|(m, refs)| {
            refs.iter()
                .filter(|r| r.starts_with("commands"))
                .map(move |r| format!("{m} uses {r}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn there_are_no_import_cycles() {
    let house = house();
    // Depth-first search for a back edge; report the cycle's path.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                0 => visit(next, graph, state, path, cycles),
                1 => {
                    let from = path.iter().position(|p| p == next).unwrap();
                    cycles.push(format!("{} -> {next}", path[from..].join(" -> ")));
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for node in house.graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            visit(node, &house.graph, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn no_source_file_is_too_long_to_read_at_once() {
    let house = house();
    let long: Vec<String> = house
        .sizes
        .iter()
        .filter(|(_, lines)| **lines > MAX_CODE_LINES)
        .map(|(m, lines)| format!("{m}: {lines} code lines"))
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_CODE_LINES} code lines (tests aside):\n  {}",
        long.join("\n  ")
    );
}

#[test]
fn the_checker_sees_what_it_checks() {
    // A checker that finds nothing proves nothing: the graph must hold the edges we know.
    let house = house();
    assert!(house.graph.len() > 30, "{} modules", house.graph.len());
    let uses = |from: &str, to: &str| house.graph.get(from).is_some_and(|r| r.contains(to));
    assert!(uses("render::prometheus", "model"));
    assert!(uses("stack::docker", "stack::containers"));
    let refs = references(
        "use crate::{model::Stack, layout};\nlet x = crate::stack::docker::Engine::new();",
        &["model", "layout", "stack", "stack::docker"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["layout", "model", "stack::docker"]
    );
    assert_eq!(
        code_lines("fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\n// c\nfn d() {}\n"),
        ["fn a() {}", "fn d() {}"]
    );
}
