//! The watch stream of the JSON gateway: one long HTTP response carrying JSON objects one after
//! the other, cut into frames, read into events, ended by the first error.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures_util::Stream;
use reqwest::StatusCode;
use serde::Deserialize;

use super::connection::{classify, is_bad_token, Failure};
use super::{int64, Etcd, Header, RawKeyValue, WatchError, WatchEvent};
use crate::clients::{error_chain, read_body, snippet, MAX_BODY_BYTES};

/// One object of the watch stream: `{"result": WatchResponse}` or `{"error": {...}}`.
#[derive(Deserialize, Debug)]
pub(super) struct WatchFrame {
    result: Option<WatchResponse>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize, Debug, Default)]
struct WatchResponse {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    canceled: bool,
    #[serde(default, deserialize_with = "int64")]
    compact_revision: i64,
    #[serde(default)]
    cancel_reason: String,
    #[serde(default)]
    events: Vec<RawEvent>,
}

#[derive(Deserialize, Debug)]
struct RawEvent {
    /// `PUT` is protobuf's zero value, so the gateway leaves it out.
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    kv: RawKeyValue,
}

/// What one frame means: events, in order, possibly followed by the error that ends the watch.
pub(super) fn interpret(frame: WatchFrame) -> Vec<Result<WatchEvent, WatchError>> {
    let response = match (frame.result, frame.error) {
        (Some(response), _) => response,
        (None, error) => {
            return vec![Err(WatchError::Other(anyhow!(
                "etcd reported an error on the watch stream: {}",
                error.unwrap_or_default()
            )))]
        }
    };
    if response.compact_revision > 0 {
        return vec![Err(WatchError::Compacted {
            compact_revision: response.compact_revision,
        })];
    }
    if response.canceled {
        let reason = if response.cancel_reason.is_empty() {
            "no reason given".to_string()
        } else {
            response.cancel_reason
        };
        return vec![Err(WatchError::Canceled { reason })];
    }
    if response.created {
        // The header of the creation answer is the current revision, not a promise that the
        // events from start_revision up to it were delivered: not a progress mark.
        return Vec::new();
    }
    if response.events.is_empty() {
        return vec![Ok(WatchEvent::Progress {
            revision: response.header.revision,
        })];
    }
    response
        .events
        .into_iter()
        .map(|event| {
            let kind = event.kind.unwrap_or_else(|| "PUT".to_string());
            let kv = event.kv.decode().map_err(WatchError::Other)?;
            match kind.as_str() {
                "PUT" => Ok(WatchEvent::Put(kv)),
                "DELETE" => Ok(WatchEvent::Delete {
                    key: kv.key,
                    mod_revision: kv.mod_revision,
                }),
                other => Err(WatchError::Other(anyhow!(
                    "unknown watch event type `{other}`"
                ))),
            }
        })
        .collect()
}

/// Bytes of the watch response not yet parsed. The gateway separates objects with newlines, but
/// chunks can end anywhere, so objects are cut where their outermost `}` closes: a scan that
/// carries its state (depth, inside a string) from chunk to chunk, so every byte is looked at
/// once, and each complete object is parsed once. One object may hold at most
/// [`MAX_BODY_BYTES`]; the stream as a whole has no limit.
#[derive(Default)]
pub(super) struct FrameBuffer {
    pending: Vec<u8>,
    /// How much of `pending` the scan has seen.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl FrameBuffer {
    /// Adds `bytes` and returns every object that is now complete.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Result<Vec<WatchFrame>> {
        self.pending.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut start = 0;
        let mut i = self.scanned;
        while i < self.pending.len() {
            let b = self.pending[i];
            i += 1;
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' if self.depth > 0 => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        frames.push(self.parse(start, i)?);
                        start = i;
                    }
                }
                _ if self.depth > 0 => {}
                b if b.is_ascii_whitespace() => start = i,
                // Between objects only whitespace belongs.
                _ => return Err(self.not_a_frame(start, self.pending.len())),
            }
        }
        self.pending.drain(..start);
        self.scanned = self.pending.len();
        if self.pending.len() > MAX_BODY_BYTES {
            bail!(
                "a watch message is larger than {} MiB; stopped reading it",
                MAX_BODY_BYTES >> 20
            );
        }
        Ok(frames)
    }

    fn parse(&self, start: usize, end: usize) -> Result<WatchFrame> {
        serde_json::from_slice(&self.pending[start..end]).map_err(|_| self.not_a_frame(start, end))
    }

    fn not_a_frame(&self, start: usize, end: usize) -> anyhow::Error {
        let bytes = &self.pending[start..end];
        let why = match serde_json::from_slice::<WatchFrame>(bytes) {
            Err(e) => format!(" ({e})"),
            Ok(_) => String::new(),
        };
        anyhow!(
            "the watch stream holds something that is not a watch response{why}: {}",
            snippet(bytes)
        )
    }

    /// True when only whitespace is left over.
    pub(super) fn is_empty(&self) -> bool {
        self.pending.iter().all(u8::is_ascii_whitespace)
    }
}

/// The total-request timeout of a watch. reqwest cannot switch a client's timeout off for one
/// request, only replace it; a century is "never" (tokio clamps far deadlines).
const WATCH_NO_DEADLINE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The watch as a stream (see [`Etcd::watch_prefix`]). `watching` says what it is, with `{}`
/// where the member's URL goes.
pub(super) fn stream(
    etcd: Etcd,
    body: serde_json::Value,
    watching: String,
) -> impl Stream<Item = Result<WatchEvent, WatchError>> + Send + 'static {
    futures_util::stream::unfold(
        WatchState::Start {
            etcd,
            body,
            watching,
        },
        next_watch_item,
    )
}

