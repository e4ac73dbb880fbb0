//! Reading one registration: an etcd key `{prefix}{name}/{id}` and its value (the common JSON
//! convention or plain `host:port`) become a [`Registration`], or the reason it is skipped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;

/// The metrics path of a registration whose routes name none.
pub(super) const DEFAULT_METRICS_PATH: &str = "/metrics";

/// One instance of a service, as the agent understood its registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// From the key: `/service/{name}/{id}`.
    pub name: String,
    pub id: String,
    /// `host:port` (IPv6 hosts in brackets).
    pub address: String,
    pub metrics_path: String,
    /// Extra target labels from the registration's `labels`.
    pub labels: BTreeMap<String, String>,
    /// The address as registered, when it named the registering host's loopback (`localhost`,
    /// 127.0.0.0/8, `::1`) and `address` was rewritten to `host.docker.internal`: Prometheus
    /// runs in a container, whose loopback is its own.
    pub registered_as: Option<String>,
}

/// Whether loopback registrations are rewritten (the default; `discovery.etcd.rewrite_loopback:
/// false` turns it off). One setting per agent process, set when it starts.
static REWRITE_LOOPBACK: AtomicBool = AtomicBool::new(true);

pub fn set_rewrite_loopback(on: bool) {
    REWRITE_LOOPBACK.store(on, Ordering::Relaxed);
}

/// The host a container reaches the machine's loopback services at.
pub const HOST_FROM_CONTAINERS: &str = "host.docker.internal";

/// Whether `host` (without brackets) is a loopback name or address.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `localhost:8080` -> `host.docker.internal:8080`; other addresses as they are.
fn container_reachable(address: &str) -> Option<String> {
    let (host, port) = address.rsplit_once(':')?;
    is_loopback_host(host).then(|| format!("{HOST_FROM_CONTAINERS}:{port}"))
}

/// The JSON shape of the common convention. Unknown fields (`id`, `name`, `lease_time`, ...) are
/// ignored: the key is the authority for name and id.
#[derive(Deserialize)]
struct JsonRegistration {
    host: Option<String>,
    port: Option<serde_json::Value>,
    address: Option<String>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    labels: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Route {
    #[serde(default)]
    path: String,
}

/// Reads the registration at `key` (which must be `{prefix}{name}/{id}`). `Err` says why it
/// was skipped, for a warning that names the key.
pub fn parse_registration(key: &str, value: &[u8], prefix: &str) -> Result<Registration, String> {
    let (name, id) = parse_key(key, prefix)?;
    let text = std::str::from_utf8(value)
        .map_err(|_| format!("the value is not UTF-8 text: {}", shown(value)))?
        .trim();
    if text.is_empty() {
        return Err("the value is empty; expected JSON or host:port".to_string());
    }
    let mut registration = Registration {
        name,
        id,
        address: String::new(),
        metrics_path: DEFAULT_METRICS_PATH.to_string(),
        labels: BTreeMap::new(),
        registered_as: None,
    };
    if !text.starts_with('{') {
        registration.address = parse_host_port(text).map_err(|why| {
            format!(
                "the value is neither a JSON object nor host:port ({why}): {}",
                shown(value)
            )
        })?;
        return Ok(rewrite(registration));
    }
    let json: JsonRegistration = serde_json::from_str(text).map_err(|e| {
        format!(
            "the value is not a registration JSON object ({e}): {}",
            shown(value)
        )
    })?;
    registration.address = match (&json.address, &json.host, &json.port) {
        (_, Some(host), Some(port)) => join_host_port(host, port)?,
        (Some(address), _, _) => {
            parse_host_port(address).map_err(|why| format!("`address`: {why}"))?
        }
        _ => return Err("the value has neither `host` and `port` nor `address`".to_string()),
    };
    if let Some(route) = json
        .routes
        .iter()
        .find(|r| r.path.ends_with("/metrics"))
        .or_else(|| json.routes.iter().find(|r| r.path.contains("metrics")))
    {
        registration.metrics_path = if route.path.starts_with('/') {
            route.path.clone()
        } else {
            format!("/{}", route.path)
        };
    }
    for (label, value) in json.labels {
        check_label_name(&label)?;
        let value = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "label `{label}` has a value that is not text: {other}"
                ))
            }
        };
        registration.labels.insert(label, value);
    }
    Ok(rewrite(registration))
}

fn rewrite(registration: Registration) -> Registration {
    rewrite_with(registration, REWRITE_LOOPBACK.load(Ordering::Relaxed))
}

fn rewrite_with(mut registration: Registration, on: bool) -> Registration {
    if on {
        if let Some(reachable) = container_reachable(&registration.address) {
            tracing::info!(
                "{}/{} registered {}, the registering host's loopback: scraping {reachable} (Prometheus' own loopback is its container's)",
                registration.name,
                registration.id,
                registration.address
            );
            registration.registered_as =
                Some(std::mem::replace(&mut registration.address, reachable));
        }
    }
    registration
}

