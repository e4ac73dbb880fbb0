//! `monstack export kubernetes`, checked offline by the tools a cluster would use: `kustomize
//! build`, Kubernetes' own schemas (`kubernetes-validate --strict`), the Prometheus Operator's
//! CRD schemas (v0.93, strict, through `check-jsonschema`), `promtool check rules` on the
//! PrometheusRule groups, `amtool check-config` on the AlertmanagerConfig turned back into
//! alertmanager.yml form; snapshots of every fixture's export; and the agent's HTTP SD
//! endpoint live with Prometheus 3.5 (`http_sd`).

mod alertmanager;
mod http_sd;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

use crate::support::testsupport::{self, pinned, venv_tool};
use crate::support::{fixture, Project, Run};

/// Every manifest fixture.
const FIXTURES: [&str; 4] = ["minimal", "full", "grafana-engine", "commented"];

/// The fixtures' secrets, as `render`'s fixture tests set them.
const ENV: [(&str, &str); 3] = [
    (
        "DINGTALK_WEBHOOK",
        "https://oapi.dingtalk.com/robot/send?access_token=T0KEN",
    ),
    (
        "SLACK_WEBHOOK",
        "https://hooks.slack.com/services/T0/B0/XXXX",
    ),
    ("SMTP_PASSWORD", "s3cret-smtp"),
];

pub struct Exported {
    pub project: Project,
    pub name: &'static str,
    pub dir: PathBuf,
}

