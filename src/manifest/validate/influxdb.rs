//! `influxdb`: the optional InfluxDB 1.x service, its database, admin user and password, and
//! the Grafana datasource it brings (whose name and uid no manifest datasource may take).

use std::net::IpAddr;

use super::services::{read_optional_service, PortTable};
use crate::manifest::reader::{scalar_text, Obj, Reader};
use crate::manifest::spec;
use crate::manifest::yaml::{Node, Value};
use crate::manifest::INFLUXDB_IMAGE;
use crate::model::{Datasource, Influxdb, INFLUXDB_DATASOURCE_UID, INFLUXDB_PORT};

/// The provisioned datasource's display name.
pub const DATASOURCE_NAME: &str = "InfluxDB";

pub(super) fn read_influxdb(
    r: &mut Reader,
    m: &Obj,
    project: &str,
    bind: IpAddr,
    ports: &mut PortTable,
) -> Option<Influxdb> {
    let service = read_optional_service(
        r,
        m,
        "influxdb",
        &spec::INFLUXDB,
        INFLUXDB_IMAGE,
        INFLUXDB_PORT,
        bind,
        ports,
    )?;
    // The section's keys were checked with the service's; only the values are read here.
    let get = |key: &str| -> Option<&Node> {
        let Value::Map(entries) = &m.get("influxdb")?.value else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| scalar_text(k) == Some(key))
            .map(|(_, v)| v)
            .filter(|v| v.value != Value::Null)
    };
    let name = |r: &mut Reader, key: &str, default: &str| -> String {
        let Some(node) = get(key) else {
            return default.to_string();
        };
        let text = r.string(node, key).unwrap_or_default();
        let valid = !text.is_empty()
            && text.len() <= 64
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            r.error(
                node.pos,
                format!("invalid {key} `{text}`"),
                Some("letters, digits, `_`, `-` and `.` (at most 64)".into()),
            );
        }
        text
    };
    let database = name(r, "database", project);
    let user = name(r, "user", "monstack");
    let password = get("password").and_then(|node| {
        let password = r.string(node, "password")?;
        if password.is_empty() {
            return None;
        }
        if password.len() < 8 || password == user || password == "password" {
            r.error(
                node.pos,
                "the InfluxDB `password` is too weak",
                Some(
                    "use at least 8 characters; or leave it out and monstack generates one".into(),
                ),
            );
        }
        if password.chars().any(char::is_control) {
            r.error(
                node.pos,
                "the InfluxDB `password` holds control characters",
                None,
            );
        }
        Some(password)
    });
    Some(Influxdb {
        service,
        database,
        user,
        password,
    })
}

/// The Grafana datasource of the stack's InfluxDB, as Grafana reaches it on the network.
pub(super) fn datasource(influxdb: &Influxdb) -> Datasource {
    let json_data = serde_json::Map::from_iter([
        ("dbName".to_string(), influxdb.database.clone().into()),
        ("httpMode".to_string(), "POST".into()),
    ]);
    Datasource {
        name: DATASOURCE_NAME.into(),
        kind: "influxdb".into(),
        uid: INFLUXDB_DATASOURCE_UID.into(),
        url: format!("http://{}:{INFLUXDB_PORT}", crate::model::INFLUXDB),
        access: "proxy".into(),
        database: Some(influxdb.database.clone()),
        user: Some(influxdb.user.clone()),
        password: influxdb.password.clone(),
        is_default: false,
        json_data,
    }
}

/// A manifest datasource must not take the provisioned InfluxDB datasource's name or uid.
pub(super) fn check_datasources(r: &mut Reader, m: &Obj, datasources: &[Datasource]) {
    let Some(Value::Seq(items)) = m.get("datasources").map(|n| &n.value) else {
        return;
    };
    for (ds, item) in datasources.iter().zip(items) {
        if ds.name == DATASOURCE_NAME || ds.uid == INFLUXDB_DATASOURCE_UID {
            r.error(
                item.pos,
                format!(
                    "datasource `{}` takes the name or uid of the InfluxDB datasource monstack provisions (`{DATASOURCE_NAME}`, uid `{INFLUXDB_DATASOURCE_UID}`)",
                    ds.name
                ),
                Some("remove it (`influxdb:` provisions it), or give it another name and uid".into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::{load, Source};
    use crate::model::Stack;

    fn loaded(yaml: &str) -> Result<Stack, String> {
        let text = format!("project: shop\n{yaml}");
        let source = Source {
            text: &text,
            display_name: "monstack.yaml",
            root: std::path::Path::new("."),
        };
        load(&source, &|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_the_datasource_that_comes_with_it() {
        let stack = loaded("influxdb: {}\n").unwrap();
        let influx = stack.influxdb.unwrap();
        assert_eq!(influx.service.image, crate::manifest::INFLUXDB_IMAGE);
        assert_eq!(influx.service.port, 8086);
        assert!(influx.service.bind.is_loopback());
        assert_eq!(
            (influx.database.as_str(), influx.user.as_str()),
            ("shop", "monstack")
        );
        assert_eq!(
            influx.password, None,
            "generated later, by the project layer"
        );
        let ds = stack.datasources.last().unwrap();
        assert_eq!(
            (ds.name.as_str(), ds.uid.as_str()),
            ("InfluxDB", "influxdb")
        );
        assert_eq!(ds.url, "http://influxdb:8086");
        assert_eq!(ds.json_data["dbName"], "shop");
        assert_eq!(ds.json_data["httpMode"], "POST");
        assert!(loaded("influxdb: false\n").unwrap().influxdb.is_none());
        assert!(loaded("influxdb:\n").unwrap().influxdb.is_some());
    }

    #[test]
    fn the_manifests_login_goes_to_the_datasource_and_is_redacted() {
        let stack = loaded(
            "influxdb: {database: metrics, user: grafana, password: 'long-enough-pw', port: 18086}\n",
        )
        .unwrap();
        let influx = stack.influxdb.as_ref().unwrap();
        assert_eq!(influx.service.port, 18086);
        let ds = stack.datasources.last().unwrap();
        assert_eq!(ds.user.as_deref(), Some("grafana"));
        assert_eq!(ds.password.as_deref(), Some("long-enough-pw"));
        assert!(stack.secrets().contains(&"long-enough-pw"));
    }

    #[test]
    fn bad_values_are_reported() {
        for (yaml, message) in [
            ("influxdb: {database: 'my db'}", "invalid database `my db`"),
            ("influxdb: {user: ''}", "invalid user ``"),
            ("influxdb: {password: short}", "the InfluxDB `password` is too weak"),
            ("influxdb: {pasword: x}", "unknown field `pasword` in `influxdb`"),
            ("influxdb: {port: 9090}", "port 9090 is used by both `influxdb` and `prometheus`"),
            (
                "influxdb: {}\ndatasources: [{name: InfluxDB, type: influxdb, url: 'http://x:8086'}]",
                "datasource `InfluxDB` takes the name or uid of the InfluxDB datasource",
            ),
        ] {
            let error = loaded(&format!("{yaml}\n")).unwrap_err();
            assert!(error.contains(message), "{yaml}: {error}");
        }
    }
}
