//! `monstack register`: a service registration in the stack's etcd, kept alive until Ctrl-C
//! and revoked on exit.

use std::time::Duration;

use anyhow::Context as _;

use crate::clients::etcd::Etcd;
use crate::error::{Error, Result};
use crate::model::Duration as PromDuration;
use crate::project::register::{check_address, etcd_of, parse_labels};
use crate::project::{load, Context};

pub struct Registration {
    pub name: String,
    pub addr: String,
    pub id: Option<String>,
    pub ttl: String,
    pub path: String,
    pub labels: Vec<String>,
}

pub async fn run(ctx: &Context, reg: Registration) -> Result<()> {
    let stack = load(ctx)?;
    check_address(&reg.addr, &ctx.printer)?;
    let labels = parse_labels(&reg.labels)?;
    let ttl = PromDuration::parse(&reg.ttl)
        .map_err(|e| Error::usage(format!("--ttl: {e}"), Some("e.g. 10s".to_string())))?;
    let ttl_secs = (ttl.as_secs() as i64).max(2);
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !valid_name(&reg.name) {
        return Err(Error::usage(
            format!("invalid service name `{}`", reg.name),
            Some("letters, digits, `-`, `_`, `.`".to_string()),
        ));
    }
    let id = match reg.id {
        Some(id) if valid_name(&id) => id,
        Some(id) => {
            return Err(Error::usage(
                format!("invalid id `{id}`"),
                Some("letters, digits, `-`, `_`, `.`".to_string()),
            ))
        }
        None => crate::stack::secrets::generate(8)?,
    };
    if !reg.path.starts_with('/') {
        return Err(Error::usage(
            format!("--path must start with `/`, found `{}`", reg.path),
            None,
        ));
    }
    let client = crate::clients::http_client()?;
    let (etcd, prefix) = etcd_of(&stack, &client)?;
    let key = format!("{prefix}{}/{id}", reg.name);
    let (host, port) = reg.addr.rsplit_once(':').unwrap_or((&reg.addr, "0"));
    let value = serde_json::json!({
        "id": id,
        "name": reg.name,
        "host": host.trim_start_matches('[').trim_end_matches(']'),
        "port": port.parse::<u16>().unwrap_or(0),
        "lease_time": ttl_secs,
        "routes": [{"path": reg.path, "method": "GET"}],
        "labels": labels,
    });
    let bytes = serde_json::to_vec(&value).context("encoding the registration")?;

    // etcd may still be starting (a stack coming up): retry until it answers or Ctrl-C.
    let mut pause = Duration::from_millis(200);
    let mut lease = loop {
        match register(&etcd, &key, &bytes, ttl_secs).await {
            Ok(lease) => break lease,
            Err(e) => {
                ctx.printer
                    .warn(&format!("{e:#}; retrying in {:.1}s", pause.as_secs_f64()));
                tokio::select! {
                    _ = crate::signal::stop_signal() => return Ok(()),
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    };
    ctx.printer.status(
        "Registered",
        &format!(
            "{key} -> {} (lease {lease:x}, ttl {ttl_secs}s); Ctrl-C removes it",
            reg.addr
        ),
    );
    let every = Duration::from_millis((ttl_secs as u64 * 1000) / 3);
    let result: Result<()> = loop {
        tokio::select! {
            _ = crate::signal::stop_signal() => break Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        match etcd.keep_alive(lease).await {
            Ok(left) if left > 0 => {}
            Ok(_) => {
                ctx.printer
                    .warn("the lease expired (etcd was unreachable too long); registering again");
                match register(&etcd, &key, &bytes, ttl_secs).await {
                    Ok(new) => lease = new,
                    Err(e) => ctx.printer.warn(&format!("{e:#}; retrying")),
                }
            }
            Err(e) => ctx
                .printer
                .warn(&format!("keeping the lease alive: {e:#}; retrying")),
        }
    };
    match etcd.revoke(lease).await {
        Ok(()) => ctx.printer.status("Removed", &key),
        Err(e) => ctx.printer.warn(&format!(
            "revoking the lease: {e:#}; the registration ends when its {ttl_secs}s lease runs out"
        )),
    }
    result
}

async fn register(etcd: &Etcd, key: &str, value: &[u8], ttl_secs: i64) -> anyhow::Result<i64> {
    let lease = etcd.grant(ttl_secs).await?;
    etcd.put(key, value, Some(lease.id)).await?;
    Ok(lease.id)
}
