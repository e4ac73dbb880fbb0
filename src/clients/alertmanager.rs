//! The Alertmanager client: readiness, `/-/reload`, and the receivers of the loaded config.

use anyhow::{anyhow, Context, Result};
use reqwest::{Client, StatusCode};
use serde::Deserialize;

use super::{decode, post_reload, probe, send, snippet, trim_base, Probe, ReloadError};

#[derive(Clone, Debug)]
pub struct Alertmanager {
    base: String,
    client: Client,
}

impl Alertmanager {
    pub fn new(client: &Client, base: impl Into<String>) -> Alertmanager {
        Alertmanager {
            base: trim_base(base),
            client: client.clone(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /-/ready`, with the same meaning as [`Prometheus::ready`](super::Prometheus::ready).
    pub async fn ready(&self) -> Result<bool> {
        match probe(&self.client, &format!("{}/-/ready", self.base)).await {
            Probe::Ready => Ok(true),
            Probe::Starting => Ok(false),
            Probe::Unexpected(message) => {
                Err(anyhow!(message)).context("checking whether Alertmanager is ready")
            }
        }
    }

    /// `POST /-/reload` (always enabled in Alertmanager). A rejected config leaves the old one.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        post_reload(&self.client, "Alertmanager", &self.base).await
    }

    /// The names of the receivers in the loaded config (`GET /api/v2/status`, `config.original`).
    pub async fn loaded_receivers(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Status {
            config: StatusConfig,
        }
        #[derive(Deserialize)]
        struct StatusConfig {
            original: String,
        }
        #[derive(Deserialize)]
        struct LoadedConfig {
            #[serde(default)]
            receivers: Vec<LoadedReceiver>,
        }
        #[derive(Deserialize)]
        struct LoadedReceiver {
            name: String,
        }
        let doing = || format!("reading the loaded config of Alertmanager at {}", self.base);
        let (status, body) = send(self.client.get(format!("{}/api/v2/status", self.base)))
            .await
            .with_context(doing)?;
        if status != StatusCode::OK {
            return Err(anyhow!("unexpected HTTP {status}: {}", snippet(&body)))
                .with_context(doing);
        }
        let status: Status = decode(&body, "the status").with_context(doing)?;
        let config: LoadedConfig = crate::manifest::yaml::from_str(&status.config.original)
            .context("parsing the YAML in config.original")
            .with_context(doing)?;
        Ok(config.receivers.into_iter().map(|r| r.name).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::testkit::{client, json_answer, serve, wait_for, write};
    use crate::testsupport::{free_port, pinned, ChildGuard};
    use serde_json::json;
    use std::process::Command;
    use wiremock::{MockServer, ResponseTemplate};

    fn alertmanager(server: &MockServer) -> Alertmanager {
        Alertmanager::new(&client(), server.uri())
    }

    #[tokio::test]
    async fn alertmanager_reload_maps_500_to_rejected_and_403_to_other() {
        let body = "failed to reload config: undefined receiver \"missing\" used in route";
        let rejected = ResponseTemplate::new(500).set_body_string(body);
        let server = serve("POST", "/-/reload", rejected).await;
        match alertmanager(&server).reload().await {
            Err(ReloadError::Rejected(message)) => assert_eq!(message, body),
            other => panic!("expected Rejected, got {other:?}"),
        }
        let server = serve("POST", "/-/reload", ResponseTemplate::new(403)).await;
        let error = alertmanager(&server).reload().await.unwrap_err();
        assert!(matches!(error, ReloadError::Other(_)), "{error:?}");
        assert!(
            error.to_string().contains("reloading Alertmanager at"),
            "{error}"
        );
        let server = serve("POST", "/-/reload", ResponseTemplate::new(200)).await;
        alertmanager(&server).reload().await.unwrap();
    }

    #[tokio::test]
    async fn alertmanager_loaded_receivers_reads_config_original() {
        let original = "global:\n  resolve_timeout: 5m\n  smtp_auth_password: <secret>\n\
                        route:\n  receiver: default\n  continue: false\n\
                        receivers:\n- name: default\n- name: oncall\n  webhook_configs:\n  \
                        - send_resolved: true\n    url: <secret>\n\
                        templates: []\n";
        let answer = json_answer(
            200,
            json!({
                "cluster": {"name": "01H", "peers": [], "status": "disabled"},
                "config": {"original": original},
                "uptime": "2024-01-01T00:00:00.000Z",
                "versionInfo": {"version": "0.25.0"}
            }),
        );
        let server = serve("GET", "/api/v2/status", answer).await;
        let receivers = alertmanager(&server).loaded_receivers().await.unwrap();
        assert_eq!(receivers, ["default", "oncall"]);
    }

    #[tokio::test]
    async fn alertmanager_loaded_receivers_reports_unexpected_answers() {
        let not_found = ResponseTemplate::new(404).set_body_string("not found");
        let server = serve("GET", "/api/v2/status", not_found).await;
        let error = alertmanager(&server).loaded_receivers().await.unwrap_err();
        let message = format!("{error:#}");
        let doing = format!(
            "reading the loaded config of Alertmanager at {}: ",
            server.uri()
        );
        assert!(message.starts_with(&doing), "{message}");
        assert!(
            message.contains("HTTP 404 Not Found: not found"),
            "{message}"
        );
    }

    fn alertmanager_config(with_oncall: bool) -> String {
        let mut config = "route:\n  receiver: default\nreceivers:\n  - name: default\n".to_string();
        if with_oncall {
            config.push_str(
                "  - name: oncall\n    webhook_configs:\n      - url: http://127.0.0.1:9/hook\n",
            );
        }
        config
    }

    #[tokio::test]
    async fn real_alertmanager_reload_cycle() {
        let Some(bin) = pinned(crate::testsupport::ALERTMANAGER) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        write(&config, &alertmanager_config(false));
        let port = free_port();
        let mut child = ChildGuard::spawn(
            Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address="),
            &dir.path().join("alertmanager.log"),
        );
        let alertmanager = Alertmanager::new(&client(), format!("http://127.0.0.1:{port}"));
        wait_for(
            &mut child,
            "waiting for Alertmanager to become ready",
            || alertmanager.ready(),
        )
        .await;
        assert_eq!(alertmanager.loaded_receivers().await.unwrap(), ["default"]);

        write(&config, &alertmanager_config(true));
        if let Err(e) = alertmanager.reload().await {
            panic!("{e}\n{}", child.log());
        }
        let both = ["default", "oncall"];
        assert_eq!(alertmanager.loaded_receivers().await.unwrap(), both);

        write(
            &config,
            "route:\n  receiver: missing\nreceivers:\n  - name: default\n",
        );
        match alertmanager.reload().await {
            Err(ReloadError::Rejected(message)) => {
                assert!(message.starts_with("failed to reload config"), "{message}");
                assert!(message.contains("\"missing\""), "{message}");
            }
            other => panic!("expected Rejected, got {other:?}\n{}", child.log()),
        }
        assert_eq!(alertmanager.loaded_receivers().await.unwrap(), both);
        assert!(alertmanager.ready().await.unwrap());
    }
}
