//! The project's network: created once (duplicates an older engine allowed are removed),
//! removed by name, every one of that name. And the address of the engine's default bridge,
//! which `host.docker.internal` stands for in containers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::{anyhow, Context as _};
use bollard::models::{IpamConfig, NetworkCreateRequest};
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

    /// The address `host-gateway` (`host.docker.internal`) resolves to in containers: the
    /// engine's default bridge (`docker0`), unless the daemon sets `host-gateway-ip` itself.
    /// `None` without a default bridge.
    pub async fn host_gateway(&self) -> anyhow::Result<Option<IpAddr>> {
        match self.docker.inspect_network("bridge", None).await {
            Ok(network) => {
                let configs = network
                    .ipam
                    .and_then(|ipam| ipam.config)
                    .unwrap_or_default();
                Ok(bridge_gateway(&configs).map(IpAddr::V4))
            }
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(anyhow!(
                "inspecting Docker's default bridge network: {}",
                docker_message(&e)
            )),
        }
    }
}

/// The bridge's IPv4 gateway as the engine reports it or, as Engine 20.10 reports only the
/// subnet of the default bridge, the subnet's first address, which the engine gives the bridge
/// unless `bip` says otherwise (and then it reports the gateway).
fn bridge_gateway(configs: &[IpamConfig]) -> Option<Ipv4Addr> {
    let reported = configs
        .iter()
        .filter_map(|c| c.gateway.as_deref()?.parse::<Ipv4Addr>().ok())
        .next();
    reported.or_else(|| {
        configs.iter().find_map(|c| {
            let (network, prefix) = c.subnet.as_deref()?.split_once('/')?;
            let network: Ipv4Addr = network.parse().ok()?;
            let prefix: u32 = prefix.parse().ok().filter(|p| *p < 31)?;
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Some(Ipv4Addr::from((u32::from(network) & mask) + 1))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(subnet: Option<&str>, gateway: Option<&str>) -> IpamConfig {
        IpamConfig {
            subnet: subnet.map(str::to_string),
            gateway: gateway.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn the_bridge_gateway_is_the_reported_one_or_the_subnets_first_address() {
        let gw = |configs: &[IpamConfig]| bridge_gateway(configs).map(|ip| ip.to_string());
        assert_eq!(
            gw(&[config(Some("172.17.0.0/16"), None)]).as_deref(),
            Some("172.17.0.1")
        );
        assert_eq!(
            gw(&[config(Some("192.168.5.0/24"), Some("192.168.5.9"))]).as_deref(),
            Some("192.168.5.9")
        );
        // IPv6 entries are skipped.
        assert_eq!(
            gw(&[
                config(Some("fd00::/64"), Some("fd00::1")),
                config(Some("10.9.0.0/16"), None)
            ])
            .as_deref(),
            Some("10.9.0.1")
        );
        assert_eq!(gw(&[]), None);
        assert_eq!(gw(&[config(Some("garbage"), None)]), None);
    }
}
