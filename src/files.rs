//! Writing files safely: atomically (temp file in the same directory, then rename) and with
//! modes that keep secrets away from other users of the machine.
//!
//! Rendered secrets are 0640, owned by the user's effective group, which the containers that
//! read them get as a supplementary group: their images run as their own users (65534, 472),
//! who own their data volumes. That keeps them from everyone else only when nobody else is in
//! the group. Where others are (`users`, macOS `staff`), the directory holding everything
//! rendered is made 0700 instead ([`OwnerGroup`]): the Docker daemon still mounts what is inside
//! it, and inside a container only the mounted directory itself is looked at, but no other user
//! of the machine can reach a file below it.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Mode of ordinary generated files.
pub const MODE_PUBLIC: u32 = 0o644;
/// Mode of rendered files holding secrets: the owner and the owning group (the user's
/// effective group, see [`write_atomic`]) only. Containers that read them get that group as a
/// supplementary group, whatever user their image runs as. Other members of a shared group are
/// kept out by the directory around them (see [`OwnerGroup`]).
pub const MODE_SECRET: u32 = 0o640;
/// Mode of files only monstack itself reads (the Grafana admin password).
pub const MODE_PRIVATE: u32 = 0o600;

/// Mode of directories the containers' users must enter.
pub const MODE_DIR: u32 = 0o755;
/// Mode of directories for the user alone: `secrets/`, and the output directory itself when
/// the user's group is shared.
pub const MODE_DIR_PRIVATE: u32 = 0o700;

/// Whether the group owning the rendered secret files has members besides the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerGroup {
    /// The user's own group (same name, no other member, nobody else's primary group): mode
    /// 0640 alone keeps the secrets between the user and the containers.
    Private,
    /// Others are in it, or it cannot be told from the local account files: the output
    /// directory is 0700 ([`MODE_DIR_PRIVATE`]).
    Shared,
}

impl OwnerGroup {
    /// The mode of the output directory (`.monstack/`).
    pub fn out_dir_mode(self) -> u32 {
        match self {
            OwnerGroup::Private => MODE_DIR,
            OwnerGroup::Shared => MODE_DIR_PRIVATE,
        }
    }
}

/// Decides from the contents of `/etc/passwd` and `/etc/group` whether group `gid` is private
/// to user `uid`: the group exists, has the user's name (a user private group, as `useradd`
/// makes them), lists no other member, and is no other account's primary group. Anything
/// unclear counts as shared: wrongly private would leave secrets to others, wrongly shared only
/// makes `.monstack/` 0700. Accounts only a directory service knows (LDAP) are invisible here;
/// their groups are not in `/etc/group` either, so they count as shared.
pub fn owner_group(uid: u32, gid: u32, passwd: &str, group: &str) -> OwnerGroup {
    // `+`/`-` lines pull in accounts from NIS: who they are cannot be told from here.
    let from_nis = |text: &str| text.lines().any(|l| l.starts_with(['+', '-']));
    if from_nis(passwd) || from_nis(group) {
        return OwnerGroup::Shared;
    }
    // name:password:uid:gid:gecos:home:shell
    let accounts: Vec<(&str, Option<u32>, Option<u32>)> = passwd
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next().filter(|n| !n.is_empty())?;
            let uid = fields.nth(1).and_then(|f| f.parse().ok());
            let gid = fields.next().and_then(|f| f.parse().ok());
            Some((name, uid, gid))
        })
        .collect();
    let Some(user) = accounts
        .iter()
        .find(|(_, u, _)| *u == Some(uid))
        .map(|(name, _, _)| *name)
    else {
        return OwnerGroup::Shared;
    };
    if accounts
        .iter()
        .any(|(name, u, g)| *name != user && *u != Some(uid) && *g == Some(gid))
    {
        return OwnerGroup::Shared;
    }
    // name:password:gid:member,member
    let entry = group.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == gid).then(|| (name, fields.next().unwrap_or("")))
    });
    match entry {
        Some((name, members))
            if name == user
                && members
                    .split(',')
                    .map(str::trim)
                    .all(|m| m.is_empty() || m == user) =>
        {
            OwnerGroup::Private
        }
        _ => OwnerGroup::Shared,
    }
}

