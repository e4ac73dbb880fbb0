//! What `register` and `add-target` share: the etcd discovery reads (the stack's own, or the
//! existing cluster of `discovery.etcd.endpoints`, with its TLS and user) and the key prefix,
//! `--label K=V` arguments, the check of a target address (with the localhost warning), and the
//! registration kept alive on a lease.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::clients::etcd::Etcd;
use crate::error::{Error, Result};
use crate::model::{host_url, Stack};
use crate::output::Printer;

/// The etcd discovery reads, as seen from this machine, and the discovery prefix.
pub fn etcd_of(stack: &Stack) -> Result<(Etcd, String)> {
    let prefix = stack
        .discovery
        .etcd
        .as_ref()
        .map_or("/service/".to_string(), |d| d.prefix.clone());
    if let Some(cluster) = stack
        .discovery
        .etcd
        .as_ref()
        .and_then(|d| d.cluster.as_ref())
    {
        return Ok((Etcd::connect(cluster)?, prefix));
    }
    let Some(etcd) = &stack.etcd else {
        return Err(Error::usage(
            "the stack has no etcd",
            Some(
                "add `etcd: {}` and `discovery: {etcd: {}}` to the manifest, or an existing \
                 cluster's `discovery.etcd.endpoints`"
                    .to_string(),
            ),
        ));
    };
    let client = crate::clients::http_client()?;
    Ok((Etcd::new(&client, host_url(etcd.bind, etcd.port)), prefix))
}

/// Writes `value` at `key` on a lease of `ttl_secs` and keeps the lease alive (every third of
/// the TTL) until `stop` completes; then revokes it, so the key goes at once. Etcd that cannot be
/// reached is retried (with several members, the client moves on to the next one); a lease that
/// expired meanwhile is replaced by a new registration. `registered` is called once the key is
/// written the first time.
pub async fn keep_registered(
    etcd: &Etcd,
    key: &str,
    value: &[u8],
    ttl_secs: i64,
    printer: &Printer,
    stop: impl Future<Output = ()>,
    registered: impl FnOnce(i64),
) -> Result<()> {
    let mut stop = std::pin::pin!(stop);
    // etcd may still be starting (a stack coming up): retry until it answers or we stop.
    let mut pause = Duration::from_millis(200);
    let mut lease = loop {
        match register(etcd, key, value, ttl_secs).await {
            Ok(lease) => break lease,
            Err(e) => {
                printer.warn(&format!("{e:#}; retrying in {:.1}s", pause.as_secs_f64()));
                tokio::select! {
                    _ = &mut stop => return Ok(()),
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    };
    registered(lease);
    let every = Duration::from_millis((ttl_secs as u64 * 1000) / 3);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(every) => {}
        }
        match etcd.keep_alive(lease).await {
            Ok(left) if left > 0 => {}
            Ok(_) => {
                printer
                    .warn("the lease expired (etcd was unreachable too long); registering again");
                match register(etcd, key, value, ttl_secs).await {
                    Ok(new) => lease = new,
                    Err(e) => printer.warn(&format!("{e:#}; retrying")),
                }
            }
            Err(e) => printer.warn(&format!("keeping the lease alive: {e:#}; retrying")),
        }
    }
    match etcd.revoke(lease).await {
        Ok(()) => printer.status("Removed", key),
        Err(e) => printer.warn(&format!(
            "revoking the lease: {e:#}; the registration ends when its {ttl_secs}s lease runs out"
        )),
    }
    Ok(())
}

async fn register(etcd: &Etcd, key: &str, value: &[u8], ttl_secs: i64) -> anyhow::Result<i64> {
    let lease = etcd.grant(ttl_secs).await?;
    etcd.put(key, value, Some(lease.id)).await?;
    Ok(lease.id)
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