fn parse_key(key: &str, prefix: &str) -> Result<(String, String), String> {
    let expected = || format!("expected {prefix}{{name}}/{{id}}");
    let rest = key
        .strip_prefix(prefix)
        .ok_or_else(|| format!("the key is not under {prefix}"))?;
    let rest = rest.trim_start_matches('/');
    match rest.split_once('/') {
        Some((name, id)) if !name.is_empty() && !id.is_empty() && !id.starts_with('/') => {
            Ok((name.to_string(), id.to_string()))
        }
        _ => Err(format!("the key has too few segments; {}", expected())),
    }
}

fn join_host_port(host: &str, port: &serde_json::Value) -> Result<String, String> {
    let port = match port {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(text) => text.parse().ok(),
        _ => None,
    }
    .filter(|p| (1..=65535).contains(p))
    .ok_or_else(|| format!("`port` is not a port number: {port}"))?;
    let host = host.trim();
    check_host(host.trim_start_matches('[').trim_end_matches(']'))?;
    if host.contains(':') && !host.starts_with('[') {
        Ok(format!("[{host}]:{port}"))
    } else {
        Ok(format!("{host}:{port}"))
    }
}

/// `host:port` or `[v6]:port`, returned as given.
fn parse_host_port(text: &str) -> Result<String, String> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| "no port".to_string())?;
    let bare_host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| "unbalanced `[`".to_string())?,
        None if host.contains(':') => {
            return Err("an IPv6 address needs brackets: [addr]:port".to_string())
        }
        None => host,
    };
    check_host(bare_host)?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(text.to_string()),
        _ => Err(format!("`{port}` is not a port number")),
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#@\"'".contains(c))
    {
        return Err(format!("`{host}` is not a host name or address"));
    }
    Ok(())
}

/// Prometheus rejects a whole target file for one bad label name, so a registration with one is
/// skipped instead. `service` and `service_id` come from the key; `__*` names are Prometheus'.
fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "label `{name}`: names starting with __ are reserved"
        ));
    }
    if name == "service" || name == "service_id" {
        return Err(format!(
            "label `{name}` is set from the key and cannot be overridden"
        ));
    }
    Ok(())
}