enum WatchState {
    Start {
        etcd: Etcd,
        body: serde_json::Value,
        watching: String,
    },
    Reading {
        response: reqwest::Response,
        frames: FrameBuffer,
        queue: VecDeque<Result<WatchEvent, WatchError>>,
        on: Member,
    },
    Done,
}

/// The member a watch runs on, to move on from it when the watch breaks.
struct Member {
    etcd: Etcd,
    index: usize,
    token: Option<String>,
    watching: String,
}

impl Member {
    /// The watch broke: a transport failure or a member that lost its leader moves the client
    /// on to the next member, an expired token is dropped; compaction is nobody's fault.
    fn ended(&self, error: &WatchError) {
        match error {
            WatchError::Compacted { .. } => {}
            WatchError::Canceled { reason } if is_bad_token(reason) => {
                self.etcd.forget_token(self.token.as_deref())
            }
            _ => self.etcd.endpoints.failed(self.index),
        }
    }

    fn fail(self, error: WatchError) -> Option<(Result<WatchEvent, WatchError>, WatchState)> {
        self.ended(&error);
        Some((Err(error), WatchState::Done))
    }
}

async fn next_watch_item(
    mut state: WatchState,
) -> Option<(Result<WatchEvent, WatchError>, WatchState)> {
    let other = |error: anyhow::Error| WatchError::Other(error);
    loop {
        state = match state {
            WatchState::Done => return None,
            WatchState::Start {
                etcd,
                body,
                watching,
            } => {
                let (index, base) = etcd.endpoints.current();
                let watching = watching.replace("{}", base);
                let idle = etcd.watch_idle_timeout;
                let url = format!("{base}/v3/watch");
                let token = match etcd.token(base).await {
                    Ok(token) => token,
                    Err(failure) => {
                        if matches!(failure, Failure::Unreachable(_)) {
                            etcd.endpoints.failed(index);
                        }
                        let error = failure.into_error().context(watching);
                        return Some((Err(other(error)), WatchState::Done));
                    }
                };
                // `hasleader`: a member cut off from its leader ends the watch (rather than
                // keep a stale one open), so the client moves on.
                let mut request = etcd
                    .client
                    .post(&url)
                    .timeout(WATCH_NO_DEADLINE)
                    .header("Grpc-Metadata-hasleader", "true")
                    .json(&body);
                if let Some(token) = token.as_deref().filter(|t| !t.is_empty()) {
                    request = request.header(reqwest::header::AUTHORIZATION, token);
                }
                let on = Member {
                    etcd: etcd.clone(),
                    index,
                    token,
                    watching,
                };
                let response = match tokio::time::timeout(idle, request.send()).await {
                    Err(_) => return on.fail(WatchError::Idle(idle)),
                    Ok(Err(e)) => {
                        let error = anyhow!("{}: {}", on.watching, error_chain(&e));
                        return on.fail(other(error));
                    }
                    Ok(Ok(response)) => response,
                };
                let status = response.status();
                if status != StatusCode::OK {
                    let body = read_body(response, MAX_BODY_BYTES)
                        .await
                        .unwrap_or_default();
                    let error = anyhow!("{}: HTTP {status}: {}", on.watching, snippet(&body));
                    match classify(status, &body, error) {
                        Failure::Unreachable(e) => return on.fail(other(e)),
                        Failure::BadToken(e) => {
                            etcd.forget_token(on.token.as_deref());
                            return Some((Err(other(e)), WatchState::Done));
                        }
                        Failure::Refused(e) => return Some((Err(other(e)), WatchState::Done)),
                    }
                }
                WatchState::Reading {
                    response,
                    frames: FrameBuffer::default(),
                    queue: VecDeque::new(),
                    on,
                }
            }
            WatchState::Reading {
                mut response,
                mut frames,
                mut queue,
                on,
            } => {
                if let Some(item) = queue.pop_front() {
                    let next = match &item {
                        Err(error) => {
                            on.ended(error);
                            WatchState::Done
                        }
                        Ok(_) => WatchState::Reading {
                            response,
                            frames,
                            queue,
                            on,
                        },
                    };
                    return Some((item, next));
                }
                let idle = on.etcd.watch_idle_timeout;
                let chunk = match tokio::time::timeout(idle, response.chunk()).await {
                    Err(_) => return on.fail(WatchError::Idle(idle)),
                    Ok(Err(e)) => {
                        let error = anyhow!("{}: {}", on.watching, error_chain(&e));
                        return on.fail(other(error));
                    }
                    Ok(Ok(None)) => {
                        let leftover = if frames.is_empty() {
                            String::new()
                        } else {
                            format!(" in the middle of {}", snippet(&frames.pending))
                        };
                        let error = anyhow!("{}: etcd closed the stream{leftover}", on.watching);
                        return on.fail(other(error));
                    }
                    Ok(Ok(Some(chunk))) => chunk,
                };
                match frames.push(&chunk) {
                    Ok(parsed) => queue.extend(parsed.into_iter().flat_map(interpret)),
                    Err(e) => {
                        let error = e.context(on.watching.clone());
                        return on.fail(other(error));
                    }
                }
                WatchState::Reading {
                    response,
                    frames,
                    queue,
                    on,
                }
            }
        };
    }
}
