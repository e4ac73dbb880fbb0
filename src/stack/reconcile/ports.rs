//! Host ports before anything changes: each one a container is about to publish must be
//! free, or held by this project.

use crate::error::{Error, Result};
use crate::stack::containers::{ContainerSpec, HOST_NETWORK};
use crate::stack::docker::{Engine, PublishedBy};
use crate::stack::plan::{Action, Observed};

/// Every host port a container is about to take must be free, or held by this project.
pub async fn check_ports(
    engine: &Engine,
    specs: &[ContainerSpec],
    actions: &[Action],
    observed: &[Observed],
) -> Result<()> {
    let mut published: Option<Vec<PublishedBy>> = None;
    for action in actions {
        let Some(service) = action.needs_port() else {
            continue;
        };
        let Some(spec) = specs.iter().find(|s| s.service == service) else {
            continue;
        };
        let port = spec.port.host_port;
        if std::net::TcpListener::bind((spec.port.host_ip, port)).is_ok() {
            continue;
        }
        // A container an interrupted `up` created and the engine has started since it was
        // listed holds its own port: it is the one this action starts.
        if matches!(action, Action::Start { .. })
            && engine
                .state(&spec.name)
                .await?
                .is_some_and(|state| state.running)
        {
            continue;
        }
        // In the host's network namespace (node_exporter) a container publishes nothing the
        // engine could name: a running container of this service is taken to hold its port
        // (a recreate removes it first).
        if spec.network == HOST_NETWORK
            && observed.iter().any(|o| o.service == service && o.running)
        {
            continue;
        }
        if published.is_none() {
            published = Some(engine.published_ports().await?);
        }
        let holder = published
            .as_ref()
            .and_then(|list| list.iter().find(|p| p.host_port == port));
        if let Some(holder) = holder {
            if observed.iter().any(|o| o.name == holder.container) {
                // Ours: the container being recreated, or an orphan removed before creating.
                continue;
            }
        }
        let by = match holder {
            Some(holder) => format!("the container {}", holder.container),
            None => "another program".to_string(),
        };
        return Err(Error::usage(
            format!("port {port} for {service} is already in use by {by}; nothing was changed"),
            Some(format!("stop it, or give {service} another port in the manifest (`{service}: {{port: ...}}`)")),
        ));
    }
    Ok(())
}
