//! Tests of the public edit API against the real loader: each edit must load as expected and
//! leave every byte outside what it changed as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{
    add_dashboard, add_targets, remove_targets, DashboardEntry, Edit, EditError, JobSettings,
};
use crate::manifest::{load, Source};
use crate::model::{Scheme, Stack};

const FIXTURE: &str = include_str!("../../../tests/fixtures/manifests/commented/monstack.yaml");

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(name)
}

/// Loads `text` with the real loader; panics with the diagnostics when it is not valid.
fn load_at(text: &str, dir: &str) -> Stack {
    let root = fixture_dir(dir);
    let source = Source {
        text,
        display_name: "monstack.yaml",
        root: &root,
    };
    load(&source, &|_| None).unwrap_or_else(|d| panic!("not a valid manifest:\n{d}\n{text}"))
}

type View = Vec<(String, Vec<String>)>;

/// The loader's view of the jobs and their targets.
fn jobs(text: &str) -> View {
    load_at(text, "commented")
        .jobs
        .iter()
        .map(|j| (j.name.clone(), j.targets.clone()))
        .collect()
}

fn view(jobs: &[(&str, &[&str])]) -> View {
    jobs.iter()
        .map(|(name, targets)| (name.to_string(), strings(targets)))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn fixture_view() -> View {
    view(&[
        (
            "order",
            &["host.docker.internal:8085", "host.docker.internal:8086"],
        ),
        ("payment", &["10.0.0.5:9100", "10.0.0.6:9100"]),
        ("inventory", &["inventory-1:9100", "inventory-2:9100"]),
        ("shipping", &["ship-1:9100", "ship-2:9100"]),
        ("batch", &["batch:9091"]),
    ])
}

fn add(text: &str, job: &str, addrs: &[&str]) -> Result<Edit, EditError> {
    add_targets(text, job, &strings(addrs), &JobSettings::default())
}

fn remove(text: &str, job: &str, addrs: &[&str]) -> Result<Edit, EditError> {
    remove_targets(text, job, &strings(addrs))
}

/// The lines of a job's item, found independently of the code under test: the comments
/// directly above its `- job:` line, its lines down to the last one indented deeper than
/// its `-`, and comment lines right after those that are indented deeper too.
fn job_lines(text: &str, job: &str) -> Option<Range<usize>> {
    let mut lines = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        lines.push((at, line));
        at += line.len();
    }
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let comment = |l: &str| l.trim_start().starts_with('#');
    let content = |l: &str| !l.trim().is_empty() && !comment(l);
    let i = lines.iter().position(|(_, l)| {
        let t = l.trim_start();
        t.starts_with(&format!("- job: {job} "))
            || t.trim_end() == format!("- job: {job}")
            || t.starts_with(&format!("- {{job: {job},"))
    })?;
    let dash = indent(lines[i].1);
    let mut first = i;
    while first > 0 && comment(lines[first - 1].1) {
        first -= 1;
    }
    let mut last = i;
    for (j, (_, l)) in lines.iter().enumerate().skip(i + 1) {
        if content(l) {
            if indent(l) <= dash {
                break;
            }
            last = j;
        }
    }
    while last + 1 < lines.len() && comment(lines[last + 1].1) && indent(lines[last + 1].1) > dash {
        last += 1;
    }
    Some(lines[first].0..lines[last].0 + lines[last].1.len())
}

/// Everything outside the job's lines is byte-identical before and after the edit.
fn assert_only_job_changed(input: &str, output: &str, job: &str) {
    let before = job_lines(input, job).expect("the job is in the input");
    let after = job_lines(output, job).expect("the job is in the output");
    assert_eq!(before.start, after.start, "the job moved:\n{output}");
    assert_eq!(&output[..after.start], &input[..before.start]);
    assert_eq!(
        &output[after.end..],
        &input[before.end..],
        "bytes after job `{job}` changed:\n{output}"
    );
}

/// Every comment, whole-line or trailing (the fixture has no `#` inside values).
fn comments(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| match l.trim_start().starts_with('#') {
            true => Some(l.trim()),
            false => l.find(" #").map(|i| l[i..].trim()),
        })
        .collect()
}

#[test]
fn the_fixture_loads_as_expected() {
    assert_eq!(jobs(FIXTURE), fixture_view());
    assert!(FIXTURE.contains("日本語") && FIXTURE.contains("ダッシュボード"));
}

// ---- add_targets: existing jobs ----

