//! Which etcd member to talk to, and as whom: the endpoints tried in turn, the TLS client, and
//! the auth token of etcd's JSON gateway.
//!
//! Failover: every call goes to the current endpoint; a connection error, a timeout or an HTTP
//! 5xx (etcd answers 503 when the member has no leader) moves the current endpoint on to the
//! next one and the call is tried there, each endpoint once. A watch that breaks moves it on too,
//! and the caller resumes the watch from its last revision on the next member: revisions are the
//! cluster's, not a member's.
//!
//! Auth: `POST /v3/auth/authenticate {name, password}` answers a token, sent as the bare
//! `Authorization: <token>` header (etcd reads the gRPC metadata `authorization` the gateway
//! makes of it; `Bearer <token>` is an invalid token). A token expires (`--auth-token-ttl`, 5 min
//! by default, renewed by every use of a simple token): etcd then answers HTTP 401 with
//! `etcdserver: invalid auth token` (gRPC code 16) to a call, and cancels a new watch with
//! `cancel_reason` "... Unauthenticated desc = etcdserver: invalid auth token". A watch created
//! with a valid token keeps streaming after the token expires. Either way the token is dropped
//! and the next call authenticates again. The password is read from its file at each
//! authentication (so it can be rotated) and never held longer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::clients::{error_chain, read_body, snippet, MAX_BODY_BYTES};
use crate::model::EtcdCluster;

/// Why a call to one member failed, which decides what happens next.
pub(super) enum Failure {
    /// The member did not answer, or answered 5xx: try the next one.
    Unreachable(anyhow::Error),
    /// The token is no longer valid: authenticate again and retry once.
    BadToken(anyhow::Error),
    /// An answer that another member would give too.
    Refused(anyhow::Error),
}

impl Failure {
    pub(super) fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Unreachable(e) | Failure::BadToken(e) | Failure::Refused(e) => e,
        }
    }
}

/// Sorts an answer that is not 200.
pub(super) fn classify(status: StatusCode, body: &[u8], error: anyhow::Error) -> Failure {
    let text = String::from_utf8_lossy(body);
    if status.is_server_error() {
        Failure::Unreachable(error)
    } else if is_bad_token(&text) {
        Failure::BadToken(error)
    } else {
        Failure::Refused(error)
    }
}

/// etcd's answer as an error, with the way out when etcd's message alone does not say it.
pub(super) fn refused(doing: String, status: StatusCode, body: &[u8]) -> anyhow::Error {
    let text = String::from_utf8_lossy(body);
    let hint = if text.contains("CommonName of client sending a request against gateway") {
        " (etcd's JSON gateway refuses a client certificate with a CommonName when \
         --client-cert-auth is on: issue one without a CN, the user comes from `username`)"
    } else {
        ""
    };
    anyhow!("{doing} answered HTTP {status}: {}{hint}", snippet(body))
}

/// etcd's messages for a token that expired (or came from before a restart of the member), for
/// one issued before the auth store changed, and for a request without one (auth was enabled
/// after the client found it off and stopped sending a token): clientv3 authenticates again on
/// each. Without a `username` the second try fails the same way and is reported.
pub(super) fn is_bad_token(text: &str) -> bool {
    text.contains("invalid auth token")
        || text.contains("revision of auth store is old")
        || text.contains("user name is empty")
}

/// The members' client URLs and the one in use.
#[derive(Debug)]
pub(super) struct Endpoints {
    urls: Vec<String>,
    current: AtomicUsize,
}

