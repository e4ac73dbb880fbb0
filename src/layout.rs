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

/// An empty target group file in [`ETCD_TARGETS_DIR`], rendered so that the directory's glob
/// always matches a file (promtool warns about a glob that matches none). The agent leaves
/// dot-files alone; no service's file starts with a dot.
pub const ETCD_TARGETS_PLACEHOLDER: &str = "prometheus/targets/etcd/.monstack-empty.json";

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
}
