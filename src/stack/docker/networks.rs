//! The project's network: created once (duplicates an older engine allowed are removed),
//! removed by name, every one of that name.

use std::collections::HashMap;

use anyhow::{anyhow, Context as _};
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::ListNetworksOptions;

use super::{docker_message, is_status, Engine};
use crate::stack::containers::LABEL_PROJECT;

impl Engine {
    /// Creates the project's network unless it exists. Returns whether it was created.
    pub async fn ensure_network(&self, name: &str, project: &str) -> anyhow::Result<bool> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let existing = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .context("listing networks")?;
        let mut same: Vec<_> = existing
            .iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .collect();
        if !same.is_empty() {
            // Two `up`s at once on an engine that does not refuse duplicate names (20.10) could
            // leave two networks of one name, which makes every later call by name ambiguous.
            // Keep the oldest; remove the others (an error means one is in use: leave it).
            same.sort_by(|a, b| a.created.cmp(&b.created));
            for duplicate in &same[1..] {
                if let Some(id) = &duplicate.id {
                    match self.docker.remove_network(id).await {
                        Ok(()) => tracing::warn!("removed a duplicate network {name} ({id})"),
                        Err(e) => tracing::warn!(
                            "a duplicate network {name} ({id}) could not be removed: {}",
                            docker_message(&e)
                        ),
                    }
                }
            }
            return Ok(false);
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([(
                LABEL_PROJECT.to_string(),
                project.to_string(),
            )])),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .with_context(|| format!("creating network {name}"))?;
        Ok(true)
    }

    /// Removes the network of this name, every one of them if there are duplicates (removing
    /// by name would be ambiguous). `false` when there was none.
    pub async fn remove_network(&self, name: &str) -> anyhow::Result<bool> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let ids: Vec<String> = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .context("listing networks")?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| n.id)
            .collect();
        for id in &ids {
            match self.docker.remove_network(id).await {
                Ok(()) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(anyhow!("removing network {name}: {}", docker_message(&e))),
            }
        }
        Ok(!ids.is_empty())
    }
}
