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