/// [`owner_group`] for the user running monstack and their effective group (the one secret
/// files are given, see [`write_atomic`]), from this machine's account files; read once per
/// process, so that every write of one run agrees.
pub fn host_owner_group() -> OwnerGroup {
    static DECIDED: std::sync::OnceLock<OwnerGroup> = std::sync::OnceLock::new();
    *DECIDED.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: geteuid/getegid have no preconditions and cannot fail.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
            owner_group(uid, gid, &read("/etc/passwd"), &read("/etc/group"))
        }
        #[cfg(not(unix))]
        {
            OwnerGroup::Shared
        }
    })
}

/// An existing file's permission bits (to keep them when rewriting it), else [`MODE_PUBLIC`].
pub fn mode_of(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(MODE_PUBLIC)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        MODE_PUBLIC
    }
}

pub fn mode_for(secret: bool) -> u32 {
    if secret {
        MODE_SECRET
    } else {
        MODE_PUBLIC
    }
}

/// Writes `contents` to `path` atomically. The temp file starts with `.` and ends in `.tmp`, so
/// Prometheus' file_sd globs (`*.json`) never see a half-written file.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    write_atomic_with(path, None, contents, mode, true)
}

/// [`write_atomic`] without the fsync: readers still never see a half-written file (the rename
/// is atomic), but a crash may lose the write. For files that are re-derived anyway (the
/// discovered targets, rebuilt from etcd on every start), where an fsync per file would make a
/// listing of thousands of services take seconds.
pub fn write_atomic_unsynced(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    write_atomic_with(path, None, contents, mode, false)
}

/// [`write_atomic_unsynced`] with the temp file in `tmp_dir` (created when missing), which must
/// be on the same file system as `path`: a watcher of `path`'s directory (Prometheus' file_sd)
/// then sees one change, the rename, instead of the temp file's creation, writes and rename.
pub fn write_atomic_unsynced_via(
    path: &Path,
    tmp_dir: &Path,
    contents: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    write_atomic_with(path, Some(tmp_dir), contents, mode, false)
}

