//! What node_exporter needs to know about the host before its container is specified: the
//! address of Docker's bridge it listens on, and whether the host's `/` can be mounted with
//! `rslave` propagation.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::model::Stack;
use crate::stack::docker::Engine;

/// Docker's bridge address, when node_exporter listens there (its `bind` is loopback: in the
/// host's network namespace that would be out of Prometheus' reach).
pub(super) async fn node_exporter_gateway(
    engine: &Engine,
    stack: &Stack,
) -> Result<Option<IpAddr>> {
    let Some(node) = stack
        .node_exporter
        .as_ref()
        .filter(|n| n.bind.is_loopback())
    else {
        return Ok(None);
    };
    match engine.host_gateway().await? {
        Some(gateway) => Ok(Some(gateway)),
        None => Err(Error::usage(
            "node_exporter would listen on the address of Docker's default bridge (host.docker.internal), and this engine has no default bridge; nothing was changed",
            Some(format!("set `node_exporter: {{bind: ADDRESS}}` to an address of this machine that Prometheus' container reaches (port {})", node.port)),
        )),
    }
}

/// Whether `/` is a shared or slave mount here (systemd makes it shared): Docker refuses
/// `rslave` on a private one ("path / is mounted on / but it is not a shared or slave mount"),
/// as in some VMs and containers. Read from this process's mount table, which is the engine's
/// on a local engine.
pub(super) fn root_is_shared() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|table| mount_propagates(&table, "/"))
        .unwrap_or(false)
}

/// In a `/proc/<pid>/mountinfo` table: whether the mount at `mount_point` has a peer group
/// (`shared:N`) or a master (`master:N`) among its optional fields (those before `-`).
fn mount_propagates(table: &str, mount_point: &str) -> bool {
    table
        .lines()
        .rev()
        .find(|line| line.split_whitespace().nth(4) == Some(mount_point))
        .is_some_and(|line| {
            line.split_whitespace()
                .skip(6)
                .take_while(|field| *field != "-")
                .any(|field| field.starts_with("shared:") || field.starts_with("master:"))
        })
}

#[cfg(test)]
mod tests {
    use super::mount_propagates;

    #[test]
    fn the_root_mount_propagates_when_shared_or_slave() {
        let systemd = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                       23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n";
        assert!(mount_propagates(systemd, "/"));
        let slave = "30 25 0:40 / / rw master:7 - overlay overlay rw\n";
        assert!(mount_propagates(slave, "/"));
        let private = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n";
        assert!(!mount_propagates(private, "/"));
        // The last mount on a point is the visible one.
        let over = format!("{systemd}40 22 0:50 / / rw - tmpfs tmpfs rw\n");
        assert!(!mount_propagates(&over, "/"));
        assert!(!mount_propagates("", "/"));
    }
}
