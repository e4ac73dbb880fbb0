use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::model::{
    CopiedFile, PrometheusMode, QueueConfig, RemoteAuth, RemoteTls, RemoteWrite, Stack,
    WriteRelabel,
};
use crate::render::{prometheus::CONFIG_PATH, render, testkit};

fn copied(text: &str) -> CopiedFile {
    CopiedFile {
        source: "x".into(),
        contents: text.as_bytes().to_vec(),
    }
}

fn remote(name: &str) -> RemoteWrite {
    RemoteWrite {
        name: name.into(),
        url: format!("https://{name}.example.com/api/v1/push"),
        headers: BTreeMap::new(),
        auth: None,
        tls: None,
        remote_timeout: None,
        queue: QueueConfig::default(),
        relabel: vec![],
    }
}

fn with_remotes(remotes: Vec<RemoteWrite>) -> Stack {
    let mut stack = testkit::full();
    stack.prometheus.remote_write = remotes;
    stack
}

fn prometheus_yml(stack: &Stack) -> Value {
    let tree = render(stack).unwrap();
    serde_yaml::from_str(tree.get(CONFIG_PATH).unwrap().text()).unwrap()
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

#[test]
fn a_receiver_with_everything_renders_prometheus_keys_and_secret_files() {
    let mut full = remote("mimir");
    full.headers.insert("X-Scope-OrgID".into(), "team-a".into());
    full.auth = Some(RemoteAuth::Basic {
        username: "u".into(),
        password: copied("pw\n"),
    });
    full.tls = Some(RemoteTls {
        ca: Some(copied("CA")),
        client: Some((copied("CERT"), copied("KEY"))),
        server_name: Some("mimir.internal".into()),
        insecure_skip_verify: false,
    });
    full.queue = QueueConfig {
        capacity: Some(20000),
        max_samples_per_send: Some(5000),
        batch_send_deadline: Some(crate::model::Duration::from_secs(10)),
        ..QueueConfig::default()
    };
    full.relabel = vec![WriteRelabel {
        source_labels: vec!["__name__".into()],
        regex: Some("up|node_.*".into()),
        action: Some("keep".into()),
        ..WriteRelabel::default()
    }];
    let mut bearer = remote("thanos:19291");
    bearer.auth = Some(RemoteAuth::Bearer {
        token: copied("tok"),
    });
    let stack = with_remotes(vec![full, bearer]);
    let config = prometheus_yml(&stack);
    assert_eq!(
        config["remote_write"],
        yaml(
            "- url: https://mimir.example.com/api/v1/push\n  \
               name: mimir\n  \
               headers: {X-Scope-OrgID: team-a}\n  \
               basic_auth: {username: u, password_file: remote_write/1-mimir/password}\n  \
               tls_config: {ca_file: remote_write/1-mimir/ca.pem, cert_file: remote_write/1-mimir/cert.pem, \
                            key_file: remote_write/1-mimir/key.pem, server_name: mimir.internal}\n  \
               queue_config: {capacity: 20000, max_samples_per_send: 5000, batch_send_deadline: 10s}\n  \
               write_relabel_configs: [{source_labels: [__name__], regex: 'up|node_.*', action: keep}]\n\
             - url: https://thanos:19291.example.com/api/v1/push\n  \
               name: thanos:19291\n  \
               authorization: {type: Bearer, credentials_file: remote_write/2-thanos_19291/token}\n"
        )
    );
    let tree = render(&stack).unwrap();
    let files: Vec<(&str, bool, &str)> = tree
        .files
        .iter()
        .filter(|f| f.path.starts_with("prometheus/remote_write/"))
        .map(|f| (f.path.as_str(), f.secret, f.text()))
        .collect();
    assert_eq!(
        files,
        [
            ("prometheus/remote_write/1-mimir/ca.pem", false, "CA"),
            ("prometheus/remote_write/1-mimir/cert.pem", false, "CERT"),
            ("prometheus/remote_write/1-mimir/key.pem", true, "KEY"),
            ("prometheus/remote_write/1-mimir/password", true, "pw\n"),
            ("prometheus/remote_write/2-thanos_19291/token", true, "tok"),
        ]
    );
    // The secrets live in those files only, never in prometheus.yml.
    let text = tree.get(CONFIG_PATH).unwrap().text();
    for secret in ["pw", "tok", "KEY"] {
        assert!(
            !text.contains(&format!(": {secret}")),
            "{secret} in\n{text}"
        );
    }
    assert!(super::reads_secrets(&stack));
    assert!(!super::reads_secrets(&with_remotes(vec![remote("a")])));
}

#[test]
fn skipping_verification_is_written_only_when_asked() {
    let mut skip = remote("a");
    skip.tls = Some(RemoteTls {
        ca: None,
        client: None,
        server_name: None,
        insecure_skip_verify: true,
    });
    let mut verify = remote("b");
    verify.tls = Some(RemoteTls {
        insecure_skip_verify: false,
        ..skip.tls.clone().unwrap()
    });
    let config = prometheus_yml(&with_remotes(vec![skip, verify]));
    assert_eq!(
        config["remote_write"][0]["tls_config"],
        yaml("{insecure_skip_verify: true}")
    );
    assert_eq!(config["remote_write"][1]["tls_config"], yaml("{}"));
}

#[test]
fn agent_mode_renders_no_rules_alerting_or_grafana() {
    let mut stack = with_remotes(vec![remote("central")]);
    stack.prometheus.mode = PrometheusMode::Agent;
    stack.alertmanager = None;
    stack.alerts.clear();
    stack.channels.clear();
    stack.smtp = None;
    stack.alerting.default_notify.clear();
    stack.alerting.builtin = false;
    stack.grafana.enabled = false;
    stack.dashboards.clear();
    stack.datasources.clear();
    let tree = render(&stack).unwrap();
    let text = tree.get(CONFIG_PATH).unwrap().text();
    assert!(text.contains("# Agent mode"), "{text}");
    let config: Value = serde_yaml::from_str(text).unwrap();
    assert!(config.get("rule_files").is_none());
    assert!(config.get("alerting").is_none());
    assert!(config["global"].get("evaluation_interval").is_none());
    assert!(
        tree.files
            .iter()
            .all(|f| !f.path.starts_with("grafana/") && !f.path.starts_with("prometheus/rules/")),
        "{:?}",
        tree.files.iter().map(|f| &f.path).collect::<Vec<_>>()
    );
    // Even with the built-in pack left on by a hand-built stack, an agent gets no rule files.
    stack.alerting.builtin = true;
    assert!(render(&stack)
        .unwrap()
        .files
        .iter()
        .all(|f| !f.path.starts_with("prometheus/rules/")));
}
