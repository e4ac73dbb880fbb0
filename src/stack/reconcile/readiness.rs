//! Waiting until every service answers its readiness check; a container that stops or keeps
//! restarting fails at once, with its last log lines.

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::clients;
use crate::error::{hinted, Error, Result};
use crate::output::{Printer, Progress};
use crate::stack::containers::ContainerSpec;
use crate::stack::docker::Engine;

/// Waits until every service answers its readiness check. A container that stops, or a
/// service not ready in time, fails with its last 20 log lines.
pub async fn wait_ready(
    engine: &Engine,
    client: &reqwest::Client,
    specs: &[ContainerSpec],
    timeout: Duration,
    progress: &Progress,
    printer: &Printer,
) -> Result<()> {
    let started = Instant::now();
    let waits = specs.iter().map(|spec| async move {
        let task = progress.task(spec.service, "waiting until ready");
        let outcome = wait_one(engine, client, spec, started, timeout).await;
        match &outcome {
            Ok(()) => task.ok(&format!("ready ({:.1}s)", started.elapsed().as_secs_f64())),
            Err(why) => task.fail(why),
        }
        outcome.map_err(|why| (spec, why))
    });
    let failures: Vec<(&ContainerSpec, String)> = join_all(waits)
        .await
        .into_iter()
        .filter_map(|r| r.err())
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    for (spec, _) in &failures {
        let lines = engine.logs_tail(&spec.name, 20).await.unwrap_or_default();
        printer.note(&format!("last {} log lines of {}:", lines.len(), spec.name));
        for line in lines {
            eprintln!("  {} | {line}", spec.service);
        }
    }
    let names: Vec<String> = failures
        .iter()
        .map(|(s, why)| format!("{} ({why})", s.service))
        .collect();
    Err(Error::Other(hinted(
        format!("not ready: {}", names.join(", ")),
        "see the log lines above; `monstack logs SERVICE` shows more",
    )))
}

async fn wait_one(
    engine: &Engine,
    client: &reqwest::Client,
    spec: &ContainerSpec,
    started: Instant,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let url = spec.url();
    let deadline = started + timeout;
    // Read lazily: a service that is ready at the first probe costs no inspect call.
    let mut restarts_before: Option<i64> = None;
    let mut last_state_check = Instant::now() - Duration::from_secs(5);
    // Quick probes first (services often become ready within tens of milliseconds), then
    // backing off to a calm pace.
    let mut pause = Duration::from_millis(25);
    let mut zero_exits = 0;
    loop {
        if let Ok(true) = clients::is_ready(client, spec.service, &url).await {
            return Ok(());
        }
        if restarts_before.is_none() {
            restarts_before = Some(match engine.state(&spec.name).await {
                Ok(Some(state)) => state.restart_count,
                _ => 0,
            });
        }
        let restarts_before = restarts_before.unwrap_or(0);
        if last_state_check.elapsed() >= Duration::from_secs(1) {
            last_state_check = Instant::now();
            match engine.state(&spec.name).await {
                Ok(Some(state))
                    if !state.running && !state.restarting && state.status != "created" =>
                {
                    return Err(format!(
                        "the container {} (exit code {})",
                        state.status,
                        state.exit_code.unwrap_or(-1)
                    ));
                }
                // The restart policy brings a crashing service back again and again: a
                // container that restarted while we wait for it is not going to get ready.
                Ok(Some(state))
                    if (state.restarting || state.restart_count > restarts_before)
                        // Mid-restart the engine can report exit code 0 for a moment: look
                        // again (a few times) for the code the container really exited with.
                        && (state.exit_code.is_some_and(|c| c != 0) || {
                            zero_exits += 1;
                            zero_exits > 3
                        }) =>
                {
                    return Err(format!(
                        "the container keeps exiting (exit code {}) and restarting",
                        state.exit_code.unwrap_or(-1)
                    ));
                }
                Ok(None) => return Err("the container is gone".into()),
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("not ready after {}s at {url}", timeout.as_secs()));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}