fn write_atomic_with(
    path: &Path,
    tmp_dir: Option<&Path>,
    contents: &[u8],
    mode: u32,
    sync: bool,
) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp_dir = match tmp_dir {
        Some(tmp_dir) => {
            fs::create_dir_all(tmp_dir)
                .with_context(|| format!("creating {}", tmp_dir.display()))?;
            tmp_dir
        }
        None => dir,
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Unique per process and per call: two writers of one path never share a temp file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = tmp_dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        #[cfg(unix)]
        if mode == MODE_SECRET {
            own_group(&file, &tmp)?;
        }
        file.write_all(contents)
            .with_context(|| format!("writing {}", tmp.display()))?;
        if sync {
            file.sync_all()
                .with_context(|| format!("writing {}", tmp.display()))?;
        }
        #[cfg(unix)]
        {
            // The mode given to open() is filtered by the umask; set it exactly.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting permissions of {}", tmp.display()))?;
        }
        fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Gives a secret file the user's effective group: the one the containers are given and
/// [`host_owner_group`] judged. A new file takes its directory's group instead on BSD and macOS,
/// and under a set-group-id directory on Linux (a project directory shared with a team).
#[cfg(unix)]
fn own_group(file: &fs::File, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getegid has no preconditions and cannot fail.
    let gid = unsafe { libc::getegid() };
    let current = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .gid();
    if current != gid {
        std::os::unix::fs::fchown(file, None, Some(gid))
            .with_context(|| format!("setting the group of {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
alice:x:1000:1000:Alice:/home/alice:/bin/bash
bob:x:1001:100:Bob:/home/bob:/bin/bash
carol:x:1002:100:Carol:/home/carol:/bin/bash
dave:x:1003:1003:Dave:/home/dave:/bin/bash
";
    const GROUP: &str = "\
root:x:0:
users:x:100:
alice:x:1000:
dave:x:1003:eve
staff:x:50:alice
erin:x:1004:erin
";

    #[test]
    fn a_user_private_group_is_private() {
        assert_eq!(owner_group(1000, 1000, PASSWD, GROUP), OwnerGroup::Private);
        assert_eq!(owner_group(0, 0, PASSWD, GROUP), OwnerGroup::Private);
        // Listing oneself as a member changes nothing.
        let erin = format!("{PASSWD}erin:x:1004:1004::/home/erin:/bin/sh\n");
        assert_eq!(owner_group(1004, 1004, &erin, GROUP), OwnerGroup::Private);
        assert_eq!(OwnerGroup::Private.out_dir_mode(), 0o755);
    }

    #[test]
    fn a_group_others_are_in_or_that_cannot_be_told_is_shared() {
        // `users`: other accounts' primary group (and not named after anyone).
        assert_eq!(owner_group(1001, 100, PASSWD, GROUP), OwnerGroup::Shared);
        // Another member listed.
        assert_eq!(owner_group(1003, 1003, PASSWD, GROUP), OwnerGroup::Shared);
        // Another account's primary group, though /etc/group lists nobody.
        let mallory = format!("{PASSWD}mallory:x:1005:1000::/home/mallory:/bin/sh\n");
        assert_eq!(owner_group(1000, 1000, &mallory, GROUP), OwnerGroup::Shared);
        // Only us today, but a group named otherwise is one that accounts join (`users`,
        // macOS `staff`).
        let alone = "frank:x:1006:100::/home/frank:/bin/sh\n";
        assert_eq!(owner_group(1006, 100, alone, GROUP), OwnerGroup::Shared);
        // Not in the local files (a directory service's account or group): unknown.
        assert_eq!(owner_group(2000, 1000, PASSWD, GROUP), OwnerGroup::Shared);
        assert_eq!(owner_group(1000, 3000, PASSWD, GROUP), OwnerGroup::Shared);
        assert_eq!(owner_group(1000, 1000, "", ""), OwnerGroup::Shared);
        // NIS entries could add anyone.
        let nis = format!("{GROUP}+:::\n");
        assert_eq!(owner_group(1000, 1000, PASSWD, &nis), OwnerGroup::Shared);
        assert_eq!(OwnerGroup::Shared.out_dir_mode(), 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn this_host_is_judged_from_its_account_files() {
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            host_owner_group(),
            owner_group(uid, gid, &read("/etc/passwd"), &read("/etc/group"))
        );
    }

    /// A set-group-id directory hands its group to new files; a secret file gets ours back.
    #[cfg(unix)]
    #[test]
    fn secret_files_get_the_users_group_whatever_their_directory_gives() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let gid = unsafe { libc::getegid() };
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("team");
        fs::create_dir(&shared).unwrap();
        // Any other group we may give the directory: as root any, else a supplementary one.
        let other = if unsafe { libc::geteuid() } == 0 {
            Some(gid + 4242)
        } else {
            let mut groups = vec![0 as libc::gid_t; 256];
            let n = unsafe { libc::getgroups(groups.len() as i32, groups.as_mut_ptr()) };
            groups.truncate(n.max(0) as usize);
            groups.into_iter().find(|g| *g != gid)
        };
        let Some(other) = other else {
            println!("skipping: no other group to give the directory");
            return;
        };
        std::os::unix::fs::chown(&shared, None, Some(other)).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o2755)).unwrap();
        write_atomic(&shared.join("secret.yml"), b"pw", MODE_SECRET).unwrap();
        write_atomic(&shared.join("plain.yml"), b"x", MODE_PUBLIC).unwrap();
        let meta = |name: &str| fs::metadata(shared.join(name)).unwrap();
        assert_eq!(meta("secret.yml").gid(), gid);
        assert_eq!(meta("secret.yml").permissions().mode() & 0o777, 0o640);
        assert_eq!(meta("plain.yml").gid(), other, "only secrets are regrouped");
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_private_and_others_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&dir.path().join("a/secret.yml"), b"pw", MODE_SECRET).unwrap();
        write_atomic(&dir.path().join("a/plain.yml"), b"x", MODE_PUBLIC).unwrap();
        let mode = |p: &str| {
            fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("a/secret.yml"), 0o640);
        assert_eq!(mode("a/plain.yml"), 0o644);
        // No temp files are left behind.
        assert_eq!(fs::read_dir(dir.path().join("a")).unwrap().count(), 2);
    }
}