#[test]
fn adds_to_a_block_list_with_the_items_indentation_and_quotes() {
    let out = add(FIXTURE, "order", &["host.docker.internal:8087"]).unwrap();
    assert!(!out.created_job);
    let expected = FIXTURE.replace(
        "      - \"host.docker.internal:8086\"\n",
        "      - \"host.docker.internal:8086\"\n      - \"host.docker.internal:8087\"\n",
    );
    assert_eq!(out.text, expected);
    assert_only_job_changed(FIXTURE, &out.text, "order");
    let mut want = fixture_view();
    want[0].1.push("host.docker.internal:8087".into());
    assert_eq!(jobs(&out.text), want);
}

#[test]
fn adds_to_a_flow_list_after_its_last_item_in_its_quote_style() {
    let out = add(FIXTURE, "payment", &["10.0.0.7:9100", "10.0.0.8:9100"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "'10.0.0.6:9100']",
            "'10.0.0.6:9100', '10.0.0.7:9100', '10.0.0.8:9100']"
        )
    );
    assert_only_job_changed(FIXTURE, &out.text, "payment");
    let mut want = fixture_view();
    want[1]
        .1
        .extend(strings(&["10.0.0.7:9100", "10.0.0.8:9100"]));
    assert_eq!(jobs(&out.text), want);
}

#[test]
fn adds_to_a_plain_list_indented_like_its_key() {
    let out = add(FIXTURE, "inventory", &["inventory-3:9100", "[::1]:9100"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "    - inventory-2:9100   # plain scalars\n",
            "    - inventory-2:9100   # plain scalars\n    - inventory-3:9100\n    - \"[::1]:9100\"\n"
        )
    );
    assert_only_job_changed(FIXTURE, &out.text, "inventory");
    let mut want = fixture_view();
    want[2]
        .1
        .extend(strings(&["inventory-3:9100", "[::1]:9100"]));
    assert_eq!(jobs(&out.text), want);
}

#[test]
fn adds_to_a_multi_line_flow_list_keeping_its_comments() {
    let out = add(FIXTURE, "shipping", &["ship-3:9100"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "\"ship-2:9100\",   # us",
            "\"ship-2:9100\", \"ship-3:9100\",   # us"
        )
    );
    assert_only_job_changed(FIXTURE, &out.text, "shipping");
    let mut want = fixture_view();
    want[3].1.push("ship-3:9100".into());
    assert_eq!(jobs(&out.text), want);
}

