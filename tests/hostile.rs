//! A bad day at a user's desk: commands run twice at once, interrupted, given hostile input.
//! Each test names the promise it holds (README, "Guarantees").

use crate::support::testsupport::free_port;
use crate::support::Project;

/// A manifest whose Prometheus port nothing listens on: the editing commands find no running
/// stack and only edit files.
fn offline_manifest() -> String {
    format!(
        "project: hostile\nprometheus:\n  port: {}\ntargets:\n  - job: api\n    targets: [\"host.docker.internal:8080\"]\n",
        free_port()
    )
}

#[test]
fn two_add_targets_at_once_lose_no_edit() {
    let project = Project::new().manifest(&offline_manifest());
    let addrs: Vec<String> = (0..8)
        .map(|i| format!("host.docker.internal:{}", 9100 + i))
        .collect();
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = addrs
            .iter()
            .map(|addr| {
                let project = &project;
                scope.spawn(move || project.run(&["add-target", "api", addr]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        run.success();
    }
    let manifest = project.read("monstack.yaml");
    let targets = project.read(".monstack/prometheus/targets/api.json");
    for addr in &addrs {
        assert!(manifest.contains(addr.as_str()), "{addr} lost:\n{manifest}");
        assert!(
            targets.contains(addr.as_str()),
            "{addr} not in the target file:\n{targets}"
        );
    }
    // The manifest still validates and lists each target once.
    project.run(&["validate"]).success();
    for addr in &addrs {
        assert_eq!(
            manifest.matches(addr.as_str()).count(),
            1,
            "{addr}:\n{manifest}"
        );
    }
}

#[test]
fn a_command_that_changes_the_project_waits_for_the_one_holding_it() {
    let project = Project::new()
        .manifest(&offline_manifest())
        .env("MONSTACK_LOCK_TIMEOUT", "1");
    // Hold the lock from outside, as a running `up` would: the manifest's directory.
    let lock = std::fs::File::open(project.path()).unwrap();
    flock(&lock);
    let pid = std::process::id();
    let run = project.run(&["render"]);
    run.code(1);
    assert!(
        run.stderr
            .contains(&format!("waiting for another monstack, pid {pid},")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("MONSTACK_LOCK_TIMEOUT"),
        "{}",
        run.stderr
    );
    // Reading commands never wait.
    project.run(&["validate"]).success();
    drop(lock);
    project.run(&["render"]).success();
}

fn flock(file: &std::fs::File) {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

#[test]
fn render_keeps_what_up_applied() {
    // Pruning state.json made every second no-op `up` after a change reload again.
    let project = Project::new().manifest(&offline_manifest());
    project.run(&["render"]).success();
    std::fs::write(
        project.path().join(".monstack/state.json"),
        "{\"applied\": {\"abc\": \"123\"}}\n",
    )
    .unwrap();
    project.run(&["render"]).success();
    assert!(project.exists(".monstack/state.json"));
}

/// `down --volumes` next to another project: a broken manifest that names no project in a
/// directory named like another project once removed that project's containers and data.
#[tokio::test(flavor = "multi_thread")]
async fn down_never_guesses_whose_volumes_to_remove() {
    use crate::support::images::{require_docker_and_binaries, unique_project, ProjectGuard};
    if !require_docker_and_binaries() {
        return;
    }
    let engine = monstack::stack::docker::Engine::connect().await.unwrap();
    let other = unique_project("other");
    let _guard = ProjectGuard::new(&other);
    let volume = format!("monstack-{other}-prometheus-data");
    engine
        .ensure_volume(&volume, &other, "/srv/the-other-project")
        .await
        .unwrap();
    let volumes = || async { engine.project_volumes(&other).await.unwrap() };

    // 1. A broken manifest naming no project, in a directory named like the other project.
    let here = Project::in_dir_named(&other).manifest("targets: [\n");
    let run = here.run(&["down", "--volumes"]);
    run.code(2);
    assert!(run.stderr.contains("names no project"), "{}", run.stderr);
    assert!(run.stderr.contains("--project NAME"), "{}", run.stderr);
    assert_eq!(volumes().await, [volume.as_str()]);

    // 2. A broken manifest that does name it: the project is proven, but the volume belongs to
    //    another directory and stays.
    let named = Project::new().manifest(&format!("project: {other}\ntargets: [\n"));
    let run = named.run(&["down", "--volumes"]);
    run.success();
    assert!(
        run.stderr
            .contains(&format!("acting on its `project: {other}`")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("kept volume {volume}")),
        "{}",
        run.stderr
    );
    assert_eq!(volumes().await, [volume.as_str()]);

    // 3. Named explicitly, it goes.
    let run = named.run(&["down", "--volumes", "--project", &other]);
    run.success();
    assert!(volumes().await.is_empty());
}

/// An edit whose files cannot be written is undone: the manifest is byte-identical after it.
/// (`.monstack/prometheus` is a file, not a directory: unwritable even for root.)
#[test]
fn an_edit_that_cannot_write_its_files_leaves_the_manifest_byte_identical() {
    let text = format!("# keep this comment\n{}", offline_manifest());
    let project = Project::new().manifest(&text);
    std::fs::create_dir_all(project.path().join(".monstack")).unwrap();
    std::fs::write(project.path().join(".monstack/prometheus"), "in the way").unwrap();
    let run = project.run(&["add-target", "api", "host.docker.internal:9300"]);
    run.code(1);
    assert_eq!(project.read("monstack.yaml"), text);
    let run = project.run(&["remove-target", "api"]);
    run.code(1);
    assert_eq!(project.read("monstack.yaml"), text);
    std::fs::write(
        project.path().join("dash.json"),
        r#"{"title": "Mine", "uid": "mine", "panels": []}"#,
    )
    .unwrap();
    let run = project.run(&["import-dashboard", "dash.json"]);
    run.code(1);
    assert_eq!(project.read("monstack.yaml"), text);
    assert!(!project.exists("dashboards/mine.json"));
}

/// Creates a network through the Engine API without the duplicate check `docker network
/// create` asks for, as two `up`s at once could on Engine 20.10. `false` when the engine
/// refuses duplicates itself (newer engines).
fn create_network_unchecked(name: &str, project: &str) -> bool {
    let body = format!(
        r#"{{"Name":"{name}","CheckDuplicate":false,"Driver":"bridge","Labels":{{"io.monstack.project":"{project}"}}}}"#
    );
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--unix-socket",
            "/var/run/docker.sock",
        ])
        .args([
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ])
        .arg("http://localhost/networks/create")
        .output()
        .expect("running curl");
    String::from_utf8_lossy(&out.stdout).trim() == "201"
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_networks_are_cleaned_up_and_down_removes_them_all() {
    use crate::support::images::{
        require_docker_and_binaries, test_images, unique_project, ProjectGuard,
    };
    if !require_docker_and_binaries() {
        return;
    }
    let engine = monstack::stack::docker::Engine::connect().await.unwrap();
    let images = test_images(&engine).await.unwrap();
    let name = unique_project("dupnet");
    let _guard = ProjectGuard::new(&name);
    let network = format!("monstack-{name}");
    assert!(create_network_unchecked(&network, &name));
    let duplicated = create_network_unchecked(&network, &name);
    let count = || {
        let out = std::process::Command::new("docker")
            .args([
                "network",
                "ls",
                "-q",
                "--filter",
                &format!("name=^{network}$"),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    if duplicated {
        assert_eq!(count(), 2);
    } else {
        eprintln!("note: this engine refuses duplicate network names; testing the single one");
    }
    let project = Project::new().manifest(&format!(
        "project: {name}\nprometheus: {{image: {}, port: {}}}\ngrafana: false\netcd: false\n",
        images.prometheus,
        free_port()
    ));
    let up = project.run(&["up"]);
    up.success();
    assert_eq!(count(), 1, "{}", up.stderr);
    if duplicated {
        assert!(
            up.stderr.contains("removed a duplicate network"),
            "{}",
            up.stderr
        );
    }
    let down = project.run(&["down"]);
    down.success();
    assert_eq!(count(), 0);
}

/// One distinctive value per kind of secret the manifest can hold; none may appear in any
/// output of any command at any verbosity.
const SECRETS: &[(&str, &str)] = &[
    ("GRAFANA_PW", "Gr4f-pw-7731"),
    ("SMTP_PW", "smtp-pw-4417"),
    ("HOOK_TOKEN", "tok-9051"),
    ("HOOK_PW", "hook-pw-2288"),
    ("DING_SECRET", "SECding-6610"),
    ("DING_TOKEN", "ding-tok-3390"),
    ("SLACK_PATH", "slack-xoxb-5521"),
];

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_any_output_at_any_verbosity() {
    use crate::support::images::{
        require_docker_and_binaries, test_images, unique_project, ProjectGuard,
    };
    if !require_docker_and_binaries() {
        return;
    }
    let engine = monstack::stack::docker::Engine::connect().await.unwrap();
    let images = test_images(&engine).await.unwrap();
    let name = unique_project("secrets");
    let _guard = ProjectGuard::new(&name);
    let closed = free_port();
    // Grafana is a stand-in that never gets ready (none can be had here): its container is
    // still created with the passwords in its environment, which the Docker client's debug
    // log once printed.
    let lines = [
        format!("project: {name}"),
        format!("prometheus: {{image: {}, port: {}}}", images.prometheus, free_port()),
        format!("alertmanager: {{image: {}, port: {}}}", images.alertmanager, free_port()),
        format!(
            "grafana: {{image: {}, port: {}, admin_password: \"${{GRAFANA_PW}}\"}}",
            images.pushgateway,
            free_port()
        ),
        "etcd: false".to_string(),
        format!("agent: {{port: {}}}", free_port()),
        format!("smtp: {{host: \"127.0.0.1:{closed}\", from: a@example.com, user: a@example.com, password: \"${{SMTP_PW}}\"}}"),
        "channels:".to_string(),
        "  - name: mail".to_string(),
        "    email: {to: [ops@example.com]}".to_string(),
        "  - name: hook".to_string(),
        format!("    webhook: {{url: \"http://bot:${{HOOK_PW}}@127.0.0.1:{closed}/x?token=${{HOOK_TOKEN}}\"}}"),
        "  - name: ding".to_string(),
        format!("    dingtalk: {{url: \"http://127.0.0.1:{closed}/robot/send?access_token=${{DING_TOKEN}}\", secret: \"${{DING_SECRET}}\"}}"),
        "  - name: chat".to_string(),
        format!("    slack: {{url: \"http://127.0.0.1:{closed}/services/T0/B0/${{SLACK_PATH}}\"}}"),
    ];
    let manifest = lines.join("\n") + "\n";
    let mut project = Project::new().manifest(&manifest);
    for (key, value) in SECRETS {
        project = project.env(key, value);
    }
    let mut runs = Vec::new();
    for verbosity in ["-v", "-vv"] {
        for args in [
            &["validate"][..],
            &["render"],
            &["up", "--timeout", "8"],
            &["status"],
            &["targets"],
            &["logs", "--tail", "200"],
            &["alert", "test", "hook", "chat", "ding"],
            &["alert", "list"],
        ] {
            let mut all = vec![verbosity];
            all.extend_from_slice(args);
            let run = project.run(&all);
            runs.push((all.join(" "), run));
        }
    }
    // The commands did run (not skipped early): up created the stack, alert test reported.
    let up = &runs
        .iter()
        .find(|(a, _)| a == "-vv up --timeout 8")
        .unwrap()
        .1;
    assert!(up.stderr.contains("grafana"), "{}", up.stderr);
    let alert = &runs
        .iter()
        .find(|(a, _)| a.starts_with("-vv alert test"))
        .unwrap()
        .1;
    assert!(
        alert.stdout.contains("hook"),
        "{}\n{}",
        alert.stdout,
        alert.stderr
    );
    for (args, run) in &runs {
        for (_, secret) in SECRETS {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "`monstack {args}` printed {secret}:\n--- stdout\n{}\n--- stderr\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
}
