//! `monstack register`: a service registration in the etcd discovery reads (the stack's, or
//! `discovery.etcd.endpoints`), kept alive until Ctrl-C and revoked on exit.

use anyhow::Context as _;

use crate::error::{Error, Result};
use crate::model::Duration as PromDuration;
use crate::project::register::{check_address, etcd_of, keep_registered, parse_labels};
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
    let (etcd, prefix) = etcd_of(&stack)?;
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
    keep_registered(
        &etcd,
        &key,
        &bytes,
        ttl_secs,
        &ctx.printer,
        crate::signal::stop_signal(),
        |lease| {
            ctx.printer.status(
                "Registered",
                &format!(
                    "{key} -> {} (lease {lease:x}, ttl {ttl_secs}s); Ctrl-C removes it",
                    reg.addr
                ),
            )
        },
    )
    .await
}
