//! `monstack status`: each service's container, health, image and URL, plus Prometheus'
//! targets per job when Prometheus is up.

use serde::Serialize;

use crate::clients;
use crate::error::Result;
use crate::layout::OUT_DIR;
use crate::project::{load, Context};
use crate::render;
use crate::stack::containers::{self, HostContext};
use crate::stack::docker::Engine;

#[derive(Debug, Serialize)]
struct ServiceStatus {
    service: String,
    container: String,
    /// Engine state: running, exited, ... or `missing`.
    state: String,
    /// `ready`, `not ready`, or `-` when not running.
    health: String,
    image: String,
    published: String,
    url: String,
}

#[derive(Debug, Serialize)]
struct Report {
    project: String,
    services: Vec<ServiceStatus>,
    /// Containers of the project that the manifest no longer has.
    orphans: Vec<String>,
    targets: Option<Vec<JobStatus>>,
    /// Each `remote_write` receiver's queue, from Prometheus' /metrics (when it is ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    remotes: Option<Vec<clients::RemoteHealth>>,
    /// `server` or `agent`.
    mode: &'static str,
    /// What Prometheus was asked and did not answer (the tables it would fill are absent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
}

/// A job's targets by health, and what that means while Prometheus is starting.
#[derive(Debug, Serialize)]
struct JobStatus {
    #[serde(flatten)]
    counts: clients::JobSummary,
    /// `waiting for the first scrape` for a job Prometheus has not scraped yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// Every job the stack's prometheus.yml has, with its targets' health: a job Prometheus does not
/// list yet, or whose targets are all still unknown, waits for its first scrape (for up to a
/// scrape interval, plus discovery, right after `up`).
fn job_statuses(rendered_jobs: &[String], summary: Vec<clients::JobSummary>) -> Vec<JobStatus> {
    let mut out: Vec<JobStatus> = summary
        .into_iter()
        .map(|counts| {
            let note = (counts.up + counts.down == 0 && counts.unknown > 0)
                .then(|| "waiting for the first scrape".to_string());
            JobStatus { counts, note }
        })
        .collect();
    for job in rendered_jobs {
        if !out.iter().any(|j| &j.counts.job == job) {
            out.push(JobStatus {
                counts: clients::JobSummary {
                    job: job.clone(),
                    up: 0,
                    down: 0,
                    unknown: 0,
                },
                note: Some("no targets yet: waiting for discovery or the first scrape".into()),
            });
        }
    }
    out.sort_by(|a, b| a.counts.job.cmp(&b.counts.job));
    out
}

pub async fn run(ctx: &Context, json: bool) -> Result<()> {
    let stack = load(ctx)?;
    let tree = render::render(&stack)?;
    let out_dir = stack.root.join(OUT_DIR);
    let engine = Engine::connect().await?;
    // Where node_exporter listens (its URL); only asked when it runs.
    let host_gateway = match &stack.node_exporter {
        Some(_) => engine.host_gateway().await.unwrap_or_default(),
        None => None,
    };
    let host = HostContext {
        out_dir: &out_dir,
        secret_gid: 0,
        grafana_admin_password: "",
        agent_image: Some("monstack-agent"),
        host_user: (0, 0),
        host_gateway,
        host_root_shared: false,
    };
    let specs = containers::desired(&stack, &tree, &host);
    let observed = engine.project_containers(&stack.project).await?;
    let client = clients::http_client()?;

    let mut services = Vec::new();
    for spec in &specs {
        let container = observed.iter().find(|o| o.service == spec.service);
        let state = container.map_or("missing".to_string(), |c| c.state.clone());
        let health = match container {
            Some(c) if c.running => {
                match clients::is_ready(&client, spec.service, &spec.url()).await {
                    Ok(true) => "ready",
                    _ => "not ready",
                }
            }
            _ => "-",
        };
        services.push(ServiceStatus {
            service: spec.service.to_string(),
            container: spec.name.clone(),
            state,
            health: health.to_string(),
            image: spec.image.clone(),
            published: format!("{}:{}", spec.port.host_ip, spec.port.host_port),
            url: spec.url(),
        });
    }
    let orphans = observed
        .iter()
        .filter(|o| !specs.iter().any(|s| s.service == o.service))
        .map(|o| o.name.clone())
        .collect();
    let prometheus_ready = services
        .iter()
        .any(|s| s.service == "prometheus" && s.health == "ready");
    // What could not be read is said, not left out silently.
    let mut unread: Vec<String> = Vec::new();
    let targets = if prometheus_ready {
        let prometheus = clients::Prometheus::new(&client, specs[0].url());
        match prometheus.targets().await {
            Ok(t) => {
                let rendered = crate::stack::reconcile::job_names(&tree).unwrap_or_default();
                Some(job_statuses(&rendered, clients::summarize(&t)))
            }
            Err(e) => {
                unread.push(format!("Prometheus' targets could not be read: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    let remotes = match (prometheus_ready, stack.prometheus.remote_write.is_empty()) {
        (true, false) => match clients::remote_health(&client, &specs[0].url()).await {
            Ok(remotes) => Some(remotes),
            Err(e) => {
                unread.push(format!(
                    "the remote_write receivers' health could not be read: {e:#}"
                ));
                None
            }
        },
        _ => None,
    };
    let report = Report {
        project: stack.project.clone(),
        services,
        orphans,
        targets,
        remotes,
        mode: if stack.prometheus.mode.is_agent() {
            "agent"
        } else {
            "server"
        },
        errors: unread,
    };

    if json {
        let text = serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?;
        ctx.printer.result(&text, true);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = report
        .services
        .iter()
        .map(|s| {
            vec![
                s.service.clone(),
                s.state.clone(),
                s.health.clone(),
                s.image.clone(),
                s.published.clone(),
                s.url.clone(),
            ]
        })
        .collect();
    ctx.printer.table(
        &["SERVICE", "STATE", "HEALTH", "IMAGE", "PUBLISHED", "URL"],
        &rows,
    );
    for orphan in &report.orphans {
        ctx.printer.warn(&format!(
            "{orphan} belongs to the project but not to the manifest; `monstack up` removes it"
        ));
    }
    match &report.targets {
        Some(jobs) => {
            ctx.printer.result("", false);
            let rows: Vec<Vec<String>> = jobs
                .iter()
                .map(|j| {
                    vec![
                        j.counts.job.clone(),
                        j.counts.up.to_string(),
                        j.counts.down.to_string(),
                        j.counts.unknown.to_string(),
                        j.note.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            ctx.printer
                .table(&["JOB", "UP", "DOWN", "UNKNOWN", "NOTE"], &rows);
        }
        None if prometheus_ready => {}
        None => ctx
            .printer
            .note("Prometheus is not ready: no target summary"),
    }
    for what in &report.errors {
        ctx.printer.warn(what);
    }
    if stack.prometheus.mode.is_agent() {
        ctx.printer.note("Prometheus runs in agent mode: it answers no queries and evaluates no rules or alerts (the built-in ones included); the central stack that receives its samples does");
    }
    if let Some(remotes) = &report.remotes {
        print_remotes(ctx, remotes);
    }
    Ok(())
}

/// One row per receiver: the state, what waits, what was sent, refused and retried, and how far
/// behind the newest sample it is.
fn print_remotes(ctx: &Context, remotes: &[clients::RemoteHealth]) {
    ctx.printer.result("", false);
    let count = |n: f64| format!("{n:.0}");
    let rows: Vec<Vec<String>> = remotes
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.state().to_string(),
                count(r.pending),
                count(r.sent),
                count(r.failed),
                count(r.retried),
                r.behind_seconds
                    .map_or("-".to_string(), |s| format!("{s:.0}s")),
                r.url.clone(),
            ]
        })
        .collect();
    ctx.printer.table(
        &[
            "REMOTE", "STATE", "PENDING", "SENT", "FAILED", "RETRIED", "BEHIND", "URL",
        ],
        &rows,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rendered_job_is_listed_and_unscraped_ones_say_so() {
        let summary = vec![
            clients::JobSummary {
                job: "api".into(),
                up: 1,
                down: 0,
                unknown: 0,
            },
            clients::JobSummary {
                job: "etcd".into(),
                up: 0,
                down: 0,
                unknown: 1,
            },
        ];
        let jobs = job_statuses(&["api".into(), "etcd".into(), "prometheus".into()], summary);
        let notes: Vec<(&str, Option<&str>)> = jobs
            .iter()
            .map(|j| (j.counts.job.as_str(), j.note.as_deref()))
            .collect();
        assert_eq!(
            notes,
            [
                ("api", None),
                ("etcd", Some("waiting for the first scrape")),
                (
                    "prometheus",
                    Some("no targets yet: waiting for discovery or the first scrape")
                ),
            ]
        );
    }
}
