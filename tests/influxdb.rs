//! `influxdb:` on the real Docker Engine, with Debian sid's influxd 1.6 in a FROM-scratch
//! image: `monstack up` starts it with authentication on, creates the admin user and the
//! database through its API, and renders Grafana's datasource; a point written over the HTTP
//! API with that login is read back through the exact URL, user, password and database the
//! datasource file gives Grafana. Anonymous and wrong logins are refused, a second `up` creates
//! nothing, and the password reaches neither monstack's output nor InfluxDB's log.

use serde_json::Value;

use crate::support::images::{
    free_port, require_docker_and_binaries, test_images, unique_project, ProjectGuard,
};
use crate::support::Project;
use monstack::stack::docker::Engine;

/// The InfluxDB datasource of the rendered provisioning file.
fn datasource(project: &Project) -> Value {
    let text = project.read(".monstack/grafana/provisioning/datasources/monstack.yaml");
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    doc["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "influxdb")
        .cloned()
        .unwrap_or_else(|| panic!("no influxdb datasource in\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn up_creates_the_database_and_grafanas_datasource_logs_in_to_it() {
    if !require_docker_and_binaries() {
        return;
    }
    let engine = Engine::connect().await.expect("connecting to Docker");
    let images = test_images(&engine)
        .await
        .expect("building the test images");
    let name = unique_project("influx");
    let _guard = ProjectGuard::new(&name);
    let (prometheus_port, influx_port) = (free_port(), free_port());
    let project = Project::new().manifest(&format!(
        "project: {name}\n\
         prometheus: {{image: {}, port: {prometheus_port}}}\n\
         grafana: false\n\
         influxdb: {{image: {}, port: {influx_port}, database: metrics}}\n",
        images.prometheus, images.influxdb,
    ));
    let run = project.run(&["up", "--timeout", "120"]);
    run.success();
    assert!(
        run.stdout.contains("influxdb")
            && run
                .stderr
                .contains("created InfluxDB's user `monstack` and database `metrics`"),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );

    // The generated password: kept for monstack alone, in the datasource, nowhere in the output.
    let password = project.read(".monstack/secrets/influxdb-password");
    let password = password.trim_end();
    assert_eq!(password.len(), 24);
    use std::os::unix::fs::PermissionsExt;
    let mode = |relative: &str| {
        std::fs::metadata(project.path().join(relative))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".monstack/secrets/influxdb-password"), 0o600);
    assert_eq!(
        mode(".monstack/grafana/provisioning/datasources/monstack.yaml"),
        0o640
    );
    assert!(!run.stdout.contains(password) && !run.stderr.contains(password));

    let ds = datasource(&project);
    assert_eq!(ds["access"], "proxy");
    assert_eq!(ds["jsonData"]["httpMode"], "POST");
    assert_eq!(ds["url"], "http://influxdb:8086");
    assert_eq!(ds["secureJsonData"]["password"], password);
    // Grafana reaches `influxdb:8086` on the stack's network; from here it is the published port.
    let url = ds["url"]
        .as_str()
        .unwrap()
        .replace("influxdb:8086", &format!("127.0.0.1:{influx_port}"));
    let user = ds["user"].as_str().unwrap().to_string();
    let secret = ds["secureJsonData"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    let db = ds["jsonData"]["dbName"].as_str().unwrap().to_string();
    assert_eq!((user.as_str(), db.as_str()), ("monstack", "metrics"));

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let write = |login: Option<(&str, &str)>| {
        let mut request = client
            .post(format!("{url}/write"))
            .query(&[("db", db.as_str()), ("precision", "s")])
            .body("orders,shop=berlin value=7.5 1700000000\n");
        if let Some((user, password)) = login {
            request = request.basic_auth(user, Some(password));
        }
        request.send()
    };
    assert_eq!(
        write(None).await.unwrap().status(),
        401,
        "anonymous writes are refused"
    );
    assert_eq!(
        write(Some((&user, "not-the-password")))
            .await
            .unwrap()
            .status(),
        401
    );
    let written = write(Some((&user, &secret))).await.unwrap();
    assert_eq!(written.status(), 204, "{:?}", written.text().await);

    // Read back as Grafana does with httpMode POST: the query in the form body, the login.
    let answer: Value = client
        .post(format!("{url}/query"))
        .basic_auth(&user, Some(&secret))
        .form(&[
            ("db", db.as_str()),
            ("q", "SELECT value FROM orders WHERE shop = 'berlin'"),
            ("epoch", "s"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["results"][0]["series"][0]["values"],
        serde_json::json!([[1700000000, 7.5]]),
        "{answer}"
    );
    let anonymous = client
        .post(format!("{url}/query"))
        .form(&[("db", db.as_str()), ("q", "SHOW MEASUREMENTS")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "anonymous reads are refused");

    // Again: nothing to create, the data kept.
    let again = project.run(&["up", "--timeout", "120"]);
    again.success();
    assert!(
        !again.stderr.contains("created InfluxDB"),
        "{}",
        again.stderr
    );
    assert_eq!(datasource(&project), ds, "the same login is rendered again");

    let logs = project.run(&["logs", "influxdb", "--tail", "500"]);
    logs.success();
    assert!(logs.stdout.contains("POST /query"), "{}", logs.stdout);
    assert!(!logs.stdout.contains(password) && !logs.stderr.contains(password));
}
