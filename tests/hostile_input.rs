//! Hostile input: manifests built to exhaust memory, stack or patience, files that are not
//! files, streams that are closed, answers that never end. Each is refused quickly with exit 2
//! (the input's fault) or fails with exit 1 (the environment's), never a hang, an abort or a
//! panic (101). Every case is run against the binary, under a deadline, and the alias bombs
//! under a memory bound too.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Project, Run};

/// What a run cost besides its output.
struct Cost {
    elapsed: Duration,
    /// Peak resident memory, in MiB, as last seen while it ran (sampled every few ms).
    peak_mib: u64,
}

/// Runs monstack in the project, as `Project::run` does, but under a deadline (a hang fails
/// the test instead of blocking it) and measuring the peak memory. `configure` changes the
/// command (stdio, environment) before it starts.
fn run_within(
    project: &Project,
    args: &[&str],
    limit: Duration,
    configure: impl FnOnce(&mut Command),
) -> (Run, Cost) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monstack"));
    cmd.args(args)
        .current_dir(project.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("MONSTACK_") {
            cmd.env_remove(key);
        }
    }
    configure(&mut cmd);
    spawn_within(cmd, limit)
}

/// Starts `cmd`, collects what it writes, and waits at most `limit` for it to end (then kills
/// it and fails the test).
fn spawn_within(mut cmd: Command, limit: Duration) -> (Run, Cost) {
    let started = Instant::now();
    let mut child = cmd.spawn().expect("starting monstack");
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = collect(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = collect(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let pid = child.id() as libc::pid_t;
    let mut peak_kib = 0;
    let status = loop {
        // The high-water mark of the process' own memory. (wait4's ru_maxrss would count the
        // memory of this test process, which the child had before its exec.)
        peak_kib = peak_kib.max(high_water_kib(pid));
        if let Some(status) = child.try_wait().expect("waiting for monstack") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Killed by a signal (an abort, a stack overflow): never a code any test expects.
    let code = status
        .code()
        .unwrap_or_else(|| -std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
    let run = Run {
        code,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    let cost = Cost {
        elapsed: started.elapsed(),
        peak_mib: peak_kib / 1024,
    };
    (run, cost)
}

/// `VmHWM` of a running process, 0 once it is gone.
fn high_water_kib(pid: libc::pid_t) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn quick(project: &Project, args: &[&str]) -> Run {
    run_within(project, args, Duration::from_secs(10), |_| {}).0
}

/// `validate` refuses the manifest with exactly `headline`, within a few seconds.
#[track_caller]
fn refused(manifest: &str, headline: &str) -> Run {
    let project = Project::new().manifest(manifest);
    let (run, cost) = run_within(&project, &["validate"], Duration::from_secs(10), |_| {});
    run.code(2);
    assert_eq!(run.headlines(), [headline], "{}", run.stderr);
    assert!(cost.elapsed < Duration::from_secs(5), "{:?}", cost.elapsed);
    assert!(!project.exists(".monstack"));
    run
}

fn mkfifo(path: &std::path::Path) {
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// A file of `len` bytes that takes no disk (a hole): the size is all that matters.
fn sparse_file(path: &std::path::Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Alias bombs and nesting

/// "Billion laughs": nine levels of nine aliases each, 9^9 strings once expanded, in 1 KB.
fn billion_laughs(mapping: bool) -> String {
    let mut text = String::from("l0: &l0 \"lol\"\n");
    for level in 1..=9 {
        let prev = level - 1;
        let items: Vec<String> = (0..9)
            .map(|i| {
                if mapping {
                    format!("k{i}: *l{prev}")
                } else {
                    format!("*l{prev}")
                }
            })
            .collect();
        let (open, close) = if mapping { ("{", "}") } else { ("[", "]") };
        text.push_str(&format!(
            "l{level}: &l{level} {open}{}{close}\n",
            items.join(", ")
        ));
    }
    text
}

#[track_caller]
fn bomb_is_defused(text: &str) {
    assert!(text.len() < 1100, "{} bytes", text.len());
    let project = Project::new().manifest(text);
    // Before, validate, render and up grew to 4 GiB in 6 s and aborted.
    for command in ["validate", "render", "up"] {
        let (run, cost) = run_within(&project, &[command], Duration::from_secs(10), |_| {});
        run.code(2);
        let headline = "monstack.yaml:7:";
        assert!(
            run.headlines().len() == 1 && run.headlines()[0].starts_with(headline),
            "{command}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("invalid YAML: this alias expands the manifest past 200000 values"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("alias bomb"), "{}", run.stderr);
        assert!(
            cost.elapsed < Duration::from_secs(5),
            "{command}: {cost:?}",
            cost = cost.elapsed
        );
        assert!(cost.peak_mib < 300, "{command}: {} MiB", cost.peak_mib);
        assert!(!project.exists(".monstack"), "{command} wrote files");
    }
}

#[test]
fn an_alias_bomb_of_lists_is_refused_at_the_alias_fast_and_small() {
    bomb_is_defused(&billion_laughs(false));
}

#[test]
fn an_alias_bomb_of_mappings_is_refused_at_the_alias_fast_and_small() {
    bomb_is_defused(&billion_laughs(true));
}

#[test]
fn a_chain_of_aliases_cannot_nest_the_tree_deeper_than_64_levels() {
    // 100,000 levels in 2 MB: `l1: &l1 [*l0]`, `l2: &l2 [*l1]`, ...
    let mut text = String::from("l0: &l0 [x]\n");
    for i in 1..100_000 {
        text.push_str(&format!("l{i}: &l{i} [*l{}]\n", i - 1));
    }
    refused(
        &text,
        "monstack.yaml:64:12: invalid YAML: lists and mappings nest deeper than 64 levels",
    );
}

#[test]
fn flow_lists_nested_100000_deep_are_refused_not_a_crash() {
    let text = format!("x: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let run = refused(
        &text,
        "monstack.yaml:1:259: invalid YAML: lists and mappings nest deeper than 64 levels",
    );
    // The 200 KB line is shown as a window around the caret.
    assert!(
        run.stderr.len() < 2000,
        "{} bytes of stderr",
        run.stderr.len()
    );
}

#[test]
fn block_mappings_nested_2000_deep_are_refused_not_a_crash() {
    let text: String = (0..2000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    refused(
        &text,
        "monstack.yaml:65:66: invalid YAML: lists and mappings nest deeper than 64 levels",
    );
}

#[test]
fn a_4_mb_line_is_read_in_linear_time_and_shown_cut() {
    // The whole manifest on one line, 150,000 values, the mistake at its end: every position
    // on a line used to cost a scan back to the line's start (quadratic), and the line was
    // printed whole under the message.
    let items: Vec<String> = (0..150_000).map(|i| format!("\"hös-{i}:9100\"")).collect();
    let head = format!("{{x-hosts: [{}], bind: ", items.join(", "));
    let text = format!("{head}nowhere}}\n");
    assert!(text.len() > 2_500_000);
    let project = Project::new().manifest(&text);
    let (run, cost) = run_within(&project, &["validate"], Duration::from_secs(20), |_| {});
    run.code(2);
    let col = head.chars().count() + 1;
    assert_eq!(
        run.headlines(),
        [
            "monstack.yaml:1:2: unknown field `x-hosts` in the manifest".to_string(),
            format!("monstack.yaml:1:{col}: `bind` must be an IP address, found `nowhere`"),
        ]
    );
    assert!(cost.elapsed < Duration::from_secs(5), "{:?}", cost.elapsed);
    assert!(
        run.stderr.len() < 3000,
        "{} bytes of stderr",
        run.stderr.len()
    );
    assert!(run.stderr.contains("bind: nowhere}"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Text that is not one YAML document

#[test]
fn a_second_document_is_refused_where_it_starts() {
    let run = refused(
        "project: shop\n---\nproject: evil\n",
        "monstack.yaml:2:1: invalid YAML: a manifest holds one YAML document; found a second one",
    );
    assert!(run.stderr.contains("remove the `---`"), "{}", run.stderr);
}

#[test]
fn a_nul_byte_is_refused_where_it_is() {
    // yaml-rust2 takes a NUL for the end of the input: everything after it was ignored.
    refused(
        "project: shop\n\0bind: 0.0.0.0\n",
        "monstack.yaml:2:1: invalid YAML: a NUL byte in the text; YAML allows no control characters",
    );
}

#[test]
fn an_escape_sequence_is_refused_and_not_sent_to_the_terminal() {
    let run = refused(
        "project: shop\nprometheus: {image: \"\x1b]0;owned\x07prom/prometheus\"}\n",
        "monstack.yaml:2:22: invalid YAML: the control character U+001B in the text; YAML allows no control characters",
    );
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
}

#[test]
fn an_empty_manifest_is_refused_with_a_pointer_to_init() {
    for text in ["", "  \n\n\t\n"] {
        let run = refused(text, "monstack.yaml:1:1: monstack.yaml is empty");
        assert!(run.stderr.contains("run `monstack init`"), "{}", run.stderr);
    }
    // A manifest of comments alone is a deliberate "all defaults".
    let project = Project::new().manifest("# everything default\n");
    quick(&project, &["validate"]).success();
}

#[test]
fn a_utf8_byte_order_mark_is_accepted() {
    let project = Project::new().manifest("\u{feff}project: shop\n");
    let run = quick(&project, &["validate"]);
    run.success();
    assert!(run.stdout.starts_with("shop: valid"), "{}", run.stdout);
}

#[test]
fn a_byte_that_is_not_utf8_is_refused_with_its_line() {
    let project = Project::new();
    std::fs::write(
        project.path().join("monstack.yaml"),
        b"project: shop\n# caf\xe9 in Latin-1\nbind: \"\xff\"\n",
    )
    .unwrap();
    let run = quick(&project, &["validate"]);
    run.code(2);
    assert_eq!(
        run.headlines(),
        ["monstack.yaml:2:6: monstack.yaml is not UTF-8 text: byte 0xE9 cannot be read"]
    );
    assert!(
        run.stderr.contains("save the file as UTF-8"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_byte_that_is_not_utf8_on_line_3_names_line_3() {
    let project = Project::new();
    std::fs::write(
        project.path().join("monstack.yaml"),
        b"project: shop\n\nbind: \"\xff\"\n",
    )
    .unwrap();
    let run = quick(&project, &["validate"]);
    run.code(2);
    assert_eq!(
        run.headlines(),
        ["monstack.yaml:3:8: monstack.yaml is not UTF-8 text: byte 0xFF cannot be read"]
    );
}

#[test]
fn a_duplicate_key_names_both_lines() {
    let run = refused(
        "project: shop\nbind: 127.0.0.1\nproject: evil\n",
        "monstack.yaml:3:1: invalid YAML: duplicate key `project`",
    );
    assert!(
        run.stderr.contains("`project` is first given at line 1"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_tab_in_the_indentation_says_to_use_spaces() {
    let run = refused(
        "prometheus:\n\tport: 9091\n",
        "monstack.yaml:2:2: invalid YAML: tabs disallowed within this context (block indentation)",
    );
    assert!(run.stderr.contains("never tabs"), "{}", run.stderr);
}

#[test]
fn a_binary_tag_is_refused_not_read_as_its_base64_text() {
    refused(
        "targets:\n  - job: api\n    targets: [\"a:1\"]\n    labels: {team: !!binary b3Bz}\n",
        "monstack.yaml:4:29: invalid YAML: YAML tags such as `!!binary` are not supported in a manifest",
    );
}

#[test]
fn a_custom_tag_is_refused() {
    let run = refused(
        "project: !include shop\n",
        "monstack.yaml:1:19: invalid YAML: YAML tags such as `!include` are not supported in a manifest",
    );
    assert!(run.stderr.contains("remove the tag"), "{}", run.stderr);
    // `!!str` says what quoting says.
    let project = Project::new().manifest("project: !!str shop\n");
    quick(&project, &["validate"]).success();
}

#[test]
fn a_merge_key_is_refused_not_taken_for_a_label() {
    let run = refused(
        "x-common: &common {team: ops}\ntargets:\n  - job: api\n    targets: [\"a:1\"]\n    labels:\n      <<: *common\n",
        "monstack.yaml:6:7: invalid YAML: merge keys (`<<`) are not supported in a manifest",
    );
    assert!(run.stderr.contains("labels: *common"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Files that are not files, and files too large

#[test]
fn a_fifo_as_the_manifest_is_refused_within_a_second() {
    let project = Project::new().manifest("project: shop\n");
    mkfifo(&project.path().join("fifo.yaml"));
    // Reading commands and editing commands read the manifest in different places.
    for args in [
        &["-f", "fifo.yaml", "validate"][..],
        &["-f", "fifo.yaml", "add-target", "api", "a:1"],
    ] {
        let (run, cost) = run_within(&project, args, Duration::from_secs(5), |_| {});
        run.code(2);
        assert!(
            run.stderr
                .contains("cannot read fifo.yaml: it is a named pipe (FIFO), not a regular file"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            cost.elapsed < Duration::from_secs(1),
            "{args:?}: {:?}",
            cost.elapsed
        );
    }
}

#[test]
fn a_fifo_as_a_dashboard_is_refused_saying_what_it_is() {
    let project = Project::new().manifest("project: shop\n");
    mkfifo(&project.path().join("board.json"));
    let (run, cost) = run_within(
        &project,
        &["import-dashboard", "./board.json"],
        Duration::from_secs(5),
        |_| {},
    );
    run.code(2);
    assert!(
        run.stderr
            .contains("cannot read ./board.json: it is a named pipe (FIFO), not a regular file"),
        "{}",
        run.stderr
    );
    assert!(cost.elapsed < Duration::from_secs(1));
}

#[test]
fn a_directory_as_the_manifest_is_refused_saying_so() {
    let project = Project::new().manifest("project: shop\n");
    std::fs::create_dir(project.path().join("conf")).unwrap();
    let run = quick(&project, &["-f", "conf", "validate"]);
    run.code(2);
    assert!(
        run.stderr
            .contains("error: cannot read conf: it is a directory, not a regular file"),
        "{}",
        run.stderr
    );
}

#[test]
fn dev_zero_as_the_manifest_is_refused_unread() {
    let project = Project::new().manifest("project: shop\n");
    // Before, this read zeros until the memory ran out.
    let (run, cost) = run_within(
        &project,
        &["-f", "/dev/zero", "validate"],
        Duration::from_secs(5),
        |_| {},
    );
    run.code(2);
    assert!(
        run.stderr.contains("cannot read /dev/zero: it is a device"),
        "{}",
        run.stderr
    );
    assert!(cost.elapsed < Duration::from_secs(1));
    assert!(cost.peak_mib < 100, "{} MiB", cost.peak_mib);
}

#[test]
fn a_manifest_over_16_mib_is_refused_unread() {
    let project = Project::new();
    // Seventeen MiB of NUL bytes, which the parser took for an empty (valid) manifest.
    sparse_file(&project.path().join("monstack.yaml"), 17 << 20);
    let (run, cost) = run_within(&project, &["validate"], Duration::from_secs(5), |_| {});
    run.code(2);
    assert!(
        run.stderr
            .contains("cannot read monstack.yaml: it holds more than 16 MiB, the most it may"),
        "{}",
        run.stderr
    );
    assert!(cost.peak_mib < 100, "{} MiB", cost.peak_mib);
}

#[test]
fn a_dashboard_file_over_32_mib_is_refused_unread() {
    let project = Project::new().manifest("project: shop\n");
    sparse_file(&project.path().join("huge.json"), 33 << 20);
    let (run, cost) = run_within(
        &project,
        &["import-dashboard", "./huge.json"],
        Duration::from_secs(5),
        |_| {},
    );
    run.code(2);
    assert!(
        run.stderr
            .contains("cannot read ./huge.json: it holds more than 32 MiB"),
        "{}",
        run.stderr
    );
    assert!(cost.peak_mib < 100, "{} MiB", cost.peak_mib);
}

// ---------------------------------------------------------------------------------------------
// Closed and broken output streams

/// The write end of a pipe whose reader is gone: every write fails with EPIPE.
fn broken_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: closing the read end we own; the write end becomes the Stdio below.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is open and owned by nothing else.
    Stdio::from(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) })
}

#[test]
fn a_broken_stderr_fails_the_command_instead_of_panicking() {
    let project = Project::new().manifest("project: shop\n");
    // render reports on stderr; before, the first report panicked (exit 101).
    let (run, _) = run_within(&project, &["render"], Duration::from_secs(10), |cmd| {
        cmd.stderr(broken_pipe());
    });
    run.code(1);
    // An error that cannot be shown keeps its exit code.
    let (run, _) = run_within(
        &project,
        &["-f", "missing.yaml", "validate"],
        Duration::from_secs(10),
        |cmd| {
            cmd.stderr(broken_pipe());
        },
    );
    run.code(2);
}

#[test]
fn a_closed_stderr_fails_a_command_that_had_something_to_say() {
    let project = Project::new().manifest("project: shop\n");
    let closed = |args: &str| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("exec \"$0\" {args} 2>&-"))
            .arg(env!("CARGO_BIN_EXE_monstack"))
            .current_dir(project.path())
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        spawn_within(cmd, Duration::from_secs(10)).0
    };
    closed("render").code(1);
    closed("-f missing.yaml validate").code(2);
    // Nothing to say, nothing lost.
    closed("-q render").success();
}

#[test]
fn a_closed_stdout_fails_validate_with_a_message() {
    let project = Project::new().manifest("project: shop\n");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" validate >&-")
        .arg(env!("CARGO_BIN_EXE_monstack"))
        .current_dir(project.path())
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped());
    let (run, _) = spawn_within(cmd, Duration::from_secs(10));
    run.code(1);
    assert_eq!(
        run.stderr,
        "error: cannot write the result to stdout: Bad file descriptor (os error 9)\n"
    );
}

#[test]
fn a_broken_or_full_stdout_fails_the_command_quietly_or_with_the_reason() {
    let project = Project::new().manifest("project: shop\n");
    // The reader left (`| head`): exit 1, and nothing to explain. `completions` is written by
    // clap_complete, which panicked (101).
    for args in [
        &["schema"][..],
        &["validate"],
        &["completions", "bash"],
        &["--help"],
    ] {
        let (run, _) = run_within(&project, args, Duration::from_secs(10), |cmd| {
            cmd.stdout(broken_pipe());
        });
        run.code(1);
        assert_eq!(run.stderr, "", "{args:?}");
    }
    let (run, _) = run_within(&project, &["schema"], Duration::from_secs(10), |cmd| {
        cmd.stdout(std::fs::File::create("/dev/full").unwrap());
    });
    run.code(1);
    assert!(
        run.stderr
            .contains("cannot write the result to stdout: No space left on device"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Answers that never end

/// A server whose every answer is a chunked body that never ends.
fn endless_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = format!("10000\r\n{{{}\r\n", " ".repeat(0xffff));
                while socket.write_all(chunk.as_bytes()).is_ok() {}
            });
        }
    });
    base
}

#[test]
fn a_dashboard_url_streaming_forever_is_cut_off_at_32_mib() {
    let project = Project::new().manifest("project: shop\n");
    let url = format!("{}/dashboard.json", endless_server());
    // Before, the download ran until the 60 s timeout, holding everything it got.
    let (run, cost) = run_within(
        &project,
        &["import-dashboard", &url],
        Duration::from_secs(30),
        |cmd| {
            for proxy in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
                cmd.env_remove(proxy);
            }
        },
    );
    run.code(1);
    assert!(
        run.stderr.contains(&format!(
            "downloading {url}: the answer is larger than 32 MiB, more than any dashboard; stopped reading it"
        )),
        "{}",
        run.stderr
    );
    assert!(cost.elapsed < Duration::from_secs(15), "{:?}", cost.elapsed);
    assert!(cost.peak_mib < 200, "{} MiB", cost.peak_mib);
    assert!(!project.exists("dashboards"));
}