#[test]
fn adds_to_a_flow_job() {
    let out = add(FIXTURE, "batch", &["batch:9092"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace("[\"batch:9091\"]", "[\"batch:9091\", \"batch:9092\"]")
    );
    assert_only_job_changed(FIXTURE, &out.text, "batch");
    let mut want = fixture_view();
    want[4].1.push("batch:9092".into());
    assert_eq!(jobs(&out.text), want);
}

#[test]
fn an_address_already_in_the_job_is_a_duplicate_and_nothing_is_written() {
    for (job, addr) in [
        ("order", "host.docker.internal:8086"),
        ("payment", "10.0.0.6:9100"),
        ("inventory", "inventory-1:9100"),
        ("shipping", "ship-2:9100"),
        ("batch", "batch:9091"),
    ] {
        let err = add(FIXTURE, job, &["new:1", addr]).unwrap_err();
        assert_eq!(
            err,
            EditError::Duplicate {
                job: job.into(),
                addr: addr.into()
            }
        );
    }
    // Adding twice: the second time is refused.
    let once = add(FIXTURE, "order", &["h:1"]).unwrap().text;
    assert!(matches!(
        add(&once, "order", &["h:1"]),
        Err(EditError::Duplicate { .. })
    ));
    let created = add(FIXTURE, "fresh", &["h:1"]).unwrap().text;
    assert!(matches!(
        add(&created, "fresh", &["h:1"]),
        Err(EditError::Duplicate { .. })
    ));
    // The same address twice in one call.
    assert!(matches!(
        add(FIXTURE, "order", &["h:1", "h:1"]),
        Err(EditError::Duplicate { .. })
    ));
}

#[test]
fn a_job_without_targets_gets_a_targets_line() {
    let text = "targets:\n  - job: lonely   # no targets yet\n    path: /m   # custom\n  - {job: flowing}\n  - job: nulled\n    targets:   # none\n  - job: empty\n    targets: [ ]\n";
    let out = add(text, "lonely", &["a:1"]).unwrap().text;
    assert_eq!(
        out,
        text.replace(
            "    path: /m   # custom\n",
            "    path: /m   # custom\n    targets: [\"a:1\"]\n"
        )
    );
    let out = add(&out, "flowing", &["b:1"]).unwrap().text;
    assert!(
        out.contains("  - {job: flowing, targets: [\"b:1\"]}\n"),
        "{out}"
    );
    let out = add(&out, "nulled", &["c:1"]).unwrap().text;
    assert!(out.contains("    targets: [\"c:1\"]   # none\n"), "{out}");
    let out = add(&out, "empty", &["d:1"]).unwrap().text;
    assert!(out.contains("    targets: [\"d:1\"]\n"), "{out}");
    assert_eq!(
        jobs(&out),
        view(&[
            ("lonely", &["a:1"]),
            ("flowing", &["b:1"]),
            ("nulled", &["c:1"]),
            ("empty", &["d:1"]),
        ])
    );
}

// ---- add_targets: new jobs ----

#[test]
fn a_new_job_goes_after_the_last_job_in_its_style() {
    // The fixture's last job is a flow mapping.
    let out = add(FIXTURE, "cache", &["cache:6379"]).unwrap();
    assert!(out.created_job);
    let line = "  - {job: batch, targets: [\"batch:9091\"], labels: {team: data}}   # a flow job\n";
    assert_eq!(
        out.text,
        FIXTURE.replace(
            line,
            &format!("{line}  - {{job: cache, targets: [\"cache:6379\"]}}\n")
        )
    );
    let mut want = fixture_view();
    want.push(("cache".into(), strings(&["cache:6379"])));
    assert_eq!(jobs(&out.text), want);

    // Block jobs separated by blank lines, with a commented-out key trailing the last.
    let text = "# jobs\ntargets:\n\n  - job: a\n    targets: [\"a:1\"]\n\n  -   job: b   # b\n      targets:\n        - \"b:1\"\n      # timeout: 5s\n  # end of jobs\ndashboards: [go-runtime]\n";
    let settings = JobSettings {
        path: Some("/stats".into()),
        scheme: Some("https".into()),
        interval: Some("30s".into()),
        labels: BTreeMap::from([("env".into(), "prod: eu".into())]),
        ..JobSettings::default()
    };
    let out = add_targets(text, "c", &strings(&["c:1", "c:2"]), &settings).unwrap();
    assert_eq!(
        out.text,
        text.replace(
            "      # timeout: 5s\n",
            "      # timeout: 5s\n\n  -   job: c\n      targets: [\"c:1\", \"c:2\"]\n      path: /stats\n      scheme: https\n      interval: 30s\n      labels: {env: \"prod: eu\"}\n"
        )
    );
    let stack = load_at(&out.text, "commented");
    let c = &stack.jobs[2];
    assert_eq!(
        (c.name.as_str(), c.metrics_path.as_str(), c.scheme),
        ("c", "/stats", Scheme::Https)
    );
    assert_eq!(c.targets, strings(&["c:1", "c:2"]));
    assert_eq!(c.interval.map(|d| d.to_string()).as_deref(), Some("30s"));
    assert_eq!(c.labels["env"], "prod: eu");
}

#[test]
fn a_new_job_replaces_an_empty_or_null_targets_with_a_block_list() {
    for (text, expected) in [
        (
            "project: p\ntargets: []   # none yet\n# next\nprometheus: {}\n",
            "project: p\ntargets:   # none yet\n  - job: web\n    targets: [\"web:80\"]\n# next\nprometheus: {}\n",
        ),
        (
            "targets:\n# next\nprometheus: {}\n",
            "targets:\n  - job: web\n    targets: [\"web:80\"]\n# next\nprometheus: {}\n",
        ),
        (
            "targets: ~  # nothing\n",
            "targets:  # nothing\n  - job: web\n    targets: [\"web:80\"]\n",
        ),
        ("targets: []", "targets:\n  - job: web\n    targets: [\"web:80\"]"),
    ] {
        let out = add(text, "web", &["web:80"]).unwrap();
        assert!(out.created_job);
        assert_eq!(out.text, expected);
        assert_eq!(jobs(&out.text), view(&[("web", &["web:80"])]));
    }
}

#[test]
fn a_new_job_without_a_targets_key_appends_a_section() {
    for (text, expected) in [
        (
            "# only a comment\nproject: p  # x\n",
            "# only a comment\nproject: p  # x\ntargets:\n  - job: web\n    targets: [\"web:80\"]\n",
        ),
        (
            "project: p  # no final newline",
            "project: p  # no final newline\ntargets:\n  - job: web\n    targets: [\"web:80\"]\n",
        ),
        ("", "targets:\n  - job: web\n    targets: [\"web:80\"]\n"),
        (
            "# just comments\n",
            "# just comments\ntargets:\n  - job: web\n    targets: [\"web:80\"]\n",
        ),
    ] {
        let out = add(text, "web", &["web:80"]).unwrap();
        assert_eq!(out.text, expected);
        assert_eq!(jobs(&out.text), view(&[("web", &["web:80"])]));
    }
}

#[test]
fn a_flow_list_of_jobs_gets_a_flow_job() {
    let text = "targets: [{job: a, targets: [\"a:1\"]}]  # flow\n";
    let out = add(text, "b", &["b:1"]).unwrap().text;
    assert_eq!(
        out,
        "targets: [{job: a, targets: [\"a:1\"]}, {job: b, targets: [\"b:1\"]}]  # flow\n"
    );
    let out = remove(&out, "a", &[]).unwrap().text;
    assert_eq!(out, "targets: [{job: b, targets: [\"b:1\"]}]  # flow\n");
    let out = remove(&out, "b", &[]).unwrap().text;
    assert_eq!(out, "targets: []  # flow\n");
    assert_eq!(jobs(&out), view(&[]));
}

#[test]
fn a_file_without_a_final_newline_keeps_it_that_way() {
    let text = "targets:\n  - job: a\n    targets:\n      - \"a:1\"";
    let out = add(text, "a", &["a:2"]).unwrap().text;
    assert_eq!(out, format!("{text}\n      - \"a:2\""));
    let out = add(&out, "b", &["b:1"]).unwrap().text;
    assert!(out.ends_with("  - job: b\n    targets: [\"b:1\"]"), "{out}");
    let out = add_targets(
        &out,
        "b",
        &[],
        &JobSettings {
            path: Some("/m".into()),
            ..JobSettings::default()
        },
    )
    .unwrap()
    .text;
    assert!(
        out.ends_with("    targets: [\"b:1\"]\n    path: /m"),
        "{out}"
    );
    let out = remove(&out, "b", &[]).unwrap().text;
    assert_eq!(jobs(&out), view(&[("a", &["a:1", "a:2"])]));
    let out = remove(&out, "a", &["a:2"]).unwrap().text;
    assert_eq!(jobs(&out), view(&[("a", &["a:1"])]));
}

#[test]
fn crlf_files_get_crlf_lines() {
    let text = "# c\r\ntargets:\r\n  - job: a\r\n    targets:\r\n      - \"a:1\"\r\n";
    let out = add(text, "a", &["a:2"]).unwrap().text;
    assert_eq!(out, format!("{text}      - \"a:2\"\r\n"));
    let out = add(&out, "b", &["b:1"]).unwrap().text;
    assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
    assert_eq!(jobs(&out), view(&[("a", &["a:1", "a:2"]), ("b", &["b:1"])]));
}

// ---- settings ----

#[test]
fn settings_on_an_existing_job_are_set_replaced_and_labels_merged() {
    let settings = JobSettings {
        path: Some("/stats".into()),
        scheme: Some("https".into()),
        interval: Some("1m".into()),
        labels: BTreeMap::from([
            ("env".into(), "staging".into()),
            ("team".into(), "shop #1".into()),
        ]),
        ..JobSettings::default()
    };
    let out = add_targets(FIXTURE, "order", &[], &settings).unwrap();
    assert!(!out.created_job);
    let expected = FIXTURE.replace(
        "    path: /metrics\n    labels:\n      env: prod   # environment\n",
        "    path: /stats\n    labels:\n      env: staging   # environment\n      team: \"shop #1\"\n    scheme: https\n    interval: 1m\n",
    );
    // Missing keys go at the end of the job; the labels block grows in place.
    assert_eq!(out.text, expected);
    assert_only_job_changed(FIXTURE, &out.text, "order");
    let stack = load_at(&out.text, "commented");
    let order = &stack.jobs[0];
    assert_eq!(order.metrics_path, "/stats");
    assert_eq!(order.scheme, Scheme::Https);
    assert_eq!(order.interval.map(|d| d.to_string()).as_deref(), Some("1m"));
    assert_eq!(
        order.labels,
        BTreeMap::from([
            ("env".to_string(), "staging".to_string()),
            ("team".to_string(), "shop #1".to_string())
        ])
    );
    assert_eq!(jobs(&out.text), fixture_view());
}

#[test]
fn settings_on_flow_and_commented_jobs() {
    let settings = JobSettings {
        scheme: Some("http".into()),
        labels: BTreeMap::from([("team".into(), "pay".into())]),
        ..JobSettings::default()
    };
    let out = add_targets(FIXTURE, "payment", &[], &settings).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "    scheme: https   # TLS only\n",
            "    scheme: http   # TLS only\n    labels: {team: pay}\n"
        )
    );
    assert_only_job_changed(FIXTURE, &out.text, "payment");

    let settings = JobSettings {
        path: Some("/m".into()),
        labels: BTreeMap::from([("team".into(), "ops".into()), ("tier".into(), "1".into())]),
        ..JobSettings::default()
    };
    let out = add_targets(FIXTURE, "batch", &strings(&["batch:9092"]), &settings).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "{job: batch, targets: [\"batch:9091\"], labels: {team: data}}",
            "{job: batch, targets: [\"batch:9091\", \"batch:9092\"], labels: {team: ops, tier: \"1\"}, path: /m}"
        )
    );
    assert_only_job_changed(FIXTURE, &out.text, "batch");
    let stack = load_at(&out.text, "commented");
    assert_eq!(stack.jobs[4].metrics_path, "/m");
    assert_eq!(stack.jobs[4].labels["tier"], "1");

    // Setting what is already there changes nothing.
    let same = JobSettings {
        path: Some("/metrics".into()),
        labels: BTreeMap::from([("env".into(), "prod".into())]),
        ..JobSettings::default()
    };
    assert_eq!(
        add_targets(FIXTURE, "order", &[], &same).unwrap().text,
        FIXTURE
    );

    // `labels:` with nothing after it.
    let text = "targets:\n  - job: a\n    labels:   # later\n";
    let out = add_targets(text, "a", &strings(&["a:1"]), &settings)
        .unwrap()
        .text;
    assert_eq!(
        out,
        "targets:\n  - job: a\n    labels: {team: ops, tier: \"1\"}   # later\n    targets: [\"a:1\"]\n    path: /m\n"
    );
    assert_eq!(load_at(&out, "commented").jobs[0].labels["team"], "ops");
}

