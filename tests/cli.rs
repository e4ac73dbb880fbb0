//! CLI behaviour: exit codes, what is written where, messages, secrets.

use crate::support::{fixture, Project};

fn full() -> Project {
    fixture("manifests/full")
        .env(
            "DINGTALK_WEBHOOK",
            "https://oapi.dingtalk.com/robot/send?access_token=T0KEN",
        )
        .env(
            "SLACK_WEBHOOK",
            "https://hooks.slack.com/services/T0/B0/XXXX",
        )
        .env("SMTP_PASSWORD", "smtp-pass")
}

#[test]
fn validate_prints_a_one_line_summary() {
    let run = full().run(&["validate"]);
    run.success();
    assert_eq!(
        run.stdout,
        "shop: valid; 5 services, 2 jobs (3 targets), 2 alerts, 4 channels, 2 dashboards\n"
    );
}

#[test]
fn validate_counts_the_exporters_and_probes() {
    let run = crate::support::fixture("manifests/exporters").run(&["validate"]);
    run.success();
    assert_eq!(
        run.stdout,
        "exporters: valid; 4 services, 0 jobs (0 targets), 4 probes, 0 alerts, 0 channels, 2 dashboards\n"
    );
}

#[test]
fn quiet_validate_prints_nothing_on_success() {
    let run = full().run(&["-q", "validate"]);
    run.success();
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "");
}

