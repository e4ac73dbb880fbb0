//! `monstack export kubernetes`: the stack as a kustomize directory for kube-prometheus-stack.

use std::path::Path;

use anyhow::Context as _;

use crate::error::{Error, Result};
use crate::export::{self, Options};
use crate::project::{load, Context};

pub fn kubernetes(ctx: &Context, options: Options, output: &Path) -> Result<()> {
    if !export::is_dns_label(&options.namespace) {
        return Err(Error::usage(
            format!(
                "--namespace `{}` is not a Kubernetes namespace name",
                options.namespace
            ),
            Some("lower-case letters, digits and `-`, at most 63".to_string()),
        ));
    }
    if options.release.is_empty() || !export::is_label_value(&options.release) {
        return Err(Error::usage(
            format!("--release `{}` is not a label value", options.release),
            Some(
                "letters, digits, `-`, `_` and `.`, at most 63, as Helm release names are"
                    .to_string(),
            ),
        ));
    }
    if options.agent_image.is_empty() || options.agent_image.contains(char::is_whitespace) {
        return Err(Error::usage(
            format!(
                "--agent-image `{}` is not an image reference",
                options.agent_image
            ),
            None,
        ));
    }
    if let Some(url) = &options.etcd_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::usage(
                format!("--etcd `{url}` is not an http(s) URL"),
                Some("e.g. http://etcd.infra.svc:2379".to_string()),
            ));
        }
    }
    if let Some(reason) = export::write::refusal(output) {
        return Err(Error::usage(
            format!("not writing into {}: {reason}", output.display()),
            Some("choose another directory with -o".to_string()),
        ));
    }
    let stack = load(ctx)?;
    let exported = export::kubernetes(&stack, &options).context("exporting the stack")?;
    let report = export::write::write_dir(output, &exported)?;
    for note in &exported.notes {
        ctx.printer.warn(note);
    }
    let secrets = exported.files.iter().filter(|f| f.secret).count();
    let mut parts = vec![
        format!("{} objects", exported.files.len() - 1),
        format!("{} changed", report.written.len()),
    ];
    if !report.removed.is_empty() {
        parts.push(format!("{} stale removed", report.removed.len()));
    }
    if secrets > 0 {
        parts.push(format!("{secrets} Secrets, readable by you alone"));
    }
    ctx.printer.status(
        "Exported",
        &format!("{}/ ({})", output.display(), parts.join(", ")),
    );
    ctx.printer.note(&format!(
        "apply with `kubectl apply --server-side -k {}`; kube-prometheus-stack values to set: README, \"On Kubernetes\"",
        output.display()
    ));
    Ok(())
}
