//! Small HTTP clients for the services of the stack: readiness, configuration reloads, the reads
//! that confirm a reload took effect, and the few Grafana calls monstack makes.
//!
//! Every client takes a base URL, so tests point it at a local server: the real Prometheus and
//! Alertmanager binaries, wiremock for Grafana. Build one [`reqwest::Client`] with
//! [`http_client`] and hand it to every client (clones share one connection pool); a client is
//! tied to the tokio runtime that first uses its connections, so build it inside that runtime's
//! life, not in a process-wide static.
//!
//! Passwords travel only in the `Authorization` header and never appear in errors or `Debug`.

pub mod etcd;
pub mod grafana_com;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The longest any single request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How much of an unexpected response body goes into an error message.
const BODY_SNIPPET_CHARS: usize = 300;

/// The one HTTP client the clients share. No proxy: every service is on this machine or in the
/// stack's network, and a corporate `HTTP_PROXY` would only get in the way.
pub fn http_client() -> Result<Client> {
    Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

fn trim_base(base: impl Into<String>) -> String {
    let mut base = base.into();
    while base.ends_with('/') {
        base.pop();
    }
    base
}

// ---------------------------------------------------------------------------------------------
// Readiness

/// What a readiness endpoint said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Ready,
    /// Not answering yet (connection refused or reset, 503, timeout): worth asking again.
    Starting,
    /// An answer that waiting will not fix, e.g. a 404 because something else holds the port.
    Unexpected(String),
}

/// `GET url`: 200 is ready, 503 or a connection that is refused, reset or times out is
/// starting, anything else is unexpected.
pub async fn probe(client: &Client, url: &str) -> Probe {
    probe_with(client, url, |_| Probe::Ready).await
}

/// The readiness endpoint of each service monstack runs, or `None` for a name it does not know.
pub fn readiness_path(service: &str) -> Option<&'static str> {
    match service {
        "prometheus" | "alertmanager" | "pushgateway" | "agent" => Some("/-/ready"),
        "grafana" => Some("/api/health"),
        "etcd" => Some("/health"),
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

/// Ready when the JSON body has `field` equal to `expected`; starting when it has another value
/// (etcd without a leader yet, Grafana with its database not up).
fn json_field_is(body: &[u8], field: &str, expected: &str, what: &str) -> Probe {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => match value.get(field).and_then(|v| v.as_str()) {
            Some(v) if v == expected => Probe::Ready,
            Some(_) => Probe::Starting,
            None => Probe::Unexpected(format!(
                "{what} answered without a `{field}` field: {}",
                snippet(body)
            )),
        },
        Err(_) => Probe::Unexpected(format!("{what} answered with non-JSON: {}", snippet(body))),
    }
}

async fn probe_with(client: &Client, url: &str, check: impl FnOnce(&[u8]) -> Probe) -> Probe {
    let response = match client.get(url).send().await {
        Ok(response) => response,
        Err(e) if still_starting(&e) => return Probe::Starting,
        Err(e) => return Probe::Unexpected(format!("GET {url}: {}", error_chain(&e))),
    };
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return Probe::Starting;
    }
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) if still_starting(&e) => return Probe::Starting,
        Err(e) => return Probe::Unexpected(format!("reading GET {url}: {}", error_chain(&e))),
    };
    if status != StatusCode::OK {
        return Probe::Unexpected(format!(
            "GET {url} answered HTTP {status}: {}",
            snippet(&body)
        ));
    }
    check(&body)
}

/// Errors that a service produces while it starts: nothing listening yet, or (through Docker's
/// port proxy) a connection accepted and then dropped.
fn still_starting(error: &reqwest::Error) -> bool {
    if error.is_connect() || error.is_timeout() {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | BrokenPipe
                    | UnexpectedEof
            ) {
                return true;
            }
        }
        // hyper's "connection closed before message completed" has no io::Error underneath and
        // hyper is not a direct dependency, so its message is the only handle on it.
        if e.to_string()
            .contains("connection closed before message completed")
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// reqwest's Display names only the outermost layer ("error sending request for url ..."); the
/// useful part ("Connection refused") is further down.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    match text.char_indices().nth(BODY_SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Sends a request and reads the whole answer; transport errors keep their cause chain.
async fn send(request: RequestBuilder) -> Result<(StatusCode, Vec<u8>)> {
    let response = request.send().await.map_err(|e| anyhow!(error_chain(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| anyhow!("reading the answer: {}", error_chain(&e)))?;
    Ok((status, body.to_vec()))
}

fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).with_context(|| format!("decoding {what} from {}", snippet(body)))
}

