//! `keep`/`drop` (one rule each on `__name__`) and `write_relabel_configs`, checked as
//! Prometheus' relabel config checks them.

use super::super::values::valid_label_name;
use crate::manifest::reader::Reader;
use crate::manifest::spec;
use crate::manifest::yaml::Node;
use crate::model::WriteRelabel;

/// `keep: [up, 'node_.*']`: one rule on `__name__` whose regex is the alternatives.
pub(super) fn name_filter(
    r: &mut Reader,
    node: &Node,
    key: &str,
    action: &str,
) -> Option<WriteRelabel> {
    let items = r.string_list(node, key)?;
    if items.is_empty() {
        r.error(
            node.pos,
            format!("`{key}` is empty"),
            Some(format!(
                "list metric names or regexes, e.g. `{key}: [up, 'node_.*']`, or remove it"
            )),
        );
        return None;
    }
    let mut alternatives = Vec::new();
    for (item, pos) in items {
        if item.is_empty() {
            r.error(pos, format!("an empty name in `{key}`"), None);
            continue;
        }
        if let Err(why) = crate::manifest::promql::check_regex(&item) {
            r.error(
                pos,
                format!("`{item}` in `{key}` is not a valid regex: {why}"),
                Some("names and RE2 regexes, anchored at both ends: `node_.*`, `up`".into()),
            );
            continue;
        }
        alternatives.push(item);
    }
    Some(WriteRelabel {
        source_labels: vec!["__name__".into()],
        regex: Some(alternatives.join("|")),
        action: Some(action.into()),
        ..WriteRelabel::default()
    })
}

pub(super) fn read_relabel(r: &mut Reader, node: &Node) -> Option<WriteRelabel> {
    let obj = r.object(node, &spec::WRITE_RELABEL)?;
    let mut source_labels = Vec::new();
    if let Some(n) = obj.get("source_labels") {
        for (label, pos) in r.string_list(n, "source_labels").unwrap_or_default() {
            if !valid_label_name(&label) {
                r.error(pos, format!("invalid label name `{label}`"), None);
            }
            source_labels.push(label);
        }
    }
    let regex = r.opt_string(&obj, "regex");
    if let (Some(re), Some(n)) = (&regex, obj.get("regex")) {
        if let Err(why) = crate::manifest::promql::check_regex(re) {
            r.error(n.pos, format!("`regex` is not a valid regex: {why}"), None);
        }
    }
    let action = obj
        .get("action")
        .and_then(|n| r.enumeration(n, "action", &spec::WRITE_RELABEL.field("action")?.ty));
    let target_label = r.opt_string(&obj, "target_label");
    let modulus = obj
        .get("modulus")
        .and_then(|n| r.int(n, "modulus", 1, i64::MAX))
        .map(|n| n as u64);
    // An action that is not one was reported already; its other needs are unknown.
    let act = match (&action, obj.has("action")) {
        (Some(action), _) => action.as_str(),
        (None, false) => "replace",
        (None, true) => "",
    };
    let needs_target = [
        "replace",
        "hashmod",
        "lowercase",
        "uppercase",
        "keepequal",
        "dropequal",
    ];
    if needs_target.contains(&act) && target_label.is_none() {
        r.error(
            obj.pos(),
            format!("a `{act}` rule needs `target_label`"),
            None,
        );
    }
    // What Prometheus' relabel config refuses beside these actions (relabel.go's Validate).
    let (allowed, said): (&[&str], &str) = match act {
        "labeldrop" | "labelkeep" => (&["action", "regex"], "only `regex`"),
        "keepequal" | "dropequal" => (
            &["action", "source_labels", "target_label"],
            "only `source_labels` and `target_label`",
        ),
        _ => (&[], ""),
    };
    if !allowed.is_empty() {
        for key in [
            "source_labels",
            "separator",
            "regex",
            "target_label",
            "replacement",
            "modulus",
        ] {
            if let (false, Some(pos)) = (allowed.contains(&key), obj.key_pos(key)) {
                r.error(
                    pos,
                    format!("a `{act}` rule takes {said}, not `{key}`"),
                    Some(format!(
                        "remove `{key}`: Prometheus refuses it beside `{act}`"
                    )),
                );
            }
        }
    }
    if act == "hashmod" && modulus.is_none() {
        r.error(obj.pos(), "a `hashmod` rule needs `modulus`", None);
    }
    Some(WriteRelabel {
        source_labels,
        separator: r.opt_string(&obj, "separator"),
        regex,
        target_label,
        replacement: r.opt_string(&obj, "replacement"),
        modulus,
        action,
    })
}