impl Exported {
    /// The exported files: name -> parsed object (kustomization.yaml aside).
    pub fn objects(&self) -> BTreeMap<String, Json> {
        files(&self.dir)
            .into_iter()
            .filter(|name| name != "kustomization.yaml")
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.join(&name)).unwrap();
                let value: Json = serde_yaml::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {name} is not YAML: {e}", self.name));
                (name, value)
            })
            .collect()
    }

    pub fn of_kind(&self, kind: &str) -> Vec<(String, Json)> {
        self.objects()
            .into_iter()
            .filter(|(_, o)| o["kind"] == kind)
            .collect()
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn project_of(name: &str) -> Project {
    let mut project = fixture(&format!("manifests/{name}"));
    for (key, value) in ENV {
        project = project.env(key, value);
    }
    project
}

pub fn export(name: &'static str, args: &[&str]) -> Exported {
    let project = project_of(name);
    let mut all = vec!["export", "kubernetes", "-o", "k8s"];
    all.extend_from_slice(args);
    project.run(&all).success();
    let dir = project.path().join("k8s");
    Exported { project, name, dir }
}

fn every_fixture() -> Vec<Exported> {
    FIXTURES.iter().map(|name| export(name, &[])).collect()
}

/// Runs a validator; panics with its output unless it succeeds.
#[track_caller]
fn run_ok(command: &mut Command, what: &str) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("running {:?}: {e}", command.get_program()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Runs a validator that must refuse; returns its output.
#[track_caller]
fn run_fails(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "{what} accepted what it must refuse:\n{text}"
    );
    text
}

/// The export as one reviewable text: every file with its mode. Bundled dashboards are large
/// and tested in `dashboards.rs`: their ConfigMaps show their metadata and size only.
fn snapshot_text(dir: &Path) -> String {
    let mut out = String::new();
    for name in files(dir) {
        let path = dir.join(&name);
        let mode = testsupport_mode(&path);
        out.push_str(&format!("=== {name} ({mode:04o})\n"));
        let text = std::fs::read_to_string(&path).unwrap();
        if name.contains("-dashboard-monstack-") {
            let head = text.split("\ndata:\n").next().unwrap();
            out.push_str(&format!(
                "{head}\n<bundled dashboard, {} bytes>\n",
                text.len()
            ));
        } else {
            out.push_str(&text);
        }
    }
    out
}

fn testsupport_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn exports_of_the_fixtures_match_their_snapshots() {
    for exported in every_fixture() {
        insta::assert_snapshot!(
            format!("export-{}", exported.name),
            snapshot_text(&exported.dir)
        );
    }
}

#[test]
fn every_object_carries_the_release_and_managed_by_labels() {
    for exported in every_fixture() {
        for (file, object) in exported.objects() {
            let labels = &object["metadata"]["labels"];
            assert_eq!(labels["release"], "kube-prometheus-stack", "{file}");
            assert_eq!(labels["app.kubernetes.io/managed-by"], "monstack", "{file}");
            assert_eq!(object["metadata"]["namespace"], "monitoring", "{file}");
        }
    }
    let custom = export("full", &["--namespace", "obs", "--release", "prom"]);
    for (file, object) in custom.objects() {
        assert_eq!(object["metadata"]["labels"]["release"], "prom", "{file}");
        assert_eq!(object["metadata"]["namespace"], "obs", "{file}");
    }
    let sd = &custom.objects()["scrapeconfig-shop-etcd-discovered.yaml"];
    assert_eq!(
        sd["spec"]["httpSDConfigs"][0]["url"],
        "http://shop-agent.obs.svc:8060/sd/etcd"
    );
}

#[test]
fn secrets_are_only_in_secret_objects_readable_by_the_owner() {
    let exported = export("full", &[]);
    let secrets = [
        "s3cret-smtp",
        "access_token=T0KEN",
        "hooks.slack.com/services/T0/B0/XXXX",
        "http://alert-sink:8080/hook",
    ];
    let mut seen = BTreeMap::new();
    for name in files(&exported.dir) {
        let path = exported.dir.join(&name);
        let text = std::fs::read_to_string(&path).unwrap();
        let is_secret = text.contains("\nkind: Secret\n");
        for secret in secrets {
            if text.contains(secret) {
                assert!(is_secret, "{secret} in {name}, which is no Secret");
                *seen.entry(secret).or_insert(0) += 1;
            }
        }
        let mode = testsupport_mode(&path);
        assert_eq!(mode, if is_secret { 0o600 } else { 0o644 }, "{name}");
    }
    assert_eq!(
        seen.len(),
        secrets.len(),
        "every secret is exported: {seen:?}"
    );
    let kustomization = std::fs::read_to_string(exported.dir.join("kustomization.yaml")).unwrap();
    assert!(kustomization.contains("holds secrets in plain text"));
    assert!(kustomization.contains("#   secret-shop-alertmanager.yaml"));
}

#[test]
fn kustomize_builds_every_export() {
    let Some(kustomize) = pinned(testsupport::KUSTOMIZE) else {
        return;
    };
    for exported in every_fixture() {
        let out = run_ok(
            Command::new(&kustomize).arg("build").arg(&exported.dir),
            &format!("kustomize build of {}", exported.name),
        );
        let documents = out.split("\n---\n").count();
        assert_eq!(
            documents,
            exported.objects().len(),
            "{}:\n{out}",
            exported.name
        );
    }
}

const CORE_KINDS: [&str; 5] = [
    "ConfigMap",
    "Secret",
    "Service",
    "Deployment",
    "StatefulSet",
];
/// The oldest Kubernetes kube-prometheus-stack supports, and the newest schemas bundled.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.25.0", "1.37.0"];

#[test]
fn core_objects_validate_against_kubernetes_schemas_unknown_fields_rejected() {
    let Some(validate) = venv_tool("kubernetes-validate") else {
        return;
    };
    let mut checked = 0;
    for exported in every_fixture() {
        let core: Vec<PathBuf> = exported
            .objects()
            .into_iter()
            .filter(|(_, o)| CORE_KINDS.contains(&o["kind"].as_str().unwrap()))
            .map(|(name, _)| exported.dir.join(name))
            .collect();
        checked += core.len();
        let kinds: Vec<String> = exported
            .objects()
            .values()
            .map(|o| o["kind"].to_string())
            .collect();
        assert!(
            kinds
                .iter()
                .all(|k| CORE_KINDS.contains(&k.trim_matches('"'))
                    || CUSTOM_KINDS.iter().any(|(c, _)| c == &k.trim_matches('"'))),
            "{}: a kind neither validator checks: {kinds:?}",
            exported.name
        );
        if core.is_empty() {
            continue;
        }
        for version in KUBERNETES_VERSIONS {
            run_ok(
                Command::new(&validate)
                    .args(["--strict", "--quiet", "-k", version])
                    .args(&core),
                &format!("kubernetes-validate {version} of {}", exported.name),
            );
        }
    }
    assert!(checked > 0, "no core objects: the check proved nothing");

    // The control: a misspelt field deep in a Deployment is refused.
    let full = export("full", &[]);
    let path = full.dir.join("deployment-shop-agent.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replace(
        "readOnlyRootFilesystem: true",
        "readOnlyRootFileSystem: true",
    );
    assert_ne!(text, broken);
    std::fs::write(&path, broken).unwrap();
    let out = run_fails(
        Command::new(&validate)
            .args(["--strict", "-k", "1.37.0"])
            .arg(&path),
        "kubernetes-validate of a misspelt field",
    );
    assert!(out.contains("readOnlyRootFileSystem"), "{out}");
}

/// The custom resources the export writes, and their CRD files (v0.93.0).
const CUSTOM_KINDS: [(&str, &str); 3] = [
    ("ScrapeConfig", "monitoring.coreos.com_scrapeconfigs.yaml"),
    (
        "PrometheusRule",
        "monitoring.coreos.com_prometheusrules.yaml",
    ),
    (
        "AlertmanagerConfig",
        "monitoring.coreos.com_alertmanagerconfigs.yaml",
    ),
];

fn crd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crds/prometheus-operator-v0.93.0")
}