/// A value for a log line: text when it is text, at most 100 characters.
fn shown(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("`{}...`", &text[..cut]),
        None => format!("`{text}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/service/";

    fn parse(key: &str, value: &str) -> Result<Registration, String> {
        parse_registration(key, value.as_bytes(), P)
    }

    fn registration(name: &str, id: &str, address: &str) -> Registration {
        Registration {
            name: name.into(),
            id: id.into(),
            address: address.into(),
            metrics_path: "/metrics".into(),
            labels: BTreeMap::new(),
            registered_as: None,
        }
    }

    #[test]
    fn the_common_json_shape() {
        let value = r#"{"id":"1","name":"monitor","host":"monitor","port":8080,"lease_time":5,
                        "routes":[{"path":"/health","method":"GET"},
                                  {"path":"/api/metrics","method":"GET"}]}"#;
        let mut expected = registration("monitor", "1", "monitor:8080");
        expected.metrics_path = "/api/metrics".into();
        assert_eq!(parse("/service/monitor/1", value), Ok(expected));
    }

    #[test]
    fn the_metrics_path_prefers_a_route_ending_in_metrics() {
        let value = r#"{"host":"h","port":"9","routes":[{"path":"/metrics-legacy"},
                        {"path":"/v2/metrics"}]}"#;
        assert_eq!(
            parse("/service/a/1", value).unwrap().metrics_path,
            "/v2/metrics"
        );
        let value = r#"{"host":"h","port":9,"routes":[{"path":"prom_metrics_x"}]}"#;
        assert_eq!(
            parse("/service/a/1", value).unwrap().metrics_path,
            "/prom_metrics_x"
        );
        let value = r#"{"host":"h","port":9,"routes":[{"path":"/health"}]}"#;
        assert_eq!(
            parse("/service/a/1", value).unwrap().metrics_path,
            "/metrics"
        );
    }

    #[test]
    fn labels_address_and_plain_text() {
        let value =
            r#"{"address":"10.0.0.1:9100","labels":{"env":"prod","shard":3,"canary":true}}"#;
        let parsed = parse("/service/node/a", value).unwrap();
        assert_eq!(parsed.address, "10.0.0.1:9100");
        assert_eq!(
            parsed.labels,
            BTreeMap::from([
                ("canary".to_string(), "true".to_string()),
                ("env".to_string(), "prod".to_string()),
                ("shard".to_string(), "3".to_string()),
            ])
        );
        assert_eq!(
            parse("/service/node/b", " 10.0.0.2:9100\n"),
            Ok(registration("node", "b", "10.0.0.2:9100"))
        );
        // (A loopback address, so scraped at host.docker.internal: as registered it is kept.)
        assert_eq!(
            parse("/service/node/c", "[::1]:9100")
                .unwrap()
                .registered_as
                .as_deref(),
            Some("[::1]:9100")
        );
        let v6 = r#"{"host":"fe80::1","port":80}"#;
        assert_eq!(
            parse("/service/node/d", v6).unwrap().address,
            "[fe80::1]:80"
        );
        // The key names the service and instance, whatever the value says.
        let other = r#"{"id":"9","name":"other","host":"h","port":1}"#;
        assert_eq!(
            parse("/service/real/1", other),
            Ok(registration("real", "1", "h:1"))
        );
        // An id may hold slashes; a prefix without its trailing slash works too.
        assert_eq!(
            parse_registration("/service/a/x/y", b"h:1", "/service")
                .unwrap()
                .id,
            "x/y"
        );
    }

    #[test]
    fn bad_values_say_why() {
        let cases = [
            ("", "empty"),
            ("localhost", "neither a JSON object nor host:port"),
            ("http://h:80/metrics", "neither a JSON object nor host:port"),
            ("h:0", "not a port number"),
            ("h:99999", "not a port number"),
            ("::1:80", "brackets"),
            ("{\"host\":\"h\"", "not a registration JSON object"),
            (
                "{\"host\":\"h\"}",
                "neither `host` and `port` nor `address`",
            ),
            (
                "{\"host\":\"h\",\"port\":70000}",
                "`port` is not a port number",
            ),
            ("{\"host\":\"\",\"port\":80}", "host is empty"),
            ("{\"address\":\"h\"}", "`address`: no port"),
            (
                "{\"host\":\"h\",\"port\":1,\"routes\":\"/metrics\"}",
                "not a registration",
            ),
            (
                "{\"host\":\"h\",\"port\":1,\"labels\":{\"a-b\":\"x\"}}",
                "not a valid label name",
            ),
            (
                "{\"host\":\"h\",\"port\":1,\"labels\":{\"__x\":\"x\"}}",
                "reserved",
            ),
            (
                "{\"host\":\"h\",\"port\":1,\"labels\":{\"service\":\"x\"}}",
                "set from the key",
            ),
            (
                "{\"host\":\"h\",\"port\":1,\"labels\":{\"a\":[1]}}",
                "not text",
            ),
        ];
        for (value, why) in cases {
            let error = parse("/service/a/1", value).unwrap_err();
            assert!(error.contains(why), "{value:?}: {error}");
        }
        let error = parse_registration("/service/a/1", b"\xff\xfe", P).unwrap_err();
        assert!(error.contains("not UTF-8"), "{error}");
    }

    #[test]
    fn bad_keys_say_why() {
        for key in [
            "/service/a",
            "/service/",
            "/service/a/",
            "/service//1",
            "/service/a//1",
        ] {
            let error = parse(key, "h:1").unwrap_err();
            assert!(error.contains("too few segments"), "{key}: {error}");
        }
        assert!(parse("/other/a/1", "h:1")
            .unwrap_err()
            .contains("not under /service/"));
    }

    #[test]
    fn loopback_registrations_are_scraped_at_the_host_from_containers() {
        let parse = |value: &str| {
            parse_registration("/service/api/1", value.as_bytes(), "/service/").unwrap()
        };
        for (value, address) in [
            (r#"{"host": "localhost", "port": 8080}"#, "localhost:8080"),
            ("127.0.0.1:9000", "127.0.0.1:9000"),
            ("127.3.4.5:9000", "127.3.4.5:9000"),
            ("[::1]:9000", "[::1]:9000"),
            ("LOCALHOST:1", "LOCALHOST:1"),
        ] {
            let reg = parse(value);
            let port = address.rsplit(':').next().unwrap();
            assert_eq!(
                reg.address,
                format!("host.docker.internal:{port}"),
                "{value}"
            );
            assert_eq!(reg.registered_as.as_deref(), Some(address), "{value}");
        }
        for value in [
            "10.0.0.5:80",
            "api.internal:80",
            "[fe80::1]:80",
            "localhost.example:80",
        ] {
            let reg = parse(value);
            assert_eq!(reg.address, value);
            assert_eq!(reg.registered_as, None);
        }
        // Turned off, they stay.
        let kept = rewrite_with(
            Registration {
                registered_as: None,
                address: "localhost:8080".into(),
                ..parse("10.0.0.5:80")
            },
            false,
        );
        assert_eq!(
            (kept.address.as_str(), kept.registered_as),
            ("localhost:8080", None)
        );
    }
}
