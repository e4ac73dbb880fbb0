//! A three-member etcd 3.5 cluster on free loopback ports, as host processes: client TLS with
//! certificates made for the run (rcgen: a CA, one server certificate for every member, a client
//! certificate; ECDSA P-256, PKCS#8 keys), `--client-cert-auth`, and etcd's auth enabled with a
//! `root` user and a short `--auth-token-ttl`. For the tests and the bench of an existing
//! cluster. Dropping it kills the members; the temporary directory goes with it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use monstack::agent::discovery::{run_bridge, BridgeMetrics};
use monstack::clients::etcd::Etcd;
use monstack::model::{EtcdCluster, EtcdTls};

use super::testsupport::{free_port, pinned, ChildGuard, ETCD};

pub const PASSWORD: &str = "root-pw-for-tests";

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<ChildGuard>,
    starts: u32,
}

pub struct TestCluster {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
    members: Vec<Member>,
    token_ttl_secs: u32,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub password_file: PathBuf,
}

impl TestCluster {
    /// `None` (skipped) when etcd-3.5 or etcdctl-3.5 is not installed.
    pub async fn start(token_ttl_secs: u32) -> Option<TestCluster> {
        let bin = pinned(ETCD)?;
        let etcdctl = pinned("etcdctl-3.5")?;
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key, server_cert, server_key) = certificates(dir.path());
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let members = (0..3)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                child: None,
                starts: 0,
            })
            .collect();
        let mut cluster = TestCluster {
            dir,
            bin,
            members,
            token_ttl_secs,
            ca,
            cert,
            key,
            password_file,
        };
        let _ = (server_cert, server_key);
        for i in 0..3 {
            cluster.spawn(i);
        }
        cluster.wait_healthy().await;
        // The root user and auth, with etcdctl through the member's TLS.
        let ctl = |args: &[&str]| {
            let out = Command::new(&etcdctl)
                .arg(format!("--endpoints={}", cluster.endpoints()[0]))
                .arg(format!("--cacert={}", cluster.ca.display()))
                .arg(format!("--cert={}", cluster.cert.display()))
                .arg(format!("--key={}", cluster.key.display()))
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "etcdctl {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ctl(&["user", "add", &format!("root:{PASSWORD}")]);
        ctl(&["auth", "enable"]);
        Some(cluster)
    }

    fn spawn(&mut self, i: usize) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect();
        let dir = self.dir.path().to_path_buf();
        let m = &mut self.members[i];
        let client_url = format!("https://127.0.0.1:{}", m.client_port);
        let peer_url = format!("http://127.0.0.1:{}", m.peer_port);
        let mut command = Command::new(&self.bin);
        command
            .arg(format!("--name={}", m.name))
            .arg(format!("--data-dir={}", dir.join(&m.name).display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster={}", initial.join(",")))
            .arg("--initial-cluster-token=monstack-test")
            .arg(format!("--cert-file={}", dir.join("server.pem").display()))
            .arg(format!(
                "--key-file={}",
                dir.join("server-key.pem").display()
            ))
            .arg(format!(
                "--trusted-ca-file={}",
                dir.join("ca.pem").display()
            ))
            .arg("--client-cert-auth")
            .arg("--auth-token=simple")
            .arg(format!("--auth-token-ttl={}", self.token_ttl_secs))
            .arg("--experimental-watch-progress-notify-interval=1s")
            .arg("--heartbeat-interval=50")
            .arg("--election-timeout=500");
        let log = dir.join(format!("{}.{}.log", m.name, m.starts));
        m.starts += 1;
        m.child = Some(ChildGuard::spawn(&mut command, &log));
    }

    /// The members' client URLs, in order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("https://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The cluster as the manifest would describe it, its endpoints in `order`.
    pub fn settings(&self, order: &[usize]) -> EtcdCluster {
        let endpoints = self.endpoints();
        EtcdCluster {
            endpoints: order.iter().map(|&i| endpoints[i].clone()).collect(),
            tls: Some(EtcdTls {
                ca: Some(self.ca.clone()),
                cert: Some(self.cert.clone()),
                key: Some(self.key.clone()),
            }),
            username: Some("root".into()),
            password_file: Some(self.password_file.clone()),
        }
    }

    /// A client of the whole cluster, its endpoints in `order`.
    pub fn client(&self, order: &[usize]) -> Etcd {
        Etcd::connect(&self.settings(order)).unwrap()
    }

    /// The index of the member at `url`.
    pub fn member_at(&self, url: &str) -> usize {
        self.endpoints().iter().position(|e| e == url).unwrap()
    }

    /// Kills member `i` (and waits until it is gone).
    pub fn kill(&mut self, i: usize) {
        self.members[i].child = None;
    }

    /// Starts member `i` again on its data; waits until the cluster is healthy.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy().await;
    }

    /// Waits until every running member answers `/health` with `"health":"true"`.
    async fn wait_healthy(&self) {
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap(),
            )
            .identity(monstack::clients::etcd::identity(&self.cert, &self.key).unwrap())
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        for (m, url) in self.members.iter().zip(self.endpoints()) {
            if m.child.is_none() {
                continue;
            }
            loop {
                let healthy = match client.get(format!("{url}/health")).send().await {
                    Ok(r) => r.text().await.unwrap_or_default().contains("\"true\""),
                    Err(_) => false,
                };
                if healthy {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "etcd member {} not healthy; logs:\n{}",
                    m.name,
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// The end of every member's log, to explain a failure.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for m in &self.members {
            if let Some(child) = &m.child {
                let log = child.log();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                text.push_str(&format!("--- {}\n", m.name));
                for line in tail.into_iter().rev() {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        text
    }
}

/// Writes ca.pem, client.pem, client-key.pem, server.pem, server-key.pem into `dir` (keys
/// 0600) and returns their paths.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let write = |name: &str, text: &str, secret: bool| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        if secret {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "monstack test etcd CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    // etcd 3.5 refuses a request to its JSON gateway whose client certificate has a
    // CommonName when --client-cert-auth is on (the CN would otherwise pass for a user): the
    // agent's certificate names its organization only.
    let leaf = |cn: Option<&str>, sans: Vec<String>, usage: Vec<ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name = DistinguishedName::new();
        match cn {
            Some(cn) => params.distinguished_name.push(DnType::CommonName, cn),
            None => params
                .distinguished_name
                .push(DnType::OrganizationName, "monstack agent"),
        }
        params.extended_key_usages = usage;
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf(
        Some("etcd-member"),
        vec!["127.0.0.1".into(), "localhost".into()],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    );
    let (client, client_key) = leaf(None, Vec::new(), vec![ExtendedKeyUsagePurpose::ClientAuth]);
    (
        write("ca.pem", &ca_cert.pem(), false),
        write("client.pem", &client, false),
        write("client-key.pem", &client_key, true),
        write("server.pem", &server, false),
        write("server-key.pem", &server_key, true),
    )
}

/// The agent's bridge over an etcd client, writing the target files of `/service/` into a
/// directory, until stopped.
pub struct RunningBridge {
    pub metrics: std::sync::Arc<BridgeMetrics>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningBridge {
    pub fn start(etcd: Etcd, dir: PathBuf) -> RunningBridge {
        let metrics = std::sync::Arc::new(BridgeMetrics::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_bridge(
            etcd,
            "/service/",
            dir,
            metrics.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        RunningBridge {
            metrics,
            stop,
            task,
        }
    }

    /// Asks the bridge to stop and waits for it; `Err` when its task panicked.
    pub async fn stop(self) -> Result<(), tokio::task::JoinError> {
        let _ = self.stop.send(());
        self.task.await
    }
}
