//! `targets:`: adding addresses to a job (creating the job when it is new) and removing
//! addresses or whole jobs.

use super::quoting::{double_quoted, quote_like, yaml_scalar};
use super::settings::{set_entry, set_label};
use super::spans::{line_at, line_start, seq_item_span, LineKind};
use super::splice::{
    add_entry, append_flow, append_section, apply, insert_lines, remove_from_seq, set_null, spaces,
    start_block_list, step,
};
use super::tree::{entry, entry_to_edit, is_flow, parse_input, scalar, top_entry};
use super::{unsupported, Change, Edit, EditError, JobSettings};
use crate::manifest::yaml::{Node, Value};

/// Adds `addrs` to `job`, creating the job (with `settings`) when it does not exist; for an
/// existing job the given settings are set or replaced and the labels merged.
pub fn add_targets(
    text: &str,
    job: &str,
    addrs: &[String],
    settings: &JobSettings,
) -> Result<Edit, EditError> {
    let root = parse_input(text)?;
    for (i, addr) in addrs.iter().enumerate() {
        if addrs[..i].contains(addr) {
            return Err(EditError::Duplicate {
                job: job.into(),
                addr: addr.clone(),
            });
        }
    }
    let Some(item) = find_job(text, &root, job)? else {
        let changes = new_job(text, &root, job, addrs, settings)?;
        return Ok(Edit {
            text: apply(text, changes)?,
            created_job: true,
        });
    };
    let existing = job_addresses(item);
    if let Some(addr) = addrs.iter().find(|a| existing.contains(&a.as_str())) {
        return Err(EditError::Duplicate {
            job: job.into(),
            addr: addr.clone(),
        });
    }
    // One change at a time, each on a fresh parse: simpler than keeping offsets in step.
    let mut out = text.to_string();
    for addr in addrs {
        out = step(out, |t, root| add_address(t, job_item(t, root, job)?, addr))?;
    }
    let keys = [
        ("path", &settings.path),
        ("scheme", &settings.scheme),
        ("interval", &settings.interval),
        (
            "fallback_scrape_protocol",
            &settings.fallback_scrape_protocol,
        ),
    ];
    for (key, value) in keys {
        if let Some(value) = value {
            out = step(out, |t, root| {
                set_entry(t, job_item(t, root, job)?, key, value)
            })?;
        }
    }
    for (name, value) in &settings.labels {
        out = step(out, |t, root| {
            set_label(t, job_item(t, root, job)?, name, value)
        })?;
    }
    Ok(Edit {
        text: out,
        created_job: false,
    })
}

/// Removes `addrs` from `job`, or the whole job when `addrs` is empty. Removing the last job
/// leaves `targets: []`; removing a job's last target leaves its `targets: []`.
pub fn remove_targets(text: &str, job: &str, addrs: &[String]) -> Result<Edit, EditError> {
    let root = parse_input(text)?;
    let item = job_item(text, &root, job)?;
    let existing = job_addresses(item);
    if let Some(addr) = addrs.iter().find(|a| !existing.contains(&a.as_str())) {
        return Err(EditError::NotFound {
            job: job.into(),
            addr: addr.clone(),
        });
    }
    let mut out = text.to_string();
    if addrs.is_empty() {
        out = step(out, |t, root| {
            let (key, list) = top_entry(t, root, "targets")?.ok_or_else(|| no_job(job))?;
            let Value::Seq(items) = &list.value else {
                return Err(no_job(job));
            };
            let index = items
                .iter()
                .position(|i| job_name(i) == Some(job))
                .ok_or_else(|| no_job(job))?;
            remove_from_seq(t, key, false, list, index)
        })?;
    }
    let mut done: Vec<&String> = Vec::new();
    for addr in addrs {
        if done.contains(&addr) {
            continue;
        }
        done.push(addr);
        out = step(out, |t, root| {
            let item = job_item(t, root, job)?;
            let flow = is_flow(t, item);
            let (key, list) =
                entry_to_edit(t, item, "targets")?.ok_or_else(|| not_found(job, addr))?;
            let Value::Seq(items) = &list.value else {
                return Err(not_found(job, addr));
            };
            let index = items
                .iter()
                .position(|i| scalar(i) == Some(addr))
                .ok_or_else(|| not_found(job, addr))?;
            remove_from_seq(t, key, flow, list, index)
        })?;
    }
    Ok(Edit {
        text: out,
        created_job: false,
    })
}

fn job_name(item: &Node) -> Option<&str> {
    entry(item, "job").and_then(|(_, v)| scalar(v))
}

fn job_addresses(item: &Node) -> Vec<&str> {
    match entry(item, "targets").map(|(_, v)| &v.value) {
        Some(Value::Seq(items)) => items.iter().filter_map(scalar).collect(),
        _ => Vec::new(),
    }
}

