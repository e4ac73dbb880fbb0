//! Where things live under `.monstack/`, the directory next to the manifest that holds what
//! monstack renders, and which files there belong to someone else: the generated secrets, the
//! targets the discovery agent writes, what `up` last applied, the manifest's JSON Schema.
//! `render` never prunes those.

/// The output directory, next to the manifest.
pub const OUT_DIR: &str = ".monstack";

/// What `up` last applied (config hashes after reloads), next to the rendered files.
pub const STATE_FILE: &str = "state.json";

/// The JSON Schema of the manifest, written next to the rendered files for editors.
pub const SCHEMA_FILE: &str = "monstack.schema.json";

/// Generated secrets: read by monstack alone (the directory is 0700).
pub const SECRETS_DIR: &str = "secrets";

/// The Grafana admin password monstack generated (or last applied).
pub const GRAFANA_PASSWORD_FILE: &str = "secrets/grafana-admin-password";

/// The InfluxDB admin password monstack generated (when the manifest gives none).
pub const INFLUXDB_PASSWORD_FILE: &str = "secrets/influxdb-password";

/// Target files the discovery agent writes from etcd; Prometheus reads them with file_sd.
pub const ETCD_TARGETS_DIR: &str = "prometheus/targets/etcd";

/// The discovered target files are spread over this many shard directories of
/// [`ETCD_TARGETS_DIR`] (`00` to `0f`), each read by a file_sd config of its own. Prometheus'
/// file_sd re-reads every file of a config on any change in its directory, so a registration
/// costs Prometheus one shard's files instead of every service's. 16 inotify instances of
/// Prometheus' user's 128 (the kernel's default limit) stay free for everything else.
pub const ETCD_TARGET_SHARDS: u64 = 16;

/// Where the agent writes a target file before renaming it into its shard: on the same file
/// system (the rename is atomic) but in no directory Prometheus watches, so a registration is
/// one change in one watched directory (the rename), not four (create, write, rename away, and
/// the new name).
pub const ETCD_TARGETS_TMP: &str = ".tmp";

/// An empty target group file, rendered into every shard so that each glob always matches a
/// file (promtool warns about a glob that matches none). The agent leaves it alone; no service's
/// file starts with a dot. Before the shards, one sat in [`ETCD_TARGETS_DIR`] itself.
pub const ETCD_TARGETS_PLACEHOLDER: &str = ".monstack-empty.json";

/// The shard directory (two hex digits) of the discovered target file named `file`: FNV-1a of
/// the name, which stays the same across versions and platforms (std's hasher does not promise
/// that), modulo [`ETCD_TARGET_SHARDS`].
pub fn etcd_target_shard(file: &str) -> String {
    let hash = file.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:02x}", hash % ETCD_TARGET_SHARDS)
}

/// Every shard directory's name, in order.
pub fn etcd_target_shards() -> impl Iterator<Item = String> {
    (0..ETCD_TARGET_SHARDS).map(|shard| format!("{shard:02x}"))
}

/// Whether a directory name is one of the shards'.
pub fn is_etcd_target_shard(name: &str) -> bool {
    // Only the shards of today's count: another directory of two hex digits in a
    // `--targets-dir` the user chose is theirs, and its files are not pruned.
    etcd_target_shards().any(|shard| shard == name)
}

/// The agent's configuration file, and the directory mounted into the agent container.
pub const AGENT_CONFIG_PATH: &str = "agent/agent.yml";
pub const AGENT_CONFIG_DIR: &str = "agent";

/// Paths under `.monstack/` that are not rendered but owned by something else and kept:
/// generated secrets, targets the discovery agent writes, the manifest schema, what `up` last
/// applied (pruning it would make the next `up` reload again).
pub fn is_kept(relative: &str) -> bool {
    relative
        .strip_prefix(SECRETS_DIR)
        .is_some_and(|rest| rest.starts_with('/'))
        || relative
            .strip_prefix(ETCD_TARGETS_DIR)
            .is_some_and(|rest| rest.starts_with('/'))
        || relative == SCHEMA_FILE
        || relative == STATE_FILE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_others_own_are_kept() {
        assert!(is_kept("secrets/grafana-admin-password"));
        assert!(is_kept("prometheus/targets/etcd/api.json"));
        assert!(is_kept(SCHEMA_FILE));
        assert!(
            is_kept(STATE_FILE),
            "pruning it makes every later up reload again"
        );
        assert!(!is_kept("prometheus/prometheus.yml"));
        assert!(!is_kept("secretsx/a"));
        assert!(!is_kept("prometheus/targets/etcdx/a.json"));
    }

    #[test]
    fn target_files_are_spread_over_stable_shards() {
        // Fixed values: a change here moves every existing file on upgrade.
        assert_eq!(etcd_target_shard("api.json"), "09");
        assert_eq!(etcd_target_shard("monitor.json"), "03");
        assert_eq!(etcd_target_shard("a.json"), "00");
        assert_eq!(etcd_target_shard("b.json"), "0f");
        let shards: Vec<String> = etcd_target_shards().collect();
        assert_eq!(shards.len(), 16);
        assert_eq!((shards[0].as_str(), shards[15].as_str()), ("00", "0f"));
        let mut used = std::collections::BTreeMap::<String, usize>::new();
        for i in 0..1000 {
            let shard = etcd_target_shard(&format!("svc{i}.json"));
            assert!(shards.contains(&shard), "{shard}");
            *used.entry(shard).or_default() += 1;
        }
        assert_eq!(used.len(), 16, "every shard used: {used:?}");
        assert!(used.values().all(|&n| (40..=90).contains(&n)), "{used:?}");
        assert!(is_etcd_target_shard("0a") && is_etcd_target_shard("0f"));
        // A directory of the user's that only looks like one (`fe/`, `db/`) is not ours.
        assert!(!is_etcd_target_shard("ff") && !is_etcd_target_shard("db"));
        assert!(!is_etcd_target_shard("0A") && !is_etcd_target_shard(".tmp"));
        assert!(!is_etcd_target_shard("abc") && !is_etcd_target_shard("g0"));
    }
}
