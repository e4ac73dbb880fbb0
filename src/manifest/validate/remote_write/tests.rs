use std::collections::BTreeMap;
use std::path::Path;

use crate::manifest::{self, Source};
use crate::model::{PrometheusMode, RemoteAuth, Stack, WriteRelabel};

/// A project directory with a password, a token and a TLS key beside the manifest.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/password"), "s3cret-pass\n").unwrap();
    std::fs::write(dir.path().join("secrets/token"), "tok-123\n").unwrap();
    std::fs::write(dir.path().join("secrets/empty"), "\n").unwrap();
    std::fs::write(dir.path().join("ca.pem"), "CA\n").unwrap();
    std::fs::write(dir.path().join("cert.pem"), "CERT\n").unwrap();
    std::fs::write(dir.path().join("key.pem"), "KEY\n").unwrap();
    dir
}

fn load(root: &Path, yaml: &str) -> Result<Stack, Vec<(String, Option<String>, usize)>> {
    let source = Source {
        text: yaml,
        display_name: "monstack.yaml",
        root,
    };
    manifest::load(&source, &|_| None).map_err(|d| {
        d.items
            .into_iter()
            .map(|i| (i.message, i.hint, i.pos.line))
            .collect()
    })
}

fn problems(yaml: &str) -> Vec<String> {
    let dir = project();
    match load(dir.path(), yaml) {
        Ok(_) => panic!("expected problems in\n{yaml}"),
        Err(items) => items.into_iter().map(|(m, _, _)| m).collect(),
    }
}

fn remote_yaml(entries: &str) -> String {
    format!("project: t\nprometheus:\n  remote_write:\n{entries}")
}

#[test]
fn presets_fill_in_the_path_and_the_tenant_header() {
    let dir = project();
    let stack = load(
        dir.path(),
        &remote_yaml(
            "    - {name: m, url: 'https://mimir.example.com/', preset: mimir, tenant: team-a}\n\
             \x20   - {name: t, url: 'http://thanos:19291', preset: thanos, tenant: shop}\n\
             \x20   - {name: v, url: 'http://vm:8428', preset: victoriametrics}\n\
             \x20   - {name: vc, url: 'http://vminsert:8480', preset: victoriametrics, tenant: '42:7'}\n\
             \x20   - {url: 'http://plain.example.com:9090/api/v1/write', headers: {X-Scope-OrgID: x}}\n",
        ),
    )
    .unwrap();
    let got: Vec<(&str, &str, BTreeMap<String, String>)> = stack
        .prometheus
        .remote_write
        .iter()
        .map(|r| (r.name.as_str(), r.url.as_str(), r.headers.clone()))
        .collect();
    let h = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
    assert_eq!(
        got,
        [
            (
                "m",
                "https://mimir.example.com/api/v1/push",
                h("X-Scope-OrgID", "team-a")
            ),
            (
                "t",
                "http://thanos:19291/api/v1/receive",
                h("THANOS-TENANT", "shop")
            ),
            ("v", "http://vm:8428/api/v1/write", BTreeMap::new()),
            (
                "vc",
                "http://vminsert:8480/insert/42:7/prometheus/api/v1/write",
                BTreeMap::new()
            ),
            // No name: the URL's host and port.
            (
                "plain.example.com:9090",
                "http://plain.example.com:9090/api/v1/write",
                h("X-Scope-OrgID", "x")
            ),
        ]
    );
    assert_eq!(stack.prometheus.mode, PrometheusMode::Server);
}