// ---- remove_targets ----

#[test]
fn removes_one_address_from_each_list_style() {
    let out = remove(FIXTURE, "order", &["host.docker.internal:8085"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "      - \"host.docker.internal:8085\"   # first instance\n",
            ""
        )
    );
    assert_only_job_changed(FIXTURE, &out.text, "order");
    // A comment directly above an item goes with it.
    let out = remove(FIXTURE, "order", &["host.docker.internal:8086"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "      # between two targets\n      - \"host.docker.internal:8086\"\n",
            ""
        )
    );
    let out = remove(FIXTURE, "payment", &["10.0.0.5:9100"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace("[\"10.0.0.5:9100\", '10.0.0.6:9100']", "['10.0.0.6:9100']")
    );
    let out = remove(FIXTURE, "payment", &["10.0.0.6:9100"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "[\"10.0.0.5:9100\", '10.0.0.6:9100']",
            "[\"10.0.0.5:9100\"]"
        )
    );
    let out = remove(FIXTURE, "inventory", &["inventory-2:9100"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace("    - inventory-2:9100   # plain scalars\n", "")
    );
    let out = remove(FIXTURE, "shipping", &["ship-1:9100"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace("\"ship-1:9100\",   # eu\n      ", "")
    );
    let out = remove(FIXTURE, "shipping", &["ship-2:9100"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace("      \"ship-2:9100\",   # us\n", "")
    );
    let out = remove(&out.text, "shipping", &["ship-1:9100"]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "      \"ship-1:9100\",   # eu\n      \"ship-2:9100\",   # us\n",
            "         # eu\n"
        )
    );
    assert_eq!(jobs(&out.text)[3], ("shipping".to_string(), vec![]));
    for job in ["order", "payment", "inventory", "shipping"] {
        let view = jobs(&remove(FIXTURE, job, &[]).unwrap().text);
        assert!(view.iter().all(|(name, _)| name != job));
    }
}

#[test]
fn removing_every_address_leaves_an_empty_list() {
    let all = ["host.docker.internal:8085", "host.docker.internal:8086"];
    let out = remove(FIXTURE, "order", &all).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "    targets:\n      - \"host.docker.internal:8085\"   # first instance\n      # between two targets\n      - \"host.docker.internal:8086\"\n",
            "    targets: []\n"
        )
    );
    assert_only_job_changed(FIXTURE, &out.text, "order");
    let out = remove(&out.text, "batch", &["batch:9091"]).unwrap();
    assert!(out.text.contains("{job: batch, targets: [], labels"));
    let out = remove(&out.text, "payment", &["10.0.0.6:9100", "10.0.0.5:9100"]).unwrap();
    assert!(out.text.contains("    targets: []   # flow list\n"));
    let mut want = fixture_view();
    want[0].1.clear();
    want[1].1.clear();
    want[4].1.clear();
    assert_eq!(jobs(&out.text), want);
}

#[test]
fn missing_addresses_and_jobs_are_errors() {
    assert_eq!(
        remove(FIXTURE, "order", &["host.docker.internal:8085", "nope:1"]).unwrap_err(),
        EditError::NotFound {
            job: "order".into(),
            addr: "nope:1".into()
        }
    );
    assert_eq!(
        remove(FIXTURE, "nope", &[]).unwrap_err(),
        EditError::NoSuchJob { job: "nope".into() }
    );
    assert_eq!(
        remove("project: p\n", "nope", &["a:1"]).unwrap_err(),
        EditError::NoSuchJob { job: "nope".into() }
    );
}

#[test]
fn removes_a_job_in_the_middle_with_its_attached_comments() {
    let out = remove(FIXTURE, "payment", &[]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "  # payment: a flow list with mixed quotes\n  - job: payment\n    targets: [\"10.0.0.5:9100\", '10.0.0.6:9100']   # flow list\n    scheme: https   # TLS only\n    # a commented-out setting of payment: timeout: 5s\n\n",
            ""
        )
    );
    let mut want = fixture_view();
    want.remove(1);
    assert_eq!(jobs(&out.text), want);
}