impl Endpoints {
    pub(super) fn new(urls: Vec<String>) -> Endpoints {
        let urls = urls
            .into_iter()
            .map(|mut url| {
                while url.ends_with('/') {
                    url.pop();
                }
                url
            })
            .collect();
        Endpoints {
            urls,
            current: AtomicUsize::new(0),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.urls.len().max(1)
    }

    /// The endpoint in use and its index (pass the index to [`Endpoints::failed`]).
    pub(super) fn current(&self) -> (usize, &str) {
        let index = self.current.load(Ordering::Relaxed) % self.len();
        (index, self.urls.get(index).map_or("", String::as_str))
    }

    /// The endpoint at `index` failed: move on to the next, unless another caller already did.
    pub(super) fn failed(&self, index: usize) {
        let next = (index + 1) % self.len();
        if self
            .current
            .compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
            && self.urls.len() > 1
        {
            tracing::warn!(
                "etcd at {} failed; switching to {}",
                self.urls[index],
                self.urls[next]
            );
        }
    }

    /// For messages: the one URL, or all of them.
    pub(super) fn describe(&self) -> String {
        self.urls.join(",")
    }
}

/// A user of etcd's auth, with the file holding the password.
pub(super) struct Auth {
    username: String,
    password_file: PathBuf,
    /// The current token; `Some("")` when the cluster has auth disabled.
    token: Mutex<Option<String>>,
    /// One authentication at a time: concurrent callers wait for its token.
    login: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password_file", &self.password_file)
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub(super) fn new(username: String, password_file: PathBuf) -> Auth {
        Auth {
            username,
            password_file,
            token: Mutex::new(None),
            login: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Drops `stale` (unless a newer token already replaced it): the next call authenticates.
    pub(super) fn forget(&self, stale: &str) {
        let mut token = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if token.as_deref() == Some(stale) {
            *token = None;
        }
    }

    /// The token to send (empty: send none), authenticating at `base` when there is none.
    pub(super) async fn token(&self, client: &Client, base: &str) -> Result<String, Failure> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let _one_at_a_time = self.login.lock().await;
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let token = self.authenticate(client, base).await?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Ok(token)
    }

    async fn authenticate(&self, client: &Client, base: &str) -> Result<String, Failure> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            token: String,
        }
        let password = read_password(&self.password_file).map_err(Failure::Refused)?;
        let url = format!("{base}/v3/auth/authenticate");
        let doing = format!("authenticating to etcd at {base} as `{}`", self.username);
        let response = client
            .post(&url)
            .json(&json!({"name": self.username, "password": password}))
            .send()
            .await
            .map_err(|e| Failure::Unreachable(anyhow!("{doing}: {}", error_chain(&e))))?;
        let status = response.status();
        let bytes = read_body(response, MAX_BODY_BYTES)
            .await
            .map_err(|e| Failure::Unreachable(anyhow!("{doing}: reading the answer: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        if status == StatusCode::OK {
            let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Refused(anyhow!("{doing}: an answer without a token ({e})"))
            })?;
            if answer.token.is_empty() {
                return Err(Failure::Refused(anyhow!(
                    "{doing}: an answer without a token"
                )));
            }
            tracing::debug!("authenticated to etcd at {base} as `{}`", self.username);
            return Ok(answer.token);
        }
        // Like clientv3: credentials for a cluster without auth are not an error.
        if text.contains("authentication is not enabled") {
            tracing::debug!("etcd at {base} has auth disabled; sending no token");
            return Ok(String::new());
        }
        let error = refused(doing, status, &bytes);
        Err(match classify(status, &bytes, error) {
            Failure::BadToken(e) => Failure::Refused(e),
            other => other,
        })
    }
}

/// The password in `path`, without the line end an editor adds; registered for redaction.
fn read_password(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the etcd password from {}", path.display()))?;
    let password = text.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("the etcd password file {} is empty", path.display());
    }
    crate::output::redact::register(&password);
    Ok(password)
}

