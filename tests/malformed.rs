//! Malformed manifests: each must fail with exit code 2, point at the exact line and column with
//! the exact message, and write nothing.

use crate::support::Project;

struct Case {
    name: &'static str,
    manifest: &'static str,
    /// Every `file:line:col: message` headline expected, in order.
    expected: &'static [&'static str],
    /// A hint that must appear somewhere in the output.
    hint: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "unknown top-level key",
        manifest: "targts: []\n",
        expected: &["monstack.yaml:1:1: unknown field `targts` in the manifest"],
        hint: Some("did you mean `targets`?"),
    },
    Case {
        name: "unknown key in a job",
        manifest: "targets:\n  - job: api\n    tragets: [\"a:1\"]\n",
        expected: &["monstack.yaml:3:5: unknown field `tragets` in a scrape job"],
        hint: Some("did you mean `targets`?"),
    },
    Case {
        name: "duplicate job names",
        manifest: "targets:\n  - job: api\n    targets: [\"a:1\"]\n  - job: api\n    targets: [\"b:1\"]\n",
        expected: &["monstack.yaml:4:10: duplicate job name `api`"],
        hint: Some("job `api` is already defined at line 2"),
    },
    Case {
        name: "alert notifies an undefined channel",
        manifest: "alertmanager: {}\nchannels:\n  - name: ops\n    webhook: {url: \"http://sink:1/x\"}\nalerts:\n  - name: Down\n    expr: up == 0\n    notify: [opz]\n",
        expected: &["monstack.yaml:8:14: undefined channel `opz`"],
        hint: Some("did you mean `ops`?"),
    },
    Case {
        name: "bad duration",
        manifest: "prometheus:\n  scrape_interval: 15 seconds\n",
        expected: &["monstack.yaml:2:20: `scrape_interval` is not a valid duration: `15 seconds` has an unknown unit `seconds`"],
        hint: Some("durations look like `15s`"),
    },
    Case {
        name: "bad alert for",
        manifest: "alerts:\n  - name: Down\n    expr: up == 0\n    for: 5min\n",
        expected: &["monstack.yaml:4:10: `for` is not a valid duration: `5min` has an unknown unit `min`"],
        hint: None,
    },
    Case {
        name: "target with a scheme",
        manifest: "targets:\n  - job: api\n    targets: [\"https://api.local:8443/metrics\"]\n",
        expected: &["monstack.yaml:3:15: invalid target `https://api.local:8443/metrics`: targets are `host:port`, without a scheme"],
        hint: Some("write `api.local:8443` and set `scheme: https`"),
    },
    Case {
        name: "target without a port",
        manifest: "targets:\n  - job: api\n    targets: [api.local]\n",
        expected: &["monstack.yaml:3:15: invalid target `api.local`: the port is missing"],
        hint: Some("e.g. `api.local:9100`"),
    },
    Case {
        name: "port out of range",
        manifest: "prometheus:\n  port: 70000\n",
        expected: &["monstack.yaml:2:9: port 70000 is out of range"],
        hint: Some("ports are 1 to 65535"),
    },
    Case {
        name: "duplicate host ports",
        manifest: "grafana:\n  port: 9090\n",
        expected: &["monstack.yaml:2:9: port 9090 is used by both `grafana` and `prometheus`"],
        hint: Some("`prometheus` (its default) already has 9090"),
    },
    Case {
        name: "unknown bundled dashboard",
        manifest: "dashboards:\n  - go-runtim\n",
        expected: &["monstack.yaml:2:5: unknown bundled dashboard `go-runtim`"],
        hint: Some("did you mean `go-runtime`?"),
    },
    Case {
        name: "channel of no kind",
        manifest: "alertmanager: {}\nchannels:\n  - name: ops\n",
        expected: &["monstack.yaml:3:5: channel `ops` has no kind"],
        hint: Some("add one of: email, dingtalk, webhook, slack"),
    },
    Case {
        name: "channel of two kinds",
        manifest: "alertmanager: {}\nchannels:\n  - name: ops\n    webhook: {url: \"http://a:1/\"}\n    slack: {url: \"https://hooks.slack.com/x\"}\n",
        expected: &["monstack.yaml:5:5: channel `ops` has 2 kinds (webhook, slack); a channel has exactly one"],
        hint: None,
    },
    Case {
        name: "email channel without smtp",
        manifest: "alertmanager: {}\nchannels:\n  - name: mail\n    email: {to: [ops@example.com]}\n",
        expected: &["monstack.yaml:4:5: email channel `mail` needs an SMTP server, and there is no `smtp` section"],
        hint: Some("add `smtp:"),
    },
    Case {
        name: "unset environment variable",
        manifest: "alertmanager: {}\nchannels:\n  - name: ding\n    dingtalk: {url: \"${MONSTACK_TEST_UNSET_WEBHOOK}\"}\n",
        expected: &["monstack.yaml:4:21: environment variable MONSTACK_TEST_UNSET_WEBHOOK is not set"],
        hint: Some("${MONSTACK_TEST_UNSET_WEBHOOK:-default}"),
    },
    Case {
        name: "yaml syntax error",
        manifest: "targets:\n  - job: api\n    targets: [\"a:1\"\n",
        expected: &["monstack.yaml:4:1: invalid YAML: while parsing a flow sequence, expected ',' or ']'"],
        hint: Some("indentation"),
    },
    Case {
        name: "duplicate yaml key",
        manifest: "prometheus: {}\ngrafana: {}\nprometheus: {}\n",
        expected: &["monstack.yaml:3:1: invalid YAML: duplicate key `prometheus`"],
        hint: None,
    },
    Case {
        name: "invalid label name",
        manifest: "targets:\n  - job: api\n    targets: [\"a:1\"]\n    labels: {1zone: eu}\n",
        expected: &["monstack.yaml:4:14: invalid label name `1zone`"],
        hint: Some("label names are letters, digits and `_`"),
    },
    Case {
        name: "PromQL: two expressions side by side",
        manifest: "alerts:\n  - name: A\n    expr: \"up x\"\n",
        expected: &["monstack.yaml:3:11: `expr` is not valid PromQL: unexpected `x` after `up` at column 4"],
        hint: Some("put an operator between them"),
    },
    Case {
        name: "PromQL: rate of an instant vector",
        manifest: "alerts:\n  - name: A\n    expr: \"rate(up)\"\n",
        expected: &["monstack.yaml:3:11: `expr` is not valid PromQL: `rate` expects a range vector argument, got an instant vector at column 1"],
        hint: Some("write rate(up[5m])"),
    },
    Case {
        name: "PromQL: unknown function",
        manifest: "alerts:\n  - name: A\n    expr: \"nonexistent_func(up)\"\n",
        expected: &["monstack.yaml:3:11: `expr` is not valid PromQL: unknown function `nonexistent_func` at column 1"],
        hint: Some("functions are listed"),
    },
    Case {
        name: "PromQL: empty selector",
        manifest: "alerts:\n  - name: A\n    expr: \"{}\"\n",
        expected: &["monstack.yaml:3:11: `expr` is not valid PromQL: a selector needs a metric name or a matcher that does not match the empty string"],
        hint: Some("{job=~\".+\"}"),
    },
    Case {
        name: "a job's own timeout longer than its interval",
        manifest: "targets:\n  - job: api\n    targets: [\"a:1\"]\n    interval: 5s\n    timeout: 10s\n",
        expected: &["monstack.yaml:5:14: scrape timeout 10s is longer than the interval 5s in job `api`"],
        hint: Some("set `timeout` to at most the interval"),
    },
    Case {
        name: "unknown fallback scrape protocol",
        manifest: "targets:\n  - job: api\n    targets: [\"a:1\"]\n    fallback_scrape_protocol: PrometheusText0.4\n",
        expected: &["monstack.yaml:4:31: `fallback_scrape_protocol` cannot be `PrometheusText0.4`"],
        hint: Some("did you mean `PrometheusText0.0.4`?"),
    },
    Case {
        name: "scrape protocol listed twice",
        manifest: "targets:\n  - job: api\n    targets: [\"a:1\"]\n    scrape_protocols: [PrometheusProto, PrometheusProto]\n",
        expected: &["monstack.yaml:4:41: `PrometheusProto` is listed twice in `scrape_protocols`"],
        hint: None,
    },
    Case {
        name: "scrape timeout longer than interval",
        manifest: "prometheus:\n  scrape_interval: 5s\n  scrape_timeout: 10s\n",
        expected: &["monstack.yaml:3:19: `scrape_timeout` (10s) is longer than `scrape_interval` (5s)"],
        hint: None,
    },
    Case {
        name: "etcd discovery without etcd",
        manifest: "discovery:\n  etcd: {prefix: /service/}\n",
        expected: &["monstack.yaml:2:3: etcd discovery needs the `etcd` service, which is not enabled"],
        hint: Some("add `etcd: {}`"),
    },
    Case {
        name: "consul server with a path",
        manifest: "discovery:\n  consul: {server: 'consul:8500/v1'}\n",
        expected: &["monstack.yaml:2:20: `server` must be the agent's address without a path or user, found `consul:8500/v1`"],
        hint: Some("e.g. `consul.example.com:8500`"),
    },
    Case {
        name: "consul token twice",
        manifest: "discovery:\n  consul: {token: abc, token_file: consul.token}\n",
        expected: &["monstack.yaml:2:36: `token` and `token_file` both give the Consul token"],
        hint: Some("keep one of them"),
    },
    Case {
        name: "consul token file missing",
        manifest: "discovery:\n  consul:\n    token_file: missing.token\n",
        expected: &["monstack.yaml:3:17: cannot read the token file `missing.token`: no such file"],
        hint: Some("paths are relative to the manifest's directory"),
    },
    Case {
        name: "weak influxdb password",
        manifest: "influxdb: {password: abc}\n",
        expected: &["monstack.yaml:1:22: the InfluxDB `password` is too weak"],
        hint: Some("at least 8 characters"),
    },
    Case {
        name: "datasource in the way of influxdb's",
        manifest: "influxdb: {}\ndatasources:\n  - {name: Influx, type: influxdb, uid: influxdb, url: 'http://x:8086'}\n",
        expected: &["monstack.yaml:3:5: datasource `Influx` takes the name or uid of the InfluxDB datasource monstack provisions (`InfluxDB`, uid `influxdb`)"],
        hint: Some("give it another name and uid"),
    },
    Case {
        name: "etcd endpoint without a scheme",
        manifest: "discovery:\n  etcd:\n    endpoints: [\"10.0.0.11:2379\"]\n",
        expected: &["monstack.yaml:3:17: endpoint `10.0.0.11:2379` has no scheme"],
        hint: Some("write `https://10.0.0.11:2379`"),
    },
    Case {
        name: "etcd endpoint on the loopback",
        manifest: "discovery:\n  etcd:\n    endpoints: [\"http://127.0.0.1:2379\"]\n",
        expected: &["monstack.yaml:3:17: endpoint `http://127.0.0.1:2379` is this host's loopback, which the agent's container cannot reach"],
        hint: Some("Docker's bridge 172.17.0.1"),
    },
    Case {
        name: "etcd endpoints and the stack's etcd",
        manifest: "etcd: {}\ndiscovery:\n  etcd:\n    endpoints: [\"http://10.0.0.11:2379\"]\n",
        expected: &["monstack.yaml:3:3: `discovery.etcd.endpoints` names an existing cluster, and the stack's own `etcd` is enabled too"],
        hint: Some("remove the top-level `etcd:`"),
    },
    Case {
        name: "etcd tls with an http endpoint, a key without cert, a missing CA",
        manifest: "discovery:\n  etcd:\n    endpoints: [\"http://10.0.0.11:2379\"]\n    tls: {ca: missing-ca.pem, key: key.pem}\n",
        expected: &[
            "monstack.yaml:3:17: `tls` is given but this endpoint is `http://`",
            "monstack.yaml:4:15: `tls.ca`: cannot read missing-ca.pem: No such file or directory (os error 2)",
            "monstack.yaml:4:36: `tls.key`: cannot read key.pem: No such file or directory (os error 2)",
            "monstack.yaml:4:36: `tls.key` without `tls.cert`",
        ],
        hint: Some("paths are relative to the manifest's directory"),
    },
    Case {
        name: "etcd endpoint with credentials",
        manifest: "discovery:\n  etcd:\n    endpoints: [\"https://root:hunter22@e1.lan:2379\"]\n",
        expected: &["monstack.yaml:3:17: this endpoint carries credentials (`user:password@`), which do not go into the URL"],
        hint: Some("use `username` and `password_file`"),
    },
    Case {
        name: "etcd endpoint with a path, without a port, listed twice",
        manifest: "discovery:\n  etcd:\n    endpoints: [\"https://e2.lan:2379/v3\", \"https://e3.lan\", \"https://e4.lan:2379\", \"https://e4.lan:2379/\"]\n",
        expected: &[
            "monstack.yaml:3:17: endpoint `https://e2.lan:2379/v3` has a path or a query",
            "monstack.yaml:3:43: endpoint `https://e3.lan` has no port",
            "monstack.yaml:3:84: endpoint `https://e4.lan:2379/` is listed twice",
        ],
        hint: Some("`https://e3.lan:2379`"),
    },
    Case {
        name: "etcd username without password_file",
        manifest: "discovery:\n  etcd:\n    endpoints: [\"https://etcd-1.lan:2379/\"]\n    username: monstack\n",
        expected: &["monstack.yaml:4:15: `username` without `password_file`"],
        hint: Some("readable by you alone"),
    },
    Case {
        name: "etcd tls without endpoints",
        manifest: "etcd: {}\ndiscovery:\n  etcd: {tls: {}}\n",
        expected: &["monstack.yaml:3:15: `tls` is for an existing cluster's `endpoints`, and there are none"],
        hint: Some("add `endpoints:"),
    },
    Case {
        name: "duplicate channel names",
        manifest: "alertmanager: {}\nchannels:\n  - name: ops\n    webhook: {url: \"http://a:1/\"}\n  - name: ops\n    webhook: {url: \"http://b:1/\"}\n",
        expected: &["monstack.yaml:5:11: duplicate channel name `ops`"],
        hint: Some("already defined at line 3"),
    },
    Case {
        name: "invalid alert name",
        manifest: "alerts:\n  - name: Too Many\n    expr: up == 0\n",
        expected: &["monstack.yaml:2:11: invalid alert name `Too Many`"],
        hint: None,
    },
    Case {
        name: "unbalanced expression",
        manifest: "alerts:\n  - name: Busy\n    expr: rate(x[5m] > 1\n",
        expected: &["monstack.yaml:3:11: `expr` is not valid PromQL: unclosed `(`"],
        hint: None,
    },
    Case {
        name: "bind is not an address",
        manifest: "bind: localhost\n",
        expected: &["monstack.yaml:1:7: `bind` must be an IP address, found `localhost`"],
        hint: Some("write 127.0.0.1"),
    },
    Case {
        name: "missing dashboard file",
        manifest: "dashboards:\n  - file: dashboards/nope.json\n",
        expected: &["monstack.yaml:2:11: cannot read dashboard `dashboards/nope.json`: no such file"],
        hint: Some("relative to the manifest's directory"),
    },
    Case {
        name: "weak grafana password",
        manifest: "grafana:\n  admin_password: admin\n",
        expected: &["monstack.yaml:2:19: `admin_password` is too weak"],
        hint: Some("leave it empty"),
    },
    Case {
        name: "channels without alertmanager",
        manifest: "channels:\n  - name: ops\n    webhook: {url: \"http://a:1/\"}\n",
        expected: &["monstack.yaml:1:1: channels need Alertmanager to deliver alerts, and the `alertmanager` service is not enabled"],
        hint: Some("add `alertmanager: {}`"),
    },
    Case {
        name: "list expected",
        manifest: "targets:\n  job: api\n",
        expected: &["monstack.yaml:2:3: `targets` must be a list, found a mapping"],
        hint: None,
    },
    Case {
        name: "reserved job name",
        manifest: "targets:\n  - job: prometheus\n    targets: [\"a:1\"]\n",
        expected: &["monstack.yaml:2:10: job name `prometheus` is reserved for the stack's own scrape job"],
        hint: Some("my-prometheus"),
    },
    Case {
        name: "yaml 1.1 boolean",
        manifest: "targets:\n  - job: api\n    honor_labels: yes\n",
        expected: &["monstack.yaml:3:19: `honor_labels` must be true or false, found `yes`"],
        hint: Some("YAML 1.2 booleans"),
    },
    Case {
        name: "misspelt engine",
        manifest: "alerting: {engine: alertmanger}\n",
        expected: &["monstack.yaml:1:20: `engine` cannot be `alertmanger`"],
        hint: Some("did you mean `alertmanager`?"),
    },
    Case {
        name: "unsupported version",
        manifest: "version: 2\n",
        expected: &["monstack.yaml:1:10: `version` is 2, outside 1..=1"],
        hint: None,
    },
    Case {
        name: "one instance label on several targets",
        manifest: "targets:\n  - job: api\n    targets: [\"a:1\", \"b:1\"]\n    labels: {instance: api}\n",
        expected: &["monstack.yaml:4:14: label `instance` on a job with 2 targets makes them one target"],
        hint: Some("Prometheus sets `instance` to each target's address"),
    },
    Case {
        name: "every problem at once",
        manifest: "project: Shop!\ntargets:\n  - job: api\n    targets: [\"a\"]\n    interval: 1x\nalerts:\n  - expr: up == 0\n",
        expected: &[
            "monstack.yaml:1:10: invalid project name `Shop!`",
            "monstack.yaml:4:15: invalid target `a`: the port is missing",
            "monstack.yaml:5:15: `interval` is not a valid duration: `1x` has an unknown unit `x`",
            "monstack.yaml:7:5: An alert is missing the required field `name`",
        ],
        hint: None,
    },
    Case {
        name: "probes without the blackbox exporter",
        manifest: "probes:\n  - http: https://shop.example.com/\n",
        expected: &["monstack.yaml:1:1: probes need the blackbox exporter, and the `blackbox_exporter` service is not enabled"],
        hint: Some("add `blackbox_exporter: {}`"),
    },
    Case {
        name: "probe of localhost",
        manifest: "blackbox_exporter: {}\nprobes:\n  - tcp: localhost:5432\n",
        expected: &["monstack.yaml:3:10: tcp probe `localhost:5432`: inside the stack, `localhost` is the blackbox exporter's own container"],
        hint: Some("a service on this machine is `host.docker.internal`"),
    },
    Case {
        name: "probe with two kinds and a status code out of range",
        manifest: "blackbox_exporter: {}\nprobes:\n  - http: http://a.example/\n    icmp: a.example\n  - http: http://b.example/\n    status: [200, 99]\n",
        expected: &[
            "monstack.yaml:4:5: a probe has exactly one of http, tcp, icmp",
            "monstack.yaml:6:19: `99` is not an HTTP status code",
        ],
        hint: Some("make one probe per check"),
    },
    Case {
        name: "unknown key in a probe",
        manifest: "blackbox_exporter: {}\nprobes:\n  - http: http://a.example/\n    statuses: [200]\n",
        expected: &["monstack.yaml:4:5: unknown field `statuses` in a probe"],
        hint: Some("did you mean `status`?"),
    },
    Case {
        name: "node_exporter on a taken port",
        manifest: "node_exporter: {port: 9090}\n",
        expected: &["monstack.yaml:1:23: port 9090 is used by both `node-exporter` and `prometheus`"],
        hint: Some("`prometheus` (its default) already has 9090"),
    },
];

#[test]
fn every_malformed_manifest_is_rejected_precisely_and_writes_nothing() {
    assert!(CASES.len() >= 25);
    let mut failures = Vec::new();
    for case in CASES {
        let project = Project::new().manifest(case.manifest);
        for command in ["validate", "render"] {
            let run = project.run(&[command]);
            let headlines = run.headlines();
            if run.code != 2 || headlines != case.expected {
                failures.push(format!(
                    "{} ({command}): exit {}\n  expected: {:?}\n  got:      {:?}\n{}",
                    case.name, run.code, case.expected, headlines, run.stderr
                ));
            }
            if let Some(hint) = case.hint {
                if !run.stderr.contains(hint) {
                    failures.push(format!(
                        "{} ({command}): hint `{hint}` missing from:\n{}",
                        case.name, run.stderr
                    ));
                }
            }
            if project.exists(".monstack") {
                failures.push(format!("{} ({command}): .monstack was created", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
