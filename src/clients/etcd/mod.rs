//! An etcd v3 client over etcd's JSON gateway (`/v3/...`, etcd 3.4+), for the discovery agent:
//! put, prefix range, delete, leases and a prefix watch. No gRPC: the gateway speaks HTTP/1.1
//! and JSON, which reqwest already does.
//!
//! Two quirks of the gateway shape this module: keys and values travel base64-encoded, and
//! int64 fields come back as JSON strings (`"revision":"2"`) and are left out when zero.
//!
//! The unary calls use the shared client and its 10 s timeout. A watch is one long-lived HTTP
//! response, so it overrides that timeout for its request and instead gives up when nothing
//! (no event, no progress notification) arrives for [`Etcd::with_watch_idle_timeout`]: that is
//! how a connection that died without a FIN (a partition, a dead host) is noticed.
//!
//! One client may know several members of a cluster, TLS and a user ([`Etcd::connect`]): which
//! member it talks to and how it authenticates is in `connection.rs`; the watch stream's
//! framing in `watch.rs`.

mod connection;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use futures_util::Stream;
use reqwest::{Client, StatusCode};
use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::json;

use crate::clients::{error_chain, read_body, snippet, MAX_BODY_BYTES};
use connection::{classify, Auth, Endpoints, Failure};
pub use connection::{cluster_client, identity};
#[cfg(test)]
use watch::{interpret, FrameBuffer, WatchFrame};

/// etcd sends a progress notification to an idle watcher every
/// `--experimental-watch-progress-notify-interval` (10 min by default), but skips a tick when
/// events went out, so up to two intervals can pass between messages. Anything longer means the
/// connection is dead.
pub const DEFAULT_WATCH_IDLE_TIMEOUT: Duration = Duration::from_secs(21 * 60);

/// How long a call waits before asking members that had no leader again.
const ELECTION_PAUSE: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub struct Etcd {
    endpoints: Arc<Endpoints>,
    client: Client,
    auth: Option<Arc<Auth>>,
    watch_idle_timeout: Duration,
}

/// One key as etcd stores it. Keys are shown as text (bytes that are not UTF-8 are replaced);
/// values stay bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: i64,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// A prefix read: the keys, and the store revision the read saw (watch from `revision + 1` to
/// see every later change exactly once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResult {
    pub revision: i64,
    pub kvs: Vec<KeyValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    /// Seconds, as granted (etcd may raise a TTL below its minimum).
    pub ttl: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    Put(KeyValue),
    /// The key was deleted, by a delete or because its lease expired or was revoked.
    Delete {
        key: String,
        mod_revision: i64,
    },
    /// Every change up to `revision` has been delivered; resuming from `revision + 1` is safe.
    Progress {
        revision: i64,
    },
}

/// Why a watch stream ended. After yielding one of these the stream ends.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The requested start revision is older than the last compaction: list again and watch from
    /// the listed revision + 1.
    #[error("etcd cancelled the watch: revisions up to {compact_revision} were compacted")]
    Compacted { compact_revision: i64 },
    #[error("etcd cancelled the watch: {reason}")]
    Canceled { reason: String },
    #[error("no message from etcd for {0:?} (not even a progress notification): assuming the connection is dead")]
    Idle(Duration),
    /// Connection failures, HTTP errors, a closed stream, a frame that does not parse.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// `[prefix, range_end)` covers every key starting with `prefix`: its last byte incremented,
