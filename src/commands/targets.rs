//! `monstack add-target`, `remove-target` and `targets`: scrape targets changed without editing
//! prometheus.yml by hand and without restarting anything.
//!
//! An edit goes manifest text (comments kept) -> validation -> the rendered files -> Prometheus:
//! an existing job only gets its file_sd file rewritten, which Prometheus picks up by itself; a
//! new or removed job changes prometheus.yml, so Prometheus is reloaded and the reload confirmed.

use serde::Serialize;

use crate::error::Result;
use crate::project::register::etcd_of;
use crate::project::targets::{running_prometheus, scrape_address};
use crate::project::{load, Context};

pub use crate::project::targets::{add, remove, AddTarget};

#[derive(Debug, Serialize)]
struct TargetRow {
    job: String,
    target: String,
    /// `manifest`, `etcd` or `consul`.
    source: String,
    /// etcd: the registration key's service id; consul: the instance's service id.
    #[serde(skip_serializing_if = "Option::is_none")]
    service_id: Option<String>,
    /// etcd: seconds left on the registration's lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_ttl_seconds: Option<i64>,
    /// up, down, unknown, or `-` when Prometheus is not running.
    health: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    last_error: String,
}

pub async fn list(ctx: &Context, json: bool) -> Result<()> {
    let stack = load(ctx)?;
    let prometheus = running_prometheus(&stack).await;
    let scraped = match &prometheus {
        Some(p) => p.targets().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let health_of = |job: &str, addr: &str| -> (String, String) {
        if prometheus.is_none() {
            return ("-".into(), String::new());
        }
        match scraped
            .iter()
            .find(|t| t.scrape_pool == job && scrape_address(&t.scrape_url) == addr)
        {
            Some(t) => (
                format!("{:?}", t.health).to_lowercase(),
                t.last_error.clone(),
            ),
            None => ("not listed".into(), String::new()),
        }
    };
    let mut rows = Vec::new();
    for job in &stack.jobs {
        for target in &job.targets {
            let (health, last_error) = health_of(&job.name, target);
            rows.push(TargetRow {
                job: job.name.clone(),
                target: target.clone(),
                source: "manifest".into(),
                service_id: None,
                lease_ttl_seconds: None,
                health,
                last_error,
            });
        }
    }
    if let Some(discovery) = stack
        .discovery
        .etcd
        .as_ref()
        .filter(|d| d.cluster.is_some() || stack.etcd.is_some())
    {
        let (etcd, _) = etcd_of(&stack)?;
        crate::agent::discovery::set_rewrite_loopback(discovery.rewrite_loopback);
        match etcd.range_prefix(&discovery.prefix).await {
            Ok(range) => {
                for kv in range.kvs {
                    match crate::agent::discovery::parse_registration(
                        &kv.key,
                        &kv.value,
                        &discovery.prefix,
                    ) {
                        Ok(reg) => {
                            let ttl = if kv.lease != 0 {
                                etcd.time_to_live(kv.lease).await.ok().flatten()
                            } else {
                                None
                            };
                            let (health, last_error) =
                                health_of(crate::model::JOB_ETCD_DISCOVERED, &reg.address);
                            rows.push(TargetRow {
                                job: reg.name.clone(),
                                target: match &reg.registered_as {
                                    Some(registered) => {
                                        format!("{} (registered as {registered})", reg.address)
                                    }
                                    None => reg.address.clone(),
                                },
                                source: "etcd".into(),
                                service_id: Some(reg.id.clone()),
                                lease_ttl_seconds: ttl,
                                health,
                                last_error,
                            });
                        }
                        Err(why) => ctx.printer.warn(&format!("{}: skipped: {why}", kv.key)),
                    }
                }
            }
            Err(e) => ctx.printer.warn(&format!(
                "etcd is not reachable, discovered targets are not listed: {e:#}"
            )),
        }
    }
    // Consul's instances are known to Prometheus alone (it asks Consul itself).
    if stack.discovery.consul.is_some() {
        let pool = crate::model::JOB_CONSUL_DISCOVERED;
        for t in scraped.iter().filter(|t| t.scrape_pool == pool) {
            let label = |name: &str| t.labels.get(name).cloned().unwrap_or_default();
            rows.push(TargetRow {
                job: label("job"),
                target: scrape_address(&t.scrape_url).to_string(),
                source: "consul".into(),
                service_id: Some(label("service_id")),
                lease_ttl_seconds: None,
                health: format!("{:?}", t.health).to_lowercase(),
                last_error: t.last_error.clone(),
            });
        }
        if prometheus.is_none() {
            ctx.printer
                .note("Consul's services are listed by Prometheus, which is not running");
        }
    }
    if json {
        let text = serde_json::to_string_pretty(&rows).map_err(anyhow::Error::from)?;
        ctx.printer.result(&text, true);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let source = match (&r.service_id, r.lease_ttl_seconds) {
                (Some(id), Some(ttl)) => format!("etcd (id {id}, lease {ttl}s)"),
                (Some(id), None) => format!("{} (id {id})", r.source),
                _ => r.source.clone(),
            };
            let health = if r.last_error.is_empty() {
                r.health.clone()
            } else {
                format!("{}: {}", r.health, r.last_error)
            };
            vec![r.job.clone(), r.target.clone(), source, health]
        })
        .collect();
    ctx.printer
        .table(&["JOB", "TARGET", "SOURCE", "HEALTH"], &table);
    if prometheus.is_none() {
        ctx.printer
            .note("Prometheus is not running: no health shown");
    }
    Ok(())
}