#[test]
fn urls_names_tenants_and_headers_are_checked() {
    let messages = problems(&remote_yaml(
        "    - {url: 'ftp://x'}\n\
         \x20   - {url: 'https://user:pw@mimir.example.com', preset: mimir}\n\
         \x20   - {name: a, url: 'http://a/'}\n\
         \x20   - {name: a, url: 'http://b/'}\n\
         \x20   - {name: 'b c', url: 'http://c/'}\n\
         \x20   - {name: d, url: 'http://d/', tenant: x}\n\
         \x20   - {name: e, url: 'http://e/', preset: victoriametrics, tenant: acme}\n\
         \x20   - {name: f, url: 'http://f/api/v1/push', preset: mimir}\n\
         \x20   - {name: g, url: 'http://g/', preset: mimir, tenant: t, headers: {x-scope-orgid: u}}\n\
         \x20   - {name: h, url: 'http://h/', headers: {Authorization: 'Bearer x', Content-Type: y, 'bad header': z}}\n\
         \x20   - {name: i, url: 'http://i/', preset: cortex}\n\
         \x20   - {name: j, url: 'https://j/w?extra_label=env=prod&Token=abc'}\n\
         \x20   - {name: k, url: 'https://k/w?extra_label=env=prod'}\n\
         \x20   - {name: l, url: 'http://l/', headers: {X-A: \"a\\r\\nX-Evil: b\"}}\n",
    ));
    assert_eq!(
        messages,
        [
            "`url` must be an http:// or https:// URL",
            "`url` holds credentials (`user:password@`)",
            "remote_write name `a` is used twice (first on line 6)",
            "invalid remote_write name `b c`",
            "`tenant` needs a `preset`, which says where the tenant goes",
            "`acme` is not a VictoriaMetrics tenant",
            "`url` already ends with /api/v1/push, and `preset: mimir` adds /api/v1/push",
            "`X-Scope-OrgID` is set both in `headers` and by `tenant`",
            "the `Authorization` header cannot be set in `headers`",
            "Prometheus sets `Content-Type` itself and refuses it in `headers`",
            "invalid header name `bad header`",
            "`preset` cannot be `cortex`",
            "`url` holds a credential in its query (`Token=`)",
            "the value of header `X-A` holds a control character",
        ]
    );
}

#[test]
fn secrets_come_from_files_only_and_are_registered_for_redaction() {
    let dir = project();
    let stack = load(
        dir.path(),
        &remote_yaml(
            "    - name: a\n      url: https://a.example.com/w\n      basic_auth: {username: u, password_file: secrets/password}\n      tls: {ca_file: ca.pem, cert_file: cert.pem, key_file: key.pem}\n\
             \x20   - {name: b, url: 'https://b.example.com/w', bearer_token_file: secrets/token}\n",
        ),
    )
    .unwrap();
    let remote = &stack.prometheus.remote_write[0];
    assert!(
        matches!(&remote.auth, Some(RemoteAuth::Basic { username, password })
        if username == "u" && password.contents == b"s3cret-pass\n")
    );
    let tls = remote.tls.as_ref().unwrap();
    assert!(
        !tls.insecure_skip_verify,
        "verification stays on unless asked"
    );
    assert_eq!(tls.ca.as_ref().unwrap().contents, b"CA\n");
    let secrets = stack.secrets();
    for secret in ["s3cret-pass", "KEY", "tok-123"] {
        assert!(
            secrets.contains(&secret),
            "{secret} not redacted: {secrets:?}"
        );
    }
    // There is no key for a password in the manifest itself.
    let messages = problems(&remote_yaml(
        "    - {name: a, url: 'http://a/', basic_auth: {username: u, password: p}}\n",
    ));
    assert_eq!(
        messages,
        [
            "`basic_auth` is missing the required field `password_file`",
            "unknown field `password` in `basic_auth`",
        ]
    );
    let messages = problems(&remote_yaml(
        "    - {name: a, url: 'http://a/', bearer_token_file: secrets/missing}\n\
         \x20   - {name: b, url: 'http://b/', bearer_token_file: secrets/empty}\n\
         \x20   - {name: c, url: 'http://c/', bearer_token_file: secrets/token, basic_auth: {username: u, password_file: secrets/password}}\n\
         \x20   - {name: d, url: 'http://d/', tls: {cert_file: cert.pem}}\n\
         \x20   - {name: e, url: 'http://e/', bearer_token_file: secrets}\n",
    ));
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert!(
        messages[0].starts_with("cannot read `bearer_token_file` secrets/missing"),
        "{messages:?}"
    );
    assert_eq!(messages[1], "`bearer_token_file` secrets/empty is empty");
    assert_eq!(
        messages[2],
        "a receiver takes `basic_auth` or `bearer_token_file`, not both"
    );
    assert_eq!(
        messages[3],
        "a client certificate needs both `cert_file` and `key_file`"
    );
    assert!(messages[4].contains("not a regular file"), "{messages:?}");
}

