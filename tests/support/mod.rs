//! A small builder for "run monstack in a fresh project directory, expect this".

pub mod etcd_cluster;
pub mod images;
/// The same helpers as the unit tests' (`src/testsupport.rs`): one place decides "skip, or
/// fail in CI", and names the pinned binaries.
#[path = "../../src/testsupport.rs"]
#[allow(dead_code)]
pub mod testsupport;

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Project {
    pub dir: tempfile::TempDir,
    /// The project directory's name (the default project name).
    name: String,
    env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Project {
    /// A temp directory whose name (and so the default project name) is `proj`.
    pub fn new() -> Project {
        Project::in_dir_named("proj")
    }

    /// A temp directory named `name`: the default project name of a manifest without one.
    pub fn in_dir_named(name: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("monstack-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join(name)).unwrap();
        Project {
            dir,
            name: name.to_string(),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join(&self.name)
    }

    pub fn file(self, relative: &str, contents: &str) -> Project {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    pub fn manifest(self, contents: &str) -> Project {
        self.file("monstack.yaml", contents)
    }

    pub fn env(mut self, key: &str, value: &str) -> Project {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_monstack"));
        cmd.args(args).current_dir(self.path()).env("NO_COLOR", "1");
        for (key, _) in std::env::vars() {
            if key.starts_with("MONSTACK_") && key != "MONSTACK_REQUIRE_ALL" {
                cmd.env_remove(key);
            }
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let out = cmd.output().expect("running monstack");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative))
            .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
    }

    pub fn exists(&self, relative: &str) -> bool {
        self.path().join(relative).exists()
    }
}

impl Run {
    #[track_caller]
    pub fn success(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The `file:line:col: message` headlines of the diagnostics on stderr.
    pub fn headlines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("monstack.yaml:"))
            .collect()
    }
}

/// Copies a fixture directory from tests/fixtures into a new project.
pub fn fixture(name: &str) -> Project {
    let project = Project::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
        &project.path(),
    );
    project
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
