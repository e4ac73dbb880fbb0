//! Grafana `$`-expands most string values of provisioning YAML: the helpers that write values
//! so that they reach Grafana as written, shared by every provisioning file.

use serde::Serialize;
use serde_json::{Map, Value};

pub(super) fn json_map<const N: usize>(entries: [(&str, Value); N]) -> Map<String, Value> {
    entries
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

/// YAML for a provisioning file whose every string value Grafana `$`-expands.
pub(super) fn expanded_yaml<T: Serialize>(file: &T) -> anyhow::Result<String> {
    let value = serde_json::to_value(file)?;
    crate::manifest::yaml::to_string(&escape_dollars(value))
}

/// `$` -> `$$` in every string value (not in keys, which Grafana does not expand).
pub(super) fn escape_dollars(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(text.replace('$', "$$")),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_dollars).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, escape_dollars(value)))
                .collect(),
        ),
        other => other,
    }
}