#[test]
fn keep_and_drop_become_name_rules_and_full_rules_are_checked() {
    let dir = project();
    let stack = load(
        dir.path(),
        &remote_yaml(
            "    - name: a\n      url: http://a/\n      keep: [up, 'node_.*']\n      drop: [node_scrape_collector_duration_seconds]\n      write_relabel_configs:\n        - {source_labels: [env], regex: dev, action: drop}\n      queue_config: {capacity: 500, max_shards: 4, max_samples_per_send: 100, batch_send_deadline: 2s}\n",
        ),
    )
    .unwrap();
    let remote = &stack.prometheus.remote_write[0];
    let rule = |labels: &[&str], regex: &str, action: &str| WriteRelabel {
        source_labels: labels.iter().map(|s| s.to_string()).collect(),
        regex: Some(regex.into()),
        action: Some(action.into()),
        ..WriteRelabel::default()
    };
    assert_eq!(
        remote.relabel,
        [
            rule(&["__name__"], "up|node_.*", "keep"),
            rule(
                &["__name__"],
                "node_scrape_collector_duration_seconds",
                "drop"
            ),
            rule(&["env"], "dev", "drop"),
        ]
    );
    assert_eq!(remote.queue.capacity, Some(500));
    assert_eq!(
        remote
            .queue
            .batch_send_deadline
            .map(|d| d.to_string())
            .as_deref(),
        Some("2s")
    );

    let messages = problems(&remote_yaml(
        "    - name: a\n      url: http://a/\n      keep: ['node_(']\n      drop: []\n      queue_config: {min_shards: 5, max_shards: 2, capacity: 0}\n      write_relabel_configs:\n        - {action: hashmod, source_labels: [a-b]}\n        - {action: explode}\n",
    ));
    assert_eq!(
        messages,
        [
            "`node_(` in `keep` is not a valid regex: missing closing ): `node_(`",
            "`drop` is empty",
            "`min_shards` (5) is more than `max_shards` (2)",
            "`capacity` is 0, outside 1..=10000000",
            "a `hashmod` rule needs `target_label`",
            "a `hashmod` rule needs `modulus`",
            "invalid label name `a-b`",
            "`action` cannot be `explode`",
        ]
    );
}

#[test]
fn agent_mode_needs_a_receiver_and_refuses_what_needs_local_queries() {
    let dir = project();
    let stack = load(
        dir.path(),
        "project: edge\nprometheus: {mode: agent, remote_write: [{url: 'http://c:9090/api/v1/write'}]}\nnode_exporter: {}\n",
    )
    .unwrap();
    assert_eq!(stack.prometheus.mode, PrometheusMode::Agent);
    assert!(!stack.grafana.enabled, "an agent stack has no Grafana");
    assert!(
        !stack.alerting.builtin,
        "an agent evaluates no built-in alerts"
    );

    let messages = problems("project: edge\nprometheus: {mode: agent}\n");
    assert_eq!(
        messages,
        ["`mode: agent` sends every sample to `remote_write`, and there is none"]
    );
    let dir = project();
    let items = load(
        dir.path(),
        "project: edge\n\
         prometheus: {mode: agent, retention: 30d, remote_write_receiver: true, remote_write: [{url: 'http://c/'}]}\n\
         grafana: {port: 3001}\n\
         alertmanager: {}\n\
         alerting: {builtin: true}\n\
         alerts: [{name: A, expr: up == 0}]\n\
         dashboards: [go-runtime]\n\
         influxdb: {}\n",
    )
    .unwrap_err();
    let got: Vec<(&str, usize)> = items.iter().map(|(m, _, l)| (m.as_str(), *l)).collect();
    assert_eq!(
        got,
        [
            ("`retention` has no meaning in agent mode: an agent keeps samples only until they are sent", 2),
            ("`remote_write_receiver` has no meaning in agent mode: an agent accepts no samples from others", 2),
            ("`grafana` cannot run with `prometheus.mode: agent`: an agent answers no queries", 3),
            ("`alertmanager` cannot be used with `prometheus.mode: agent`: an agent sends no alerts", 4),
            ("`alerting` cannot be used with `prometheus.mode: agent`: an agent evaluates no rules, the built-in alerts included", 5),
            ("`alerts` cannot be used with `prometheus.mode: agent`: alert rules are evaluated by a Prometheus server", 6),
            ("`dashboards` cannot be used with `prometheus.mode: agent`: Grafana needs a Prometheus it can query", 7),
            ("`influxdb` cannot be used with `prometheus.mode: agent`: an edge host runs only what collects and forwards samples", 8),
        ]
    );
    assert!(items.iter().all(|(_, hint, _)| hint.is_some()), "{items:?}");
    // `grafana: false`, `alertmanager: false`, `influxdb: false` and
    // `alerting: {builtin: false}` say what an agent does anyway.
    let dir = project();
    load(
        dir.path(),
        "project: edge\nprometheus: {mode: agent, remote_write: [{url: 'http://c/'}]}\ngrafana: false\nalertmanager: false\ninfluxdb: false\nalerting: {builtin: false}\n",
    )
    .unwrap();
}