// ---------------------------------------------------------------------------------------------
// Reloads (Prometheus and Alertmanager share the /-/reload endpoint)

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The service kept its old configuration; the message is the service's own
    /// ("failed to reload config: ...").
    #[error("reload rejected: {0}")]
    Rejected(String),
    /// Prometheus answers 403 when started without `--web.enable-lifecycle`.
    #[error("reload is disabled: Prometheus was started without --web.enable-lifecycle")]
    LifecycleDisabled,
    #[error("{0:#}")]
    Other(anyhow::Error),
}

async fn post_reload(
    client: &Client,
    service: &str,
    base: &str,
    has_lifecycle_flag: bool,
) -> Result<(), ReloadError> {
    let doing = || format!("reloading {service} at {base}");
    let (status, body) = send(client.post(format!("{base}/-/reload")))
        .await
        .map_err(|e| ReloadError::Other(e.context(doing())))?;
    match status {
        StatusCode::OK => Ok(()),
        StatusCode::INTERNAL_SERVER_ERROR => Err(ReloadError::Rejected(
            String::from_utf8_lossy(&body).trim().to_string(),
        )),
        StatusCode::FORBIDDEN if has_lifecycle_flag => Err(ReloadError::LifecycleDisabled),
        _ => Err(ReloadError::Other(
            anyhow!("unexpected HTTP {status}: {}", snippet(&body)).context(doing()),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus

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

// ---------------------------------------------------------------------------------------------
// Alertmanager

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

    /// `GET /-/ready`, with the same meaning as [`Prometheus::ready`].
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
        post_reload(&self.client, "Alertmanager", &self.base, false).await
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

// ---------------------------------------------------------------------------------------------
// Grafana

/// Grafana's HTTP API, authenticated as the admin user with basic auth on every call.
#[derive(Clone)]
pub struct Grafana {
    base: String,
    client: Client,
    user: String,
    password: String,
}

impl fmt::Debug for Grafana {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grafana")
            .field("base", &self.base)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GrafanaHealth {
    /// "ok" when Grafana can reach its database.
    pub database: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub commit: String,
}

/// The provisioning areas Grafana can reload on demand.
const PROVISIONING_AREAS: [&str; 3] = ["dashboards", "datasources", "alerting"];

const GRAFANA_PASSWORD_REFUSED: &str = "Grafana refused the stored admin password; if you \
     changed it in the UI, put it in .monstack/secrets/grafana-admin-password";

impl Grafana {
    pub fn new(
        client: &Client,
        base: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Grafana {
        Grafana {
            base: trim_base(base),
            client: client.clone(),
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password))
    }

    /// Turns a non-2xx answer into an error carrying Grafana's `message`. 401 always means the
    /// stored password is wrong (as the login, or as `oldPassword` when changing it).
    fn refusal(status: StatusCode, body: &[u8]) -> anyhow::Error {
        if status == StatusCode::UNAUTHORIZED {
            return anyhow!(GRAFANA_PASSWORD_REFUSED);
        }
        #[derive(Deserialize)]
        struct Message {
            message: String,
            #[serde(default)]
            status: String,
        }
        match serde_json::from_slice::<Message>(body) {
            Ok(m) if !m.status.is_empty() => {
                anyhow!(
                    "Grafana answered HTTP {status} ({}): {}",
                    m.status,
                    m.message
                )
            }
            Ok(m) => anyhow!("Grafana answered HTTP {status}: {}", m.message),
            Err(_) => anyhow!("Grafana answered HTTP {status}: {}", snippet(body)),
        }
    }

    /// `GET /api/health`: 200 when healthy, 503 when its database is failing (still decoded, so
    /// the caller sees `database != "ok"`).
    pub async fn health(&self) -> Result<GrafanaHealth> {
        let doing = || format!("checking the health of Grafana at {}", self.base);
        let (status, body) = send(self.request(Method::GET, "/api/health"))
            .await
            .with_context(doing)?;
        if status != StatusCode::OK && status != StatusCode::SERVICE_UNAVAILABLE {
            return Err(Self::refusal(status, &body)).with_context(doing);
        }
        decode(&body, "the health answer").with_context(doing)
    }

    /// `PUT /api/user/password` as the admin, with the current password as `oldPassword`. After
    /// success this client's password is stale: build a new one with `new`.
    pub async fn change_admin_password(&self, new: &str) -> Result<()> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ChangePassword<'a> {
            old_password: &'a str,
            new_password: &'a str,
            confirm_new: &'a str,
        }
        let doing = || format!("changing the Grafana admin password at {}", self.base);
        let request = self
            .request(Method::PUT, "/api/user/password")
            .json(&ChangePassword {
                old_password: &self.password,
                new_password: new,
                confirm_new: new,
            });
        let (status, body) = send(request).await.with_context(doing)?;
        if !status.is_success() {
            return Err(Self::refusal(status, &body)).with_context(doing);
        }
        Ok(())
    }

    /// `POST /api/admin/provisioning/{what}/reload` for "dashboards", "datasources" or
    /// "alerting": Grafana re-reads those provisioning files without a restart.
    pub async fn reload_provisioning(&self, what: &str) -> Result<()> {
        if !PROVISIONING_AREAS.contains(&what) {
            bail!(
                "cannot reload Grafana provisioning of `{what}`: expected one of {}",
                PROVISIONING_AREAS.join(", ")
            );
        }
        let doing = || format!("reloading Grafana {what} provisioning at {}", self.base);
        let path = format!("/api/admin/provisioning/{what}/reload");
        let (status, body) = send(self.request(Method::POST, &path))
            .await
            .with_context(doing)?;
        if !status.is_success() {
            return Err(Self::refusal(status, &body)).with_context(doing);
        }
        Ok(())
    }

    /// Makes sure a folder with this uid exists, creating it with `title` if not. An existing
    /// folder keeps its title.
    pub async fn ensure_folder(&self, uid: &str, title: &str) -> Result<()> {
        #[derive(Serialize)]
        struct NewFolder<'a> {
            uid: &'a str,
            title: &'a str,
        }
        let doing = || format!("creating Grafana folder `{uid}` at {}", self.base);
        let get = || self.request(Method::GET, &format!("/api/folders/{uid}"));
        let (status, body) = send(get()).await.with_context(doing)?;
        match status {
            StatusCode::OK => return Ok(()),
            StatusCode::NOT_FOUND => {}
            _ => return Err(Self::refusal(status, &body)).with_context(doing),
        }
        let create = self
            .request(Method::POST, "/api/folders")
            .json(&NewFolder { uid, title });
        let (status, body) = send(create).await.with_context(doing)?;
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::CONFLICT {
            // Either someone created it since our GET (fine) or another folder already has this
            // title (not fine: the uid still does not exist). Ask again to tell them apart.
            let (again, _) = send(get()).await.with_context(doing)?;
            if again == StatusCode::OK {
                return Ok(());
            }
        }
        Err(Self::refusal(status, &body)).with_context(doing)
    }

    /// Saves a dashboard (`POST /api/dashboards/db`, overwriting one with the same uid) into
    /// `folder_uid`, or the root folder without one. Returns Grafana's `url` for it, a path
    /// such as `/d/uid/slug`.
    pub async fn push_dashboard(
        &self,
        mut dashboard: serde_json::Value,
        folder_uid: Option<&str>,
    ) -> Result<String> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct SaveDashboard<'a> {
            dashboard: serde_json::Value,
            #[serde(skip_serializing_if = "Option::is_none")]
            folder_uid: Option<&'a str>,
            overwrite: bool,
            message: &'a str,
        }
        #[derive(Deserialize)]
        struct Saved {
            url: String,
        }
        let uid = dashboard
            .get("uid")
            .and_then(|u| u.as_str())
            .unwrap_or("(no uid)")
            .to_string();
        let doing = || format!("pushing dashboard `{uid}` to Grafana at {}", self.base);
        let fields = dashboard
            .as_object_mut()
            .ok_or_else(|| anyhow!("a dashboard must be a JSON object"))
            .with_context(doing)?;
        // With an id Grafana looks the dashboard up by id, which differs between instances; the
        // uid is what identifies it across them.
        fields.insert("id".to_string(), serde_json::Value::Null);
        let request = self
            .request(Method::POST, "/api/dashboards/db")
            .json(&SaveDashboard {
                dashboard,
                folder_uid,
                overwrite: true,
                message: "monstack import-dashboard",
            });
        let (status, body) = send(request).await.with_context(doing)?;
        if !status.is_success() {
            return Err(Self::refusal(status, &body)).with_context(doing);
        }
        let saved: Saved = decode(&body, "the saved dashboard").with_context(doing)?;
        Ok(saved.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsupport::{free_port, require_binary, ChildGuard};
    use serde_json::json;
    use std::future::Future;
    use std::path::Path;
    use std::process::Command;
    use wiremock::matchers::{basic_auth, body_json, body_partial_json, method, path, query_param};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    fn client() -> Client {
        http_client().expect("building the client")
    }

    /// A base URL where nothing listens.
    fn closed_port_url() -> String {
        format!("http://127.0.0.1:{}", free_port())
    }

    /// A server that expects exactly one `method_name url_path` and answers `response`.
    async fn serve(method_name: &str, url_path: &str, response: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method(method_name))
            .and(path(url_path))
            .respond_with(response)
            .expect(1)
            .mount(&server)
            .await;
        server
    }

    fn prometheus(server: &MockServer) -> Prometheus {
        Prometheus::new(&client(), server.uri())
    }

    fn alertmanager(server: &MockServer) -> Alertmanager {
        Alertmanager::new(&client(), server.uri())
    }

    // --- readiness ---------------------------------------------------------------------------

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
    async fn not_ready_when_the_connection_is_refused() {
        let base = closed_port_url();
        assert!(!Prometheus::new(&client(), &base).ready().await.unwrap());
        assert!(!Alertmanager::new(&client(), &base).ready().await.unwrap());
        let outcome = probe(&client(), &format!("{base}/-/ready")).await;
        assert_eq!(outcome, Probe::Starting);
    }

    /// Docker's port proxy accepts connections before the container listens, then drops them.
    #[tokio::test]
    async fn not_ready_when_the_connection_is_dropped_after_accept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                drop(socket);
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let ready = Prometheus::new(&client(), base).ready().await;
        acceptor.abort();
        assert!(!ready.unwrap());
    }

    #[tokio::test]
    async fn not_ready_when_the_answer_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                held.push(socket);
            }
        });
        let impatient = Client::builder()
            .timeout(Duration::from_millis(200))
            .no_proxy()
            .build()
            .unwrap();
        let outcome = probe(&impatient, &format!("http://127.0.0.1:{port}/-/ready")).await;
        acceptor.abort();
        assert_eq!(outcome, Probe::Starting);
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

    #[test]
    fn readiness_paths() {
        assert_eq!(readiness_path("prometheus"), Some("/-/ready"));
        assert_eq!(readiness_path("grafana"), Some("/api/health"));
        assert_eq!(readiness_path("etcd"), Some("/health"));
        assert_eq!(readiness_path("alertmanager"), Some("/-/ready"));
        assert_eq!(readiness_path("pushgateway"), Some("/-/ready"));
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

    fn json_answer(status: u16, body: serde_json::Value) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(body)
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

    // --- reloads -----------------------------------------------------------------------------

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

    #[tokio::test]
    async fn reload_of_a_stopped_service_names_the_cause() {
        let base = closed_port_url();
        let error = Prometheus::new(&client(), &base)
            .reload()
            .await
            .unwrap_err();
        let message = error.to_string();
        let doing = format!("reloading Prometheus at {base}: ");
        assert!(message.starts_with(&doing), "{message}");
        assert!(message.to_lowercase().contains("refused"), "{message}");
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

    // --- Prometheus reads --------------------------------------------------------------------

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

    // --- Alertmanager reads ------------------------------------------------------------------

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

    // --- Grafana -----------------------------------------------------------------------------
    // Every mock requires the admin's basic auth and the documented body; anything else falls
    // through to wiremock's 404 and fails the call.

    const ADMIN: &str = "admin";
    const PASSWORD: &str = "s3cret-Stored";
    const NEW_PASSWORD: &str = "n3w-Password";

    fn grafana(server: &MockServer) -> Grafana {
        Grafana::new(&client(), server.uri(), ADMIN, PASSWORD)
    }

    fn grafana_call(method_name: &str, url_path: &str) -> wiremock::MockBuilder {
        Mock::given(method(method_name))
            .and(path(url_path))
            .and(basic_auth(ADMIN, PASSWORD))
    }

    fn request_json(request: &Request) -> serde_json::Value {
        serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null)
    }

    /// The request's JSON body has exactly these top-level keys, and its dashboard's `id` is
    /// present and null (body_partial_json cannot tell null from absent or extra keys).
    fn exact_dashboard_request(keys: &'static [&'static str]) -> impl Fn(&Request) -> bool {
        move |request: &Request| {
            let body = request_json(request);
            let Some(object) = body.as_object() else {
                return false;
            };
            let mut actual: Vec<&str> = object.keys().map(String::as_str).collect();
            actual.sort_unstable();
            let mut expected = keys.to_vec();
            expected.sort_unstable();
            actual == expected && body["dashboard"].get("id") == Some(&serde_json::Value::Null)
        }
    }

    #[tokio::test]
    async fn grafana_health() {
        let server = MockServer::start().await;
        grafana_call("GET", "/api/health")
            .respond_with(json_answer(
                200,
                json!({"commit": "83b9528bce", "database": "ok", "version": "11.2.0"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let health = grafana(&server).health().await.unwrap();
        assert_eq!(health.database, "ok");
        assert_eq!(health.version, "11.2.0");
        assert_eq!(health.commit, "83b9528bce");
    }

    #[tokio::test]
    async fn grafana_change_admin_password_sends_the_documented_body() {
        let server = MockServer::start().await;
        grafana_call("PUT", "/api/user/password")
            .and(body_json(json!({
                "oldPassword": PASSWORD,
                "newPassword": NEW_PASSWORD,
                "confirmNew": NEW_PASSWORD
            })))
            .respond_with(json_answer(
                200,
                json!({"message": "User password changed"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        grafana(&server)
            .change_admin_password(NEW_PASSWORD)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn grafana_401_explains_the_stored_password_without_showing_it() {
        let server = MockServer::start().await;
        // Whatever credentials arrive, Grafana refuses them.
        Mock::given(method("PUT"))
            .and(path("/api/user/password"))
            .respond_with(json_answer(
                401,
                json!({"message": "Invalid username or password"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .change_admin_password(NEW_PASSWORD)
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        let doing = format!("changing the Grafana admin password at {}: ", server.uri());
        assert!(message.starts_with(&doing), "{message}");
        assert!(
            message.contains(
                "Grafana refused the stored admin password; if you changed it in the UI, \
                 put it in .monstack/secrets/grafana-admin-password"
            ),
            "{message}"
        );
        let shown = format!("{message} {error:?} {:?}", grafana(&server));
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(!shown.contains(NEW_PASSWORD), "{shown}");
    }

    #[tokio::test]
    async fn grafana_400_shows_grafanas_message() {
        let server = MockServer::start().await;
        grafana_call("PUT", "/api/user/password")
            .respond_with(json_answer(
                400,
                json!({"message": "New password is too short"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .change_admin_password("x")
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("HTTP 400 Bad Request: New password is too short"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn grafana_reload_provisioning() {
        let server = MockServer::start().await;
        for (what, reply) in [
            ("dashboards", "Dashboards config reloaded"),
            ("datasources", "Datasources config reloaded"),
            ("alerting", "Alerting config reloaded"),
        ] {
            grafana_call("POST", &format!("/api/admin/provisioning/{what}/reload"))
                .respond_with(json_answer(200, json!({"message": reply})))
                .expect(1)
                .mount(&server)
                .await;
        }
        let grafana = grafana(&server);
        for what in ["dashboards", "datasources", "alerting"] {
            grafana.reload_provisioning(what).await.unwrap();
        }
        let error = grafana.reload_provisioning("plugins").await.unwrap_err();
        assert!(error.to_string().contains("`plugins`"), "{error}");
    }

    #[tokio::test]
    async fn grafana_reload_provisioning_as_a_non_admin_is_refused() {
        let server = MockServer::start().await;
        grafana_call("POST", "/api/admin/provisioning/dashboards/reload")
            .respond_with(json_answer(
                403,
                json!({
                    "accessErrorId": "ACE0947587429",
                    "message": "You'll need additional permissions to perform this action.",
                    "title": "Access denied"
                }),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .reload_provisioning("dashboards")
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        let doing = format!(
            "reloading Grafana dashboards provisioning at {}: ",
            server.uri()
        );
        assert!(message.starts_with(&doing), "{message}");
        assert!(
            message.contains("HTTP 403 Forbidden: You'll need additional permissions"),
            "{message}"
        );
    }

    fn folder_json(uid: &str, title: &str) -> serde_json::Value {
        json!({
            "id": 1, "uid": uid, "title": title,
            "url": format!("/dashboards/f/{uid}/{}", title.to_lowercase()),
            "hasAcl": false, "canSave": true, "canEdit": true, "canAdmin": true,
            "createdBy": "admin", "created": "2024-01-01T00:00:00Z",
            "updatedBy": "admin", "updated": "2024-01-01T00:00:00Z", "version": 1
        })
    }

    fn folder_not_found() -> ResponseTemplate {
        json_answer(
            404,
            json!({"message": "folder not found", "status": "not-found"}),
        )
    }

    #[tokio::test]
    async fn grafana_ensure_folder_creates_a_missing_folder() {
        let server = MockServer::start().await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(folder_not_found())
            .expect(1)
            .mount(&server)
            .await;
        grafana_call("POST", "/api/folders")
            .and(body_json(json!({"uid": "monstack", "title": "Monstack"})))
            .respond_with(json_answer(200, folder_json("monstack", "Monstack")))
            .expect(1)
            .mount(&server)
            .await;
        grafana(&server)
            .ensure_folder("monstack", "Monstack")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn grafana_ensure_folder_keeps_an_existing_folder() {
        let server = MockServer::start().await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(json_answer(200, folder_json("monstack", "Renamed")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        grafana(&server)
            .ensure_folder("monstack", "Monstack")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn grafana_ensure_folder_accepts_409_when_the_folder_now_exists() {
        let server = MockServer::start().await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(folder_not_found())
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(json_answer(200, folder_json("monstack", "Monstack")))
            .expect(1)
            .mount(&server)
            .await;
        grafana_call("POST", "/api/folders")
            .and(body_json(json!({"uid": "monstack", "title": "Monstack"})))
            .respond_with(json_answer(
                409,
                json!({"message": "a folder with the same uid already exists"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        grafana(&server)
            .ensure_folder("monstack", "Monstack")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn grafana_ensure_folder_reports_a_409_for_another_folder() {
        let name_taken =
            "a folder or dashboard in the general folder with the same name already exists";
        let server = MockServer::start().await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(folder_not_found())
            .expect(2)
            .mount(&server)
            .await;
        grafana_call("POST", "/api/folders")
            .respond_with(json_answer(409, json!({ "message": name_taken })))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .ensure_folder("monstack", "Monstack")
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        let doing = format!("creating Grafana folder `monstack` at {}: ", server.uri());
        assert!(message.starts_with(&doing), "{message}");
        assert!(
            message.contains("HTTP 409 Conflict") && message.contains(name_taken),
            "{message}"
        );
    }

    fn saved_dashboard() -> ResponseTemplate {
        json_answer(
            200,
            json!({
                "id": 42, "uid": "node-overview", "url": "/d/node-overview/node-overview",
                "status": "success", "version": 3, "slug": "node-overview"
            }),
        )
    }

    fn a_dashboard() -> serde_json::Value {
        json!({
            "id": 7, "uid": "node-overview", "title": "Node overview",
            "panels": [], "schemaVersion": 39
        })
    }

    #[tokio::test]
    async fn grafana_push_dashboard_into_a_folder() {
        let server = MockServer::start().await;
        grafana_call("POST", "/api/dashboards/db")
            .and(body_partial_json(json!({
                "dashboard": {"uid": "node-overview", "title": "Node overview",
                              "panels": [], "schemaVersion": 39},
                "folderUid": "monstack",
                "overwrite": true,
                "message": "monstack import-dashboard"
            })))
            .and(exact_dashboard_request(&[
                "dashboard",
                "folderUid",
                "overwrite",
                "message",
            ]))
            .respond_with(saved_dashboard())
            .expect(1)
            .mount(&server)
            .await;
        let url = grafana(&server)
            .push_dashboard(a_dashboard(), Some("monstack"))
            .await
            .unwrap();
        assert_eq!(url, "/d/node-overview/node-overview");
    }

    #[tokio::test]
    async fn grafana_push_dashboard_without_a_folder_sends_no_folder_uid() {
        let server = MockServer::start().await;
        grafana_call("POST", "/api/dashboards/db")
            .and(body_partial_json(json!({
                "dashboard": {"uid": "node-overview"},
                "overwrite": true,
                "message": "monstack import-dashboard"
            })))
            .and(exact_dashboard_request(&[
                "dashboard",
                "overwrite",
                "message",
            ]))
            .respond_with(saved_dashboard())
            .expect(1)
            .mount(&server)
            .await;
        let url = grafana(&server)
            .push_dashboard(a_dashboard(), None)
            .await
            .unwrap();
        assert_eq!(url, "/d/node-overview/node-overview");
    }

    #[tokio::test]
    async fn grafana_push_dashboard_412_names_the_status() {
        let server = MockServer::start().await;
        grafana_call("POST", "/api/dashboards/db")
            .respond_with(json_answer(
                412,
                json!({
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch"
                }),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .push_dashboard(a_dashboard(), Some("monstack"))
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        let doing = format!(
            "pushing dashboard `node-overview` to Grafana at {}: ",
            server.uri()
        );
        assert!(message.starts_with(&doing), "{message}");
        assert!(
            message.contains("(version-mismatch): The dashboard has been changed by someone else"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn grafana_push_dashboard_refuses_a_non_object() {
        let server = MockServer::start().await;
        let error = grafana(&server)
            .push_dashboard(json!([1, 2]), None)
            .await
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("must be a JSON object"),
            "{error:#}"
        );
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    // --- the real binaries -------------------------------------------------------------------
    // Each test starts its own process on a free port with a config in a temp dir; the guard
    // kills it when the test ends, passed or not.

    /// How long a service may take to start. A wait, not a timing assertion.
    const START_DEADLINE: Duration = Duration::from_secs(30);

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Waits until `check` says yes; an `Err` from it fails the test at once.
    async fn wait_for<F, Fut>(child: &mut ChildGuard, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<bool>>,
    {
        child
            .wait_until(what, START_DEADLINE, || {
                let outcome = check();
                async move { outcome.await.unwrap_or_else(|e| panic!("{what}: {e:#}")) }
            })
            .await;
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
        let Some(bin) = require_binary("/usr/bin/prometheus", "prometheus") else {
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
        let Some(bin) = require_binary("/usr/bin/prometheus", "prometheus") else {
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
        let Some(bin) = require_binary(
            "/usr/bin/prometheus-alertmanager",
            "prometheus-alertmanager",
        ) else {
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
