//! `monstack validate`: load, check, and summarise in one line.

use crate::error::Result;
use crate::model::Stack;
use crate::project::{load, Context};

pub fn run(ctx: &Context) -> Result<()> {
    let stack = load(ctx)?;
    ctx.printer.result(&summary(&stack), false);
    Ok(())
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// `shop: valid; 5 services, 2 jobs (3 targets), 2 alerts, 4 channels, 2 dashboards`.
pub fn summary(stack: &Stack) -> String {
    // An agent stack has no Grafana.
    let grafana = stack.grafana.enabled && !stack.prometheus.mode.is_agent();
    let services = 1 + [
        grafana,
        stack.etcd.is_some(),
        stack.alertmanager.is_some(),
        stack.pushgateway.is_some(),
        stack.node_exporter.is_some(),
        stack.blackbox.is_some(),
        stack.influxdb.is_some(),
    ]
    .iter()
    .filter(|on| **on)
    .count();
    let targets: usize = stack.jobs.iter().map(|j| j.targets.len()).sum();
    let probes = match stack.probes.len() {
        0 => String::new(),
        n => format!(", {}", plural(n, "probe")),
    };
    let remotes = match stack.prometheus.remote_write.len() {
        0 => String::new(),
        n => format!(", {}", plural(n, "remote_write receiver")),
    };
    let mode = if stack.prometheus.mode.is_agent() {
        " (Prometheus in agent mode: no rules, alerts or Grafana here)"
    } else {
        ""
    };
    format!(
        "{}: valid; {}, {} ({}){probes}{remotes}, {}, {}, {}{mode}",
        stack.project,
        plural(services, "service"),
        plural(stack.jobs.len(), "job"),
        plural(targets, "target"),
        plural(stack.alerts.len(), "alert"),
        plural(stack.channels.len(), "channel"),
        plural(stack.dashboards.len(), "dashboard"),
    )
}