/// dropping trailing 0xff bytes first. An empty prefix (or all 0xff) means "to the end", which
/// etcd spells as a single zero byte.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Etcd {
    /// One member, no auth (the stack's own etcd).
    pub fn new(client: &Client, base: impl Into<String>) -> Etcd {
        Etcd::cluster(client, vec![base.into()])
    }

    /// Several members of one cluster, tried in turn (see `connection.rs`).
    pub fn cluster(client: &Client, endpoints: Vec<String>) -> Etcd {
        Etcd {
            endpoints: Arc::new(Endpoints::new(endpoints)),
            client: client.clone(),
            auth: None,
            watch_idle_timeout: DEFAULT_WATCH_IDLE_TIMEOUT,
        }
    }

    /// An existing cluster as the manifest describes it: its endpoints, TLS and user.
    pub fn connect(cluster: &crate::model::EtcdCluster) -> Result<Etcd> {
        let client = cluster_client(cluster)?;
        let etcd = Etcd::cluster(&client, cluster.endpoints.clone());
        Ok(match (&cluster.username, &cluster.password_file) {
            (Some(user), Some(file)) => etcd.with_user(user, file),
            _ => etcd,
        })
    }

    /// Authenticates as `username`, with the password in `password_file` (read at each
    /// authentication).
    pub fn with_user(mut self, username: &str, password_file: &std::path::Path) -> Etcd {
        self.auth = Some(Arc::new(Auth::new(
            username.to_string(),
            password_file.to_path_buf(),
        )));
        self
    }

    /// How long a watch may go without any message before it is declared dead. Set it above
    /// twice the server's `--experimental-watch-progress-notify-interval`.
    pub fn with_watch_idle_timeout(mut self, timeout: Duration) -> Etcd {
        self.watch_idle_timeout = timeout;
        self
    }

    /// The member in use now.
    pub fn base_url(&self) -> &str {
        self.endpoints.current().1
    }

    /// How many members the client knows.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Every endpoint, comma-separated, for messages.
    fn at(&self) -> String {
        self.endpoints.describe()
    }

    /// Writes `key`, attached to `lease` when given; returns the revision of the write.
    pub async fn put(&self, key: &str, value: &[u8], lease: Option<i64>) -> Result<i64> {
        let mut body = json!({"key": BASE64.encode(key), "value": BASE64.encode(value)});
        if let Some(lease) = lease {
            body["lease"] = json!(lease);
        }
        let response: HeaderOnly = self
            .call("/v3/kv/put", &body)
            .await
            .with_context(|| format!("putting {key} into etcd at {}", self.at()))?;
        Ok(response.header.revision)
    }

    /// Every key starting with `prefix`, in key order.
    pub async fn range_prefix(&self, prefix: &str) -> Result<RangeResult> {
        #[derive(Deserialize)]
        struct RangeResponse {
            #[serde(default)]
            header: Header,
            #[serde(default)]
            kvs: Vec<RawKeyValue>,
        }
        let doing = || format!("listing {prefix}* in etcd at {}", self.at());
        let body = json!({
            "key": BASE64.encode(prefix),
            "range_end": BASE64.encode(prefix_range_end(prefix.as_bytes())),
        });
        let response: RangeResponse = self.call("/v3/kv/range", &body).await.with_context(doing)?;
        let kvs = response
            .kvs
            .into_iter()
            .map(RawKeyValue::decode)
            .collect::<Result<_>>()
            .with_context(doing)?;
        Ok(RangeResult {
            revision: response.header.revision,
            kvs,
        })
    }

    /// Deletes `key`; a key that does not exist is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let _: HeaderOnly = self
            .call("/v3/kv/deleterange", &json!({"key": BASE64.encode(key)}))
            .await
            .with_context(|| format!("deleting {key} from etcd at {}", self.at()))?;
        Ok(())
    }

    /// Compacts the history up to `revision`: watches from older revisions fail with
    /// [`WatchError::Compacted`] afterwards.
    pub async fn compact(&self, revision: i64) -> Result<()> {
        let _: HeaderOnly = self
            .call(
                "/v3/kv/compaction",
                &json!({"revision": revision, "physical": true}),
            )
            .await
            .with_context(|| {
                format!("compacting etcd at {} up to revision {revision}", self.at())
            })?;
        Ok(())
    }

    /// A new lease of `ttl_secs` seconds.
    pub async fn grant(&self, ttl_secs: i64) -> Result<Lease> {
        let response: LeaseResponse = self
            .call("/v3/lease/grant", &json!({"TTL": ttl_secs, "ID": 0}))
            .await
            .with_context(|| format!("granting a {ttl_secs} s lease from etcd at {}", self.at()))?;
        Ok(Lease {
            id: response.id,
            ttl: response.ttl,
        })
    }

    /// Refreshes the lease once; returns the TTL it has now. `<= 0` means the lease is gone (it
    /// expired or was revoked): register again with a new one.
    pub async fn keep_alive(&self, id: i64) -> Result<i64> {
        // A bidirectional stream in gRPC; the gateway answers one request body with one
        // `{"result": ...}` frame and closes.
        #[derive(Deserialize)]
        struct Frame {
            result: Option<LeaseResponse>,
            error: Option<serde_json::Value>,
        }
        let frame: Frame = self
            .call("/v3/lease/keepalive", &json!({"ID": id}))
            .await
            .with_context(|| format!("keeping lease {id:x} alive in etcd at {}", self.at()))?;
        match (frame.result, frame.error) {
            (Some(result), _) => Ok(result.ttl),
            (None, error) => Err(anyhow!(
                "keeping lease {id:x} alive in etcd at {}: etcd answered {}",
                self.at(),
                error.unwrap_or_default()
            )),
        }
    }

    /// Revokes the lease: every key attached to it is deleted.
    pub async fn revoke(&self, id: i64) -> Result<()> {
        let _: HeaderOnly = self
            .call("/v3/lease/revoke", &json!({"ID": id}))
            .await
            .with_context(|| format!("revoking lease {id:x} in etcd at {}", self.at()))?;
        Ok(())
    }

    /// Seconds the lease has left, or `None` when it expired or never existed.
    pub async fn time_to_live(&self, id: i64) -> Result<Option<i64>> {
        let response: LeaseResponse = self
            .call("/v3/lease/timetolive", &json!({"ID": id}))
            .await
            .with_context(|| {
                format!(
                    "reading the time to live of lease {id:x} in etcd at {}",
                    self.at()
                )
            })?;
        Ok((response.ttl >= 0).then_some(response.ttl))
    }

    /// Every change to keys under `prefix` from `start_revision` (inclusive) on, in order, until
    /// the first error; the stream ends after yielding it. Nothing is sent until the stream is
    /// polled.
    pub fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: i64,
    ) -> impl Stream<Item = Result<WatchEvent, WatchError>> + Send + 'static {
        let body = json!({"create_request": {
            "key": BASE64.encode(prefix),
            "range_end": BASE64.encode(prefix_range_end(prefix.as_bytes())),
            "start_revision": start_revision,
            "prev_kv": true,
            "progress_notify": true,
        }});
        let watching = format!("watching {prefix}* in etcd at {{}} from revision {start_revision}");
        watch::stream(self.clone(), body, watching)
    }

    /// POSTs `body` to `path` and decodes a 200 answer; any other answer becomes an error
    /// carrying etcd's own message. A member that does not answer (or answers 5xx) is left for
    /// the next one, each tried once; an expired token is replaced once.
    async fn call<T: DeserializeOwned>(&self, path: &str, body: &serde_json::Value) -> Result<T> {
        let mut untried = self.endpoints.len();
        let mut reauthenticated = false;
        // A member that answers 503 is alive but has no leader (an election, a few hundred ms):
        // then the whole round is tried again, twice, after a pause.
        let mut rounds_left = 2;
        let mut answered_unavailable = false;
        let mut errors = Vec::new();
        loop {
            let (index, base) = self.endpoints.current();
            match self.call_at(base, path, body).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::BadToken(e)) if !reauthenticated => {
                    tracing::info!("{e:#}; authenticating again");
                    reauthenticated = true;
                }
                Err(Failure::Unreachable(e)) => {
                    self.endpoints.failed(index);
                    let text = format!("{e:#}");
                    answered_unavailable |= text.contains("HTTP 5");
                    errors.push(text);
                    untried -= 1;
                    if untried > 0 {
                        continue;
                    }
                    if answered_unavailable && rounds_left > 0 {
                        rounds_left -= 1;
                        untried = self.endpoints.len();
                        answered_unavailable = false;
                        tokio::time::sleep(ELECTION_PAUSE).await;
                        continue;
                    }
                    let last = errors.len().saturating_sub(self.endpoints.len());
                    let errors = &errors[last..];
                    return Err(match errors {
                        [one] => anyhow!(one.clone()),
                        _ => anyhow!("no member answered: {}", errors.join("; ")),
                    });
                }
                Err(other) => return Err(other.into_error()),
            }
        }
    }

    /// The token for `base` (authenticating if needed), or `None` without auth.
    async fn token(&self, base: &str) -> Result<Option<String>, Failure> {
        match &self.auth {
            Some(auth) => Ok(Some(auth.token(&self.client, base).await?)),
            None => Ok(None),
        }
    }

    /// The token did not work: the next call authenticates again.
    fn forget_token(&self, token: Option<&str>) {
        if let (Some(auth), Some(token)) = (&self.auth, token) {
            auth.forget(token);
        }
    }

    async fn call_at<T: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, Failure> {
        let token = self.token(base).await?;
        let url = format!("{base}{path}");
        let mut request = self.client.post(&url).json(body);
        if let Some(token) = token.as_deref().filter(|t| !t.is_empty()) {
            request = request.header(reqwest::header::AUTHORIZATION, token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Unreachable(anyhow!("POST {url}: {}", error_chain(&e))))?;
        let status = response.status();
        let bytes = read_body(response, MAX_BODY_BYTES)
            .await
            .map_err(|e| Failure::Unreachable(anyhow!("reading the answer to POST {url}: {e}")))?;
        if status != StatusCode::OK {
            let error = connection::refused(format!("POST {url}"), status, &bytes);
            let failure = classify(status, &bytes, error);
            if matches!(failure, Failure::BadToken(_)) {
                self.forget_token(token.as_deref());
            }
            return Err(failure);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Refused(anyhow!(
                "decoding the answer to POST {url}: {e}: {}",
                snippet(&bytes)
            ))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway's JSON

/// int64 fields arrive as strings; accept numbers too.
pub(super) fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Number(i64),
        Text(String),
    }
    match Int::deserialize(deserializer)? {
        Int::Number(n) => Ok(n),
        Int::Text(text) => text
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not an int64"))),
    }
}

#[derive(Deserialize, Default, Debug)]
pub(super) struct Header {
    #[serde(default, deserialize_with = "int64")]
    pub(super) revision: i64,
}

#[derive(Deserialize)]
struct HeaderOnly {
    #[serde(default)]
    header: Header,
}

#[derive(Deserialize)]
struct LeaseResponse {
    #[serde(rename = "ID", default, deserialize_with = "int64")]
    id: i64,
    #[serde(rename = "TTL", default, deserialize_with = "int64")]
    ttl: i64,
}

#[derive(Deserialize, Default, Debug)]
pub(super) struct RawKeyValue {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default, deserialize_with = "int64")]
    mod_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    lease: i64,
}