#[test]
fn removes_the_first_and_the_last_job() {
    // The note separated from the first job by a blank line stays.
    let out = remove(FIXTURE, "order", &[]).unwrap();
    let start = FIXTURE.find("  # order: a block list").unwrap();
    let end = FIXTURE.find("  # payment:").unwrap();
    assert_eq!(
        out.text,
        format!("{}{}", &FIXTURE[..start], &FIXTURE[end..])
    );
    assert!(out.text.contains("  # A note about all jobs"));

    let out = remove(FIXTURE, "batch", &[]).unwrap();
    assert_eq!(
        out.text,
        FIXTURE.replace(
            "  - {job: batch, targets: [\"batch:9091\"], labels: {team: data}}   # a flow job\n",
            ""
        )
    );
    let mut want = fixture_view();
    want.pop();
    assert_eq!(jobs(&out.text), want);
}

#[test]
fn removing_the_only_job_leaves_an_empty_list() {
    let text = "targets:   # jobs\n  # the one job\n  - job: a\n    targets: [\"a:1\"]\n\n# after\ndashboards: []\n";
    let out = remove(text, "a", &[]).unwrap();
    assert_eq!(
        out.text,
        "targets: []   # jobs\n\n# after\ndashboards: []\n"
    );
    assert_eq!(jobs(&out.text), view(&[]));
    // And a job can be added again.
    let out = add(&out.text, "b", &["b:1"]).unwrap();
    assert_eq!(
        out.text,
        "targets:   # jobs\n  - job: b\n    targets: [\"b:1\"]\n\n# after\ndashboards: []\n"
    );
    // All of the fixture's jobs, one by one.
    let mut text = FIXTURE.to_string();
    for job in ["shipping", "order", "batch", "inventory", "payment"] {
        text = remove(&text, job, &[]).unwrap().text;
    }
    assert!(text.contains("targets: []   # the jobs Prometheus scrapes\n"));
    assert_eq!(jobs(&text), view(&[]));
}

