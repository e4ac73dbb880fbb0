//! The Prometheus client: readiness, `/-/reload`, and the reads that show what it loaded and
//! scrapes (the loaded job names, the active targets, instant queries, metric names).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::Client;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{post_reload, probe, send, snippet, trim_base, Probe, ReloadError};

#[derive(Clone, Debug)]
pub struct Prometheus {
    base: String,
    client: Client,
}

/// One active scrape target as `GET /api/v1/targets` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The job name.
    pub scrape_pool: String,
    pub scrape_url: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub health: Health,
    #[serde(default)]
    pub last_error: String,
    /// RFC 3339; `0001-01-01T00:00:00Z` before the first scrape.
    #[serde(default)]
    pub last_scrape: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
    #[serde(other)]
    Unknown,
}

/// Target health counted per job, for `monstack status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSummary {
    pub job: String,
    pub up: usize,
    pub down: usize,
    pub unknown: usize,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Counts targets by job and health, sorted by job name.
pub fn summarize(targets: &[Target]) -> Vec<JobSummary> {
    let mut jobs: BTreeMap<&str, JobSummary> = BTreeMap::new();
    for target in targets {
        let summary = jobs
            .entry(&target.scrape_pool)
            .or_insert_with(|| JobSummary {
                job: target.scrape_pool.clone(),
                up: 0,
                down: 0,
                unknown: 0,
            });
        match target.health {
            Health::Up => summary.up += 1,
            Health::Down => summary.down += 1,
            Health::Unknown => summary.unknown += 1,
        }
    }
    jobs.into_values().collect()
}

/// `{"status":"success"|"error","data":...,"errorType":...,"error":...}`
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