fn find_job<'n>(text: &str, root: &'n Node, job: &str) -> Result<Option<&'n Node>, EditError> {
    let Some((_, list)) = top_entry(text, root, "targets")? else {
        return Ok(None);
    };
    match &list.value {
        Value::Null => Ok(None),
        Value::Seq(items) => match items.iter().find(|i| job_name(i) == Some(job)) {
            Some(item) if text.as_bytes().get(item.pos.offset) == Some(&b'*') => Err(unsupported(
                item.pos.line,
                format!("job `{job}` is an alias (`*name`)"),
            )),
            found => Ok(found),
        },
        _ => Err(unsupported(
            list.pos.line,
            "`targets` is not a list of jobs",
        )),
    }
}

fn job_item<'n>(text: &str, root: &'n Node, job: &str) -> Result<&'n Node, EditError> {
    find_job(text, root, job)?.ok_or_else(|| no_job(job))
}

fn no_job(job: &str) -> EditError {
    EditError::NoSuchJob { job: job.into() }
}

fn not_found(job: &str, addr: &str) -> EditError {
    EditError::NotFound {
        job: job.into(),
        addr: addr.into(),
    }
}

fn add_address(text: &str, job: &Node, addr: &str) -> Result<Vec<Change>, EditError> {
    let Some((k, v)) = entry_to_edit(text, job, "targets")? else {
        return add_entry(text, job, "targets", &format!("[{}]", double_quoted(addr)));
    };
    match &v.value {
        Value::Null => set_null(
            text,
            k,
            v,
            is_flow(text, job),
            &format!("[{}]", double_quoted(addr)),
        ),
        Value::Seq(items) if is_flow(text, v) => {
            append_flow(text, v, items, &quote_like(text, items.last(), addr))
        }
        Value::Seq(items) => {
            let last = items.last().expect("block lists have items");
            let span = seq_item_span(text, last)?;
            let line = format!(
                "{}- {}\n",
                spaces(span.indent),
                quote_like(text, Some(last), addr)
            );
            Ok(vec![insert_lines(text, span.end, &line)])
        }
        _ => Err(unsupported(v.pos.line, "the job's `targets` is not a list")),
    }
}

/// The changes adding a job that does not exist yet.
fn new_job(
    text: &str,
    root: &Node,
    job: &str,
    addrs: &[String],
    settings: &JobSettings,
) -> Result<Vec<Change>, EditError> {
    let targets: Vec<String> = addrs.iter().map(|a| double_quoted(a)).collect();
    let mut fields = vec![
        ("job", yaml_scalar(job)),
        ("targets", format!("[{}]", targets.join(", "))),
    ];
    for (key, value) in [
        ("path", &settings.path),
        ("scheme", &settings.scheme),
        ("interval", &settings.interval),
        (
            "fallback_scrape_protocol",
            &settings.fallback_scrape_protocol,
        ),
    ] {
        if let Some(value) = value {
            fields.push((key, yaml_scalar(value)));
        }
    }
    if !settings.labels.is_empty() {
        let labels: Vec<String> = settings
            .labels
            .iter()
            .map(|(k, v)| format!("{}: {}", yaml_scalar(k), yaml_scalar(v)))
            .collect();
        fields.push(("labels", format!("{{{}}}", labels.join(", "))));
    }
    let flow = format!(
        "{{{}}}",
        fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let block = |dash: usize, keys: usize| {
        let mut s = spaces(dash) + "-" + &spaces(keys.saturating_sub(dash + 1).max(1));
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                s += &spaces(keys);
            }
            s += &format!("{k}: {v}\n");
        }
        s
    };
    let Some((key, list)) = top_entry(text, root, "targets")? else {
        return Ok(vec![append_section(text, "targets", &block(2, 4))]);
    };
    match &list.value {
        Value::Null => start_block_list(text, key, list, &block(2, 4)),
        Value::Seq(items) if is_flow(text, list) && items.is_empty() => {
            start_block_list(text, key, list, &block(2, 4))
        }
        Value::Seq(items) if is_flow(text, list) => append_flow(text, list, items, &flow),
        Value::Seq(items) => {
            let last = items.last().expect("block lists have items");
            let span = seq_item_span(text, last)?;
            let mut lines = if matches!(last.value, Value::Map(_)) && !is_flow(text, last) {
                block(
                    span.indent,
                    last.pos.offset - line_start(text, last.pos.offset),
                )
            } else {
                format!("{}- {flow}\n", spaces(span.indent))
            };
            // Jobs separated by blank lines get one too.
            if span.start > 0
                && line_at(text, line_start(text, span.start - 1)).1 == LineKind::Blank
            {
                lines.insert(0, '\n');
            }
            Ok(vec![insert_lines(text, span.end, &lines)])
        }
        _ => Err(unsupported(
            list.pos.line,
            "`targets` is not a list of jobs",
        )),
    }
}
