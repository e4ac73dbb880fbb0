//! The datasources file: Prometheus, Alertmanager when it runs, and the manifest's own
//! datasources, all read-only in Grafana's UI.

use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use super::expand::{expanded_yaml, json_map};
use crate::model::{Stack, ALERTMANAGER_DATASOURCE_UID, PROMETHEUS_DATASOURCE_UID};
use crate::render::RenderedFile;

pub const DATASOURCES_FILE: &str = "grafana/provisioning/datasources/monstack.yaml";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DatasourcesFile {
    api_version: u32,
    datasources: Vec<DatasourceEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DatasourceEntry {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    uid: String,
    access: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    is_default: bool,
    editable: bool,
    #[serde(skip_serializing_if = "Map::is_empty")]
    json_data: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secure_json_data: Option<SecureJsonData>,
}

#[derive(Serialize)]
struct SecureJsonData {
    password: String,
}

pub(super) fn datasources(stack: &Stack) -> anyhow::Result<RenderedFile> {
    let extra_defaults: Vec<&str> = stack
        .datasources
        .iter()
        .filter(|ds| ds.is_default)
        .map(|ds| ds.name.as_str())
        .collect();
    if extra_defaults.len() > 1 {
        anyhow::bail!(
            "datasources {} are all marked default; Grafana accepts one default datasource",
            extra_defaults.join(", ")
        );
    }

    let mut entries = vec![DatasourceEntry {
        name: "Prometheus".into(),
        kind: "prometheus".into(),
        uid: PROMETHEUS_DATASOURCE_UID.into(),
        access: "proxy".into(),
        url: format!("http://{}:9090", crate::model::PROMETHEUS),
        database: None,
        user: None,
        is_default: extra_defaults.is_empty(),
        editable: false,
        json_data: json_map([
            ("httpMethod", "POST".into()),
            ("prometheusType", "Prometheus".into()),
            (
                "timeInterval",
                stack.prometheus.scrape_interval.to_string().into(),
            ),
        ]),
        secure_json_data: None,
    }];
    if stack.alertmanager.is_some() {
        entries.push(DatasourceEntry {
            name: "Alertmanager".into(),
            kind: "alertmanager".into(),
            uid: ALERTMANAGER_DATASOURCE_UID.into(),
            access: "proxy".into(),
            url: format!("http://{}:9093", crate::model::ALERTMANAGER),
            database: None,
            user: None,
            is_default: false,
            editable: false,
            json_data: json_map([
                ("implementation", "prometheus".into()),
                ("handleGrafanaManagedAlerts", false.into()),
            ]),
            secure_json_data: None,
        });
    }
    for ds in &stack.datasources {
        let mut json_data = ds.json_data.clone();
        if ds.kind == "influxdb" {
            if let Some(database) = &ds.database {
                json_data
                    .entry("dbName")
                    .or_insert_with(|| database.clone().into());
            }
        }
        entries.push(DatasourceEntry {
            name: ds.name.clone(),
            kind: ds.kind.clone(),
            uid: ds.uid.clone(),
            access: ds.access.clone(),
            url: ds.url.clone(),
            database: ds.database.clone(),
            user: ds.user.clone(),
            is_default: ds.is_default,
            editable: false,
            json_data,
            secure_json_data: ds
                .password
                .clone()
                .map(|password| SecureJsonData { password }),
        });
    }

    let has_password = entries.iter().any(|entry| entry.secure_json_data.is_some());
    let file = DatasourcesFile {
        api_version: 1,
        datasources: entries,
    };
    let text = expanded_yaml(&file).context("rendering Grafana datasources")?;
    Ok(if has_password {
        RenderedFile::secret(DATASOURCES_FILE, text)
    } else {
        RenderedFile::new(DATASOURCES_FILE, text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Datasource;
    use crate::render::grafana::render;
    use crate::render::grafana::tests::{file, yaml};
    use crate::render::testkit;

    #[test]
    fn datasources_of_the_full_stack() {
        let files = render(&testkit::full()).unwrap();
        let ds = yaml(file(&files, DATASOURCES_FILE));
        let list = ds["datasources"].as_array().unwrap();
        let names: Vec<&str> = list.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Prometheus", "Alertmanager", "Influx"]);
        assert_eq!(
            list[1]["jsonData"],
            serde_json::json!({"implementation": "prometheus", "handleGrafanaManagedAlerts": false})
        );
        assert_eq!(list[1]["url"], "http://alertmanager:9093");
        assert_eq!(list[2]["jsonData"]["dbName"], "metric");
        assert_eq!(list[2]["database"], "metric");
        assert!(
            !file(&files, DATASOURCES_FILE).secret,
            "no datasource has a password"
        );
    }

    #[test]
    fn an_extra_default_datasource_takes_over_and_passwords_make_the_file_secret() {
        let mut stack = testkit::full();
        stack.datasources.push(Datasource {
            name: "Logs".into(),
            kind: "loki".into(),
            uid: "loki".into(),
            url: "http://loki:3100".into(),
            access: "proxy".into(),
            database: None,
            user: Some("grafana".into()),
            password: Some("pa$$".into()),
            is_default: true,
            json_data: json_map([("maxLines", 1000.into())]),
        });
        let files = render(&stack).unwrap();
        let rendered = file(&files, DATASOURCES_FILE);
        assert!(rendered.secret);
        let ds = yaml(rendered);
        let list = ds["datasources"].as_array().unwrap();
        assert_eq!(list[0]["isDefault"], false);
        assert_eq!(list[3]["isDefault"], true);
        assert_eq!(
            list[3]["secureJsonData"]["password"], "pa$$$$",
            "every $ is doubled"
        );
        assert_eq!(list[3]["jsonData"]["maxLines"], 1000);

        stack.datasources[0].is_default = true;
        let err = render(&stack).unwrap_err().to_string();
        assert!(err.contains("Influx") && err.contains("Logs"), "{err}");
    }
}