/// Marks every object schema that lists its properties as closed: the API server prunes (or,
/// with kubectl's field validation, refuses) unknown fields, which a plain JSON Schema would
/// let through. Schemas that preserve unknown fields stay open. The patterns are Go's RE2; the
/// one construct ECMAScript regexes lack, an inline `(?i)`, is dropped (those patterns become
/// case-sensitive: stricter, and on fields the export does not write).
fn close_objects(schema: &mut Json) {
    match schema {
        Json::Object(map) => {
            if let Some(Json::String(pattern)) = map.get_mut("pattern") {
                *pattern = pattern.replace("(?i)", "");
            }
            let preserves =
                map.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true));
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !preserves
            {
                map.insert("additionalProperties".into(), Json::Bool(false));
            }
            for value in map.values_mut() {
                close_objects(value);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// The strict JSON Schema of one CRD's served version `version`.
fn strict_schema(file: &str, version: &str) -> Json {
    let text = std::fs::read_to_string(crd_dir().join(file)).unwrap();
    let crd: Json = serde_yaml::from_str(&text).unwrap();
    let served = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("{file} has no version {version}"));
    let mut schema = served["schema"]["openAPIV3Schema"].clone();
    close_objects(&mut schema);
    // AlertmanagerConfig's child routes are free-form in the CRD; the operator parses them as
    // routes, so they are checked as routes.
    if let Some(route) = schema.pointer_mut("/properties/spec/properties/route/properties/routes") {
        route["items"] = serde_json::json!({"$ref": "#/properties/spec/properties/route"});
    }
    schema
}

/// Writes the strict schemas into `dir`: kind -> schema file.
fn strict_schemas(dir: &Path) -> BTreeMap<&'static str, PathBuf> {
    CUSTOM_KINDS
        .iter()
        .map(|(kind, file)| {
            let version = if *kind == "PrometheusRule" {
                "v1"
            } else {
                "v1alpha1"
            };
            let path = dir.join(format!("{kind}.json"));
            std::fs::write(
                &path,
                serde_json::to_vec(&strict_schema(file, version)).unwrap(),
            )
            .unwrap();
            (*kind, path)
        })
        .collect()
}

fn check_jsonschema(tool: &Path, schema: &Path, files: &[PathBuf]) -> Command {
    let mut command = Command::new(tool);
    command.arg("--schemafile").arg(schema).args(files);
    command
}

#[test]
fn custom_resources_validate_against_the_operator_crds_unknown_fields_rejected() {
    let Some(tool) = venv_tool("check-jsonschema") else {
        return;
    };
    let schemas_dir = tempfile::tempdir().unwrap();
    let schemas = strict_schemas(schemas_dir.path());
    let mut checked = BTreeMap::new();
    for exported in every_fixture() {
        for (kind, schema) in &schemas {
            let of_kind: Vec<PathBuf> = exported
                .of_kind(kind)
                .into_iter()
                .map(|(name, object)| {
                    let group_version = object["apiVersion"].as_str().unwrap();
                    assert!(
                        group_version.starts_with("monitoring.coreos.com/"),
                        "{name}"
                    );
                    exported.dir.join(name)
                })
                .collect();
            if of_kind.is_empty() {
                continue;
            }
            *checked.entry(*kind).or_insert(0) += of_kind.len();
            run_ok(
                &mut check_jsonschema(&tool, schema, &of_kind),
                &format!("check-jsonschema {kind} of {}", exported.name),
            );
        }
    }
    assert_eq!(
        checked.len(),
        3,
        "every custom kind was checked: {checked:?}"
    );

    // The controls: an unknown field at the top of a spec, deep in a child route, and a value
    // outside an enum are each refused.
    let full = export("full", &[]);
    let cases = [
        (
            "scrapeconfig-shop-payment.yaml",
            "ScrapeConfig",
            "  honorLabels: false\n",
            "  honorLabels: false\n  honourLabels: true\n",
            "honourLabels",
        ),
        (
            "alertmanagerconfig-shop-channels.yaml",
            "AlertmanagerConfig",
            "      continue: true\n",
            "      continue: true\n      contineu: true\n",
            "contineu",
        ),
        (
            "scrapeconfig-shop-payment.yaml",
            "ScrapeConfig",
            "scheme: HTTPS",
            "scheme: HTTP2",
            "HTTP2",
        ),
        (
            "prometheusrule-shop-alerts.yaml",
            "PrometheusRule",
            "    rules:\n",
            "    ruless: []\n    rules:\n",
            "ruless",
        ),
    ];
    for (file, kind, from, to, word) in cases {
        let path = full.dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let out = run_fails(
            &mut check_jsonschema(&tool, &schemas[kind], std::slice::from_ref(&path)),
            &format!("check-jsonschema of {file} with {word}"),
        );
        assert!(
            out.contains(word) || out.contains("is not one of"),
            "{word}: {out}"
        );
        std::fs::write(&path, text).unwrap();
    }
}

