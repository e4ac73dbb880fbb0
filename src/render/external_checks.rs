//! The rendered configs checked by the real tools of the pinned versions: `promtool` 3.5 and
//! `amtool` 0.28 (from `.ci/fetch-binaries`).
//!
//! Both parse strictly, so this catches misspelled or too-new keys that our own unit tests,
//! which only read the YAML back, cannot. Missing tools skip the checks unless
//! `MONSTACK_REQUIRE_ALL=1`.

use std::path::Path;
use std::process::Command;

use super::{testkit, Tree};
use crate::model::Stack;

/// The hand-built stacks and every manifest fixture, loaded through the real loader.
fn stacks() -> Vec<(String, Stack)> {
    let mut stacks = vec![
        ("minimal".to_string(), testkit::minimal()),
        ("full".to_string(), testkit::full()),
        (
            "full_grafana_engine".to_string(),
            testkit::full_grafana_engine(),
        ),
    ];
    for name in super::fixture_tests::FIXTURES {
        stacks.push((
            format!("fixture {name}"),
            super::fixture_tests::load_fixture(name),
        ));
    }
    stacks
}

/// Renders the stack into a fresh directory, as `monstack render` would.
fn render_into_tempdir(stack: &Stack) -> (tempfile::TempDir, Tree) {
    let dir = tempfile::tempdir().unwrap();
    let tree = crate::render::render(stack).unwrap();
    crate::render::write::write_tree(dir.path(), &tree).unwrap();
    (dir, tree)
}

fn check(tool: &Path, args: &[&str], file: &Path, what: &str) {
    let output = Command::new(tool)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", tool.display()));
    assert!(
        output.status.success(),
        "{} {} {} failed for {what} ({})\n--- stdout\n{}\n--- stderr\n{}\n--- file\n{}",
        tool.display(),
        args.join(" "),
        file.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(file).unwrap_or_default(),
    );
    // A warning is a problem the user would see on the first run (promtool 3.5 warns, for
    // example, about a file_sd glob that matches no file).
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !all.contains("WARNING"),
        "{} {} {} warns for {what}:\n{all}",
        tool.display(),
        args.join(" "),
        file.display()
    );
}

#[test]
fn promtool_accepts_prometheus_config_and_targets() {
    let Some(promtool) = crate::testsupport::pinned(crate::testsupport::PROMTOOL) else {
        return;
    };
    for (name, stack) in stacks() {
        let (dir, _) = render_into_tempdir(&stack);
        let config = dir.path().join(super::prometheus::CONFIG_PATH);
        // An agent's config is checked as an agent reads it: rule_files and alerting refused.
        let args: &[&str] = if stack.prometheus.mode.is_agent() {
            &["check", "config", "--agent"]
        } else {
            &["check", "config"]
        };
        check(&promtool, args, &config, &name);
    }
    let agents = stacks()
        .iter()
        .filter(|(_, s)| s.prometheus.mode.is_agent())
        .count();
    let remotes = stacks()
        .iter()
        .filter(|(_, s)| !s.prometheus.remote_write.is_empty())
        .count();
    assert!(
        agents > 0 && remotes > 1,
        "no agent-mode or remote_write stack checked: the check proved less than it says"
    );
}

#[test]
fn promtool_accepts_rule_files() {
    let Some(promtool) = crate::testsupport::pinned(crate::testsupport::PROMTOOL) else {
        return;
    };
    let mut checked = 0;
    for (name, stack) in stacks() {
        let (dir, tree) = render_into_tempdir(&stack);
        for file in tree
            .files
            .iter()
            .filter(|f| f.path.starts_with("prometheus/rules/") && f.path.ends_with(".yml"))
        {
            check(
                &promtool,
                &["check", "rules"],
                &dir.path().join(&file.path),
                &name,
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "no rule files rendered: the check proved nothing"
    );
}

#[test]
fn amtool_accepts_alertmanager_config() {
    let Some(amtool) = crate::testsupport::pinned(crate::testsupport::AMTOOL) else {
        return;
    };
    let mut checked = 0;
    for (name, stack) in stacks() {
        let (dir, _) = render_into_tempdir(&stack);
        let config = dir.path().join(super::alertmanager::CONFIG_PATH);
        if stack.alertmanager.is_some() {
            check(&amtool, &["check-config"], &config, &name);
            checked += 1;
        } else {
            assert!(
                !config.exists(),
                "{name}: alertmanager.yml rendered without Alertmanager"
            );
        }
    }
    assert!(
        checked > 0,
        "no alertmanager.yml rendered: the check proved nothing"
    );
}
