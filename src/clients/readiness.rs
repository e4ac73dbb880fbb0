//! Per-service readiness: the endpoint each service of the stack answers on, and what its answer
//! must say, on top of the generic probe in `clients` ([`super::probe`]).

use anyhow::{anyhow, Context, Result};
use reqwest::Client;

use super::{json_field_is, probe, probe_with, trim_base, Probe};

/// The readiness endpoint of each service monstack runs, or `None` for a name it does not know.
pub fn readiness_path(service: &str) -> Option<&'static str> {
    match service {
        "prometheus" | "alertmanager" | "pushgateway" | "agent" => Some("/-/ready"),
        "grafana" => Some("/api/health"),
        "etcd" => Some("/health"),
        // No readiness endpoint: its landing page answers once it serves /metrics.
        "node-exporter" => Some("/"),
        "blackbox" => Some("/-/healthy"),
        // 204 without authentication once the HTTP API serves.
        "influxdb" => Some("/ping"),
        _ => None,
    }
}

/// Whether `service` at `base_url` is ready, with the check that service needs: etcd must say
/// `{"health":"true"}`, Grafana `{"database":"ok"}`, the Prometheus family just 200.
/// `Ok(false)` means "ask again later"; `Err` means waiting will not help.
pub async fn is_ready(client: &Client, service: &str, base_url: &str) -> Result<bool> {
    let base = trim_base(base_url);
    let path = readiness_path(service)
        .ok_or_else(|| anyhow!("no readiness check is known for service `{service}`"))?;
    let url = format!("{base}{path}");
    let outcome = match service {
        "etcd" => {
            probe_with(client, &url, |body| {
                json_field_is(body, "health", "true", "etcd /health")
            })
            .await
        }
        "grafana" => {
            probe_with(client, &url, |body| {
                json_field_is(body, "database", "ok", "Grafana /api/health")
            })
            .await
        }
        "influxdb" => ping(client, &url).await,
        _ => probe(client, &url).await,
    };
    match outcome {
        Probe::Ready => Ok(true),
        Probe::Starting => Ok(false),
        Probe::Unexpected(message) => {
            Err(anyhow!(message)).with_context(|| format!("checking whether {service} is ready"))
        }
    }
}

/// InfluxDB's `/ping`: 204 with its version header (200 from versions that honour `verbose`).
async fn ping(client: &Client, url: &str) -> Probe {
    let response = match client.get(url).send().await {
        Ok(response) => response,
        Err(e) if super::still_starting(&e) => return Probe::Starting,
        Err(e) => return Probe::Unexpected(format!("GET {url}: {}", super::error_chain(&e))),
    };
    let status = response.status();
    let influx = response.headers().contains_key("x-influxdb-version");
    match status {
        reqwest::StatusCode::NO_CONTENT | reqwest::StatusCode::OK if influx => Probe::Ready,
        reqwest::StatusCode::SERVICE_UNAVAILABLE => Probe::Starting,
        _ if !influx => Probe::Unexpected(format!(
            "GET {url} answered HTTP {status} without X-Influxdb-Version: not InfluxDB"
        )),
        _ => Probe::Unexpected(format!("GET {url} answered HTTP {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::testkit::{client, closed_port_url, json_answer, serve};
    use serde_json::json;
    use wiremock::ResponseTemplate;

    #[test]
    fn readiness_paths() {
        assert_eq!(readiness_path("prometheus"), Some("/-/ready"));
        assert_eq!(readiness_path("grafana"), Some("/api/health"));
        assert_eq!(readiness_path("etcd"), Some("/health"));
        assert_eq!(readiness_path("alertmanager"), Some("/-/ready"));
        assert_eq!(readiness_path("pushgateway"), Some("/-/ready"));
        assert_eq!(readiness_path("node-exporter"), Some("/"));
        assert_eq!(readiness_path("blackbox"), Some("/-/healthy"));
        assert_eq!(readiness_path("mysql"), None);
    }

    async fn is_ready_with(
        service: &str,
        url_path: &str,
        answer: ResponseTemplate,
    ) -> Result<bool> {
        let server = serve("GET", url_path, answer).await;
        // A trailing slash on the base must not double the slash in the path.
        is_ready(&client(), service, &format!("{}/", server.uri())).await
    }

    #[tokio::test]
    async fn etcd_is_ready_only_when_it_says_health_true() {
        let healthy = json_answer(200, json!({"health": "true", "reason": ""}));
        assert!(is_ready_with("etcd", "/health", healthy).await.unwrap());
        let no_leader = json_answer(503, json!({"health": "false", "reason": "RAFT NO LEADER"}));
        assert!(!is_ready_with("etcd", "/health", no_leader).await.unwrap());
        let unhealthy_200 = json_answer(200, json!({"health": "false"}));
        assert!(!is_ready_with("etcd", "/health", unhealthy_200)
            .await
            .unwrap());
        let not_etcd = ResponseTemplate::new(200).set_body_string("<html>hello</html>");
        let error = is_ready_with("etcd", "/health", not_etcd)
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.starts_with("checking whether etcd is ready: "),
            "{message}"
        );
        assert!(message.contains("non-JSON"), "{message}");
    }

    #[tokio::test]
    async fn grafana_is_ready_only_when_its_database_is_ok() {
        let ok = json_answer(
            200,
            json!({"commit": "abc123", "database": "ok", "version": "11.2.0"}),
        );
        assert!(is_ready_with("grafana", "/api/health", ok).await.unwrap());
        let failing = json_answer(
            503,
            json!({"commit": "abc123", "database": "failing", "version": "11.2.0"}),
        );
        assert!(!is_ready_with("grafana", "/api/health", failing)
            .await
            .unwrap());
        let not_grafana = json_answer(200, json!({"status": "up"}));
        let error = is_ready_with("grafana", "/api/health", not_grafana)
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.starts_with("checking whether grafana is ready: "),
            "{message}"
        );
        assert!(message.contains("`database`"), "{message}");
    }

    #[tokio::test]
    async fn the_prometheus_family_is_ready_on_200() {
        for service in ["pushgateway", "alertmanager", "prometheus"] {
            let ok = ResponseTemplate::new(200).set_body_string("OK");
            assert!(is_ready_with(service, "/-/ready", ok).await.unwrap());
        }
    }

    #[tokio::test]
    async fn is_ready_refuses_unknown_services_and_waits_for_starting_ones() {
        let error = is_ready(&client(), "mysql", "http://127.0.0.1:1")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("`mysql`"), "{error}");
        assert!(!is_ready(&client(), "etcd", &closed_port_url())
            .await
            .unwrap());
    }
}