#[test]
fn without_a_manifest_the_built_in_starter_is_used_and_announced() {
    let project = Project::new();
    let run = project.run(&["validate"]);
    run.success();
    assert!(
        run.stderr
            .contains("no monstack.yaml here: using the built-in starter manifest"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.starts_with("proj: valid;"), "{}", run.stdout);
    project.run(&["render"]).success();
    assert!(project.exists(".monstack/prometheus/prometheus.yml"));
    assert!(
        !project.exists("monstack.yaml"),
        "render must not create the manifest"
    );
}

#[test]
fn a_named_manifest_that_does_not_exist_is_an_input_error() {
    let run = Project::new().run(&["-f", "deploy/monstack.yaml", "validate"]);
    run.code(2);
    assert!(
        run.stderr.contains("deploy/monstack.yaml does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_arguments_exit_2() {
    Project::new().run(&["validate", "--nope"]).code(2);
    Project::new().run(&["init", "--lang", "cobol"]).code(2);
}

#[test]
fn init_writes_a_valid_starter_pointing_at_the_schema_and_refuses_to_overwrite() {
    let project = Project::new();
    project.run(&["init"]).success();
    let manifest = project.read("monstack.yaml");
    assert_eq!(
        manifest.lines().next(),
        Some("# yaml-language-server: $schema=.monstack/monstack.schema.json")
    );
    let schema: serde_json::Value =
        serde_json::from_str(&project.read(".monstack/monstack.schema.json")).unwrap();
    assert_eq!(schema["properties"]["targets"]["type"], "array");
    assert!(manifest.contains("- go-runtime"));
    project.run(&["validate"]).success();

    std::fs::write(project.path().join("monstack.yaml"), "project: mine\n").unwrap();
    let run = project.run(&["init"]);
    run.code(2);
    assert!(
        run.stderr.contains("monstack.yaml already exists") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(
        project.read("monstack.yaml"),
        "project: mine\n",
        "init without --force must not touch the file"
    );
    project.run(&["init", "--force"]).success();
    assert!(project.read("monstack.yaml").contains("go-runtime"));
}

#[test]
fn init_picks_the_dashboard_from_the_project_language() {
    let rust = Project::new().file("Cargo.toml", "[package]\nname = \"x\"\n");
    rust.run(&["init"]).success();
    assert!(rust.read("monstack.yaml").contains("- rust-runtime"));
    rust.run(&["validate"]).success();

    let go = Project::new().file("go.mod", "module example.com/x\n");
    go.run(&["init"]).success();
    assert!(go.read("monstack.yaml").contains("- go-runtime"));

    let forced = Project::new().file("go.mod", "module example.com/x\n");
    forced.run(&["init", "--lang", "rust"]).success();
    assert!(forced.read("monstack.yaml").contains("- rust-runtime"));
}

#[test]
fn render_writes_the_documented_layout_once_and_is_idempotent() {
    let project = full();
    let run = project.run(&["render"]);
    run.success();
    for path in [
        ".monstack/.gitignore",
        ".monstack/prometheus/prometheus.yml",
        ".monstack/prometheus/rules/monstack-alerts.yml",
        ".monstack/prometheus/targets/order.json",
        ".monstack/prometheus/targets/payment.json",
        ".monstack/alertmanager/alertmanager.yml",
        ".monstack/grafana/provisioning/datasources/monstack.yaml",
        ".monstack/grafana/provisioning/dashboards/monstack.yaml",
        ".monstack/grafana/provisioning/alerting/monstack.yaml",
    ] {
        assert!(project.exists(path), "{path} missing after render");
    }
    assert!(project
        .path()
        .join(".monstack/prometheus/targets/etcd")
        .is_dir());
    assert_eq!(
        project.read(".monstack/.gitignore").lines().last(),
        Some("*")
    );
    let again = project.run(&["render"]);
    again.success();
    assert!(
        again.stderr.contains("0 changed"),
        "second render should change nothing: {}",
        again.stderr
    );
}

#[test]
fn rendering_is_byte_identical_across_runs_and_directories() {
    let a = full();
    let b = full();
    a.run(&["render"]).success();
    b.run(&["render"]).success();
    for path in [
        ".monstack/prometheus/prometheus.yml",
        ".monstack/alertmanager/alertmanager.yml",
        ".monstack/grafana/provisioning/alerting/monstack.yaml",
        ".monstack/grafana/provisioning/datasources/monstack.yaml",
    ] {
        assert_eq!(a.read(path), b.read(path), "{path} differs");
    }
}

#[cfg(unix)]
#[test]
fn files_holding_secrets_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let project = full();
    project.run(&["render"]).success();
    let mode = |p: &str| {
        std::fs::metadata(project.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".monstack/alertmanager/alertmanager.yml"), 0o640);
    assert_eq!(
        mode(".monstack/grafana/provisioning/alerting/monstack.yaml"),
        0o640
    );
    assert_eq!(mode(".monstack/prometheus/prometheus.yml"), 0o644);
    assert!(project
        .read(".monstack/alertmanager/alertmanager.yml")
        .contains("smtp-pass"));
}

#[test]
fn a_dashboard_dropped_from_the_manifest_is_removed_on_the_next_render() {
    let project = full();
    project.run(&["render"]).success();
    assert!(project.exists(".monstack/grafana/dashboards/shop/shop-orders.json"));
    let manifest = project
        .read("monstack.yaml")
        .replace("  - file: dashboards/orders.json\n    folder: Shop\n", "");
    std::fs::write(project.path().join("monstack.yaml"), manifest).unwrap();
    let run = project.run(&["render"]);
    run.success();
    assert!(!project.exists(".monstack/grafana/dashboards/shop/shop-orders.json"));
    assert!(run.stderr.contains("stale removed"), "{}", run.stderr);
}

#[test]
fn secrets_from_the_environment_never_appear_in_errors() {
    let run = Project::new()
        .manifest("alertmanager: {}\nchannels:\n  - name: ding\n    dingtalk: {url: \"${HOOK}\"}\n")
        .env(
            "HOOK",
            "ftp://oapi.dingtalk.com/robot/send?access_token=SUPERSECRET",
        )
        .run(&["validate"]);
    run.code(2);
    assert!(
        run.stderr
            .contains("`url` must be an http:// or https:// URL"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("SUPERSECRET"), "{}", run.stderr);
}

#[test]
fn other_failures_exit_1() {
    let project = Project::new()
        .manifest("project: x\n")
        .file(".monstack", "not a directory");
    let run = project.run(&["render"]);
    run.code(1);
    assert!(run.stderr.contains("error:"), "{}", run.stderr);
}

#[test]
fn schema_is_json_and_closed() {
    let run = Project::new().run(&["schema"]);
    run.success();
    let schema: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for key in [
        "project",
        "prometheus",
        "grafana",
        "targets",
        "channels",
        "alerts",
        "dashboards",
        "smtp",
        "alerting",
    ] {
        assert!(schema["properties"][key].is_object(), "schema lacks {key}");
    }
    let dashboards = schema["properties"]["dashboards"]["items"]["anyOf"][0]["enum"]
        .as_array()
        .unwrap();
    assert!(dashboards.iter().any(|d| d == "go-runtime"));
}

#[test]
fn completions_are_generated() {
    let run = Project::new().run(&["completions", "bash"]);
    run.success();
    assert!(run.stdout.contains("monstack"));
}

#[test]
fn errors_are_uncoloured_without_a_terminal_and_coloured_on_request() {
    let project = Project::new().manifest("targts: []\n");
    let plain = project.run(&["validate"]);
    assert!(!plain.stderr.contains('\x1b'));
    let coloured = project.run(&["--color", "always", "validate"]);
    assert!(coloured.stderr.contains("\x1b["), "{}", coloured.stderr);
}

#[test]
fn a_short_job_interval_lowers_the_inherited_timeout_as_prometheus_does() {
    // The global timeout (10s) is longer than the job's interval: Prometheus lowers it to the
    // interval, so this is valid, and the rendered job sets no timeout of its own.
    let project = Project::new().manifest(
        "targets:\n  - job: fast\n    targets: [\"a:1\"]\n    interval: 5s\n    fallback_scrape_protocol: PrometheusText0.0.4\n    scrape_protocols: [PrometheusText0.0.4, OpenMetricsText1.0.0]\n",
    );
    project.run(&["validate"]).success();
    project.run(&["render"]).success();
    let config = project.read(".monstack/prometheus/prometheus.yml");
    let job = config
        .split("- job_name: ")
        .find(|j| j.starts_with("fast"))
        .unwrap_or_else(|| panic!("{config}"));
    assert!(job.contains("scrape_interval: 5s"), "{job}");
    assert!(!job.contains("scrape_timeout"), "{job}");
    assert!(
        job.contains("fallback_scrape_protocol: PrometheusText0.0.4"),
        "{job}"
    );
    assert!(
        job.contains("scrape_protocols:\n  - PrometheusText0.0.4\n  - OpenMetricsText1.0.0"),
        "{job}"
    );
}

#[test]
fn dashboards_without_grafana_are_a_warning_and_still_rendered() {
    let project = Project::new().manifest("grafana: false\ndashboards: [go-runtime]\n");
    let run = project.run(&["validate"]);
    run.success();
    assert!(
        run.stderr
            .contains("warning: monstack.yaml:2:1: `dashboards` are rendered but not shown: Grafana is disabled"),
        "{}",
        run.stderr
    );
    project.run(&["render"]).success();
    assert!(project.exists(".monstack/grafana/dashboards/general/monstack-go-runtime.json"));
    // Grafana-engine alerting without Grafana would deliver nothing: still an error.
    let project = Project::new().manifest("grafana: false\nalerting: {engine: grafana}\n");
    project.run(&["validate"]).code(2);
}

#[test]
fn init_says_which_language_it_picked_when_both_build_files_are_there() {
    let project = Project::new()
        .file("go.mod", "module x\n")
        .file("Cargo.toml", "[package]\nname = \"x\"\n");
    let run = project.run(&["init"]);
    run.success();
    assert!(
        run.stderr.contains("both go.mod and Cargo.toml"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--lang go"), "{}", run.stderr);
    assert!(project.read("monstack.yaml").contains("rust-runtime"));
}

#[test]
fn the_help_names_up_after_init() {
    let run = Project::new().run(&["--help"]);
    run.success();
    assert!(
        run.stdout
            .contains("`monstack init`, then `monstack validate` and `monstack up`"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_starter_manifest_repeats_no_built_in_alert() {
    let project = Project::new();
    project.run(&["render"]).success();
    let mine = project.read(".monstack/prometheus/rules/monstack-alerts.yml");
    let builtin = project.read(".monstack/prometheus/rules/monstack-builtin.yml");
    let exprs = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("expr: "))
            .map(|e| e.trim_matches(|c| c == '\'' || c == '"').to_string())
            .collect()
    };
    let builtin = exprs(&builtin);
    assert!(!builtin.is_empty());
    for expr in exprs(&mine) {
        assert!(
            !builtin.contains(&expr),
            "the starter repeats the built-in `{expr}`"
        );
    }
    assert!(!mine.contains("up == 0"), "{mine}");
}
