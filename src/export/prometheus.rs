//! What Prometheus scrapes and evaluates: one `ScrapeConfig` (monitoring.coreos.com/v1alpha1)
//! per job, and one `PrometheusRule` (v1) per rule group that render writes.
//!
//! A ScrapeConfig scrapes its targets directly (no Service needed). The jobs keep their names
//! (`jobName`), so the `job` label, and every alert and dashboard query on it, stays the same.
//! Intervals and timeouts are written out, because the cluster's Prometheus has its own global
//! defaults (kube-prometheus-stack: 30s), not the manifest's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::objects::{Object, Spec};
use super::{Cluster, Rendered, PROJECT_ALERT_LABEL};
use crate::model::{self, Duration, ScrapeJob, JOB_AGENT, JOB_ETCD, JOB_ETCD_DISCOVERED};

const MONITORING_V1: &str = "monitoring.coreos.com/v1";
const MONITORING_V1ALPHA1: &str = "monitoring.coreos.com/v1alpha1";

/// How often Prometheus asks the agent for the etcd-discovered services. Each ask returns the
/// whole list; a new registration is scraped within this plus Prometheus' 5 s discovery tick.
const HTTP_SD_REFRESH: &str = "10s";

/// The etcd client port (the stack's etcd, or the one `--etcd` names).
pub const ETCD_CLIENT_PORT: u16 = 2379;

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct ScrapeConfigSpec {
    job_name: String,
    scrape_interval: String,
    scrape_timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<&'static str>,
    honor_labels: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scrape_protocols: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_scrape_protocol: Option<String>,
    #[serde(rename = "staticConfigs", skip_serializing_if = "Vec::is_empty")]
    static_configs: Vec<StaticConfig>,
    #[serde(rename = "httpSDConfigs", skip_serializing_if = "Vec::is_empty")]
    http_sd_configs: Vec<HttpSdConfig>,
}