#[test]
fn skipped_verification_and_world_readable_secrets_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project();
    let private = dir.path().join("secrets/token");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public = dir.path().join("secrets/password");
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stack = load(
        dir.path(),
        &remote_yaml(
            "    - {name: a, url: 'https://a/', bearer_token_file: secrets/token, tls: {insecure_skip_verify: true}}\n\
             \x20   - {name: b, url: 'https://b/', basic_auth: {username: u, password_file: secrets/password}}\n\
             \x20   - {name: c, url: 'https://c/', tls: {insecure_skip_verify: false}}\n",
        ),
    )
    .unwrap();
    assert_eq!(
        stack.warnings,
        [
            "monstack.yaml:4:98: remote_write `a`: TLS verification is off (`insecure_skip_verify: true`): anyone on the path can read and change the samples",
            "monstack.yaml:5:77: secrets/password holds a secret and every user of this machine can read it: `chmod 600 secrets/password`",
        ]
    );
}

#[test]
fn discovery_secret_files_every_user_can_read_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project();
    for (file, mode) in [
        ("secrets/password", 0o644),
        ("secrets/token", 0o604),
        ("key.pem", 0o600),
    ] {
        std::fs::set_permissions(dir.path().join(file), std::fs::Permissions::from_mode(mode))
            .unwrap();
    }
    let yaml = "project: t\ndiscovery:\n  etcd:\n    endpoints: ['https://10.0.0.1:2379']\n    tls: {ca: ca.pem, cert: cert.pem, key: key.pem}\n    username: u\n    password_file: secrets/password\n  consul: {server: 'consul.lan:8500', token_file: secrets/token}\n";
    let stack = load(dir.path(), yaml).unwrap();
    assert_eq!(
        stack.warnings,
        [
            "monstack.yaml:7:20: secrets/password holds a secret and every user of this machine can read it: `chmod 600 secrets/password`",
            "monstack.yaml:8:51: secrets/token holds a secret and every user of this machine can read it: `chmod 600 secrets/token`",
        ]
    );
    // An empty password file would only fail at the first authentication.
    let empty = yaml.replace(
        "password_file: secrets/password",
        "password_file: secrets/empty",
    );
    let problems = load(dir.path(), &empty).unwrap_err();
    assert_eq!(
        problems,
        [(
            "`password_file` secrets/empty is empty".to_string(),
            Some("the file holds the etcd user's password itself".to_string()),
            7
        )]
    );
}

#[test]
fn a_receiver_reachable_from_other_hosts_is_warned_about_and_one_on_loopback_is_not() {
    let dir = project();
    let open = load(
        dir.path(),
        "project: central\nprometheus: {remote_write_receiver: true, bind: 0.0.0.0, port: 9095}\n",
    )
    .unwrap();
    assert_eq!(
        open.warnings,
        ["monstack.yaml:2:1: `remote_write_receiver` on 0.0.0.0:9095: anyone who reaches that address can write samples and query every series, without a password; keep it on an address only your hosts reach, or put an authenticating proxy in front"]
    );
    let local = load(
        dir.path(),
        "project: central\nprometheus: {remote_write_receiver: true}\n",
    )
    .unwrap();
    assert!(local.warnings.is_empty(), "{:?}", local.warnings);
}

#[test]
fn relabel_rules_prometheus_would_refuse_are_refused_here() {
    let messages = problems(&remote_yaml(
        "    - url: 'http://c/'\n\
         \x20     write_relabel_configs:\n\
         \x20       - {action: keepequal, source_labels: [a]}\n\
         \x20       - {action: dropequal, source_labels: [a], target_label: b, regex: x}\n\
         \x20       - {action: labeldrop, source_labels: [a], regex: x}\n",
    ));
    assert_eq!(
        messages,
        [
            "a `keepequal` rule needs `target_label`",
            "a `dropequal` rule takes only `source_labels` and `target_label`, not `regex`",
            "a `labeldrop` rule takes only `regex`, not `source_labels`",
        ]
    );
    let dir = project();
    load(
        dir.path(),
        &remote_yaml(
            "    - url: 'http://c/'\n\
             \x20     write_relabel_configs:\n\
             \x20       - {action: keepequal, source_labels: [a], target_label: b}\n\
             \x20       - {action: labelkeep, regex: 'job|instance'}\n",
        ),
    )
    .unwrap();
}
