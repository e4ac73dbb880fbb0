//! Checks of values that several sections share: label names and label sets (Prometheus'
//! external labels, job labels, alert labels and `group_by`), and http(s) URLs (datasources,
//! channels).

use std::collections::BTreeMap;

use crate::manifest::reader::Reader;
use crate::manifest::yaml::Node;

pub(super) fn valid_label_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn read_labels(r: &mut Reader, node: &Node, what: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (name, name_pos, value, _) in r.string_map(node, what).unwrap_or_default() {
        if !valid_label_name(&name) {
            r.error(
                name_pos,
                format!("invalid label name `{name}`"),
                Some("label names are letters, digits and `_`, not starting with a digit".into()),
            );
        } else if name.starts_with("__") {
            r.error(
                name_pos,
                format!("label name `{name}` is reserved"),
                Some("names starting with `__` are internal to Prometheus".into()),
            );
        }
        labels.insert(name, value);
    }
    labels
}

pub(super) fn check_url(r: &mut Reader, node: &Node, what: &str) -> String {
    let url = r.string(node, what).unwrap_or_default();
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !url.contains(char::is_whitespace);
    if !ok {
        // The URL may carry a token: do not echo it.
        r.error(
            node.pos,
            format!("`{what}` must be an http:// or https:// URL"),
            Some("e.g. https://hooks.example.com/alerts".into()),
        );
    }
    url
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::read_yaml;
    use super::{check_url, read_labels, valid_label_name};

    #[test]
    fn label_names_are_letters_digits_and_underscores_not_starting_with_a_digit() {
        for name in ["job", "_private", "a1_b", "__name__", "Env"] {
            assert!(valid_label_name(name), "{name}");
        }
        for name in ["", "1abc", "a-b", "a.b", "a b", "é"] {
            assert!(!valid_label_name(name), "{name}");
        }
    }

    #[test]
    fn labels_with_invalid_or_reserved_names_are_reported_and_kept() {
        let (labels, problems) = read_yaml("{env: prod, __meta: x, 1x: y}", |r, node| {
            read_labels(r, node, "labels")
        });
        assert_eq!(
            labels,
            BTreeMap::from([
                ("env".to_string(), "prod".to_string()),
                ("__meta".to_string(), "x".to_string()),
                ("1x".to_string(), "y".to_string()),
            ])
        );
        let messages: Vec<&str> = problems.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            ["label name `__meta` is reserved", "invalid label name `1x`"]
        );
        let (_, problems) = read_yaml("[a, b]", |r, node| read_labels(r, node, "labels"));
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn urls_are_http_or_https_with_a_host_and_are_not_echoed() {
        for url in ["https://hooks.example.com/alerts", "http://10.0.0.5:8086"] {
            let (read, problems) = read_yaml(url, |r, node| check_url(r, node, "url"));
            assert_eq!((read.as_str(), problems), (url, vec![]));
        }
        for url in [
            "hooks.example.com/x",
            "ftp://files.example.com",
            "https://",
            "https:///path",
            "'http://a b'",
        ] {
            let (_, problems) = read_yaml(url, |r, node| check_url(r, node, "url"));
            assert_eq!(
                problems,
                [(
                    "`url` must be an http:// or https:// URL".to_string(),
                    Some("e.g. https://hooks.example.com/alerts".to_string())
                )],
                "{url}"
            );
        }
    }
}