impl Prometheus {
    pub fn new(client: &Client, base: impl Into<String>) -> Prometheus {
        Prometheus {
            base: trim_base(base),
            client: client.clone(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /-/ready`: true on 200, false while starting (503, connection refused or reset),
    /// an error for answers that mean this is not a working Prometheus.
    pub async fn ready(&self) -> Result<bool> {
        match probe(&self.client, &format!("{}/-/ready", self.base)).await {
            Probe::Ready => Ok(true),
            Probe::Starting => Ok(false),
            Probe::Unexpected(message) => {
                Err(anyhow!(message)).context("checking whether Prometheus is ready")
            }
        }
    }

    /// `POST /-/reload`. On [`ReloadError::Rejected`] Prometheus keeps its previous config.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        post_reload(&self.client, "Prometheus", &self.base, true).await
    }

    /// The `job_name` of every scrape config Prometheus has loaded, in its order. Compare with
    /// what was rendered to confirm that a reload took effect.
    pub async fn loaded_job_names(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct ConfigData {
            yaml: String,
        }
        #[derive(Deserialize)]
        struct LoadedConfig {
            #[serde(default)]
            scrape_configs: Vec<LoadedJob>,
        }
        #[derive(Deserialize)]
        struct LoadedJob {
            job_name: String,
        }
        let doing = || format!("reading the loaded config of Prometheus at {}", self.base);
        let data: ConfigData = self
            .api_get("/api/v1/status/config", &[])
            .await
            .with_context(doing)?;
        let config: LoadedConfig = crate::manifest::yaml::from_str(&data.yaml)
            .context("parsing the YAML in data.yaml")
            .with_context(doing)?;
        Ok(config
            .scrape_configs
            .into_iter()
            .map(|j| j.job_name)
            .collect())
    }

    /// The active targets (`GET /api/v1/targets?state=active`).
    pub async fn targets(&self) -> Result<Vec<Target>> {
        #[derive(Deserialize)]
        struct TargetsData {
            #[serde(rename = "activeTargets", default)]
            active_targets: Vec<Target>,
        }
        let data: TargetsData = self
            .api_get("/api/v1/targets", &[("state", "active")])
            .await
            .with_context(|| format!("listing the targets of Prometheus at {}", self.base))?;
        Ok(data.active_targets)
    }

    /// Evaluates an instant query. A scalar result comes back as one sample without labels.
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>> {
        #[derive(Deserialize)]
        struct QueryData {
            #[serde(rename = "resultType")]
            result_type: String,
            result: serde_json::Value,
        }
        #[derive(Deserialize)]
        struct VectorElement {
            #[serde(default)]
            metric: BTreeMap<String, String>,
            value: (f64, String),
        }
        let doing = || format!("querying Prometheus at {} for `{promql}`", self.base);
        let data: QueryData = self
            .api_get("/api/v1/query", &[("query", promql)])
            .await
            .with_context(doing)?;
        match data.result_type.as_str() {
            "vector" => {
                let elements: Vec<VectorElement> = serde_json::from_value(data.result)
                    .context("decoding the vector result")
                    .with_context(doing)?;
                elements
                    .into_iter()
                    .map(|e| {
                        Ok(Sample {
                            value: parse_sample_value(&e.value.1).with_context(doing)?,
                            labels: e.metric,
                        })
                    })
                    .collect()
            }
            "scalar" => {
                let (_, value): (f64, String) = serde_json::from_value(data.result)
                    .context("decoding the scalar result")
                    .with_context(doing)?;
                Ok(vec![Sample {
                    labels: BTreeMap::new(),
                    value: parse_sample_value(&value).with_context(doing)?,
                }])
            }
            other => Err(anyhow!(
                "expected an instant vector, got a {other}; use an instant query"
            ))
            .with_context(doing),
        }
    }

    /// Every metric name Prometheus has series for (`GET /api/v1/label/__name__/values`).
    pub async fn metric_names(&self) -> Result<Vec<String>> {
        self.api_get("/api/v1/label/__name__/values", &[])
            .await
            .with_context(|| format!("listing the metric names of Prometheus at {}", self.base))
    }

    /// GETs a `/api/v1` endpoint and returns `data`, or Prometheus' own error message.
    async fn api_get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        let request = self.client.get(format!("{}{path}", self.base)).query(query);
        let (status, body) = send(request).await?;
        let envelope: Envelope = match serde_json::from_slice(&body) {
            Ok(envelope) => envelope,
            Err(_) => bail!("unexpected HTTP {status}: {}", snippet(&body)),
        };
        if envelope.status != "success" {
            bail!(
                "Prometheus answered HTTP {status}, {}: {}",
                envelope.error_type,
                envelope.error
            );
        }
        serde_json::from_value(envelope.data)
            .with_context(|| format!("decoding `data` from {}", snippet(&body)))
    }
}

/// Prometheus sends sample values as strings so that NaN and the infinities survive JSON.
fn parse_sample_value(text: &str) -> Result<f64> {
    text.parse::<f64>()
        .map_err(|_| anyhow!("`{text}` is not a sample value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::testkit::{client, json_answer, serve, wait_for, write};
    use crate::testsupport::{free_port, pinned, ChildGuard};
    use serde_json::json;
    use std::path::Path;
    use std::process::Command;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn prometheus(server: &MockServer) -> Prometheus {
        Prometheus::new(&client(), server.uri())
    }

    #[tokio::test]
    async fn prometheus_ready_on_200() {
        let ok = ResponseTemplate::new(200).set_body_string("Prometheus Server is Ready.\n");
        let server = serve("GET", "/-/ready", ok).await;
        assert!(prometheus(&server).ready().await.unwrap());
    }

    #[tokio::test]
    async fn prometheus_not_ready_on_503() {
        let starting = ResponseTemplate::new(503).set_body_string("Service Unavailable");
        let server = serve("GET", "/-/ready", starting).await;
        assert!(!prometheus(&server).ready().await.unwrap());
    }

    #[tokio::test]
    async fn ready_is_an_error_when_something_else_answers() {
        let not_found = ResponseTemplate::new(404).set_body_string("404 page not found");
        let server = serve("GET", "/-/ready", not_found).await;
        let error = prometheus(&server).ready().await.unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.starts_with("checking whether Prometheus is ready: "),
            "{message}"
        );
        assert!(message.contains(&server.uri()), "{message}");
        assert!(
            message.contains("HTTP 404 Not Found: 404 page not found"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn prometheus_reload_ok() {
        let server = serve("POST", "/-/reload", ResponseTemplate::new(200)).await;
        prometheus(&server).reload().await.unwrap();
    }

    #[tokio::test]
    async fn prometheus_reload_500_surfaces_its_message() {
        let body = "failed to reload config: couldn't load configuration \
                    (--config.file=\"/etc/prometheus/prometheus.yml\"): parsing YAML file \
                    /etc/prometheus/prometheus.yml: not a valid duration string: \"notaduration\"\n";
        let rejected = ResponseTemplate::new(500).set_body_string(body);
        let server = serve("POST", "/-/reload", rejected).await;
        match prometheus(&server).reload().await {
            Err(ReloadError::Rejected(message)) => {
                assert_eq!(message, body.trim());
                let shown = ReloadError::Rejected(message).to_string();
                assert!(shown.contains("not a valid duration string"), "{shown}");
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn prometheus_reload_403_means_lifecycle_disabled() {
        let forbidden = ResponseTemplate::new(403).set_body_string("Lifecycle API is not enabled.");
        let server = serve("POST", "/-/reload", forbidden).await;
        let error = prometheus(&server).reload().await.unwrap_err();
        assert!(matches!(error, ReloadError::LifecycleDisabled), "{error:?}");
        assert!(error.to_string().contains("--web.enable-lifecycle"));
    }

    #[tokio::test]
    async fn prometheus_reload_unexpected_status_says_what_it_was_doing() {
        let not_found = ResponseTemplate::new(404).set_body_string("nope");
        let server = serve("POST", "/-/reload", not_found).await;
        let error = prometheus(&server).reload().await.unwrap_err();
        assert!(matches!(error, ReloadError::Other(_)), "{error:?}");
        let message = error.to_string();
        let doing = format!("reloading Prometheus at {}: ", server.uri());
        assert!(message.starts_with(&doing), "{message}");
        assert!(message.contains("HTTP 404 Not Found: nope"), "{message}");
    }

    fn config_answer(yaml: &str) -> ResponseTemplate {
        json_answer(200, json!({"status": "success", "data": {"yaml": yaml}}))
    }

    #[tokio::test]
    async fn loaded_job_names_reads_the_yaml_in_the_status_config() {
        let yaml = "global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\n\
                    scrape_configs:\n- job_name: prometheus\n  honor_timestamps: true\n  \
                    static_configs:\n  - targets:\n    - localhost:9090\n\
                    - job_name: node\n  basic_auth:\n    username: u\n    password: <secret>\n";
        let server = serve("GET", "/api/v1/status/config", config_answer(yaml)).await;
        let jobs = prometheus(&server).loaded_job_names().await.unwrap();
        assert_eq!(jobs, ["prometheus", "node"]);
    }

    #[tokio::test]
    async fn loaded_job_names_of_a_config_without_jobs_is_empty() {
        let answer = config_answer("global:\n  scrape_interval: 1m\n");
        let server = serve("GET", "/api/v1/status/config", answer).await;
        assert!(prometheus(&server)
            .loaded_job_names()
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn loaded_job_names_reports_unparsable_yaml() {
        let answer = config_answer("scrape_configs: [oops");
        let server = serve("GET", "/api/v1/status/config", answer).await;
        let error = prometheus(&server).loaded_job_names().await.unwrap_err();
        let message = format!("{error:#}");
        let doing = format!(
            "reading the loaded config of Prometheus at {}: ",
            server.uri()
        );
        assert!(message.starts_with(&doing), "{message}");
        assert!(message.contains("data.yaml"), "{message}");
    }

    /// One `activeTargets` entry as Prometheus 2.x sends it.
    fn target(job: &str, instance: &str, health: &str, last_error: &str) -> serde_json::Value {
        json!({
            "discoveredLabels": {"__address__": instance, "__metrics_path__": "/metrics",
                                 "__scheme__": "http", "job": job},
            "labels": {"instance": instance, "job": job},
            "scrapePool": job,
            "scrapeUrl": format!("http://{instance}/metrics"),
            "globalUrl": format!("http://{instance}/metrics"),
            "lastError": last_error,
            "lastScrape": "2017-01-17T15:07:44.723715405+01:00",
            "lastScrapeDuration": 0.050688943,
            "health": health,
            "scrapeInterval": "1m",
            "scrapeTimeout": "10s"
        })
    }

    #[tokio::test]
    async fn targets_and_their_summary() {
        let refused = "Get \"http://10.0.0.2:9100/metrics\": dial tcp: connection refused";
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/targets"))
            .and(query_param("state", "active"))
            .respond_with(json_answer(
                200,
                json!({
                    "status": "success",
                    "data": {
                        "activeTargets": [
                            target("node", "10.0.0.1:9100", "up", ""),
                            target("prometheus", "localhost:9090", "up", ""),
                            target("node", "10.0.0.2:9100", "down", refused),
                            target("node", "10.0.0.3:9100", "unknown", ""),
                        ],
                        "droppedTargets": []
                    }
                }),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let targets = prometheus(&server).targets().await.unwrap();
        assert_eq!(targets.len(), 4);
        let down = &targets[2];
        assert_eq!(down.scrape_pool, "node");
        assert_eq!(down.scrape_url, "http://10.0.0.2:9100/metrics");
        assert_eq!(down.health, Health::Down);
        assert_eq!(down.last_error, refused);
        assert_eq!(down.labels["instance"], "10.0.0.2:9100");
        assert_eq!(down.last_scrape, "2017-01-17T15:07:44.723715405+01:00");
        let summary = |job: &str, up, down, unknown| JobSummary {
            job: job.to_string(),
            up,
            down,
            unknown,
        };
        assert_eq!(
            summarize(&targets),
            [summary("node", 1, 1, 1), summary("prometheus", 1, 0, 0)]
        );
        assert!(summarize(&[]).is_empty());
    }

    #[tokio::test]
    async fn query_returns_vector_samples() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/query"))
            .and(query_param("query", "up{job=~\"node|prometheus\"}"))
            .respond_with(json_answer(
                200,
                json!({
                    "status": "success",
                    "data": {"resultType": "vector", "result": [
                        {"metric": {"__name__": "up", "job": "prometheus",
                                    "instance": "localhost:9090"},
                         "value": [1435781451.781, "1"]},
                        {"metric": {"__name__": "up", "job": "node", "instance": "localhost:9100"},
                         "value": [1435781451.781, "0"]},
                        {"metric": {"job": "ratio"}, "value": [1435781451.781, "NaN"]},
                        {"metric": {"job": "big"}, "value": [1435781451.781, "+Inf"]},
                        {"metric": {"job": "small"}, "value": [1435781451.781, "-Inf"]}
                    ]}
                }),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let samples = prometheus(&server)
            .query("up{job=~\"node|prometheus\"}")
            .await
            .unwrap();
        assert_eq!(samples.len(), 5);
        assert_eq!(samples[0].labels["job"], "prometheus");
        assert_eq!(samples[0].labels["__name__"], "up");
        assert_eq!(samples[0].value, 1.0);
        assert_eq!(samples[1].value, 0.0);
        assert!(samples[2].value.is_nan());
        assert_eq!(samples[3].value, f64::INFINITY);
        assert_eq!(samples[4].value, f64::NEG_INFINITY);
    }

    #[tokio::test]
    async fn query_of_a_scalar_is_one_unlabelled_sample() {
        let answer = json_answer(
            200,
            json!({
                "status": "success",
                "data": {"resultType": "scalar", "result": [1435781451.781, "2"]}
            }),
        );
        let server = serve("GET", "/api/v1/query", answer).await;
        let samples = prometheus(&server).query("1+1").await.unwrap();
        let two = Sample {
            labels: BTreeMap::new(),
            value: 2.0,
        };
        assert_eq!(samples, [two]);
    }

    #[tokio::test]
    async fn query_errors_carry_prometheus_message() {
        let answer = json_answer(
            400,
            json!({
                "status": "error",
                "errorType": "bad_data",
                "error": "invalid parameter \"query\": 1:4: parse error: unexpected end of input"
            }),
        );
        let server = serve("GET", "/api/v1/query", answer).await;
        let error = prometheus(&server).query("up +").await.unwrap_err();
        let message = format!("{error:#}");
        let doing = format!("querying Prometheus at {} for `up +`: ", server.uri());
        assert!(message.starts_with(&doing), "{message}");
        assert!(message.contains("bad_data: invalid parameter"), "{message}");
    }

    #[tokio::test]
    async fn query_refuses_range_results() {
        let answer = json_answer(
            200,
            json!({"status": "success", "data": {"resultType": "matrix", "result": []}}),
        );
        let server = serve("GET", "/api/v1/query", answer).await;
        let error = prometheus(&server).query("up[5m]").await.unwrap_err();
        assert!(format!("{error:#}").contains("got a matrix"), "{error:#}");
    }

    #[tokio::test]
    async fn api_answers_that_are_not_json_show_the_body() {
        let bad_gateway = ResponseTemplate::new(502).set_body_string("Bad Gateway from the proxy");
        let server = serve("GET", "/api/v1/targets", bad_gateway).await;
        let error = prometheus(&server).targets().await.unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.starts_with("listing the targets of Prometheus at "),
            "{message}"
        );
        assert!(
            message.contains("HTTP 502 Bad Gateway: Bad Gateway from the proxy"),
            "{message}"
        );
    }

    fn prometheus_config(self_port: u16, with_node_job: bool) -> String {
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      \
             - targets: ['127.0.0.1:{self_port}']\n"
        );
        if with_node_job {
            // Nothing listens on the discard port: the target exists and is down.
            config.push_str(
                "  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:9']\n",
            );
        }
        config
    }

    /// A real Prometheus on a free port with `prometheus.yml` in `dir`.
    async fn start_prometheus(
        bin: &Path,
        dir: &Path,
        config: &dyn Fn(u16) -> String,
        lifecycle: bool,
    ) -> (ChildGuard, Prometheus, u16) {
        let port = free_port();
        write(&dir.join("prometheus.yml"), &config(port));
        let mut command = Command::new(bin);
        command
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        if lifecycle {
            command.arg("--web.enable-lifecycle");
        }
        let mut child = ChildGuard::spawn(&mut command, &dir.join("prometheus.log"));
        let prometheus = Prometheus::new(&client(), format!("http://127.0.0.1:{port}"));
        wait_for(&mut child, "waiting for Prometheus to become ready", || {
            prometheus.ready()
        })
        .await;
        (child, prometheus, port)
    }

    #[tokio::test]
    async fn real_prometheus_reload_cycle() {
        let Some(bin) = pinned(crate::testsupport::PROMETHEUS) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("prometheus.yml");
        let (mut child, prometheus, port) = start_prometheus(
            &bin,
            dir.path(),
            &|port| prometheus_config(port, false),
            true,
        )
        .await;
        assert_eq!(prometheus.loaded_job_names().await.unwrap(), ["prometheus"]);

        // A valid change is loaded, and its target appears.
        write(&config_path, &prometheus_config(port, true));
        if let Err(e) = prometheus.reload().await {
            panic!("{e}\n{}", child.log());
        }
        let both = ["prometheus", "node"];
        assert_eq!(prometheus.loaded_job_names().await.unwrap(), both);
        wait_for(
            &mut child,
            "waiting for the targets of both jobs",
            || async {
                let jobs: Vec<String> = summarize(&prometheus.targets().await?)
                    .into_iter()
                    .map(|s| s.job)
                    .collect();
                Ok(jobs == ["node", "prometheus"])
            },
        )
        .await;
        let targets = prometheus.targets().await.unwrap();
        let own = targets
            .iter()
            .find(|t| t.scrape_pool == "prometheus")
            .unwrap();
        assert_eq!(own.scrape_url, format!("http://127.0.0.1:{port}/metrics"));
        assert_eq!(own.labels["job"], "prometheus");

        // Prometheus scrapes itself every second, so `up` becomes 1.
        let up = "up{job=\"prometheus\"}";
        wait_for(
            &mut child,
            "waiting for Prometheus to scrape itself",
            || async {
                let samples = prometheus.query(up).await?;
                Ok(samples.len() == 1 && samples[0].value == 1.0)
            },
        )
        .await;
        let samples = prometheus.query(up).await.unwrap();
        assert_eq!(samples[0].labels["instance"], format!("127.0.0.1:{port}"));
        let error = prometheus.query("up +").await.unwrap_err();
        assert!(format!("{error:#}").contains("bad_data"), "{error:#}");

        // An invalid change is rejected with Prometheus' reason; the previous config stays.
        write(
            &config_path,
            "scrape_configs: [{job_name: x, scrape_interval: notaduration}]\n",
        );
        match prometheus.reload().await {
            Err(ReloadError::Rejected(message)) => {
                assert!(message.starts_with("failed to reload config"), "{message}");
                assert!(message.contains("notaduration"), "{message}");
            }
            other => panic!("expected Rejected, got {other:?}\n{}", child.log()),
        }
        assert_eq!(prometheus.loaded_job_names().await.unwrap(), both);
        assert!(prometheus.ready().await.unwrap());
    }

    #[tokio::test]
    async fn real_prometheus_without_lifecycle_refuses_reload() {
        let Some(bin) = pinned(crate::testsupport::PROMETHEUS) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (_child, prometheus, _) = start_prometheus(
            &bin,
            dir.path(),
            &|port| prometheus_config(port, false),
            false,
        )
        .await;
        let error = prometheus.reload().await.unwrap_err();
        assert!(matches!(error, ReloadError::LifecycleDisabled), "{error:?}");
    }
}
