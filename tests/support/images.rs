//! Images of the stack's services, built here from Debian's binaries, because tests cannot pull
//! anything. Each image is `FROM scratch` with the binary at the path of the official image (the
//! entrypoints in `containers.rs` name those paths), the shared libraries `ldd` lists, an
//! `/etc/passwd` and `/etc/group`, `/tmp`, and the data directory owned by the user the official
//! image runs as. They go through our own `Engine::build_image`, so building exercises it too.
//!
//! Also the other pieces tests that run real containers need: a check that skips them when
//! Docker or the binaries are missing, free ports, unique project names and a guard that removes
//! what a project left behind, even when the test panicked.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use monstack::stack::containers::LABEL_PROJECT;
use monstack::stack::docker::Engine;

use super::testsupport;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// The user the official Prometheus, Alertmanager and Pushgateway images run as.
const NOBODY: u32 = 65534;

/// Image tags, `monstack-test/<service>:v<version>-<hash of the build context>`.
#[derive(Debug, Clone)]
pub struct TestImages {
    pub prometheus: String,
    pub alertmanager: String,
    /// The newest Alertmanager (0.33), for the alert tests' second run.
    pub alertmanager_newest: String,
    pub pushgateway: String,
    pub etcd: String,
    pub node_exporter: String,
    pub blackbox: String,
    /// Debian sid's influxd 1.6 (the official image is 1.11; the API monstack uses is the same).
    pub influxdb: String,
}

/// How one service's image is put together.
struct Recipe {
    service: &'static str,
    /// The pinned binary (a name in `.ci/fetch-binaries`' cache, see `testsupport`).
    binary: &'static str,
    /// Where the official image has it.
    entrypoint: &'static str,
    /// Owned by `user`; a fresh named volume mounted here copies that ownership.
    data_dir: &'static str,
    /// Mount point of the rendered configuration, when the service has one.
    config_dir: Option<&'static str>,
    /// Other files the binary reads, from its unpacked package, copied to the same path.
    files: &'static [&'static str],
    /// `None`: root, as the official etcd image.
    user: Option<u32>,
}

const PROMETHEUS: Recipe = Recipe {
    service: "prometheus",
    binary: testsupport::PROMETHEUS,
    entrypoint: "/bin/prometheus",
    data_dir: "/prometheus",
    config_dir: Some("/etc/prometheus"),
    files: &[],
    user: Some(NOBODY),
};

const ALERTMANAGER: Recipe = Recipe {
    service: "alertmanager",
    binary: testsupport::ALERTMANAGER,
    entrypoint: "/bin/alertmanager",
    data_dir: "/alertmanager",
    config_dir: Some("/etc/alertmanager"),
    // Debian's build reads its notification templates from here.
    files: &[
        "/usr/share/prometheus/alertmanager/default.tmpl",
        "/usr/share/prometheus/alertmanager/email.tmpl",
    ],
    user: Some(NOBODY),
};

const ALERTMANAGER_NEWEST: Recipe = Recipe {
    binary: testsupport::ALERTMANAGER_NEWEST,
    ..ALERTMANAGER
};

const PUSHGATEWAY: Recipe = Recipe {
    service: "pushgateway",
    binary: testsupport::PUSHGATEWAY,
    entrypoint: "/bin/pushgateway",
    // The official image's working directory; our spec mounts no volume for it.
    data_dir: "/pushgateway",
    config_dir: None,
    files: &[],
    user: Some(NOBODY),
};

const ETCD: Recipe = Recipe {
    service: "etcd",
    binary: testsupport::ETCD,
    entrypoint: "/usr/local/bin/etcd",
    data_dir: "/etcd-data",
    config_dir: None,
    files: &[],
    user: None,
};

const NODE_EXPORTER: Recipe = Recipe {
    service: "node-exporter",
    binary: testsupport::NODE_EXPORTER,
    entrypoint: "/bin/node_exporter",
    // Nothing is written; the spec mounts the host's root at /host.
    data_dir: "/node_exporter",
    config_dir: None,
    files: &[],
    user: Some(NOBODY),
};

const BLACKBOX: Recipe = Recipe {
    service: "blackbox",
    binary: testsupport::BLACKBOX_EXPORTER,
    entrypoint: "/bin/blackbox_exporter",
    // Where the spec mounts the rendered blackbox.yml.
    data_dir: "/etc/blackbox_exporter",
    config_dir: None,
    files: &[],
    // Root, as the official image: ICMP probes need a raw socket.
    user: None,
};

const INFLUXDB: Recipe = Recipe {
    service: "influxdb",
    binary: testsupport::INFLUXD,
    entrypoint: "/usr/bin/influxd",
    data_dir: "/var/lib/influxdb",
    config_dir: Some("/etc/influxdb"),
    files: &[],
    user: None,
};

