//! The Prometheus client: readiness, reloads (by a signal; monstack starts Prometheus without
//! `--web.enable-lifecycle`, so no HTTP request can make it reload or quit), and the reads that
//! show what it loaded and
//! scrapes (the loaded job names, the active targets, instant queries, metric names).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use reqwest::Client;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::logfmt::logfmt_value;
use super::{probe, send, snippet, trim_base, Probe, ReloadError};

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

/// How long a reload may take before it counts as failed.
const RELOAD_WAIT: Duration = Duration::from_secs(30);

/// Why Prometheus refused a reload, from its log lines since the signal: the errors it logged
/// from `Loading configuration file` to `Error reloading config` (the specific ones first, e.g.
/// a rule's broken template, then the summary), of the last such load; `None` until that line
/// is there.
pub fn reload_failure(lines: &[String]) -> Option<String> {
    let mut found = None;
    let mut errors: Vec<String> = Vec::new();
    let mut loading = false;
    for line in lines {
        let line = format!(" {line}");
        let msg = logfmt_value(&line, "msg");
        if msg.as_deref() == Some("Loading configuration file") {
            loading = true;
            errors.clear();
            continue;
        }
        if !loading {
            continue;
        }
        let is_error = matches!(
            logfmt_value(&line, "level").as_deref(),
            Some("ERROR" | "error")
        );
        // The reload's own errors: main.go's (`source=` in 3.x, `caller=` in 2.x) and the rule
        // manager's; a notifier or a scrape logging meanwhile is not the reload's.
        let origin = logfmt_value(&line, "source").or_else(|| logfmt_value(&line, "caller"));
        let reloads = origin.is_some_and(|o| o.starts_with("main.go:"))
            || logfmt_value(&line, "component").as_deref() == Some("rule manager");
        let Some(err) = logfmt_value(&line, "err").filter(|_| is_error && reloads) else {
            continue;
        };
        if !errors.contains(&err) {
            errors.push(err);
        }
        if msg.as_deref() == Some("Error reloading config") {
            found = Some(errors.join("\n  "));
            loading = false;
        }
    }
    found
}

/// The lines after the last occurrence of `anchor` (all of them when it is gone from the tail).
fn after_anchor<'a>(lines: &'a [String], anchor: Option<&str>) -> &'a [String] {
    match anchor.and_then(|a| lines.iter().rposition(|l| l == a)) {
        Some(i) => &lines[i + 1..],
        None => lines,
    }
}

/// Prometheus' record of its last configuration load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigLoad {
    /// The last load (at start, or a reload) succeeded.
    pub successful: bool,
    /// When a load last succeeded (Unix seconds, with fractions).
    pub succeeded_at: f64,
}

