//! `monstack up`, `down`, `status`, `logs` against the real Docker Engine, with images built
//! here from Debian's binaries (Grafana cannot be obtained: these stacks run `grafana: false`;
//! its container spec and API calls have their own unit and wiremock tests).

use std::process::Command;
use std::time::{Duration, Instant};

use monstack::stack::docker::Engine;

use crate::support::images::{
    free_port, require_docker_and_binaries, test_images, unique_project, ProjectGuard, TestImages,
};
use crate::support::testsupport::{answers, eventually};
use crate::support::{Project, Run};

struct Ports {
    prometheus: u16,
    etcd: u16,
    alertmanager: u16,
    pushgateway: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            prometheus: free_port(),
            etcd: free_port(),
            alertmanager: free_port(),
            pushgateway: free_port(),
        }
    }
}

fn manifest(project: &str, images: &TestImages, ports: &Ports, extra: &str) -> String {
    format!(
        "project: {project}\n\
         prometheus: {{image: {}, port: {}, scrape_interval: 2s, evaluation_interval: 2s}}\n\
         grafana: false\n\
         etcd: {{image: {}, port: {}}}\n\
         alertmanager: {{image: {}, port: {}}}\n\
         pushgateway: {{image: {}, port: {}}}\n\
         {extra}",
        images.prometheus,
        ports.prometheus,
        images.etcd,
        ports.etcd,
        images.alertmanager,
        ports.alertmanager,
        images.pushgateway,
        ports.pushgateway
    )
}

const ALERT_A: &str =
    "alerts:\n  - name: StackSelfCheck\n    expr: up{job=\"prometheus\"} == 0\n    for: 1m\n";
const ALERT_B: &str = "alerts:\n  - name: StackSelfCheckRenamed\n    expr: up{job=\"prometheus\"} == 0\n    for: 1m\n";

async fn images() -> Option<TestImages> {
    if !require_docker_and_binaries() {
        return None;
    }
    let engine = Engine::connect().await.expect("connecting to Docker");
    Some(
        test_images(&engine)
            .await
            .expect("building the test images"),
    )
}

/// Container ids by name for a project.
fn container_ids(project: &str) -> Vec<(String, String)> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=io.monstack.project={project}"),
            "--format",
            "{{.Names}} {{.ID}}",
        ])
        .output()
        .unwrap();
    let mut ids: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(n, i)| (n.to_string(), i.to_string()))
        })
        .collect();
    ids.sort();
    ids
}

fn id_of(ids: &[(String, String)], service: &str) -> String {
    ids.iter()
        .find(|(n, _)| n.ends_with(&format!("-{service}")))
        .map(|(_, i)| i.clone())
        .unwrap_or_default()
}