// ---- add_dashboard ----

#[test]
fn dashboards_are_appended_once() {
    let out = add_dashboard(FIXTURE, DashboardEntry::Bundled("rust-runtime".into())).unwrap();
    assert_eq!(
        out,
        FIXTURE.replace(
            "  - go-runtime   # bundled\n",
            "  - go-runtime   # bundled\n  - rust-runtime\n"
        )
    );
    assert_eq!(load_at(&out, "commented").dashboards.len(), 2);
    assert_eq!(
        add_dashboard(&out, DashboardEntry::Bundled("rust-runtime".into())).unwrap(),
        out
    );
    assert_eq!(
        add_dashboard(FIXTURE, DashboardEntry::Bundled("go-runtime".into())).unwrap(),
        FIXTURE
    );
    let file = DashboardEntry::File {
        path: "dashboards/orders.json".into(),
        folder: Some("Shop".into()),
    };
    let out = add_dashboard(FIXTURE, file.clone()).unwrap();
    assert!(out.ends_with(
        "  - go-runtime   # bundled\n  - file: dashboards/orders.json\n    folder: Shop\n  # more to come\n"
    ));
    let stack = load_at(&out, "full");
    assert_eq!(stack.dashboards[1].folder.as_deref(), Some("Shop"));
    assert_eq!(add_dashboard(&out, file).unwrap(), out);
    let other_folder = DashboardEntry::File {
        path: "./dashboards/orders.json".into(),
        folder: None,
    };
    assert!(matches!(
        add_dashboard(&out, other_folder),
        Err(EditError::DashboardConflict { .. })
    ));
}

