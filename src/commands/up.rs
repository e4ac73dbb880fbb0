//! `monstack up`: load the manifest, reconcile the stack, show where everything is (and
//! Grafana's generated login, once).

use crate::error::Result;
use crate::project::{load, Context};
use crate::stack::reconcile::{self, Options};

pub async fn run(ctx: &Context, options: Options) -> Result<()> {
    let mut stack = load(ctx)?;
    // Generated and kept before anything uses it (the datasource file, InfluxDB's user).
    crate::stack::secrets::resolve_influxdb_password(&mut stack, true)?;
    let printer = &ctx.printer;
    let report = reconcile::up(&stack, &options, printer).await?;
    if !report.changed {
        printer.status(
            "Unchanged",
            &format!("{}: every service is up to date", report.project),
        );
    }
    let rows: Vec<Vec<String>> = report
        .services
        .into_iter()
        .map(|(service, url)| vec![service, "ready".to_string(), url])
        .collect();
    printer.table(&["SERVICE", "STATE", "URL"], &rows);
    if let Some(login) = report.grafana_login {
        printer.secret_result(&format!(
            "\nGrafana login: {} / {}\n(shown once; kept in {})",
            login.user,
            login.password,
            login.kept_in.display()
        ));
    }
    Ok(())
}