impl RawKeyValue {
    pub(super) fn decode(self) -> Result<KeyValue> {
        let key = decode_key(&self.key)?;
        let value = BASE64
            .decode(&self.value)
            .with_context(|| format!("the value of {key} is not base64"))?;
        Ok(KeyValue {
            key,
            value,
            mod_revision: self.mod_revision,
            lease: self.lease,
        })
    }
}

fn decode_key(encoded: &str) -> Result<String> {
    let bytes = BASE64
        .decode(encoded)
        .with_context(|| format!("key `{encoded}` is not base64"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

// ---------------------------------------------------------------------------------------------
// A real etcd for tests (also used by the discovery tests)

#[cfg(test)]
pub(crate) mod testing {
    use super::Etcd;
    use crate::testsupport::{free_port, pinned, ChildGuard};
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;

    pub const START_DEADLINE: Duration = Duration::from_secs(30);

    /// A single-member etcd on free ports, with its data in `data_dir`. Dropping it kills the
    /// process; [`TestEtcd::restart`] starts it again on the same ports and data.
    pub struct TestEtcd {
        child: Option<ChildGuard>,
        pub etcd: Etcd,
        bin: PathBuf,
        data_dir: PathBuf,
        client_port: u16,
        peer_port: u16,
        progress_interval: Option<&'static str>,
        starts: u32,
    }

    impl TestEtcd {
        /// `None` (test skipped) when etcd is not installed.
        pub async fn start(
            data_dir: &Path,
            progress_interval: Option<&'static str>,
        ) -> Option<TestEtcd> {
            let bin = pinned(crate::testsupport::ETCD)?;
            let mut test_etcd = TestEtcd {
                child: None,
                etcd: Etcd::new(&crate::clients::http_client().unwrap(), ""),
                bin,
                data_dir: data_dir.to_path_buf(),
                client_port: free_port(),
                peer_port: free_port(),
                progress_interval,
                starts: 0,
            };
            test_etcd.restart().await;
            Some(test_etcd)
        }

        pub fn base_url(&self) -> String {
            format!("http://127.0.0.1:{}", self.client_port)
        }

        /// What the current (or last) process wrote.
        pub fn log(&self) -> String {
            self.child.as_ref().map(|c| c.log()).unwrap_or_default()
        }

        /// Kills the process and waits until it is gone.
        pub fn kill(&mut self) {
            self.child = None;
        }

        /// Starts etcd (again) on the same ports and data directory; waits until it is healthy.
        pub async fn restart(&mut self) {
            self.kill();
            let (child, etcd) = spawn(
                &self.bin,
                &self.data_dir,
                self.client_port,
                self.peer_port,
                self.progress_interval,
                self.starts,
            )
            .await;
            self.starts += 1;
            self.child = Some(child);
            self.etcd = etcd;
        }
    }

    async fn spawn(
        bin: &Path,
        data_dir: &Path,
        client_port: u16,
        peer_port: u16,
        progress_interval: Option<&str>,
        run: u32,
    ) -> (ChildGuard, Etcd) {
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut command = Command::new(bin);
        command
            .arg("--name=default")
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"));
        if let Some(interval) = progress_interval {
            command.arg(format!(
                "--experimental-watch-progress-notify-interval={interval}"
            ));
        }
        let log = data_dir.with_extension(format!("{run}.log"));
        let mut child = ChildGuard::spawn(&mut command, &log);
        let client = crate::clients::http_client().expect("building the HTTP client");
        let etcd = Etcd::new(&client, &client_url);
        child
            .wait_until("waiting for etcd to become healthy", START_DEADLINE, || {
                let client = client.clone();
                let url = client_url.clone();
                async move {
                    crate::clients::is_ready(&client, "etcd", &url)
                        .await
                        .unwrap_or(false)
                }
            })
            .await;
        (child, etcd)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestEtcd;
    use super::*;
    use futures_util::StreamExt;
    use std::time::Instant;

    const WAIT: Duration = Duration::from_secs(20);

    fn frame(json: &str) -> WatchFrame {
        serde_json::from_str(json).unwrap()
    }

    fn b64(text: &str) -> String {
        BASE64.encode(text)
    }

    #[test]
    fn range_end_increments_the_last_byte() {
        assert_eq!(prefix_range_end(b"/service/"), b"/service0");
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b""), b"\0");
    }

    #[test]
    fn frames_split_anywhere_are_put_back_together() {
        let stream = format!(
            "{{\"result\":{{\"header\":{{\"revision\":\"5\"}},\"created\":true}}}}\n\
             {{\"result\":{{\"header\":{{\"revision\":\"6\"}},\"events\":[{{\"kv\":{{\"key\":\"{}\",\
             \"value\":\"{}\",\"mod_revision\":\"6\",\"lease\":\"7\"}}}}]}}}}\n\
             {{\"result\":{{\"header\":{{\"revision\":\"7\"}},\"events\":[{{\"type\":\"DELETE\",\
             \"kv\":{{\"key\":\"{}\",\"mod_revision\":\"7\"}}}}]}}}}\n\
             {{\"result\":{{\"header\":{{\"revision\":\"9\"}}}}}}\n",
            b64("/service/a/1"),
            b64("a:1"),
            b64("/service/a/1"),
        );
        let expected = vec![
            WatchEvent::Put(KeyValue {
                key: "/service/a/1".into(),
                value: b"a:1".to_vec(),
                mod_revision: 6,
                lease: 7,
            }),
            WatchEvent::Delete {
                key: "/service/a/1".into(),
                mod_revision: 7,
            },
            WatchEvent::Progress { revision: 9 },
        ];
        for chunk_size in [1, 2, 3, 7, 50, stream.len()] {
            let mut buffer = FrameBuffer::default();
            let mut events = Vec::new();
            for chunk in stream.as_bytes().chunks(chunk_size) {
                for frame in buffer.push(chunk).unwrap() {
                    events.extend(interpret(frame).into_iter().map(|e| e.unwrap()));
                }
            }
            assert!(buffer.is_empty());
            assert_eq!(events, expected, "chunks of {chunk_size} bytes");
        }
    }

    #[test]
    fn a_compaction_cancel_becomes_compacted() {
        let items = interpret(frame(
            r#"{"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"8",
                "cancel_reason":"mvcc: required revision has been compacted"}}"#,
        ));
        assert!(matches!(
            items.as_slice(),
            [Err(WatchError::Compacted {
                compact_revision: 8
            })]
        ));
        let items = interpret(frame(
            r#"{"error":{"grpc_code":14,"message":"unavailable"}}"#,
        ));
        let error = items.into_iter().next().unwrap().unwrap_err().to_string();
        assert!(error.contains("unavailable"), "{error}");
    }

    #[test]
    fn one_watch_message_is_capped_and_the_stream_is_not() {
        let progress = |revision: usize| {
            format!("{{\"result\":{{\"header\":{{\"revision\":\"{revision}\"}}}}}}\n")
        };
        // 40 MiB of messages in all, each small: every one is read.
        let mut buffer = FrameBuffer::default();
        let padding = " ".repeat(40 * 1024);
        let mut frames = 0;
        for revision in 0..1024 {
            let message = format!("{}{padding}", progress(revision));
            frames += buffer.push(message.as_bytes()).unwrap().len();
        }
        assert_eq!(frames, 1024);
        // One message that never ends: stopped once it passes the cap.
        let mut buffer = FrameBuffer::default();
        buffer.push(b"{\"result\":{\"header\":{\"x\":\"").unwrap();
        let chunk = [b'a'; 64 * 1024];
        let mut pushed = 0;
        let error = loop {
            match buffer.push(&chunk) {
                Ok(frames) => assert!(frames.is_empty()),
                Err(e) => break e.to_string(),
            }
            pushed += chunk.len();
            assert!(pushed <= MAX_BODY_BYTES + chunk.len(), "never stopped");
        };
        assert_eq!(
            error,
            "a watch message is larger than 16 MiB; stopped reading it"
        );
    }

    #[test]
    fn a_message_arriving_byte_by_byte_is_scanned_once() {
        // Re-parsing everything pending for each chunk made this quadratic.
        let value = "QUFB".repeat(256 * 1024);
        let message = format!(
            "{{\"result\":{{\"header\":{{\"revision\":\"6\"}},\"events\":[{{\"kv\":{{\"key\":\"{}\",\"value\":\"{value}\",\"mod_revision\":\"6\"}}}}]}}}}\n",
            b64("/service/a/1")
        );
        let started = Instant::now();
        let mut buffer = FrameBuffer::default();
        let mut frames = Vec::new();
        for byte in message.as_bytes() {
            frames.extend(buffer.push(std::slice::from_ref(byte)).unwrap());
        }
        assert_eq!(frames.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(5));
        // Braces and escaped quotes inside strings do not end an object.
        let tricky = b"{\"result\":{\"cancel_reason\":\"a } \\\" ]\",\"canceled\":true}}\n";
        let frames = FrameBuffer::default().push(tricky).unwrap();
        let Err(WatchError::Canceled { reason }) = interpret(frames.into_iter().next().unwrap())
            .into_iter()
            .next()
            .unwrap()
        else {
            panic!("expected a cancel")
        };
        assert_eq!(reason, "a } \" ]");
    }

    #[test]
    fn garbage_in_the_stream_is_an_error() {
        let mut buffer = FrameBuffer::default();
        let error = buffer.push(b"{\"result\":{}}\n<html>").unwrap_err();
        assert!(error.to_string().contains("<html>"), "{error}");
    }

    #[tokio::test]
    async fn errors_say_what_was_being_done() {
        let port = crate::testsupport::free_port();
        let etcd = Etcd::new(
            &crate::clients::http_client().unwrap(),
            format!("http://127.0.0.1:{port}/"),
        );
        let error = format!(
            "{:#}",
            etcd.put("/service/a/1", b"x", None).await.unwrap_err()
        );
        assert!(
            error.starts_with("putting /service/a/1 into etcd at http://127.0.0.1:"),
            "{error}"
        );
        assert!(error.to_lowercase().contains("connect"), "{error}");
        let first = Box::pin(etcd.watch_prefix("/service/", 1))
            .next()
            .await
            .unwrap();
        let error = first.unwrap_err().to_string();
        assert!(
            error.starts_with("watching /service/* in etcd at"),
            "{error}"
        );
    }

    /// A server that accepts connections and never answers: only the idle timeout ends the wait.
    #[tokio::test]
    async fn a_silent_connection_is_declared_dead() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                held.push(socket);
            }
        });
        let etcd = Etcd::new(
            &crate::clients::http_client().unwrap(),
            format!("http://127.0.0.1:{port}"),
        )
        .with_watch_idle_timeout(Duration::from_millis(300));
        let first = Box::pin(etcd.watch_prefix("/service/", 1))
            .next()
            .await
            .unwrap();
        assert!(matches!(first, Err(WatchError::Idle(_))), "{first:?}");
        server.abort();
    }

    async fn next_event(
        stream: &mut (impl Stream<Item = Result<WatchEvent, WatchError>> + Unpin),
        test_etcd: &TestEtcd,
    ) -> WatchEvent {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(Ok(event))) => event,
            other => panic!("expected a watch event, got {other:?}\n{}", test_etcd.log()),
        }
    }

    /// The next event that is not a progress notification.
    async fn next_change(
        stream: &mut (impl Stream<Item = Result<WatchEvent, WatchError>> + Unpin),
        test_etcd: &TestEtcd,
    ) -> WatchEvent {
        loop {
            match next_event(stream, test_etcd).await {
                WatchEvent::Progress { .. } => continue,
                event => return event,
            }
        }
    }

    #[tokio::test]
    async fn real_etcd_put_range_delete() {
        let dir = tempfile::tempdir().unwrap();
        let Some(test_etcd) = TestEtcd::start(&dir.path().join("etcd"), None).await else {
            return;
        };
        let etcd = &test_etcd.etcd;
        let first = etcd.put("/service/a/1", b"a:1", None).await.unwrap();
        let second = etcd
            .put("/service/b/1", b"\x00\xffbytes", None)
            .await
            .unwrap();
        etcd.put("/servicf", b"outside", None).await.unwrap();
        etcd.put("/service", b"outside too", None).await.unwrap();
        assert!(second > first);
        let listed = etcd.range_prefix("/service/").await.unwrap();
        assert!(listed.revision >= second + 2);
        assert_eq!(
            listed.kvs,
            vec![
                KeyValue {
                    key: "/service/a/1".into(),
                    value: b"a:1".to_vec(),
                    mod_revision: first,
                    lease: 0
                },
                KeyValue {
                    key: "/service/b/1".into(),
                    value: b"\x00\xffbytes".to_vec(),
                    mod_revision: second,
                    lease: 0
                },
            ]
        );
        etcd.delete("/service/a/1").await.unwrap();
        etcd.delete("/service/none").await.unwrap();
        let keys: Vec<String> = etcd
            .range_prefix("/service/")
            .await
            .unwrap()
            .kvs
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        assert_eq!(keys, ["/service/b/1"]);
        assert!(etcd.range_prefix("/nothing/").await.unwrap().kvs.is_empty());
    }

    #[tokio::test]
    async fn real_etcd_leases() {
        let dir = tempfile::tempdir().unwrap();
        let Some(mut test_etcd) = TestEtcd::start(&dir.path().join("etcd"), None).await else {
            return;
        };
        let etcd = test_etcd.etcd.clone();
        // Revoking deletes the keys attached to the lease.
        let lease = etcd.grant(60).await.unwrap();
        assert_eq!(lease.ttl, 60);
        etcd.put("/service/a/1", b"a:1", Some(lease.id))
            .await
            .unwrap();
        let listed = etcd.range_prefix("/service/").await.unwrap();
        assert_eq!(listed.kvs[0].lease, lease.id);
        assert!(etcd.time_to_live(lease.id).await.unwrap().unwrap() > 0);
        etcd.revoke(lease.id).await.unwrap();
        assert!(etcd.range_prefix("/service/").await.unwrap().kvs.is_empty());
        assert_eq!(etcd.time_to_live(lease.id).await.unwrap(), None);
        assert!(etcd.keep_alive(lease.id).await.unwrap() <= 0);
        assert_eq!(etcd.time_to_live(12345).await.unwrap(), None);

        // A keep-alive puts the TTL back up.
        let lease = etcd.grant(5).await.unwrap();
        let start = Instant::now();
        let mut lowered = 5;
        while lowered >= 4 {
            assert!(start.elapsed() < WAIT, "the lease TTL never went down");
            tokio::time::sleep(Duration::from_millis(200)).await;
            lowered = etcd
                .time_to_live(lease.id)
                .await
                .unwrap()
                .expect("lease alive");
        }
        assert_eq!(etcd.keep_alive(lease.id).await.unwrap(), 5);
        let raised = etcd
            .time_to_live(lease.id)
            .await
            .unwrap()
            .expect("lease alive");
        assert!(
            raised > lowered,
            "{raised} after keep-alive, {lowered} before"
        );

        // A lease left alone expires and its key is deleted: a DELETE on the watch.
        let lease = etcd.grant(2).await.unwrap();
        let revision = etcd
            .put("/service/short/1", b"s:1", Some(lease.id))
            .await
            .unwrap();
        let mut watch = Box::pin(etcd.watch_prefix("/service/", revision));
        match next_change(&mut watch, &test_etcd).await {
            WatchEvent::Put(kv) => assert_eq!(kv.key, "/service/short/1"),
            other => panic!("expected the put, got {other:?}"),
        }
        match next_change(&mut watch, &test_etcd).await {
            WatchEvent::Delete { key, mod_revision } => {
                assert_eq!(key, "/service/short/1");
                assert!(mod_revision > revision);
            }
            other => panic!("expected the expiry, got {other:?}"),
        }
        assert_eq!(etcd.time_to_live(lease.id).await.unwrap(), None);
        test_etcd.kill();
        // etcd is gone: the open watch ends with an error, not silently.
        match tokio::time::timeout(WAIT, watch.next()).await {
            Ok(Some(Err(WatchError::Other(e)))) => {
                assert!(e.to_string().starts_with("watching /service/*"), "{e}")
            }
            other => panic!("expected an error after etcd died, got {other:?}"),
        }
        assert!(
            watch.next().await.is_none(),
            "the stream ends after its error"
        );
    }

    #[tokio::test]
    async fn real_etcd_watch_after_range_has_no_gap_and_no_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let Some(test_etcd) = TestEtcd::start(&dir.path().join("etcd"), Some("1s")).await else {
            return;
        };
        let etcd = &test_etcd.etcd;
        etcd.put("/service/a/1", b"a:1", None).await.unwrap();
        etcd.put("/service/b/1", b"b:1", None).await.unwrap();
        let listed = etcd.range_prefix("/service/").await.unwrap();
        // Changes between the list and the start of the watch.
        let c = etcd.put("/service/c/1", b"c:1", None).await.unwrap();
        etcd.delete("/service/a/1").await.unwrap();
        etcd.put("/elsewhere", b"x", None).await.unwrap();
        let b = etcd.put("/service/b/1", b"b:2", None).await.unwrap();
        let mut watch = Box::pin(etcd.watch_prefix("/service/", listed.revision + 1));
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(next_change(&mut watch, &test_etcd).await);
        }
        let put = |key: &str, value: &[u8], mod_revision| {
            WatchEvent::Put(KeyValue {
                key: key.into(),
                value: value.to_vec(),
                mod_revision,
                lease: 0,
            })
        };
        assert_eq!(
            seen,
            vec![
                put("/service/c/1", b"c:1", c),
                WatchEvent::Delete {
                    key: "/service/a/1".into(),
                    mod_revision: c + 1
                },
                put("/service/b/1", b"b:2", b),
            ]
        );
        // Nothing repeats: the next change is the one made now.
        let d = etcd.put("/service/d/1", b"d:1", None).await.unwrap();
        assert_eq!(
            next_change(&mut watch, &test_etcd).await,
            put("/service/d/1", b"d:1", d)
        );
        // With nothing happening, progress notifications report the current revision.
        let mut progress = None;
        while progress.is_none() {
            if let WatchEvent::Progress { revision } = next_event(&mut watch, &test_etcd).await {
                progress = Some(revision);
            }
        }
        assert_eq!(progress, Some(d));
    }

    #[tokio::test]
    async fn real_etcd_watch_from_a_compacted_revision_fails_with_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let Some(test_etcd) = TestEtcd::start(&dir.path().join("etcd"), None).await else {
            return;
        };
        let etcd = &test_etcd.etcd;
        let old = etcd.put("/service/a/1", b"a:1", None).await.unwrap();
        etcd.put("/service/a/1", b"a:2", None).await.unwrap();
        let latest = etcd.put("/service/a/1", b"a:3", None).await.unwrap();
        etcd.compact(latest).await.unwrap();
        let mut watch = Box::pin(etcd.watch_prefix("/service/", old));
        match tokio::time::timeout(WAIT, watch.next()).await {
            Ok(Some(Err(WatchError::Compacted { compact_revision }))) => {
                assert_eq!(compact_revision, latest)
            }
            other => panic!("expected Compacted, got {other:?}\n{}", test_etcd.log()),
        }
        assert!(watch.next().await.is_none());
        // From the compacted revision on, the watch works.
        let mut watch = Box::pin(etcd.watch_prefix("/service/", latest));
        match next_change(&mut watch, &test_etcd).await {
            WatchEvent::Put(kv) => {
                assert_eq!((kv.value, kv.mod_revision), (b"a:3".to_vec(), latest))
            }
            other => panic!("expected the last put, got {other:?}"),
        }
    }
}