#[test]
fn prometheus_rule_groups_pass_promtool() {
    let Some(promtool) = pinned(testsupport::PROMTOOL) else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for exported in every_fixture() {
        for (name, object) in exported.of_kind("PrometheusRule") {
            let rules = temp.path().join(format!("{}-{name}", exported.name));
            std::fs::write(&rules, serde_yaml::to_string(&object["spec"]).unwrap()).unwrap();
            let out = run_ok(
                Command::new(&promtool).args(["check", "rules"]).arg(&rules),
                &format!("promtool check rules of {name} ({})", exported.name),
            );
            assert!(!out.contains("WARNING"), "{name}: {out}");
            for group in object["spec"]["groups"].as_array().unwrap() {
                for rule in group["rules"].as_array().unwrap() {
                    assert_eq!(rule["labels"]["namespace"], "monitoring", "{name}");
                    assert!(rule["labels"]["monstack_project"].is_string(), "{name}");
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "too few PrometheusRules to prove anything: {checked}"
    );
}

#[test]
fn the_builtin_target_down_alert_watches_the_stacks_jobs_only() {
    let full = export("full", &[]);
    let rules = &full.objects()["prometheusrule-shop-builtin-alerts.yaml"];
    let target_down = rules["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "MonstackTargetDown")
        .unwrap()
        .clone();
    assert_eq!(
        target_down["expr"],
        r#"up{job=~"order|payment|etcd|etcd-discovered"} == 0"#
    );
    assert_eq!(rules["spec"]["groups"][0]["interval"], "15s");
}

#[test]
fn the_output_directory_is_replaced_only_when_it_holds_an_earlier_export() {
    let exported = export("full", &[]);
    // Again: nothing changes.
    let again = exported.project.run(&["export", "kubernetes", "-o", "k8s"]);
    again.success();
    assert!(again.stderr.contains("0 changed"), "{}", again.stderr);

    // A job removed from the manifest: its ScrapeConfig goes.
    let manifest = exported.project.read("monstack.yaml");
    let without_payment = manifest.replace("  - job: payment\n", "  - job: payment2\n");
    std::fs::write(
        exported.project.path().join("monstack.yaml"),
        without_payment,
    )
    .unwrap();
    let run = exported.project.run(&["export", "kubernetes", "-o", "k8s"]);
    run.success();
    assert!(!exported.dir.join("scrapeconfig-shop-payment.yaml").exists());
    assert!(exported
        .dir
        .join("scrapeconfig-shop-payment2.yaml")
        .exists());
    assert!(run.stderr.contains("1 stale removed"), "{}", run.stderr);

    // Not into a directory of something else.
    let foreign = exported.project.path().join("other");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("deployment.yaml"), "kind: Deployment\n").unwrap();
    let refused = exported
        .project
        .run(&["export", "kubernetes", "-o", "other"]);
    refused.code(2);
    assert!(
        refused.stderr.contains("holds no earlier export"),
        "{}",
        refused.stderr
    );
    assert!(foreign.join("deployment.yaml").exists());
}

#[test]
fn bad_options_are_refused_before_anything_is_written() {
    let project = project_of("full");
    for args in [
        &["--namespace", "Monitoring"][..],
        &["--release", "-x"],
        &["--agent-image", "a b"],
        &["--etcd", "etcd:2379"],
    ] {
        let mut all = vec!["export", "kubernetes", "-o", "k8s"];
        all.extend_from_slice(args);
        let run: Run = project.run(&all);
        run.code(2);
        assert!(!project.exists("k8s"), "{args:?}");
    }
}

#[test]
fn an_etcd_of_the_cluster_replaces_the_exported_one() {
    let exported = export(
        "full",
        &[
            "--etcd",
            "http://etcd.infra.svc:2379",
            "--agent-image",
            "registry.example/monstack-agent:1",
        ],
    );
    let objects = exported.objects();
    assert!(
        !objects
            .keys()
            .any(|k| k.contains("-etcd.yaml") && !k.contains("discovered")),
        "{:?}",
        objects.keys()
    );
    let agent = &objects["deployment-shop-agent.yaml"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(agent["image"], "registry.example/monstack-agent:1");
    let args: Vec<&str> = agent["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--etcd", "http://etcd.infra.svc:2379"]),
        "{args:?}"
    );
}