#[test]
fn dashboards_key_missing_empty_or_flow() {
    let go = || DashboardEntry::Bundled("go-runtime".into());
    assert_eq!(
        add_dashboard("project: p\n", go()).unwrap(),
        "project: p\ndashboards:\n  - go-runtime\n"
    );
    assert_eq!(
        add_dashboard("dashboards: []  # none\nproject: p\n", go()).unwrap(),
        "dashboards:  # none\n  - go-runtime\nproject: p\n"
    );
    assert_eq!(
        add_dashboard("dashboards:\n", go()).unwrap(),
        "dashboards:\n  - go-runtime\n"
    );
    let flow = "dashboards: [rust-runtime]  # flow\n";
    let out = add_dashboard(flow, go()).unwrap();
    assert_eq!(out, "dashboards: [rust-runtime, go-runtime]  # flow\n");
    let out = add_dashboard(
        &out,
        DashboardEntry::File {
            path: "dashboards/orders.json".into(),
            folder: Some("My Shop".into()),
        },
    )
    .unwrap();
    assert_eq!(
        out,
        "dashboards: [rust-runtime, go-runtime, {file: dashboards/orders.json, folder: My Shop}]  # flow\n"
    );
    assert_eq!(load_at(&out, "full").dashboards.len(), 3);
}

// ---- what is refused ----

#[test]
fn shapes_that_cannot_be_edited_are_refused_without_changes() {
    assert!(matches!(
        add("{targets: []}", "a", &["a:1"]),
        Err(EditError::Unsupported { .. })
    ));
    assert!(matches!(
        add("targets: [\n", "a", &["a:1"]),
        Err(EditError::Invalid { .. })
    ));
    assert!(matches!(
        add("targets: {a: 1}\n", "a", &["a:1"]),
        Err(EditError::Unsupported { .. })
    ));
    let anchored = "base: &t [\"a:1\"]\ntargets:\n  - job: a\n    targets: *t\n";
    assert!(matches!(
        add(anchored, "a", &["a:2"]),
        Err(EditError::Unsupported { .. })
    ));
    let block_alias = "base: &t\n  - \"a:1\"\ntargets:\n  - job: a\n    targets: *t\n";
    for result in [
        add(block_alias, "a", &["a:2"]),
        remove(block_alias, "a", &["a:1"]),
    ] {
        assert!(
            matches!(result, Err(EditError::Unsupported { .. })),
            "{result:?}"
        );
    }
    let block_scalar = "targets:\n  - job: a\n    path: |\n      /m\n";
    let path = JobSettings {
        path: Some("/x".into()),
        ..JobSettings::default()
    };
    assert!(matches!(
        add_targets(block_scalar, "a", &[], &path),
        Err(EditError::Unsupported { .. })
    ));
}

// ---- property ----

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