const RECIPES: [&Recipe; 8] = [
    &PROMETHEUS,
    &ALERTMANAGER,
    &ALERTMANAGER_NEWEST,
    &PUSHGATEWAY,
    &ETCD,
    &NODE_EXPORTER,
    &BLACKBOX,
    &INFLUXDB,
];

/// Builds the images once per test process; an image already on the engine with the same
/// context hash (an earlier run) is reused without building.
pub async fn test_images(engine: &Engine) -> anyhow::Result<TestImages> {
    static IMAGES: OnceCell<TestImages> = OnceCell::const_new();
    let images = IMAGES
        .get_or_try_init(|| async {
            let [prometheus, alertmanager, alertmanager_newest, pushgateway, etcd, node_exporter, blackbox, influxdb] =
                futures_util::future::try_join_all(RECIPES.map(|r| ensure_image(engine, r)))
                    .await?
                    .try_into()
                    .expect("one tag per recipe");
            anyhow::Ok(TestImages {
                prometheus,
                alertmanager,
                alertmanager_newest,
                pushgateway,
                etcd,
                node_exporter,
                blackbox,
                influxdb,
            })
        })
        .await?;
    Ok(images.clone())
}

async fn ensure_image(engine: &Engine, recipe: &Recipe) -> anyhow::Result<String> {
    let context = build_context(recipe)
        .with_context(|| format!("making the build context of {}", recipe.service))?;
    let hash = hex(&Sha256::digest(&context))[..12].to_string();
    // The version in the tag, as in the official images' (`v0.28-<hash>`): monstack reads
    // features from it (Alertmanager's per-receiver metrics).
    let version = recipe.binary.rsplit('-').next().unwrap_or("0");
    let tag = format!("monstack-test/{}:v{version}-{hash}", recipe.service);
    if engine.image_exists(&tag).await? {
        return Ok(tag);
    }
    let started = Instant::now();
    let mut output = Vec::new();
    let built = engine
        .build_image(context, &tag, &mut |line| output.push(line.to_string()))
        .await;
    if let Err(e) = built {
        bail!("{e:#}\nbuilder output:\n{}", output.join("\n"));
    }
    eprintln!("built {tag} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(tag)
}

/// The build context as an in-memory tar: `rootfs/` (copied to `/`), an empty `data/` (copied
/// to the data directory with its owner: the classic builder's `COPY` keeps no ownership from
/// the archive, only `--chown`) and the `Dockerfile`. Deterministic: sorted entries, fixed
/// times and owners, so its hash names the image.
fn build_context(recipe: &Recipe) -> anyhow::Result<Vec<u8>> {
    // Path in the image -> file on this machine (read through symlinks).
    let binary = pinned_path(recipe.binary)?;
    let root = testsupport::package_root(&binary);
    let binary = binary.to_string_lossy().into_owned();
    let mut files = vec![(recipe.entrypoint.to_string(), binary.clone())];
    for library in shared_libraries(&binary)? {
        files.push((library.clone(), library));
    }
    for file in recipe.files {
        let source = root.join(file.trim_start_matches('/'));
        files.push((file.to_string(), source.to_string_lossy().into_owned()));
    }
    files.sort();
    files.dedup();

    let mut dirs = BTreeSet::from(["etc".to_string()]);
    if let Some(config) = recipe.config_dir {
        dirs.insert(config.trim_start_matches('/').to_string());
    }
    for (target, _) in &files {
        let mut parent = Path::new(target.trim_start_matches('/')).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(dir.to_string_lossy().into_owned());
            parent = dir.parent();
        }
    }

    let mut tar = tar::Builder::new(Vec::new());
    for dir in &dirs {
        append_dir(&mut tar, &format!("rootfs/{dir}"), 0o755)?;
    }
    append_dir(&mut tar, "rootfs/tmp", 0o1777)?;
    append_file(&mut tar, "rootfs/etc/passwd", PASSWD.as_bytes(), 0o644)?;
    append_file(&mut tar, "rootfs/etc/group", GROUP.as_bytes(), 0o644)?;
    for (target, source) in &files {
        let contents = std::fs::read(source).with_context(|| format!("reading {source}"))?;
        let mode = std::fs::metadata(source)
            .with_context(|| format!("reading {source}"))?
            .mode()
            & 0o7777;
        append_file(&mut tar, &format!("rootfs{target}"), &contents, mode)?;
    }
    append_dir(&mut tar, "data", 0o755)?;
    append_file(&mut tar, "Dockerfile", dockerfile(recipe).as_bytes(), 0o644)?;
    tar.into_inner().context("finishing the build context")
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

fn dockerfile(recipe: &Recipe) -> String {
    let mut text = String::from("FROM scratch\nCOPY rootfs/ /\n");
    match recipe.user {
        Some(uid) => {
            text += &format!("COPY --chown={uid}:{uid} data/ {}/\n", recipe.data_dir);
            text += &format!("USER {uid}:{uid}\n");
        }
        None => text += &format!("COPY data/ {}/\n", recipe.data_dir),
    }
    text += &format!("WORKDIR {}\n", recipe.data_dir);
    text += &format!("ENTRYPOINT [\"{}\"]\n", recipe.entrypoint);
    text
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> anyhow::Result<()> {
    let mut header = header(tar::EntryType::Directory, 0, mode);
    tar.append_data(&mut header, format!("{path}/"), std::io::empty())
        .with_context(|| format!("adding {path}/"))
}

fn append_file(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    contents: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = header(tar::EntryType::Regular, contents.len() as u64, mode);
    tar.append_data(&mut header, path, contents)
        .with_context(|| format!("adding {path}"))
}

/// The absolute paths of the shared libraries `binary` loads, the dynamic loader included, as
/// `ldd` lists them. Empty for a static binary.
fn shared_libraries(binary: &str) -> anyhow::Result<Vec<String>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
        if all.contains("not a dynamic executable") || all.contains("statically linked") {
            return Ok(Vec::new());
        }
        bail!("ldd {binary} failed: {all}");
    }
    let mut libraries = Vec::new();
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, `/lib64/ld-linux-x86-64.so.2
        // (0x...)` or `linux-vdso.so.1 (0x...)` (in the kernel, nothing to copy).
        let path = match line.split_once("=>") {
            Some((name, found)) => {
                let path = found.split_whitespace().next().unwrap_or_default();
                if !path.starts_with('/') {
                    bail!("ldd {binary}: {} {}", name.trim(), found.trim());
                }
                path
            }
            None => line.split_whitespace().next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            libraries.push(path.to_string());
        }
    }
    Ok(libraries)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether tests that run containers of the test images can run here. When not, prints
