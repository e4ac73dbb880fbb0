//! One file per subcommand, glue only. This module turns the parsed command line into work and
//! holds what several commands share: finding and loading the manifest.

mod agent;
mod alert;
mod down;
mod export;
mod import_dashboard;
mod init;
mod logs;
pub mod register;
pub mod render;
mod status;
mod targets;
pub mod up;
mod validate;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::cli::{AlertCommand, Cli, Command, ExportTarget};
use crate::error::{Error, Result};
use crate::manifest;
use crate::output::Printer;

use crate::project::Context;
use crate::signal::interruptible;

pub async fn run(cli: Cli) -> Result<()> {
    let printer = Printer::new(cli.quiet, cli.color);
    let ctx = Context {
        file_explicit: cli.file.is_some(),
        file: cli
            .file
            .unwrap_or_else(|| PathBuf::from(manifest::FILE_NAME)),
        printer,
    };
    // Commands that change the project hold its lock for their whole run; the others never
    // wait for it.
    let changes_project = matches!(
        cli.command,
        Command::Init { .. }
            | Command::Render
            | Command::Up { .. }
            | Command::Down { .. }
            | Command::AddTarget { .. }
            | Command::RemoveTarget { .. }
            | Command::ImportDashboard { .. }
            | Command::Sync
    );
    let _lock = if changes_project {
        Some(ctx.lock()?)
    } else {
        None
    };
    match cli.command {
        Command::Init { lang, force } => init::run(&ctx, lang, force),
        Command::Validate => validate::run(&ctx),
        Command::Render => render::run(&ctx),
        Command::Up {
            detach: _,
            pull,
            timeout,
        } => {
            let options = crate::stack::reconcile::Options {
                pull,
                timeout: std::time::Duration::from_secs(timeout),
            };
            interruptible(
                up::run(&ctx, options),
                "the stack may be partly updated; run `monstack up` again to finish",
            )
            .await
        }
        Command::Down { volumes, project } => down::run(&ctx, volumes, project.as_deref()).await,
        Command::AddTarget {
            job,
            addrs,
            path,
            scheme,
            interval,
            fallback_scrape_protocol,
            labels,
            wait,
        } => {
            targets::add(
                &ctx,
                targets::AddTarget {
                    job,
                    addrs,
                    path,
                    scheme,
                    interval,
                    fallback_scrape_protocol,
                    labels,
                    wait,
                },
            )
            .await
        }
        Command::RemoveTarget { job, addrs } => targets::remove(&ctx, &job, &addrs).await,
        Command::Targets { json } => targets::list(&ctx, json).await,
        Command::Agent {
            etcd,
            etcd_access,
            prefix,
            targets_dir,
            listen,
            config,
            keep_loopback,
        } => {
            agent::run(
                &ctx,
                agent::AgentArgs {
                    etcd,
                    etcd_access,
                    prefix,
                    targets_dir,
                    listen,
                    config,
                    keep_loopback,
                },
            )
            .await
        }
        Command::Sync => agent::sync(&ctx).await,
        Command::Register {
            name,
            addr,
            id,
            ttl,
            path,
            labels,
        } => {
            register::run(
                &ctx,
                register::Registration {
                    name,
                    addr,
                    id,
                    ttl,
                    path,
                    labels,
                },
            )
            .await
        }
        Command::Status { json } => status::run(&ctx, json).await,
        Command::Logs {
            services,
            follow,
            tail,
        } => interruptible(logs::run(&ctx, &services, follow, tail), "")
            .await
            .or_else(|e| match e {
                // Ctrl-C is how `logs -f` ends.
                Error::Interrupted(_) => Ok(()),
                other => Err(other),
            }),
        Command::ImportDashboard {
            source,
            folder,
            force,
        } => {
            import_dashboard::run(
                &ctx,
                crate::project::import::Import {
                    source,
                    folder,
                    force,
                },
            )
            .await
        }
        Command::Dashboards => import_dashboard::list(&ctx),
        Command::Alert { command } => match command {
            AlertCommand::Test { channels } => alert::test(&ctx, &channels).await,
            AlertCommand::List { json } => alert::list(&ctx, json).await,
        },
        Command::Export {
            target:
                ExportTarget::Kubernetes {
                    namespace,
                    release,
                    output,
                    agent_image,
                    etcd,
                },
        } => export::kubernetes(
            &ctx,
            crate::export::Options {
                namespace,
                release,
                agent_image: agent_image.unwrap_or_else(crate::export::default_agent_image),
                etcd_url: etcd,
            },
            &output,
        ),
        Command::Schema => {
            let schema = manifest::spec::json_schema(&crate::dashboards::bundled_names());
            let text = serde_json::to_string_pretty(&schema).context("printing the schema")?;
            ctx.printer.result(&text, true);
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "monstack",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}
