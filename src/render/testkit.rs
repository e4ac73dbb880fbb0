//! Hand-built stacks for renderer unit tests (the manifest loader has its own tests).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::model::*;

fn service(image: &str, port: u16) -> Service {
    Service {
        image: image.into(),
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
    }
}

fn d(text: &str) -> Duration {
    Duration::parse(text).unwrap()
}

/// Only the defaults: Prometheus and Grafana, no jobs, no alerting.
pub fn minimal() -> Stack {
    Stack {
        warnings: vec![],
        starter: false,
        project: "minimal".into(),
        root: "/project".into(),
        prometheus: Prometheus {
            service: service("prom/prometheus:v3.5.0", 9090),
            retention: d("15d"),
            retention_size: None,
            scrape_interval: d("15s"),
            scrape_timeout: d("10s"),
            evaluation_interval: d("15s"),
            external_labels: BTreeMap::new(),
            discovery_reload_interval: Some(d("1s")),
            mode: crate::model::PrometheusMode::Server,
            remote_write: vec![],
            remote_write_receiver: false,
        },
        grafana: Grafana {
            enabled: true,
            service: service("grafana/grafana:12.1.1", 3000),
            admin_user: "admin".into(),
            admin_password: None,
        },
        etcd: None,
        alertmanager: None,
        pushgateway: None,
        node_exporter: None,
        blackbox: None,
        influxdb: None,
        probes: vec![],
        agent: None,
        jobs: vec![],
        discovery: Discovery::default(),
        channels: vec![],
        smtp: None,
        alerting: Alerting {
            engine: AlertEngine::Alertmanager,
            default_notify: vec![],
            group_by: vec!["alertname".into(), "job".into()],
            group_wait: d("30s"),
            group_interval: d("5m"),
            repeat_interval: d("4h"),
            builtin: true,
        },
        alerts: vec![],
        datasources: vec![],
        dashboards: vec![],
    }
}

/// The full example from the manifest reference: every service, every channel kind.
pub fn full() -> Stack {
    let mut stack = minimal();
    stack.project = "shop".into();
    stack.etcd = Some(service("quay.io/coreos/etcd:v3.5.21", 2379));
    stack.alertmanager = Some(service("prom/alertmanager:v0.28.1", 9093));
    stack.pushgateway = Some(service("prom/pushgateway:v1.11.1", 9091));
    stack.jobs = vec![
        ScrapeJob {
            name: "order".into(),
            targets: vec!["host.docker.internal:8085".into()],
            metrics_path: "/metrics".into(),
            scheme: Scheme::Http,
            interval: Some(d("10s")),
            timeout: None,
            labels: BTreeMap::from([("instance".to_string(), "go1".to_string())]),
            honor_labels: false,
            fallback_scrape_protocol: None,
            scrape_protocols: vec![],
        },
        ScrapeJob {
            name: "payment".into(),
            targets: vec!["10.0.0.5:9100".into(), "10.0.0.6:9100".into()],
            metrics_path: "/internal/metrics".into(),
            scheme: Scheme::Https,
            interval: None,
            timeout: Some(d("5s")),
            labels: BTreeMap::new(),
            honor_labels: false,
            fallback_scrape_protocol: None,
            scrape_protocols: vec![],
        },
    ];
    stack.discovery.etcd = Some(EtcdDiscovery {
        prefix: "/service/".into(),
        rewrite_loopback: true,
        cluster: None,
    });
    stack.agent = Some(service("", 8060));
    stack.channels = vec![
        Channel {
            name: "ops-mail".into(),
            send_resolved: true,
            kind: ChannelKind::Email {
                to: vec!["ops@example.com".into(), "oncall@example.com".into()],
            },
        },
        Channel {
            name: "ops-ding".into(),
            send_resolved: true,
            kind: ChannelKind::DingTalk {
                url: "https://oapi.dingtalk.com/robot/send?access_token=abc123".into(),
                secret: Some("SECxyz".into()),
                keyword: None,
                at_mobiles: vec![],
                at_all: false,
            },
        },
        Channel {
            name: "hook".into(),
            send_resolved: true,
            kind: ChannelKind::Webhook {
                url: "http://alert-sink:8080/hook".into(),
                max_alerts: 0,
            },
        },
        Channel {
            name: "chat".into(),
            send_resolved: false,
            kind: ChannelKind::Slack {
                url: "https://hooks.slack.com/services/T0/B0/XXXX".into(),
                channel: Some("#ops".into()),
                username: None,
            },
        },
    ];
    stack.smtp = Some(Smtp {
        smarthost: "smtp.example.com:465".into(),
        from: "me@example.com".into(),
        username: Some("me@example.com".into()),
        password: Some("s3cret$pass".into()),
        require_tls: true,
    });
    stack.alerting.default_notify = stack.channels.iter().map(|c| c.name.clone()).collect();
    stack.alerts = vec![
        Alert {
            name: "TooManyGoroutines".into(),
            expr: "avg_over_time(go_goroutines{job=\"order\"}[1m]) > 8".into(),
            for_: d("5m"),
            severity: "warning".into(),
            summary: Some("{{ $labels.instance }} runs {{ $value }} goroutines".into()),
            description: None,
            labels: BTreeMap::new(),
            notify: vec!["ops-ding".into(), "ops-mail".into()],
        },
        Alert {
            name: "OrderDown".into(),
            expr: "up{job=\"order\"} == 0".into(),
            for_: d("1m"),
            severity: "critical".into(),
            summary: Some("order instance {{ $labels.instance }} is down".into()),
            description: Some("No successful scrape for a minute.".into()),
            labels: BTreeMap::from([("team".to_string(), "shop".to_string())]),
            notify: vec![],
        },
    ];
    stack.datasources = vec![Datasource {
        name: "Influx".into(),
        kind: "influxdb".into(),
        uid: "influx".into(),
        url: "http://influxdb:8086".into(),
        access: "proxy".into(),
        database: Some("metric".into()),
        user: None,
        password: None,
        is_default: false,
        json_data: serde_json::Map::new(),
    }];
    stack
}