/// `skipping: <reason>` and returns false, or panics with the reason when
/// `MONSTACK_REQUIRE_ALL=1` (CI, where nothing may skip).
pub fn require_docker_and_binaries() -> bool {
    match missing_prerequisite() {
        None => true,
        Some(reason) => testsupport::skip_or_fail(&reason),
    }
}

/// A pinned binary's file, or why it is missing.
fn pinned_path(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let link = testsupport::binary_cache().join("bin").join(name);
    std::fs::canonicalize(&link)
        .with_context(|| format!("{name}: {} (run `bash .ci/fetch-binaries`)", link.display()))
}

fn missing_prerequisite() -> Option<String> {
    for recipe in RECIPES {
        let binary = match pinned_path(recipe.binary) {
            Ok(binary) => binary,
            Err(e) => return Some(format!("{e:#}")),
        };
        let root = testsupport::package_root(&binary);
        for file in recipe.files {
            let path = root.join(file.trim_start_matches('/'));
            if !path.exists() {
                return Some(format!(
                    "{} is missing beside {}",
                    path.display(),
                    recipe.binary
                ));
            }
        }
    }
    if Command::new("ldd").arg("--version").output().is_err() {
        return Some("ldd is missing (Debian package libc-bin)".into());
    }
    // The CLI too: `ProjectGuard` cleans up through it.
    match Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
    {
        Err(e) => Some(format!("cannot run the docker CLI: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "no Docker daemon: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

pub use crate::support::testsupport::free_port;

/// A project name no other test (of this or another process) uses: `<prefix>-<pid>-<n>-<hex>`,
/// made of `[a-z0-9-]`, at most 40 characters.
pub fn unique_project(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = std::collections::hash_map::RandomState::new().hash_one(n) & 0xffff;
    let suffix = format!("-{}-{n}-{random:04x}", std::process::id());
    let prefix: String = prefix
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40usize.saturating_sub(suffix.len()))
        .collect();
    let prefix = if prefix.is_empty() { "t" } else { &prefix };
    format!("{prefix}{suffix}")
}

/// Removes every container, network and volume labelled with the project when dropped, also
/// when the test panicked. Uses the docker CLI: it needs no runtime, and Drop cannot await.
pub struct ProjectGuard {
    project: String,
}

impl ProjectGuard {
    pub fn new(project: &str) -> ProjectGuard {
        ProjectGuard {
            project: project.to_string(),
        }
    }
}

impl Drop for ProjectGuard {
    fn drop(&mut self) {
        let filter = format!("label={LABEL_PROJECT}={}", self.project);
        // Containers first: a network or volume in use cannot be removed.
        for (list, remove) in [
            (&["ps", "-a", "-q"][..], &["rm", "-f", "-v"][..]),
            (&["network", "ls", "-q"][..], &["network", "rm"][..]),
            (&["volume", "ls", "-q"][..], &["volume", "rm", "-f"][..]),
        ] {
            let ids = match docker(&[list, &["--filter", &filter]].concat()) {
                Ok(out) => out,
                Err(e) => {
                    eprintln!("cleaning up project {}: {e}", self.project);
                    continue;
                }
            };
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                if let Err(e) = docker(&[remove, &ids].concat()) {
                    eprintln!("cleaning up project {}: {e}", self.project);
                }
            }
        }
    }
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("running docker {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