#[derive(Serialize)]
struct StaticConfig {
    targets: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpSdConfig {
    url: String,
    refresh_interval: &'static str,
}

/// The scrape configs: the manifest's jobs, then the stack's own (the agent, the etcd it runs,
/// and the etcd-discovered services), as `prometheus.yml` has them. Prometheus and Alertmanager
/// are scraped by kube-prometheus-stack itself; the Pushgateway does not carry over.
pub(super) fn scrape_configs(
    cluster: &Cluster,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<Rendered>> {
    let stack = cluster.stack;
    let mut specs: Vec<ScrapeConfigSpec> = stack.jobs.iter().map(|j| job(cluster, j)).collect();
    for job in &stack.jobs {
        let local: Vec<&str> = job
            .targets
            .iter()
            .map(String::as_str)
            .filter(|t| host_of(t) == "host.docker.internal" || host_of(t) == "localhost")
            .collect();
        if !local.is_empty() {
            notes.push(format!(
                "job {} scrapes {}, which only means something on the Docker stack's host: \
                 change the address for the cluster",
                job.name,
                local.join(", ")
            ));
        }
    }
    if stack.agent.is_some() {
        specs.push(builtin(
            cluster,
            JOB_AGENT,
            format!(
                "{}:{}",
                cluster.host(&cluster.agent_service()),
                model::AGENT_PORT
            ),
        ));
    }
    if stack.etcd.is_some() && cluster.options.etcd_url.is_none() {
        specs.push(builtin(
            cluster,
            JOB_ETCD,
            format!(
                "{}:{ETCD_CLIENT_PORT}",
                cluster.host(&cluster.name(model::ETCD))
            ),
        ));
    }
    if stack.discovery.etcd.is_some() {
        specs.push(ScrapeConfigSpec {
            http_sd_configs: vec![HttpSdConfig {
                url: format!("{}{}", cluster.agent_url(), model::AGENT_HTTP_SD_PATH),
                refresh_interval: HTTP_SD_REFRESH,
            }],
            ..defaults(cluster, JOB_ETCD_DISCOVERED)
        });
    }
    specs
        .into_iter()
        .map(|spec| {
            Rendered::new(&Object {
                api_version: MONITORING_V1ALPHA1,
                kind: "ScrapeConfig",
                metadata: cluster.meta(cluster.name(&spec.job_name)),
                body: Spec { spec },
            })
        })
        .collect()
}

fn host_of(target: &str) -> &str {
    target.rsplit_once(':').map_or(target, |(host, _)| host)
}

/// The job's interval, and its timeout: its own, else the global one lowered to the interval,
/// as Prometheus does.
fn timing(
    stack: &model::Stack,
    interval: Option<Duration>,
    timeout: Option<Duration>,
) -> (String, String) {
    let interval = interval.unwrap_or(stack.prometheus.scrape_interval);
    let timeout = timeout.unwrap_or(stack.prometheus.scrape_timeout.min(interval));
    (interval.to_string(), timeout.to_string())
}

fn defaults(cluster: &Cluster, job_name: &str) -> ScrapeConfigSpec {
    let (scrape_interval, scrape_timeout) = timing(cluster.stack, None, None);
    ScrapeConfigSpec {
        job_name: job_name.into(),
        scrape_interval,
        scrape_timeout,
        ..ScrapeConfigSpec::default()
    }
}

fn builtin(cluster: &Cluster, job_name: &str, target: String) -> ScrapeConfigSpec {
    ScrapeConfigSpec {
        static_configs: vec![StaticConfig {
            targets: vec![target],
            labels: BTreeMap::new(),
        }],
        ..defaults(cluster, job_name)
    }
}

fn job(cluster: &Cluster, job: &ScrapeJob) -> ScrapeConfigSpec {
    let (scrape_interval, scrape_timeout) = timing(cluster.stack, job.interval, job.timeout);
    ScrapeConfigSpec {
        job_name: job.name.clone(),
        scrape_interval,
        scrape_timeout,
        metrics_path: Some(job.metrics_path.clone()),
        // The upper-case spelling: the only one operators before v0.83 accept.
        scheme: Some(match job.scheme {
            model::Scheme::Http => "HTTP",
            model::Scheme::Https => "HTTPS",
        }),
        honor_labels: job.honor_labels,
        scrape_protocols: job.scrape_protocols.clone(),
        fallback_scrape_protocol: job.fallback_scrape_protocol.clone(),
        // A job without targets has no static config: the CRD wants at least one target.
        static_configs: (!job.targets.is_empty())
            .then(|| StaticConfig {
                targets: job.targets.clone(),
                labels: job.labels.clone(),
            })
            .into_iter()
            .collect(),
        http_sd_configs: vec![],
    }
}

/// A rule file as render writes it, read back.
#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    rules: Vec<Rule>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: String,
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct PrometheusRuleSpec {
    groups: Vec<RuleGroup>,
}

/// The rule groups render writes (the manifest's alerts; the built-in pack), one
/// PrometheusRule each. Every rule gains the `namespace` label (Alertmanager, under the
/// operator's default `OnNamespace` strategy, gives an AlertmanagerConfig only alerts of its
/// own namespace) and `monstack_project`, which the AlertmanagerConfig's route matches. The
/// groups are evaluated at the manifest's `evaluation_interval`.
pub(super) fn rules(cluster: &Cluster) -> anyhow::Result<Vec<Rendered>> {
    let stack = cluster.stack;
    let mut out = Vec::new();
    for file in crate::render::rules::render(stack)? {
        let parsed: RuleFile = crate::manifest::yaml::from_str(file.text())?;
        let builtin = file.path == crate::render::rules::BUILTIN_PATH;
        let mut groups = parsed.groups;
        for group in &mut groups {
            group.interval = Some(stack.prometheus.evaluation_interval.to_string());
            if builtin {
                scope_target_down(cluster, &mut group.rules);
            }
            for rule in &mut group.rules {
                rule.labels
                    .insert("namespace".into(), cluster.options.namespace.clone());
                rule.labels
                    .insert(PROJECT_ALERT_LABEL.into(), stack.project.clone());
            }
        }
        let part = if builtin { "builtin-alerts" } else { "alerts" };
        out.push(Rendered::new(&Object {
            api_version: MONITORING_V1,
            kind: "PrometheusRule",
            metadata: cluster.meta(cluster.name(part)),
            body: Spec {
                spec: PrometheusRuleSpec { groups },
            },
        })?);
    }
    Ok(out)
}

/// On Docker the stack's Prometheus scrapes only the stack's jobs, so `up == 0` means one of
/// them. The cluster's Prometheus scrapes everything: the built-in target-down alert is
/// narrowed to the jobs exported here (the agent has its own alert), or dropped without any.
fn scope_target_down(cluster: &Cluster, rules: &mut Vec<Rule>) {
    let stack = cluster.stack;
    let mut jobs: Vec<&str> = stack.jobs.iter().map(|j| j.name.as_str()).collect();
    if stack.etcd.is_some() && cluster.options.etcd_url.is_none() {
        jobs.push(JOB_ETCD);
    }
    if stack.discovery.etcd.is_some() {
        jobs.push(JOB_ETCD_DISCOVERED);
    }
    // Job names are [A-Za-z0-9_.-]: only the dot is special in a regex.
    let pattern: Vec<String> = jobs.iter().map(|j| j.replace('.', "\\\\.")).collect();
    rules.retain_mut(|rule| {
        if rule.alert != "MonstackTargetDown" {
            return true;
        }
        rule.expr = format!("up{{job=~\"{}\"}} == 0", pattern.join("|"));
        !jobs.is_empty()
    });
}