fn volumes(project: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=io.monstack.project={project}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

async fn prometheus_query(port: u16, query: &str, time: Option<f64>) -> serde_json::Value {
    let client = reqwest::Client::new();
    let mut params = vec![("query".to_string(), query.to_string())];
    if let Some(t) = time {
        params.push(("time".to_string(), format!("{t:.3}")));
    }
    client
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&params)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn rule_names(port: u16) -> Vec<String> {
    let body: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/rules"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names = Vec::new();
    // The manifest's own alerts only: the built-in pack is its own group.
    for group in body["data"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|g| g["name"] == "monstack")
    {
        for rule in group["rules"].as_array().cloned().unwrap_or_default() {
            names.push(rule["name"].as_str().unwrap_or_default().to_string());
        }
    }
    names
}

fn up(project: &Project) -> Run {
    project.run(&["up", "--timeout", "120"])
}

#[tokio::test(flavor = "multi_thread")]
async fn up_converges_changes_precisely_and_down_keeps_the_data() {
    let Some(images) = images().await else { return };
    let name = unique_project("up-life");
    let _guard = ProjectGuard::new(&name);
    let ports = Ports::new();
    let project = Project::new().manifest(&manifest(
        &name,
        &images,
        &ports,
        &format!("targets:\n  - job: pg\n    targets: [\"pushgateway:9091\"]\n{ALERT_A}"),
    ));

    // Cold up: everything created and ready.
    let cold = up(&project);
    cold.success();
    for service in ["prometheus", "etcd", "alertmanager", "pushgateway"] {
        assert!(
            cold.stdout.contains(service),
            "table lacks {service}:\n{}",
            cold.stdout
        );
    }
    assert!(cold
        .stdout
        .contains(&format!("http://127.0.0.1:{}", ports.prometheus)));
    let first = container_ids(&name);
    assert_eq!(first.len(), 4, "{first:?}");
    // Published on loopback only.
    let inspect = Command::new("docker")
        .args(["port", &format!("monstack-{name}-prometheus")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&inspect.stdout)
        .contains(&format!("127.0.0.1:{}", ports.prometheus)));

    // A second up changes nothing.
    let again = up(&project);
    again.success();
    assert!(
        again.stderr.contains("every service is up to date"),
        "{}",
        again.stderr
    );
    assert_eq!(container_ids(&name), first);

    // A rules change: Prometheus reloads, no container is replaced, the new rule is live.
    std::fs::write(
        project.path().join("monstack.yaml"),
        manifest(
            &name,
            &images,
            &ports,
            &format!("targets:\n  - job: pg\n    targets: [\"pushgateway:9091\"]\n{ALERT_B}"),
        ),
    )
    .unwrap();
    let reload = up(&project);
    reload.success();
    assert!(
        reload.stderr.contains("reload   prometheus"),
        "{}",
        reload.stderr
    );
    assert_eq!(
        container_ids(&name),
        first,
        "a reload must not recreate anything"
    );
    assert_eq!(
        rule_names(ports.prometheus).await,
        ["StackSelfCheckRenamed"]
    );
    let settled = up(&project);
    settled.success();
    assert!(
        settled.stderr.contains("every service is up to date"),
        "after a reload, nothing is left to do: {}",
        settled.stderr
    );

    // Samples written before `down` survive it.
    let port = ports.prometheus;
    eventually(
        "Prometheus has scraped itself",
        Duration::from_secs(60),
        || async move {
            prometheus_query(port, "up{job=\"prometheus\"}", None).await["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        },
    )
    .await;
    let before_down = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    // A container setting (retention) recreates exactly Prometheus.
    let with_retention = manifest(
        &name,
        &images,
        &ports,
        &format!("targets:\n  - job: pg\n    targets: [\"pushgateway:9091\"]\n{ALERT_B}"),
    )
    .replace(
        "scrape_interval: 2s,",
        "scrape_interval: 2s, retention: 30d,",
    );
    std::fs::write(project.path().join("monstack.yaml"), &with_retention).unwrap();
    let recreate = up(&project);
    recreate.success();
    let after = container_ids(&name);
    assert_ne!(id_of(&after, "prometheus"), id_of(&first, "prometheus"));
    for service in ["etcd", "alertmanager", "pushgateway"] {
        assert_eq!(
            id_of(&after, service),
            id_of(&first, service),
            "{service} must be kept"
        );
    }

    // Removing a service from the manifest removes its container.
    std::fs::write(
        project.path().join("monstack.yaml"),
        with_retention
            .replace(
                &format!(
                    "pushgateway: {{image: {}, port: {}}}\n",
                    images.pushgateway, ports.pushgateway
                ),
                "",
            )
            .replace(
                "  - job: pg\n    targets: [\"pushgateway:9091\"]\n",
                "  - job: pg\n    targets: []\n",
            ),
    )
    .unwrap();
    up(&project).success();
    assert!(id_of(&container_ids(&name), "pushgateway").is_empty());

    // status shows every service ready and, once Prometheus has scraped, the target summary.
    let path = project.path();
    eventually(
        "status reports the prometheus job up",
        Duration::from_secs(60),
        || {
            let path = path.clone();
            async move {
                let out = Command::new(env!("CARGO_BIN_EXE_monstack"))
                    .args(["status", "--json"])
                    .current_dir(&path)
                    .output()
                    .unwrap();
                let Ok(report) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
                    return false;
                };
                let all_ready = report["services"]
                    .as_array()
                    .is_some_and(|s| s.iter().all(|s| s["health"] == "ready"));
                let up = report["targets"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|j| j["job"] == "prometheus" && j["up"] == 1));
                all_ready && up
            }
        },
    )
    .await;
    let table = project.run(&["status"]);
    table.success();
    assert!(
        table.stdout.contains("SERVICE") && table.stdout.contains("JOB"),
        "{}",
        table.stdout
    );

    // logs: prefixed by service name.
    let logs = project.run(&["logs", "prometheus", "--tail", "5"]);
    logs.success();
    assert!(
        logs.stdout.lines().all(|l| l.starts_with("prometheus | ")),
        "{}",
        logs.stdout
    );
    assert!(!logs.stdout.is_empty());

    // down keeps the data; a new up still has the old samples.
    project.run(&["down"]).success();
    assert!(container_ids(&name).is_empty());
    assert_eq!(
        volumes(&name).len(),
        3,
        "prometheus, etcd and alertmanager data stay"
    );
    up(&project).success();
    let old = prometheus_query(
        ports.prometheus,
        "up{job=\"prometheus\"}",
        Some(before_down),
    )
    .await;
    assert!(
        old["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "samples from before `down` are gone: {old}"
    );

    project.run(&["down", "--volumes"]).success();
    assert!(volumes(&name).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_configuration_change_is_reported_and_the_old_one_keeps_running() {
    let Some(images) = images().await else { return };
    let name = unique_project("up-badcfg");
    let _guard = ProjectGuard::new(&name);
    let ports = Ports::new();
    let project = Project::new().manifest(&manifest(&name, &images, &ports, ALERT_A));
    up(&project).success();
    // Nobody on the host can reload or stop Prometheus over HTTP (monstack sends SIGHUP
    // through the engine).
    let client = reqwest::Client::new();
    for endpoint in ["/-/reload", "/-/quit"] {
        let answer = client
            .post(format!("http://127.0.0.1:{}{endpoint}", ports.prometheus))
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            reqwest::StatusCode::FORBIDDEN,
            "{endpoint}"
        );
    }
    // Invalid PromQL is refused before anything changes (exit 2), as promtool 3.5 would.
    let bad_promql = ALERT_A.replace("== 0", "> > 0");
    std::fs::write(
        project.path().join("monstack.yaml"),
        manifest(&name, &images, &ports, &bad_promql),
    )
    .unwrap();
    let run = up(&project);
    run.code(2);
    assert!(run.stderr.contains("is not valid PromQL"), "{}", run.stderr);
    assert_eq!(rule_names(ports.prometheus).await, ["StackSelfCheck"]);
    // A broken annotation template passes our checks; Prometheus refuses it at reload.
    let bad = format!("{ALERT_A}    summary: \"{{{{ $labels.job \"\n");
    std::fs::write(
        project.path().join("monstack.yaml"),
        manifest(&name, &images, &ports, &bad),
    )
    .unwrap();
    let run = up(&project);
    run.code(1);
    assert!(
        run.stderr
            .contains("Prometheus rejected the new configuration"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("keeps running the previous one"),
        "{}",
        run.stderr
    );
    // In Prometheus' words, read from its log: the rule, the annotation, the template error.
    assert!(
        run.stderr.contains("annotation \"summary\"") && run.stderr.contains("unclosed action"),
        "{}",
        run.stderr
    );
    assert_eq!(
        rule_names(ports.prometheus).await,
        ["StackSelfCheck"],
        "the old rules must still be loaded"
    );
    // Not remembered as applied: fixing it reloads again.
    std::fs::write(
        project.path().join("monstack.yaml"),
        manifest(&name, &images, &ports, ALERT_B),
    )
    .unwrap();
    up(&project).success();
    assert_eq!(
        rule_names(ports.prometheus).await,
        ["StackSelfCheckRenamed"]
    );

    // Reloaded by signals through the engine (which counts any signal as a stop by hand), it
    // is still restarted when it crashes.
    let container = format!("monstack-{name}-prometheus");
    let engine = Engine::connect().await.unwrap();
    let before = engine.state(&container).await.unwrap().unwrap();
    if !crash(&container) {
        return;
    }
    eventually(
        "the engine to restart the crashed Prometheus",
        Duration::from_secs(30),
        || async {
            let now = engine.state(&container).await.unwrap().unwrap();
            now.running && now.restart_count > before.restart_count
        },
    )
    .await;
    eventually(
        "the restarted Prometheus to answer",
        Duration::from_secs(30),
        || answers(format!("http://127.0.0.1:{}/-/ready", ports.prometheus)),
    )
    .await;
    assert_eq!(
        rule_names(ports.prometheus).await,
        ["StackSelfCheckRenamed"]
    );
}

/// Kills a container's process from the host, as a crash or the OOM killer would (not through
/// the engine, which would count it as a stop by hand). Needs root or `sudo -n`.
fn crash(container: &str) -> bool {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", container])
        .output()
        .unwrap();
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(pid > 0, "{container} is not running");
    // SAFETY: kill(2) has no memory effects.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
        return true;
    }
    let sudo = Command::new("sudo")
        .args(["-n", "kill", "-KILL", &pid.to_string()])
        .status();
    if sudo.is_ok_and(|s| s.success()) {
        return true;
    }
    crate::support::testsupport::skip_or_fail(
        "crashing a container's process from the host needs root or passwordless sudo",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_before_any_change_leave_the_stack_as_it_was() {
    let Some(images) = images().await else { return };

    // Daemon unreachable.
    let project = Project::new()
        .manifest("project: nodaemon\ngrafana: false\n")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let run = project.run(&["up"]);
    run.code(1);
    assert!(
        run.stderr
            .contains("cannot reach the Docker daemon at unix:///nonexistent/docker.sock"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);

    // An image that cannot be pulled: nothing is created.
    let name = unique_project("up-nopull");
    let _guard = ProjectGuard::new(&name);
    let ports = Ports::new();
    let text =
        manifest(&name, &images, &ports, "").replace(&images.etcd, "monstack-test/no-such-image:0");
    let project = Project::new().manifest(&text);
    let run = project.run(&["up"]);
    run.code(1);
    assert!(
        run.stderr.contains("pulling monstack-test/no-such-image:0"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert!(container_ids(&name).is_empty(), "nothing may be created");
    assert!(
        !project.exists(".monstack/prometheus/prometheus.yml"),
        "nothing may be written"
    );

    // A port taken by another program: named, exit 2, nothing created.
    let name = unique_project("up-port");
    let _guard2 = ProjectGuard::new(&name);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut ports = Ports::new();
    ports.alertmanager = taken.local_addr().unwrap().port();
    let project = Project::new().manifest(&manifest(&name, &images, &ports, ""));
    let run = project.run(&["up"]);
    run.code(2);
    assert!(
        run.stderr.contains(&format!(
            "port {} for alertmanager is already in use by another program",
            ports.alertmanager
        )),
        "{}",
        run.stderr
    );
    assert!(container_ids(&name).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_exits_during_start_fails_with_its_logs() {
    let Some(images) = images().await else { return };
    let engine = Engine::connect().await.unwrap();
    // An image whose /bin/prometheus is really the Pushgateway: it refuses Prometheus' flags.
    let crash = format!(
        "monstack-test/crash:{}",
        images.pushgateway.rsplit(':').next().unwrap()
    );
    if !engine.image_exists(&crash).await.unwrap() {
        let pushgateway =
            crate::support::testsupport::pinned(crate::support::testsupport::PUSHGATEWAY)
                .expect("the images were built from it");
        let binary = std::fs::read(pushgateway).unwrap();
        let mut context = tar::Builder::new(Vec::new());
        let dockerfile = format!(
            "FROM {}\nCOPY prometheus /bin/prometheus\n",
            images.pushgateway
        );
        for (path, data, mode) in [
            ("Dockerfile", dockerfile.as_bytes(), 0o644),
            ("prometheus", &binary[..], 0o755),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            context.append_data(&mut header, path, data).unwrap();
        }
        engine
            .build_image(context.into_inner().unwrap(), &crash, &mut |_| {})
            .await
            .unwrap();
    }
    let name = unique_project("up-crash");
    let _guard = ProjectGuard::new(&name);
    let ports = Ports::new();
    let project = Project::new()
        .manifest(&manifest(&name, &images, &ports, "").replace(&images.prometheus, &crash));
    let run = project.run(&["up", "--timeout", "60"]);
    run.code(1);
    // Exited, or already brought back by the restart policy: either way with its exit code.
    assert!(
        run.stderr.contains("not ready: prometheus (the container"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("(exit code 1)"), "{}", run.stderr);
    assert!(
        run.stderr.contains("log lines of monstack-"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("unknown long flag"),
        "the service's own complaint is shown: {}",
        run.stderr
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_in_the_middle_of_up_and_the_next_up_converges() {
    let Some(images) = images().await else { return };
    let name = unique_project("up-sigint");
    let _guard = ProjectGuard::new(&name);
    let ports = Ports::new();
    let project = Project::new().manifest(&manifest(&name, &images, &ports, ""));
    let child = Command::new(env!("CARGO_BIN_EXE_monstack"))
        .args(["up", "--timeout", "120"])
        .current_dir(project.path())
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once at least one container exists, while others are being made or waited on.
    let deadline = Instant::now() + Duration::from_secs(60);
    while container_ids(&name).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("run `monstack up` again"), "{stderr}");
    let run = up(&project);
    run.success();
    assert_eq!(container_ids(&name).len(), 4);
}

/// A container that already has the name `up` is about to give one of its own, and is not this
/// project's, is left alone: `up` says whose name it is and changes nothing of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_container_of_someone_else_with_the_services_name_is_not_replaced() {
    let Some(images) = images().await else { return };
    let name = unique_project("name-taken");
    let other = unique_project("name-owner");
    let _guard = ProjectGuard::new(&name);
    let _other_guard = ProjectGuard::new(&other);
    let ports = Ports::new();
    let taken = format!("monstack-{name}-pushgateway");
    let made = Command::new("docker")
        .args([
            "create",
            "--name",
            &taken,
            "--label",
            &format!("io.monstack.project={other}"),
            &images.pushgateway,
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let foreign_id = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let project = Project::new().manifest(&manifest(&name, &images, &ports, ""));
    let run = up(&project);
    run.code(1);
    assert!(
        run.stderr.contains(&taken) && run.stderr.contains("is not this project's"),
        "{}",
        run.stderr
    );
    let still = Command::new("docker")
        .args(["inspect", "--format", "{{.Id}}", &taken])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&still.stdout).trim(), foreign_id);
}

/// A first `up` whose Grafana never gets ready (a stand-in image: Grafana cannot be had here)
/// still keeps the generated password, and the next `up` gives Grafana the same one: the
/// data volume took the first.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_first_up_keeps_the_generated_grafana_password() {
    let Some(images) = images().await else { return };
    let name = unique_project("grafana-pw");
    let _guard = ProjectGuard::new(&name);
    let ports = Ports::new();
    let text = format!(
        "project: {name}\n\
         prometheus: {{image: {}, port: {}}}\n\
         grafana: {{image: {}, port: {}}}\n\
         etcd: false\n",
        images.prometheus,
        ports.prometheus,
        images.pushgateway,
        free_port(),
    );
    let project = Project::new().manifest(&text);
    let first = project.run(&["up", "--timeout", "3"]);
    first.code(1);
    assert!(first.stderr.contains("not ready"), "{}", first.stderr);
    let kept = project.read(".monstack/secrets/grafana-admin-password");
    assert!(kept.trim().len() >= 20, "{kept:?}");
    let second = project.run(&["up", "--timeout", "3"]);
    second.code(1);
    assert_eq!(
        project.read(".monstack/secrets/grafana-admin-password"),
        kept
    );
    // What the container got is what was kept.
    let env = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{range .Config.Env}}{{println .}}{{end}}",
            &format!("monstack-{name}-grafana"),
        ])
        .output()
        .unwrap();
    let env = String::from_utf8_lossy(&env.stdout);
    assert!(
        env.lines()
            .any(|l| l == format!("GF_SECURITY_ADMIN_PASSWORD={}", kept.trim())),
        "the container's password is not the kept one"
    );
    for run in [&first, &second] {
        assert!(!run.stdout.contains(kept.trim()) && !run.stderr.contains(kept.trim()));
    }
}

/// A host program listening on 127.0.0.1 at a port a service will publish: `up` says so with
/// exit 2 before creating anything.
#[tokio::test(flavor = "multi_thread")]
async fn a_port_held_by_a_loopback_listener_fails_before_any_change() {
    let Some(images) = images().await else { return };
    let name = unique_project("port-lo");
    let _guard = ProjectGuard::new(&name);
    let ports = Ports::new();
    let holder = std::net::TcpListener::bind(("127.0.0.1", ports.alertmanager)).unwrap();
    let project = Project::new().manifest(&manifest(&name, &images, &ports, ""));
    let run = project.run(&["up", "--timeout", "30"]);
    run.code(2);
    assert!(
        run.stderr.contains(&format!(
            "port {} for alertmanager is already in use by another program",
            ports.alertmanager
        )),
        "{}",
        run.stderr
    );
    assert!(
        container_ids(&name).is_empty(),
        "{:?}",
        container_ids(&name)
    );
    assert!(volumes(&name).is_empty());
    assert!(!project.exists(".monstack/prometheus/prometheus.yml"));
    drop(holder);
}

/// The same tag naming a new image (pulled with `--pull always`, or rebuilt): the container is
/// recreated on the next `up`, though nothing in the manifest changed.
#[tokio::test(flavor = "multi_thread")]
async fn a_tag_that_names_a_new_image_recreates_its_container() {
    let Some(images) = images().await else { return };
    let engine = Engine::connect().await.unwrap();
    let name = unique_project("retag");
    let _guard = ProjectGuard::new(&name);
    let tag = format!("monstack-test/retag:{name}");
    let build = |label: &str| {
        let dockerfile = format!(
            "FROM {}\nLABEL monstack.test.build={label} monstack.test.project={name}\n",
            images.pushgateway
        );
        let mut context = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        context
            .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
            .unwrap();
        context.into_inner().unwrap()
    };
    engine
        .build_image(build("one"), &tag, &mut |_| {})
        .await
        .unwrap();
    let ports = Ports::new();
    let text = format!(
        "project: {name}\nprometheus: {{image: {}, port: {}}}\ngrafana: false\netcd: false\npushgateway: {{image: \"{tag}\", port: {}}}\n",
        images.prometheus, ports.prometheus, ports.pushgateway
    );
    let project = Project::new().manifest(&text);
    project.run(&["up", "--pull", "never"]).success();
    let before = container_ids(&name);
    engine
        .build_image(build("two"), &tag, &mut |_| {})
        .await
        .unwrap();
    let run = project.run(&["up", "--pull", "never"]);
    run.success();
    assert!(
        run.stderr.contains(&format!("its image {tag} changed")),
        "{}",
        run.stderr
    );
    let after = container_ids(&name);
    assert_ne!(id_of(&before, "pushgateway"), id_of(&after, "pushgateway"));
    assert_eq!(id_of(&before, "prometheus"), id_of(&after, "prometheus"));
    // And the next `up` leaves it alone.
    let again = project.run(&["up", "--pull", "never"]);
    again.success();
    assert_eq!(container_ids(&name), after);
    drop(_guard);
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &tag])
        .output();
    let _ = std::process::Command::new("docker")
        .args(["image", "prune", "-f", "--filter"])
        .arg(format!("label=monstack.test.project={name}"))
        .output();
}

/// Prometheus' `prometheus_config_last_reload_success_timestamp_seconds`: changes on each
/// reload.
async fn last_reload(port: u16) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("prometheus_config_last_reload_success_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no reload timestamp in Prometheus' metrics"))
}

/// After a change, every further `up` is a no-op: no reload (state.json is not pruned), and
/// `.monstack/` deleted or edited by hand under the running stack is repaired.
#[tokio::test(flavor = "multi_thread")]
async fn no_op_ups_do_not_reload_and_a_damaged_monstack_dir_is_repaired() {
    let Some(images) = images().await else { return };
    let name = unique_project("repair");
    let _guard = ProjectGuard::new(&name);
    let ports = Ports::new();
    let text = |alert: &str| {
        format!(
            "project: {name}\nprometheus: {{image: {}, port: {}, scrape_interval: 1s}}\ngrafana: false\netcd: false\ntargets:\n  - job: api\n    targets: [\"127.0.0.1:9\"]\n{alert}",
            images.prometheus, ports.prometheus
        )
    };
    let project = Project::new().manifest(&text(ALERT_A));
    project.run(&["up"]).success();
    std::fs::write(project.path().join("monstack.yaml"), text(ALERT_B)).unwrap();
    project.run(&["up"]).success();
    let reloaded = last_reload(ports.prometheus).await;
    for _ in 0..5 {
        let run = project.run(&["up"]);
        run.success();
        assert!(
            run.stderr.contains("every service is up to date"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        last_reload(ports.prometheus).await,
        reloaded,
        "a no-op up reloaded"
    );

    // A hand-edited prometheus.yml is put back and reloaded.
    let config = project.path().join(".monstack/prometheus/prometheus.yml");
    let rendered = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        rendered.replace("job_name: api", "job_name: api-edited"),
    )
    .unwrap();
    let run = project.run(&["up"]);
    run.success();
    assert!(
        run.stderr
            .contains("repaired .monstack/prometheus/prometheus.yml"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), rendered);

    // `.monstack/` deleted: the container mounts a directory that is gone; `up` recreates it,
    // and a target added afterwards reaches Prometheus.
    let before = container_ids(&name);
    std::fs::remove_dir_all(project.path().join(".monstack")).unwrap();
    let run = project.run(&["up"]);
    run.success();
    assert!(
        run.stderr.contains("was deleted or replaced"),
        "{}",
        run.stderr
    );
    assert_ne!(
        id_of(&before, "prometheus"),
        id_of(&container_ids(&name), "prometheus")
    );
    let added = project.run(&["add-target", "api", "127.0.0.1:19", "--wait", "30s"]);
    added.success();
    assert!(added.stdout.contains("127.0.0.1:19") || added.stderr.contains("127.0.0.1:19"));
    let targets: serde_json::Value = reqwest::get(format!(
        "http://127.0.0.1:{}/api/v1/targets",
        ports.prometheus
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(
        targets.to_string().contains("127.0.0.1:19"),
        "Prometheus does not see the new target: {targets}"
    );
    // And the repaired stack is a no-op again.
    let run = project.run(&["up"]);
    assert!(
        run.stderr.contains("every service is up to date"),
        "{}",
        run.stderr
    );
}

/// Without a manifest, `up` uses the built-in starter; when its pinned images cannot be
/// pulled, the hint does not send the user to a monstack.yaml that does not exist.
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_failure_with_the_starter_manifest_points_at_init() {
    let Some(_images) = images().await else {
        return;
    };
    let name = unique_project("starter");
    let _guard = ProjectGuard::new(&name);
    let project = Project::in_dir_named(&name);
    let run = project.run(&["up", "--timeout", "5"]);
    run.code(1);
    assert!(
        run.stderr.contains("using the built-in starter manifest"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the built-in starter manifest pins these images"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("monstack init"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("check the image names in the manifest"),
        "{}",
        run.stderr
    );
    assert!(container_ids(&name).is_empty());
}
