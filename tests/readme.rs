//! The README's manifests are promises: every YAML block that starts with
//! `# monstack.yaml of ...` validates, renders, and its prometheus.yml passes promtool 3.5.

use crate::support::testsupport::{pinned, PROMTOOL};
use crate::support::Project;

/// The README's manifest blocks, by their first line.
fn readme_manifests() -> Vec<(String, String)> {
    let readme = include_str!("../README.md");
    let mut out = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line != "```yaml" {
            continue;
        }
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        if let Some(title) = block
            .first()
            .and_then(|l| l.strip_prefix("# monstack.yaml of "))
        {
            out.push((title.to_string(), block.join("\n") + "\n"));
        }
    }
    out
}

/// The files a manifest names (`*_file:`, TLS `ca`/`cert`/`key`), made with stand-in contents.
fn named_files(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in manifest.split(['{', '}', ',', '\n']) {
        let Some((key, value)) = piece.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_start_matches("- ");
        let value = value.split('#').next().unwrap_or("").trim();
        if (key.ends_with("_file") || ["ca", "cert", "key"].contains(&key)) && !value.is_empty() {
            out.push(value.to_string());
        }
    }
    out
}

#[test]
fn the_more_than_one_host_manifests_validate_render_and_pass_promtool() {
    let manifests = readme_manifests();
    let titles: Vec<&str> = manifests.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        ["the central stack", "an edge host"],
        "README blocks"
    );
    let Some(promtool) = pinned(PROMTOOL) else {
        return;
    };
    for (title, manifest) in &manifests {
        let mut project = Project::new();
        let files = named_files(manifest);
        assert!(!files.is_empty(), "{title}: no secret files found");
        for file in &files {
            let contents = match file.ends_with(".pem") {
                true => "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                false => "s3cret-Readme-42\n",
            };
            project = project.file(file, contents);
            std::fs::set_permissions(
                project.path().join(file),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
        }
        let project = project.manifest(manifest);
        project.run(&["validate"]).success();
        let rendered = project.run(&["render"]);
        rendered.success();
        let mut args = vec!["check", "config"];
        if manifest.contains("mode: agent") {
            args.push("--agent");
        }
        let checked = std::process::Command::new(&promtool)
            .args(&args)
            .arg("prometheus.yml")
            .current_dir(project.path().join(".monstack/prometheus"))
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "{title}: promtool check config:\n{}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}