/// The HTTP client for a cluster: the shared client's timeouts, TCP keep-alive probes (a member
/// whose host died without closing the connection is noticed in about a minute, even on a watch
/// that is quiet for longer), and with TLS the cluster's CA as the only root and the client
/// certificate.
pub fn cluster_client(cluster: &EtcdCluster) -> Result<Client> {
    let mut builder = Client::builder()
        .timeout(crate::clients::REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .tcp_keepalive(Duration::from_secs(30))
        .tcp_keepalive_interval(Duration::from_secs(10))
        .tcp_keepalive_retries(3)
        .no_proxy();
    if let Some(tls) = &cluster.tls {
        if let Some(ca) = &tls.ca {
            let pem = std::fs::read(ca)
                .with_context(|| format!("reading the etcd CA {}", ca.display()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|roots| !roots.is_empty())
                .ok_or_else(|| {
                    anyhow!(
                        "{}: no PEM certificate (BEGIN CERTIFICATE) in it",
                        ca.display()
                    )
                })?;
            builder = builder.tls_built_in_root_certs(false);
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => builder = builder.identity(identity(cert, key)?),
            (None, None) => {}
            _ => bail!("etcd TLS: `cert` and `key` go together"),
        }
    }
    builder.build().context("building the etcd HTTP client")
}

/// The client identity from a certificate (chain) and a private key, both PEM. The key may be
/// PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl genpkey` and cfssl write), PKCS#1 RSA or SEC1 EC
/// (`BEGIN EC PRIVATE KEY`; the `EC PARAMETERS` block `openssl ecparam -genkey` puts before it
/// is skipped). An encrypted key is refused: the agent has no one to ask for its passphrase.
pub fn identity(cert: &Path, key: &Path) -> Result<reqwest::Identity> {
    let certs = std::fs::read_to_string(cert)
        .with_context(|| format!("reading the etcd client certificate {}", cert.display()))?;
    let key_text = std::fs::read_to_string(key)
        .with_context(|| format!("reading the etcd client key {}", key.display()))?;
    let cert_blocks = pem_blocks(&certs, |label| label == "CERTIFICATE");
    if cert_blocks.is_empty() {
        bail!(
            "{}: no PEM certificate (BEGIN CERTIFICATE) in it",
            cert.display()
        );
    }
    if !pem_blocks(&key_text, |label| label == "ENCRYPTED PRIVATE KEY").is_empty()
        || key_text.contains("Proc-Type: 4,ENCRYPTED")
    {
        bail!(
            "{}: the key is encrypted; write it unencrypted (`openssl pkey -in {} -out key.pem`) \
             and keep it readable by you alone",
            key.display(),
            key.display()
        );
    }
    let key_blocks = pem_blocks(&key_text, |label| {
        matches!(label, "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY")
    });
    let [key_block] = key_blocks.as_slice() else {
        bail!(
            "{}: expected one PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE \
             KEY), found {}",
            key.display(),
            key_blocks.len()
        );
    };
    let mut pem = cert_blocks.join("\n");
    pem.push('\n');
    pem.push_str(key_block);
    pem.push('\n');
    reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| {
        anyhow!(
            "{} and {} are not a usable certificate and key: {}",
            cert.display(),
            key.display(),
            error_chain(&e)
        )
    })
}

/// The PEM blocks of `text` whose label passes `wanted`, each from its BEGIN to its END line.
fn pem_blocks(text: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let block_end = start + end + end_marker.len();
        if wanted(label) {
            blocks.push(rest[start..block_end].to_string());
        }
        rest = &rest[block_end..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_move_on_once_per_failure() {
        let endpoints = Endpoints::new(vec!["https://a:2379/".into(), "https://b:2379".into()]);
        assert_eq!(endpoints.current(), (0, "https://a:2379"));
        endpoints.failed(0);
        // A second report of the same failure (a concurrent call) does not skip b.
        endpoints.failed(0);
        assert_eq!(endpoints.current(), (1, "https://b:2379"));
        endpoints.failed(1);
        assert_eq!(endpoints.current(), (0, "https://a:2379"));
        assert_eq!(endpoints.describe(), "https://a:2379,https://b:2379");
    }

    #[test]
    fn answers_are_sorted_into_retry_elsewhere_authenticate_again_or_give_up() {
        let sort = |status: u16, body: &str| match classify(
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
            anyhow!("x"),
        ) {
            Failure::Unreachable(_) => "next",
            Failure::BadToken(_) => "auth",
            Failure::Refused(_) => "fail",
        };
        assert_eq!(
            sort(
                401,
                r#"{"code":16,"message":"etcdserver: invalid auth token"}"#
            ),
            "auth"
        );
        assert_eq!(
            sort(503, r#"{"code":14,"message":"etcdserver: no leader"}"#),
            "next"
        );
        assert_eq!(
            sort(
                400,
                r#"{"code":3,"message":"etcdserver: user name is empty"}"#
            ),
            "auth"
        );
        assert_eq!(
            sort(
                403,
                r#"{"code":7,"message":"etcdserver: permission denied"}"#
            ),
            "fail"
        );
    }

    #[test]
    fn pem_blocks_are_picked_by_label() {
        let text = "junk\n-----BEGIN EC PARAMETERS-----\nBggq\n-----END EC PARAMETERS-----\n\
                    -----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
        let keys = pem_blocks(text, |l| l.ends_with("PRIVATE KEY"));
        assert_eq!(
            keys,
            ["-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----"]
        );
        assert!(pem_blocks("-----BEGIN X-----\nno end", |_| true).is_empty());
    }

    #[test]
    fn a_client_identity_takes_a_pkcs8_key_skips_ec_parameters_and_refuses_an_encrypted_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["agent.lan".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let with_params = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            key.serialize_pem()
        );
        std::fs::write(&key_path, with_params).unwrap();
        identity(&cert_path, &key_path).unwrap();

        std::fs::write(
            &key_path,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let error = identity(&cert_path, &key_path).unwrap_err().to_string();
        assert!(error.contains("the key is encrypted"), "{error}");
        std::fs::write(&key_path, format!("{0}{0}", key.serialize_pem())).unwrap();
        let error = identity(&cert_path, &key_path).unwrap_err().to_string();
        assert!(error.contains("expected one PEM private key"), "{error}");
        // The certificate where the key belongs: no certificate in it.
        let error = identity(&key_path, &key_path).unwrap_err().to_string();
        assert!(error.contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn the_password_file_loses_its_line_end_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cr3t-pass\r\n").unwrap();
        assert_eq!(read_password(&file).unwrap(), "s3cr3t-pass");
        assert_eq!(
            crate::output::redact::redact("error s3cr3t-pass"),
            "error ***"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(read_password(&file)
            .unwrap_err()
            .to_string()
            .contains("is empty"));
        let missing = format!("{:#}", read_password(&dir.path().join("none")).unwrap_err());
        assert!(
            missing.starts_with("reading the etcd password from"),
            "{missing}"
        );
    }
}