#[test]
fn random_edits_agree_with_a_model_and_keep_every_other_comment() {
    const JOBS: &[&str] = &[
        "order",
        "payment",
        "inventory",
        "shipping",
        "batch",
        "cache",
        "web.front",
    ];
    const ADDRS: &[&str] = &[
        "host.docker.internal:8085",
        "host.docker.internal:8086",
        "10.0.0.5:9100",
        "10.0.0.6:9100",
        "inventory-1:9100",
        "ship-2:9100",
        "batch:9091",
        "db.local:5432",
        "[::1]:9100",
    ];
    let fixture_comments = comments(FIXTURE);
    let job_comments: Vec<(&str, Vec<&str>)> = JOBS[..5]
        .iter()
        .map(|job| (*job, comments(&FIXTURE[job_lines(FIXTURE, job).unwrap()])))
        .collect();
    let head = &FIXTURE[..FIXTURE.find("\ntargets:").unwrap() + "\ntargets:".len()];
    let tail = &FIXTURE[FIXTURE.find("\n# dashboards").unwrap()..];
    for seed in 0..200u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed + 1));
        let mut text = FIXTURE.to_string();
        let mut model = fixture_view();
        // Fixture jobs whose own comments may be gone: removed, or a target removed.
        let mut touched: BTreeSet<&str> = BTreeSet::new();
        for _ in 0..12 {
            let job = JOBS[rng.below(JOBS.len())];
            let at = model.iter().position(|(name, _)| name == job);
            let roll = rng.below(100);
            let (result, expected): (Result<Edit, EditError>, Result<View, EditError>);
            if roll < 50 {
                let mut addrs = vec![ADDRS[rng.below(ADDRS.len())]];
                let second = ADDRS[rng.below(ADDRS.len())];
                if rng.below(3) == 0 && second != addrs[0] {
                    addrs.push(second);
                }
                result = add(&text, job, &addrs);
                let mut next = model.clone();
                expected = match at {
                    Some(i) => match addrs.iter().find(|a| model[i].1.contains(&a.to_string())) {
                        Some(a) => Err(EditError::Duplicate {
                            job: job.into(),
                            addr: a.to_string(),
                        }),
                        None => {
                            next[i].1.extend(strings(&addrs));
                            Ok(next)
                        }
                    },
                    None => {
                        next.push((job.into(), strings(&addrs)));
                        Ok(next)
                    }
                };
            } else if roll < 85 {
                let addr = match at {
                    Some(i) if !model[i].1.is_empty() && rng.below(4) > 0 => {
                        model[i].1[rng.below(model[i].1.len())].clone()
                    }
                    _ => ADDRS[rng.below(ADDRS.len())].to_string(),
                };
                result = remove(&text, job, &[&addr]);
                expected = match at {
                    None => Err(EditError::NoSuchJob { job: job.into() }),
                    Some(i) if !model[i].1.contains(&addr) => Err(EditError::NotFound {
                        job: job.into(),
                        addr,
                    }),
                    Some(i) => {
                        let mut next = model.clone();
                        next[i].1.retain(|a| *a != addr);
                        Ok(next)
                    }
                };
                touched.insert(job);
            } else {
                result = remove(&text, job, &[]);
                expected = match at {
                    None => Err(EditError::NoSuchJob { job: job.into() }),
                    Some(i) => {
                        let mut next = model.clone();
                        next.remove(i);
                        Ok(next)
                    }
                };
                touched.insert(job);
            }
            match (result, expected) {
                (Ok(edit), Ok(next)) => {
                    assert_eq!(jobs(&edit.text), next, "seed {seed}:\n{}", edit.text);
                    assert_eq!(edit.created_job, at.is_none());
                    text = edit.text;
                    model = next;
                }
                (Err(e), Err(want)) => assert_eq!(e, want, "seed {seed}"),
                (got, want) => panic!("seed {seed}: got {got:?}, want {want:?}\n{text}"),
            }
            assert!(text.starts_with(head), "seed {seed}: head changed\n{text}");
            assert!(text.ends_with(tail), "seed {seed}: tail changed\n{text}");
            let now = comments(&text);
            let mut rest = fixture_comments.iter();
            for c in &now {
                assert!(
                    rest.any(|f| f == c),
                    "seed {seed}: comment {c:?} is new or out of order\n{text}"
                );
            }
            for c in &fixture_comments {
                let owned_by_touched = job_comments
                    .iter()
                    .any(|(job, cs)| touched.contains(job) && cs.contains(c));
                assert!(
                    owned_by_touched || now.contains(c),
                    "seed {seed}: comment {c:?} is gone\n{text}"
                );
            }
        }
    }
}

#[test]
fn a_fallback_scrape_protocol_is_set_on_a_new_and_an_existing_job() {
    let settings = JobSettings {
        fallback_scrape_protocol: Some("PrometheusText0.0.4".into()),
        ..JobSettings::default()
    };
    let text = "targets:\n  - job: a   # the API\n    targets: [\"a:1\"]\n";
    let out = add_targets(text, "a", &strings(&["a:2"]), &settings).unwrap();
    assert_eq!(
        out.text,
        "targets:\n  - job: a   # the API\n    targets: [\"a:1\", \"a:2\"]\n    fallback_scrape_protocol: PrometheusText0.0.4\n"
    );
    let out = add_targets(text, "b", &strings(&["b:1"]), &settings).unwrap();
    let stack = load_at(&out.text, "minimal");
    let b = stack.jobs.iter().find(|j| j.name == "b").unwrap();
    assert_eq!(
        b.fallback_scrape_protocol.as_deref(),
        Some("PrometheusText0.0.4")
    );
}
