//! The `consul-discovered` scrape job of `prometheus.yml` (`discovery.consul`) and the file
//! holding its ACL token.
//!
//! Prometheus asks Consul itself (`consul_sd_configs`: the catalog, then each service's health
//! endpoint, as blocking queries); no agent is involved. The relabelling gives the targets the
//! labels registered etcd services get: `service`, `service_id`, `job` = the service's name and
//! `instance` = the address scraped, a loopback registration scraped at `host.docker.internal`.

use serde::Serialize;

use super::RenderedFile;
use crate::model::{ConsulDiscovery, Scheme, Stack, JOB_CONSUL_DISCOVERED};

/// The token's file, relative to `.monstack/` (mode 0640, mounted with `prometheus/`).
pub const TOKEN_PATH: &str = "prometheus/secrets/consul-token";
/// The same file as `prometheus.yml` names it (relative to its own directory).
const TOKEN_REFERENCE: &str = "secrets/consul-token";

#[derive(Serialize)]
pub(super) struct ScrapeConfig {
    job_name: &'static str,
    consul_sd_configs: Vec<SdConfig>,
    relabel_configs: Vec<Relabel>,
}

#[derive(Serialize)]
struct SdConfig {
    server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    datacenter: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    services: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    /// `Authorization: Bearer <token>`, which Consul accepts as it does `X-Consul-Token`; read
    /// from the file on every request, so the token is never in prometheus.yml.
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<Authorization>,
}

#[derive(Serialize)]
struct Authorization {
    credentials_file: &'static str,
}

#[derive(Serialize)]
struct Relabel {
    source_labels: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_label: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
}

/// An address Prometheus' Consul discovery builds (`net.JoinHostPort`) on the loopback.
const LOOPBACK_ADDRESS: &str = r"(?:localhost|127(?:\.[0-9]+){3}|\[::1\]):([0-9]+)";

fn copy(source: &'static str, target: &'static str) -> Relabel {
    Relabel {
        source_labels: [source],
        regex: None,
        target_label: Some(target),
        replacement: None,
        action: None,
    }
}

pub(super) fn scrape_config(consul: &ConsulDiscovery) -> ScrapeConfig {
    let mut relabel = Vec::new();
    if consul.services.is_empty() {
        // Consul lists itself as the service `consul` (its server RPC port, not HTTP metrics):
        // scraping it would only ever be down.
        relabel.push(Relabel {
            source_labels: ["__meta_consul_service"],
            regex: Some("consul"),
            target_label: None,
            replacement: None,
            action: Some("drop"),
        });
    }
    relabel.push(copy("__meta_consul_service", "service"));
    relabel.push(copy("__meta_consul_service_id", "service_id"));
    relabel.push(copy("__meta_consul_service", "job"));
    // As a registration's own `job` label wins on the etcd path, so does a `job` in the
    // service's metadata here.
    relabel.push(Relabel {
        regex: Some("(.+)"),
        ..copy("__meta_consul_service_metadata_job", "job")
    });
    // A service may name its metrics path in its metadata (`Meta: {metrics_path: /m}`).
    relabel.push(Relabel {
        regex: Some("(/.*)"),
        ..copy(
            "__meta_consul_service_metadata_metrics_path",
            "__metrics_path__",
        )
    });
    if consul.rewrite_loopback {
        relabel.push(Relabel {
            regex: Some(LOOPBACK_ADDRESS),
            replacement: Some("host.docker.internal:$1"),
            ..copy("__address__", "__address__")
        });
    }
    ScrapeConfig {
        job_name: JOB_CONSUL_DISCOVERED,
        consul_sd_configs: vec![SdConfig {
            server: consul.server.clone(),
            scheme: (consul.scheme == Scheme::Https).then_some("https"),
            datacenter: consul.datacenter.clone(),
            services: consul.services.clone(),
            tags: consul.tags.clone(),
            authorization: consul.token.is_some().then_some(Authorization {
                credentials_file: TOKEN_REFERENCE,
            }),
        }],
        relabel_configs: relabel,
    }
}

/// The token file, when there is a token.
pub fn render(stack: &Stack) -> Vec<RenderedFile> {
    let token = stack
        .discovery
        .consul
        .as_ref()
        .and_then(|c| c.token.as_ref());
    token
        .map(|token| RenderedFile::secret(TOKEN_PATH, format!("{token}\n")))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testkit;
    use serde_yaml::Value;

    fn yaml(value: &impl Serialize) -> Value {
        serde_yaml::to_value(value).unwrap()
    }

    #[test]
    fn every_service_but_consul_is_scraped_under_its_own_job_name() {
        assert_eq!(
            yaml(&scrape_config(&testkit::consul())),
            serde_yaml::from_str::<Value>(
                r#"
                job_name: consul-discovered
                consul_sd_configs: [{server: 'host.docker.internal:8500'}]
                relabel_configs:
                  - {source_labels: [__meta_consul_service], regex: consul, action: drop}
                  - {source_labels: [__meta_consul_service], target_label: service}
                  - {source_labels: [__meta_consul_service_id], target_label: service_id}
                  - {source_labels: [__meta_consul_service], target_label: job}
                  - {source_labels: [__meta_consul_service_metadata_job], regex: '(.+)', target_label: job}
                  - {source_labels: [__meta_consul_service_metadata_metrics_path], regex: '(/.*)',
                     target_label: __metrics_path__}
                  - {source_labels: [__address__], regex: '(?:localhost|127(?:\.[0-9]+){3}|\[::1\]):([0-9]+)',
                     target_label: __address__, replacement: 'host.docker.internal:$1'}
                "#
            )
            .unwrap()
        );
    }

    #[test]
    fn the_token_is_a_file_never_in_the_config() {
        let token = "5f1c9a1e-0000-4000-8000-000000000001";
        let mut stack = testkit::minimal();
        stack.discovery.consul = Some(ConsulDiscovery {
            scheme: Scheme::Https,
            services: vec!["web".into()],
            tags: vec!["prod".into()],
            datacenter: Some("dc1".into()),
            token: Some(token.into()),
            rewrite_loopback: false,
            ..testkit::consul()
        });
        let config = yaml(&scrape_config(stack.discovery.consul.as_ref().unwrap()));
        assert_eq!(
            config["consul_sd_configs"],
            serde_yaml::from_str::<Value>(
                "[{server: 'host.docker.internal:8500', scheme: https, datacenter: dc1,
                   services: [web], tags: [prod],
                   authorization: {credentials_file: secrets/consul-token}}]"
            )
            .unwrap()
        );
        let relabel = config["relabel_configs"].as_sequence().unwrap();
        // Named services: `consul` is scraped only when listed; no loopback rewrite.
        assert_eq!(relabel.len(), 5);
        let files = render(&stack);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, TOKEN_PATH);
        assert!(files[0].secret);
        assert_eq!(files[0].text(), format!("{token}\n"));
        let tree = crate::render::render(&stack).unwrap();
        let prometheus_yml = tree.get(super::super::prometheus::CONFIG_PATH).unwrap();
        assert!(!prometheus_yml.text().contains(token));
        assert!(prometheus_yml.text().contains("consul-discovered"));
    }
}