/// The full example evaluated by Grafana instead of Prometheus + Alertmanager.
pub fn full_grafana_engine() -> Stack {
    let mut stack = full();
    stack.alerting.engine = AlertEngine::Grafana;
    stack
}

/// The full example with host metrics and probes: node_exporter, the blackbox exporter, and
/// one probe of each kind (an http probe with its own status codes, interval and timeout).
pub fn exporters() -> Stack {
    let mut stack = full();
    stack.node_exporter = Some(service("prom/node-exporter:v1.9.1", 9100));
    stack.blackbox = Some(service("prom/blackbox-exporter:v0.27.0", 9115));
    let probe = |kind, target: &str| Probe {
        kind,
        target: target.into(),
        status: vec![],
        interval: None,
        timeout: None,
    };
    stack.probes = vec![
        probe(ProbeKind::Http, "https://shop.example.com/healthz"),
        Probe {
            status: vec![200, 301],
            interval: Some(d("30s")),
            timeout: Some(d("5s")),
            ..probe(ProbeKind::Http, "http://host.docker.internal:8085/")
        },
        Probe {
            interval: Some(d("5s")),
            ..probe(ProbeKind::Tcp, "db.example.com:5432")
        },
        probe(ProbeKind::Icmp, "10.0.0.1"),
    ];
    stack
}

/// Consul discovery of every service through the host's agent, without a token.
pub fn consul() -> ConsulDiscovery {
    ConsulDiscovery {
        server: "host.docker.internal:8500".into(),
        scheme: Scheme::Http,
        services: vec![],
        tags: vec![],
        datacenter: None,
        token: None,
        rewrite_loopback: true,
    }
}

/// The minimal stack with InfluxDB, its password known (as after the first render).
pub fn with_influxdb() -> Stack {
    let mut stack = minimal();
    let influxdb = Influxdb {
        service: service("influxdb:1.12.2", INFLUXDB_PORT),
        database: "minimal".into(),
        user: "monstack".into(),
        password: Some("influx-password-123".into()),
    };
    stack.datasources.push(Datasource {
        name: "InfluxDB".into(),
        kind: "influxdb".into(),
        uid: INFLUXDB_DATASOURCE_UID.into(),
        url: "http://influxdb:8086".into(),
        access: "proxy".into(),
        database: Some("minimal".into()),
        user: Some("monstack".into()),
        password: influxdb.password.clone(),
        is_default: false,
        json_data: serde_json::Map::from_iter([
            ("dbName".to_string(), "minimal".into()),
            ("httpMode".to_string(), "POST".into()),
        ]),
    });
    stack.influxdb = Some(influxdb);
    stack
}
