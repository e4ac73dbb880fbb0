//! What the clients' tests share: the HTTP client, wiremock servers with one expected call, and
//! waiting for a real binary to start.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use reqwest::Client;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::http_client;
use crate::testsupport::{free_port, ChildGuard};

pub(super) fn client() -> Client {
    http_client().expect("building the client")
}

/// A base URL where nothing listens.
pub(super) fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A server that expects exactly one `method_name url_path` and answers `response`.
pub(super) async fn serve(
    method_name: &str,
    url_path: &str,
    response: ResponseTemplate,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(method_name))
        .and(path(url_path))
        .respond_with(response)
        .expect(1)
        .mount(&server)
        .await;
    server
}

/// A server that answers every request with a chunked body that never ends (64 KiB chunks, as
/// fast as the client reads), and counts what it sent.
pub(crate) async fn endless_body_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>)
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sent = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("10000\r\n{}\r\n", "7".repeat(0x10000));
                while socket.write_all(chunk.as_bytes()).await.is_ok() {
                    counter.fetch_add(0x10000, Ordering::Relaxed);
                }
            });
        }
    });
    (base, sent)
}

pub(super) fn json_answer(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

// For the tests against the real binaries: each test starts its own process on a free port with
// a config in a temp dir; the guard kills it when the test ends, passed or not.

/// How long a service may take to start. A wait, not a timing assertion.
pub(super) const START_DEADLINE: Duration = Duration::from_secs(30);

pub(super) fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Waits until `check` says yes; an `Err` from it fails the test at once.
pub(super) async fn wait_for<F, Fut>(child: &mut ChildGuard, what: &str, check: F)
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
