//! What `register` and `add-target` share: the stack's etcd (and the key prefix), `--label K=V`
//! arguments, and the check of a target address (with the localhost warning).

use std::collections::BTreeMap;

use crate::clients::etcd::Etcd;
use crate::error::{Error, Result};
use crate::model::{host_url, Stack};

/// The stack's etcd as seen from this machine, and the discovery prefix.
pub fn etcd_of(stack: &Stack, client: &reqwest::Client) -> Result<(Etcd, String)> {
    let Some(etcd) = &stack.etcd else {
        return Err(Error::usage(
            "the stack has no etcd",
            Some("add `etcd: {}` and `discovery: {etcd: {}}` to the manifest".to_string()),
        ));
    };
    let prefix = stack
        .discovery
        .etcd
        .as_ref()
        .map_or("/service/".to_string(), |d| d.prefix.clone());
    Ok((Etcd::new(client, host_url(etcd.bind, etcd.port)), prefix))
}

/// `K=V` arguments as labels, checked like the manifest's.
pub fn parse_labels(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for arg in args {
        let Some((k, v)) = arg.split_once('=') else {
            return Err(Error::usage(
                format!("label `{arg}` is not K=V"),
                Some("e.g. --label env=prod".to_string()),
            ));
        };
        let valid = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with("__");
        if !valid {
            return Err(Error::usage(
                format!("invalid label name `{k}`"),
                Some("letters, digits and `_`, not starting with a digit or `__`".to_string()),
            ));
        }
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(labels)
}

/// Checks `host:port` (exit 2 when invalid) and warns about loopback addresses, which inside
/// the Prometheus container mean Prometheus itself.
pub fn check_address(addr: &str, printer: &crate::output::Printer) -> Result<()> {
    if let Err((message, hint)) = crate::manifest::check_target_address(addr) {
        return Err(Error::usage(message, Some(hint)));
    }
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
        let port = addr.rsplit_once(':').map_or("", |(_, p)| p);
        printer.warn(&format!("`{addr}` inside the Prometheus container is Prometheus itself; a service on this machine is `host.docker.internal:{port}`"));
    }
    Ok(())
}
