//! The agent's image, built locally from the running monstack executable: `FROM scratch` with
//! the binary and the shared libraries it links (no registry, no base image to pull). HTTPS from
//! inside works without a CA file: reqwest carries the webpki roots.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, Context};
use sha2::{Digest, Sha256};

/// Where the executable sits in the image.
pub const BINARY: &str = "/monstack";

/// Why the running executable cannot be the agent's image, or `None` when it can.
pub fn unsupported_reason() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some(format!(
            "this monstack is built for {}, and the agent container needs a Linux executable",
            std::env::consts::OS
        ));
    }
    None
}

/// The image tag: monstack's version and a hash of `identity`, what `up` knows of the
/// executable without reading it (its path, size and modification time), so a rebuilt monstack
/// gets a new image and an unchanged one reuses it.
pub fn tag(identity: &[u8]) -> String {
    let digest = Sha256::digest(identity);
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("monstack-agent:{}-{hex}", env!("CARGO_PKG_VERSION"))
}

/// The build context (a tar with a Dockerfile) for the executable at `exe`.
pub fn build_context(exe: &Path) -> anyhow::Result<Vec<u8>> {
    let mut files: Vec<(String, PathBuf)> = vec![(
        BINARY.trim_start_matches('/').to_string(),
        exe.to_path_buf(),
    )];
    for library in shared_libraries(exe)? {
        let inside = library
            .to_string_lossy()
            .trim_start_matches('/')
            .to_string();
        if !files.iter().any(|(p, _)| *p == inside) {
            files.push((inside, library));
        }
    }
    files.sort();
    let mut tar = tar::Builder::new(Vec::new());
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nUSER 65534:65534\nENTRYPOINT [\"{BINARY}\"]\nCMD [\"agent\"]\nLABEL io.monstack.agent=\"{}\"\n",
        env!("CARGO_PKG_VERSION")
    );
    append(&mut tar, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
    append(
        &mut tar,
        "rootfs/etc/passwd",
        b"root:x:0:0:root:/:/monstack\nnobody:x:65534:65534:nobody:/:/monstack\n",
        0o644,
    )?;
    append(
        &mut tar,
        "rootfs/etc/group",
        b"root:x:0:\nnogroup:x:65534:\n",
        0o644,
    )?;
    let mut tmp = tar::Header::new_gnu();
    tmp.set_entry_type(tar::EntryType::Directory);
    tmp.set_mode(0o1777);
    tmp.set_size(0);
    tmp.set_mtime(0);
    tmp.set_cksum();
    tar.append_data(&mut tmp, "rootfs/tmp/", std::io::empty())
        .context("adding /tmp")?;
    for (inside, source) in files {
        let bytes =
            std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
        // Mode: executable for the binary and libraries alike (the loader needs it).
        append(&mut tar, &format!("rootfs/{inside}"), &bytes, 0o755)?;
    }
    tar.into_inner().context("finishing the build context")
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    // A fixed mtime keeps the context (and so the tag) identical for the same executable.
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, path, data)
        .with_context(|| format!("adding {path}"))
}

/// The shared libraries (and the dynamic loader) `ldd` reports for `exe`, resolved to real
/// files. A static executable has none.
fn shared_libraries(exe: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = Command::new("ldd").arg(exe).output().map_err(|e| {
        anyhow!(
            "running ldd on {}: {e} (Debian package libc-bin)",
            exe.display()
        )
    })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success()
        || text.contains("not a dynamic executable")
        || text.contains("statically linked")
    {
        return Ok(Vec::new());
    }
    Ok(parse_ldd(&text))
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and `/lib64/ld-linux-x86-64.so.2 (0x...)`.
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next().unwrap_or(""),
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if path.starts_with('/') {
            out.push(PathBuf::from(path));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed_into_library_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_context_holds_the_executable_its_libraries_and_is_reproducible() {
        let exe = std::env::current_exe().unwrap();
        let a = build_context(&exe).unwrap();
        let b = build_context(&exe).unwrap();
        assert_eq!(tag(&a), tag(&b));
        let mut names = Vec::new();
        for entry in tar::Archive::new(&a[..]).entries().unwrap() {
            names.push(
                entry
                    .unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        assert!(names.contains(&"Dockerfile".to_string()));
        assert!(names.contains(&"rootfs/monstack".to_string()));
        assert!(names.iter().any(|n| n.contains("libc.so")), "{names:?}");
    }
}