/// The two `prometheus_config_last_reload_*` samples of a text exposition.
pub fn parse_config_load(text: &str) -> Option<ConfigLoad> {
    let (mut successful, mut succeeded_at) = (None, None);
    for line in text.lines() {
        match super::remote_storage::sample(line) {
            Some(("prometheus_config_last_reload_successful", _, value)) => {
                successful = Some(value == 1.0);
            }
            Some(("prometheus_config_last_reload_success_timestamp_seconds", _, value)) => {
                succeeded_at = Some(value);
            }
            _ => {}
        }
    }
    Some(ConfigLoad {
        successful: successful?,
        succeeded_at: succeeded_at?,
    })
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

    /// Reloads Prometheus through `signal` (which sends it `SIGHUP`: the Docker Engine's kill
    /// API for the stack's container) and waits until its own metrics report a load newer than
    /// before the signal. A refused configuration is [`ReloadError::Rejected`] with the errors
    /// Prometheus logged (`recent_log` reads its latest log lines); it keeps running the
    /// previous one.
    pub async fn reload_by_signal<L, Fut>(
        &self,
        signal: impl Future<Output = Result<()>>,
        recent_log: L,
    ) -> Result<(), ReloadError>
    where
        L: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<String>>>,
    {
        let before = self.config_load().await.map_err(ReloadError::Other)?;
        // The log's last line before the signal: what follows it is this reload's. (Not the
        // lines' times: Prometheus 3 writes them in its own time zone, on the engine's clock.)
        let anchor = recent_log()
            .await
            .map_err(ReloadError::Other)?
            .last()
            .cloned();
        signal.await.map_err(ReloadError::Other)?;
        let started = Instant::now();
        loop {
            let now = self.config_load().await.map_err(ReloadError::Other)?;
            if now.successful && now.succeeded_at > before.succeeded_at {
                return Ok(());
            }
            let timed_out = started.elapsed() >= RELOAD_WAIT;
            if !now.successful || timed_out {
                // The gauge drops before the line is written: read until it is there.
                let lines = recent_log().await.map_err(ReloadError::Other)?;
                let since_signal = after_anchor(&lines, anchor.as_deref());
                if let Some(reason) = reload_failure(since_signal) {
                    return Err(ReloadError::Rejected(reason));
                }
                if timed_out {
                    let began = since_signal.iter().any(|l| {
                        logfmt_value(&format!(" {l}"), "msg").as_deref()
                            == Some("Loading configuration file")
                    });
                    return Err(ReloadError::Other(crate::error::hinted(
                        format!(
                            "Prometheus at {} reported no new configuration load within {} s of SIGHUP ({})",
                            self.base,
                            RELOAD_WAIT.as_secs(),
                            if began {
                                "its log shows the load began and did not end"
                            } else {
                                "its log shows no load since"
                            }
                        ),
                        "`monstack logs prometheus` shows what it did; `monstack up` tries again",
                    )));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What Prometheus says of its last configuration load, from its own `/metrics`
    /// (`prometheus_config_last_reload_successful`, `..._success_timestamp_seconds`).
    pub async fn config_load(&self) -> Result<ConfigLoad> {
        let text = super::metrics_text(&self.client, &self.base).await?;
        parse_config_load(&text)
            .ok_or_else(|| anyhow!("it names no prometheus_config_last_reload_* metrics"))
            .with_context(|| format!("reading {}/metrics", self.base))
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

    /// Verbatim from Prometheus 3.5.3's /metrics after a reload it refused.
    const RELOAD_METRICS: &str = "\
# HELP prometheus_config_last_reload_success_timestamp_seconds Timestamp of the last successful configuration reload.
# TYPE prometheus_config_last_reload_success_timestamp_seconds gauge
prometheus_config_last_reload_success_timestamp_seconds 1.7961830154218726e+09
# HELP prometheus_config_last_reload_successful Whether the last configuration reload attempt was successful.
# TYPE prometheus_config_last_reload_successful gauge
prometheus_config_last_reload_successful 0
";

    #[tokio::test]
    async fn the_last_config_load_is_read_from_metrics() {
        let answer = ResponseTemplate::new(200).set_body_string(RELOAD_METRICS);
        let server = serve("GET", "/metrics", answer).await;
        let load = prometheus(&server).config_load().await.unwrap();
        assert_eq!(
            load,
            ConfigLoad {
                successful: false,
                succeeded_at: 1_796_183_015.421_872_6
            }
        );
        let ok = RELOAD_METRICS.replace("successful 0", "successful 1");
        assert!(parse_config_load(&ok).unwrap().successful);
    }

    #[tokio::test]
    async fn metrics_without_the_reload_gauges_are_an_error_saying_so() {
        let answer = ResponseTemplate::new(200).set_body_string("up 1\n");
        let server = serve("GET", "/metrics", answer).await;
        let error = format!("{:#}", prometheus(&server).config_load().await.unwrap_err());
        assert!(
            error.contains("names no prometheus_config_last_reload_"),
            "{error}"
        );
        assert!(error.starts_with("reading http://"), "{error}");
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
        let (mut child, prometheus, port) =
            start_prometheus(&bin, dir.path(), &|port| prometheus_config(port, false)).await;
        assert_eq!(prometheus.loaded_job_names().await.unwrap(), ["prometheus"]);

        // Reloads by SIGHUP, as the Docker Engine sends it to the stack's container; the log
        // is the process's.
        let pid = child.pid() as libc::pid_t;
        let hup = || async move {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            match unsafe { libc::kill(pid, libc::SIGHUP) } {
                0 => Ok(()),
                _ => Err(anyhow!("kill: {}", std::io::Error::last_os_error())),
            }
        };
        let log_path = dir.path().join("prometheus.log");
        let log = || {
            let path = log_path.clone();
            async move {
                Ok(std::fs::read_to_string(path)?
                    .lines()
                    .map(str::to_string)
                    .collect())
            }
        };

        // A valid change is loaded, and its target appears.
        write(&config_path, &prometheus_config(port, true));
        if let Err(e) = prometheus.reload_by_signal(hup(), log).await {
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
        match prometheus.reload_by_signal(hup(), log).await {
            Err(ReloadError::Rejected(message)) => {
                assert!(
                    message.starts_with("couldn't load configuration"),
                    "{message}"
                );
                assert!(message.contains("notaduration"), "{message}");
            }
            other => panic!("expected Rejected, got {other:?}\n{}", child.log()),
        }
        assert_eq!(prometheus.loaded_job_names().await.unwrap(), both);
        assert!(prometheus.ready().await.unwrap());
        // Refused again while the last load had failed too (the gauge was 0 already): told
        // by the log alone, with this reload's reason, not the previous one's.
        write(
            &config_path,
            "scrape_configs: [{job_name: x, scrape_timeout: alsonotaduration}]\n",
        );
        match prometheus.reload_by_signal(hup(), log).await {
            Err(ReloadError::Rejected(message)) => {
                assert!(message.contains("alsonotaduration"), "{message}");
                assert!(!message.contains("\"notaduration"), "{message}");
            }
            other => panic!("expected Rejected, got {other:?}\n{}", child.log()),
        }
        // Fixed: loaded.
        write(&config_path, &prometheus_config(port, false));
        if let Err(e) = prometheus.reload_by_signal(hup(), log).await {
            panic!("{e}\n{}", child.log());
        }
        assert_eq!(prometheus.loaded_job_names().await.unwrap(), ["prometheus"]);
    }

    /// Prometheus' log of a reload refused by its rule manager (verbatim, 3.5.3): the rule's own
    /// error first, then the summary; errors logged before the load started are not its own.
    #[test]
    fn a_refused_reload_is_told_by_every_error_it_logged() {
        let log = r#"time=2026-12-02T03:43:38.100Z level=ERROR source=notifier.go:1 msg="Error sending alerts" err="context deadline exceeded"
time=2026-12-02T03:43:38.392Z level=INFO source=main.go:1439 msg="Loading configuration file" filename=prometheus.yml
time=2026-12-02T03:43:38.392Z level=ERROR source=notifier.go:2 msg="Error sending alerts" component=notifier err="connection refused"
time=2026-12-02T03:43:38.393Z level=ERROR source=manager.go:227 msg="loading groups failed" component="rule manager" err="rules.yml: group \"g\", rule 1, \"A\": annotation \"summary\": template: __alert_A:1: unclosed action"
time=2026-12-02T03:43:38.393Z level=ERROR source=main.go:1467 msg="Failed to apply configuration" err="error loading rules, previous rule set restored"
time=2026-12-02T03:43:38.393Z level=ERROR source=main.go:1144 msg="Error reloading config" err="one or more errors occurred while applying the new configuration (--config.file=\"prometheus.yml\")""#;
        let lines: Vec<String> = log.lines().map(str::to_string).collect();
        assert_eq!(
            reload_failure(&lines).unwrap(),
            "rules.yml: group \"g\", rule 1, \"A\": annotation \"summary\": template: __alert_A:1: unclosed action\n  \
             error loading rules, previous rule set restored\n  \
             one or more errors occurred while applying the new configuration (--config.file=\"prometheus.yml\")"
        );
        // Until the summary line is written, nothing is decided.
        assert_eq!(reload_failure(&lines[..5]), None);
        // Of two refused loads, the last one's.
        let mut twice = lines.clone();
        twice.push(
            "time=2026-12-02T03:43:39.431Z level=INFO source=main.go:1439 msg=\"Loading configuration file\" filename=prometheus.yml".into(),
        );
        twice.push(
            "time=2026-12-02T03:43:39.431Z level=ERROR source=main.go:1144 msg=\"Error reloading config\" err=\"couldn't load configuration: bad\"".into(),
        );
        assert_eq!(
            reload_failure(&twice).unwrap(),
            "couldn't load configuration: bad"
        );
        // What follows the line that was last before the signal; all of it when it is gone.
        let anchor = lines[1].clone();
        assert_eq!(after_anchor(&lines, Some(&anchor)), &lines[2..]);
        assert_eq!(after_anchor(&lines, Some("gone")), &lines[..]);
        assert_eq!(after_anchor(&lines, None), &lines[..]);
    }
}
