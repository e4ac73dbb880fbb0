//! `monstack alert test` and `monstack alert list`: run them on the manifest's stack and show
//! the results.

use anyhow::anyhow;

use crate::error::{Error, Result};
use crate::project::{load, Context};
use crate::stack::alerts::{self, Outcome};

pub async fn test(ctx: &Context, names: &[String]) -> Result<()> {
    let stack = load(ctx)?;
    let results = alerts::test::test(&stack, names, &ctx.printer).await?;
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|c| {
            let result = match &c.outcome {
                Outcome::Delivered(None) => "delivered".to_string(),
                Outcome::Delivered(Some(note)) => format!("delivered ({note})"),
                Outcome::Failed(reason) => format!("failed: {reason}"),
                Outcome::Pending => "pending".to_string(),
            };
            vec![c.channel.clone(), c.kind.to_string(), result]
        })
        .collect();
    ctx.printer.table(&["CHANNEL", "TYPE", "RESULT"], &rows);
    let failed = results
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
        .count();
    if failed > 0 {
        return Err(Error::Other(anyhow!(
            "{failed} of {} channels failed",
            results.len()
        )));
    }
    Ok(())
}

pub async fn list(ctx: &Context, json_output: bool) -> Result<()> {
    let stack = load(ctx)?;
    let listing = alerts::list::list(&stack).await?;
    if json_output {
        let text = serde_json::to_string_pretty(&listing).map_err(anyhow::Error::from)?;
        ctx.printer.result(&text, true);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = listing
        .rules
        .iter()
        .map(|r| {
            vec![
                r.group.clone(),
                r.name.clone(),
                r.state.clone(),
                r.health.clone(),
                r.last_error.clone(),
            ]
        })
        .collect();
    ctx.printer
        .table(&["GROUP", "RULE", "STATE", "HEALTH", "LAST ERROR"], &rows);
    ctx.printer.result("", false);
    if listing.alerts.is_empty() {
        ctx.printer
            .result(&format!("no alerts in {}", listing.alerts_from), false);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = listing
        .alerts
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.severity.clone(),
                a.state.clone(),
                a.since.clone(),
                a.receivers.join(","),
                a.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                a.summary.clone(),
            ]
        })
        .collect();
    ctx.printer.table(
        &[
            "ALERT",
            "SEVERITY",
            "STATE",
            "SINCE",
            "RECEIVERS",
            "LABELS",
            "SUMMARY",
        ],
        &rows,
    );
    Ok(())
}
