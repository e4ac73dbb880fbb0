//! Secrets monstack keeps itself: the Grafana admin password in
//! `.monstack/secrets/grafana-admin-password` (mode 0600, only monstack reads it), and the
//! InfluxDB password in `.monstack/secrets/influxdb-password`.
//!
//! The file always holds the password Grafana currently has: generated on first `up` when the
//! manifest gives none, or the manifest's once it has been applied. Grafana reads its password
//! from the environment only on its very first start, so a later change in the manifest is
//! applied through its API with the stored one.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::files;

use crate::layout::{GRAFANA_PASSWORD_FILE, INFLUXDB_PASSWORD_FILE};
use crate::model::Stack;
const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrafanaPassword {
    /// What Grafana should have after this `up`.
    pub desired: String,
    /// What Grafana has now, as far as monstack knows (`None`: never started by monstack).
    pub stored: Option<String>,
    /// `desired` was generated now (print it once).
    pub generated: bool,
}

impl GrafanaPassword {
    pub fn needs_change(&self) -> bool {
        self.stored
            .as_deref()
            .is_some_and(|stored| stored != self.desired)
    }
}

pub fn password_path(out_dir: &Path) -> PathBuf {
    out_dir.join(GRAFANA_PASSWORD_FILE)
}

/// Works out the admin password for this run from the manifest and the stored file.
pub fn grafana_password(
    out_dir: &Path,
    from_manifest: Option<&str>,
) -> anyhow::Result<GrafanaPassword> {
    let path = password_path(out_dir);
    let stored = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_string()).filter(|s| !s.is_empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let password = match (from_manifest, &stored) {
        (Some(password), _) => GrafanaPassword {
            desired: password.to_string(),
            stored,
            generated: false,
        },
        (None, Some(existing)) => GrafanaPassword {
            desired: existing.clone(),
            stored,
            generated: false,
        },
        (None, None) => GrafanaPassword {
            desired: generate(24)?,
            stored,
            generated: true,
        },
    };
    crate::output::redact::register(&password.desired);
    if let Some(stored) = &password.stored {
        crate::output::redact::register(stored);
    }
    Ok(password)
}

/// Records the password Grafana now has.
pub fn store_grafana_password(out_dir: &Path, password: &str) -> anyhow::Result<()> {
    files::write_atomic(
        &password_path(out_dir),
        format!("{password}\n").as_bytes(),
        files::MODE_PRIVATE,
    )
}

/// Fills in the InfluxDB password a manifest leaves out (in the service and in its Grafana
/// datasource) from `.monstack/secrets/influxdb-password`. With `generate`, a missing one is
/// generated and written there (0600) first: `render` and `up` do that, commands that only read
/// leave it missing. It never changes afterwards: InfluxDB keeps the user it created with it.
pub fn resolve_influxdb_password(stack: &mut Stack, generate: bool) -> anyhow::Result<()> {
    let Some(influxdb) = stack.influxdb.as_mut() else {
        return Ok(());
    };
    if influxdb.password.is_some() {
        return Ok(());
    }
    let path = stack
        .root
        .join(crate::layout::OUT_DIR)
        .join(INFLUXDB_PASSWORD_FILE);
    let password = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_string()).filter(|s| !s.is_empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let password = match password {
        Some(password) => password,
        None if generate => {
            let password = self::generate(24)?;
            files::write_atomic(
                &path,
                format!("{password}\n").as_bytes(),
                files::MODE_PRIVATE,
            )?;
            password
        }
        None => return Ok(()),
    };
    crate::output::redact::register(&password);
    influxdb.password = Some(password.clone());
    for ds in &mut stack.datasources {
        if ds.uid == crate::model::INFLUXDB_DATASOURCE_UID && ds.password.is_none() {
            ds.password = Some(password.clone());
        }
    }
    Ok(())
}

/// `len` characters from an alphabet without look-alikes (no 0/O, 1/l/I), from the OS RNG.
pub fn generate(len: usize) -> anyhow::Result<String> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)
            .map_err(|e| anyhow::anyhow!("reading the system's random generator: {e}"))?;
        // Rejection sampling keeps the choice uniform.
        let limit = 256 - 256 % ALPHABET.len();
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_different() {
        let a = generate(24).unwrap();
        let b = generate(24).unwrap();
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
    }

    #[test]
    fn the_manifest_wins_the_stored_one_is_reused_and_a_new_one_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = grafana_password(dir.path(), None).unwrap();
        assert!(first.generated && first.stored.is_none() && !first.needs_change());
        store_grafana_password(dir.path(), &first.desired).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(password_path(dir.path()))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        let again = grafana_password(dir.path(), None).unwrap();
        assert_eq!(again.desired, first.desired);
        assert!(!again.generated && !again.needs_change());
        let changed = grafana_password(dir.path(), Some("a-new-password")).unwrap();
        assert!(changed.needs_change());
        assert_eq!(changed.stored.as_deref(), Some(first.desired.as_str()));
    }

    #[test]
    fn the_influxdb_password_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut stack = crate::render::testkit::with_influxdb();
        stack.root = dir.path().to_path_buf();
        stack.influxdb.as_mut().unwrap().password = None;
        stack.datasources.last_mut().unwrap().password = None;
        let mut read_only = stack.clone();
        resolve_influxdb_password(&mut read_only, false).unwrap();
        assert_eq!(read_only, stack, "nothing generated without `generate`");
        assert!(!dir.path().join(".monstack").exists());

        let mut first = stack.clone();
        resolve_influxdb_password(&mut first, true).unwrap();
        let password = first.influxdb.as_ref().unwrap().password.clone().unwrap();
        assert_eq!(password.len(), 24);
        assert_eq!(
            first.datasources.last().unwrap().password.as_ref(),
            Some(&password)
        );
        let path = dir.path().join(".monstack").join(INFLUXDB_PASSWORD_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let mut again = stack.clone();
        resolve_influxdb_password(&mut again, false).unwrap();
        assert_eq!(again, first, "the stored one is read back");
        // The manifest's own password wins.
        let mut own = crate::render::testkit::with_influxdb();
        own.root = dir.path().to_path_buf();
        let before = own.clone();
        resolve_influxdb_password(&mut own, true).unwrap();
        assert_eq!(own, before);
    }
}
