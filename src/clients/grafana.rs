//! The Grafana client: health, the admin password, provisioning reloads, folders and dashboards,
//! all as the admin user. The password travels only in the `Authorization` header and never
//! appears in errors or `Debug`.

use std::fmt;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};

use super::{decode, send, snippet, trim_base};

/// Grafana's HTTP API, authenticated as the admin user with basic auth on every call.
#[derive(Clone)]
pub struct Grafana {
    base: String,
    client: Client,
    user: String,
    password: String,
}

impl fmt::Debug for Grafana {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grafana")
            .field("base", &self.base)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GrafanaHealth {
    /// "ok" when Grafana can reach its database.
    pub database: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub commit: String,
}

/// The provisioning areas Grafana can reload on demand.
const PROVISIONING_AREAS: [&str; 3] = ["dashboards", "datasources", "alerting"];

const GRAFANA_PASSWORD_REFUSED: &str = "Grafana refused the stored admin password; if you \
     changed it in the UI, put it in .monstack/secrets/grafana-admin-password";

impl Grafana {
    pub fn new(
        client: &Client,
        base: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Grafana {
        Grafana {
            base: trim_base(base),
            client: client.clone(),
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password))
    }

    /// Turns a non-2xx answer into an error carrying Grafana's `message`. 401 always means the
    /// stored password is wrong (as the login, or as `oldPassword` when changing it).
    fn refusal(status: StatusCode, body: &[u8]) -> anyhow::Error {
        if status == StatusCode::UNAUTHORIZED {
            return anyhow!(GRAFANA_PASSWORD_REFUSED);
        }
        #[derive(Deserialize)]
        struct Message {
            message: String,
            #[serde(default)]
            status: String,
        }
        match serde_json::from_slice::<Message>(body) {
            Ok(m) if !m.status.is_empty() => {
                anyhow!(
                    "Grafana answered HTTP {status} ({}): {}",
                    m.status,
                    m.message
                )
            }
            Ok(m) => anyhow!("Grafana answered HTTP {status}: {}", m.message),
            Err(_) => anyhow!("Grafana answered HTTP {status}: {}", snippet(body)),
        }
    }

    /// `GET /api/health`: 200 when healthy, 503 when its database is failing (still decoded, so
    /// the caller sees `database != "ok"`).
    pub async fn health(&self) -> Result<GrafanaHealth> {
        let doing = || format!("checking the health of Grafana at {}", self.base);
        let (status, body) = send(self.request(Method::GET, "/api/health"))
            .await
            .with_context(doing)?;
        if status != StatusCode::OK && status != StatusCode::SERVICE_UNAVAILABLE {
            return Err(Self::refusal(status, &body)).with_context(doing);
        }
        decode(&body, "the health answer").with_context(doing)
    }

    /// `PUT /api/user/password` as the admin, with the current password as `oldPassword`. After
    /// success this client's password is stale: build a new one with `new`.
    pub async fn change_admin_password(&self, new: &str) -> Result<()> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ChangePassword<'a> {
            old_password: &'a str,
            new_password: &'a str,
            confirm_new: &'a str,
        }
        let doing = || format!("changing the Grafana admin password at {}", self.base);
        let request = self
            .request(Method::PUT, "/api/user/password")
            .json(&ChangePassword {
                old_password: &self.password,
                new_password: new,
                confirm_new: new,
            });
        let (status, body) = send(request).await.with_context(doing)?;
        if !status.is_success() {
            return Err(Self::refusal(status, &body)).with_context(doing);
        }
        Ok(())
    }

    /// `POST /api/admin/provisioning/{what}/reload` for "dashboards", "datasources" or
    /// "alerting": Grafana re-reads those provisioning files without a restart.
    pub async fn reload_provisioning(&self, what: &str) -> Result<()> {
        if !PROVISIONING_AREAS.contains(&what) {
            bail!(
                "cannot reload Grafana provisioning of `{what}`: expected one of {}",
                PROVISIONING_AREAS.join(", ")
            );
        }
        let doing = || format!("reloading Grafana {what} provisioning at {}", self.base);
        let path = format!("/api/admin/provisioning/{what}/reload");
        let (status, body) = send(self.request(Method::POST, &path))
            .await
            .with_context(doing)?;
        if !status.is_success() {
            return Err(Self::refusal(status, &body)).with_context(doing);
        }
        Ok(())
    }

    /// Makes sure a folder with this uid exists, creating it with `title` if not. An existing
    /// folder keeps its title.
    pub async fn ensure_folder(&self, uid: &str, title: &str) -> Result<()> {
        #[derive(Serialize)]
        struct NewFolder<'a> {
            uid: &'a str,
            title: &'a str,
        }
        let doing = || format!("creating Grafana folder `{uid}` at {}", self.base);
        let get = || self.request(Method::GET, &format!("/api/folders/{uid}"));
        let (status, body) = send(get()).await.with_context(doing)?;
        match status {
            StatusCode::OK => return Ok(()),
            StatusCode::NOT_FOUND => {}
            _ => return Err(Self::refusal(status, &body)).with_context(doing),
        }
        let create = self
            .request(Method::POST, "/api/folders")
            .json(&NewFolder { uid, title });
        let (status, body) = send(create).await.with_context(doing)?;
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::CONFLICT {
            // Either someone created it since our GET (fine) or another folder already has this
            // title (not fine: the uid still does not exist). Ask again to tell them apart.
            let (again, _) = send(get()).await.with_context(doing)?;
            if again == StatusCode::OK {
                return Ok(());
            }
        }
        Err(Self::refusal(status, &body)).with_context(doing)
    }

    /// Saves a dashboard (`POST /api/dashboards/db`, overwriting one with the same uid) into
    /// `folder_uid`, or the root folder without one. Returns Grafana's `url` for it, a path
    /// such as `/d/uid/slug`.
    pub async fn push_dashboard(
        &self,
        mut dashboard: serde_json::Value,
        folder_uid: Option<&str>,
    ) -> Result<String> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct SaveDashboard<'a> {
            dashboard: serde_json::Value,
            #[serde(skip_serializing_if = "Option::is_none")]
            folder_uid: Option<&'a str>,
            overwrite: bool,
            message: &'a str,
        }
        #[derive(Deserialize)]
        struct Saved {
            url: String,
        }
        let uid = dashboard
            .get("uid")
            .and_then(|u| u.as_str())
            .unwrap_or("(no uid)")
            .to_string();
        let doing = || format!("pushing dashboard `{uid}` to Grafana at {}", self.base);
        let fields = dashboard
            .as_object_mut()
            .ok_or_else(|| anyhow!("a dashboard must be a JSON object"))
            .with_context(doing)?;
        // With an id Grafana looks the dashboard up by id, which differs between instances; the
        // uid is what identifies it across them.
        fields.insert("id".to_string(), serde_json::Value::Null);
        let request = self
            .request(Method::POST, "/api/dashboards/db")
            .json(&SaveDashboard {
                dashboard,
                folder_uid,
                overwrite: true,
                message: "monstack import-dashboard",
            });
        let (status, body) = send(request).await.with_context(doing)?;
        if !status.is_success() {
            return Err(Self::refusal(status, &body)).with_context(doing);
        }
        let saved: Saved = decode(&body, "the saved dashboard").with_context(doing)?;
        Ok(saved.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::testkit::{client, json_answer};
    use serde_json::json;
    use wiremock::matchers::{basic_auth, body_json, body_partial_json, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    // Every mock requires the admin's basic auth and the documented body; anything else falls
    // through to wiremock's 404 and fails the call.

    const ADMIN: &str = "admin";
    const PASSWORD: &str = "s3cret-Stored";
    const NEW_PASSWORD: &str = "n3w-Password";

    fn grafana(server: &MockServer) -> Grafana {
        Grafana::new(&client(), server.uri(), ADMIN, PASSWORD)
    }

    fn grafana_call(method_name: &str, url_path: &str) -> wiremock::MockBuilder {
        Mock::given(method(method_name))
            .and(path(url_path))
            .and(basic_auth(ADMIN, PASSWORD))
    }

    fn request_json(request: &Request) -> serde_json::Value {
        serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null)
    }

    /// The request's JSON body has exactly these top-level keys, and its dashboard's `id` is
    /// present and null (body_partial_json cannot tell null from absent or extra keys).
    fn exact_dashboard_request(keys: &'static [&'static str]) -> impl Fn(&Request) -> bool {
        move |request: &Request| {
            let body = request_json(request);
            let Some(object) = body.as_object() else {
                return false;
            };
            let mut actual: Vec<&str> = object.keys().map(String::as_str).collect();
            actual.sort_unstable();
            let mut expected = keys.to_vec();
            expected.sort_unstable();
            actual == expected && body["dashboard"].get("id") == Some(&serde_json::Value::Null)
        }
    }

    #[tokio::test]
    async fn grafana_health() {
        let server = MockServer::start().await;
        grafana_call("GET", "/api/health")
            .respond_with(json_answer(
                200,
                json!({"commit": "83b9528bce", "database": "ok", "version": "11.2.0"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let health = grafana(&server).health().await.unwrap();
        assert_eq!(health.database, "ok");
        assert_eq!(health.version, "11.2.0");
        assert_eq!(health.commit, "83b9528bce");
    }

    #[tokio::test]
    async fn grafana_change_admin_password_sends_the_documented_body() {
        let server = MockServer::start().await;
        grafana_call("PUT", "/api/user/password")
            .and(body_json(json!({
                "oldPassword": PASSWORD,
                "newPassword": NEW_PASSWORD,
                "confirmNew": NEW_PASSWORD
            })))
            .respond_with(json_answer(
                200,
                json!({"message": "User password changed"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        grafana(&server)
            .change_admin_password(NEW_PASSWORD)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn grafana_401_explains_the_stored_password_without_showing_it() {
        let server = MockServer::start().await;
        // Whatever credentials arrive, Grafana refuses them.
        Mock::given(method("PUT"))
            .and(path("/api/user/password"))
            .respond_with(json_answer(
                401,
                json!({"message": "Invalid username or password"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .change_admin_password(NEW_PASSWORD)
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        let doing = format!("changing the Grafana admin password at {}: ", server.uri());
        assert!(message.starts_with(&doing), "{message}");
        assert!(
            message.contains(
                "Grafana refused the stored admin password; if you changed it in the UI, \
                 put it in .monstack/secrets/grafana-admin-password"
            ),
            "{message}"
        );
        let shown = format!("{message} {error:?} {:?}", grafana(&server));
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(!shown.contains(NEW_PASSWORD), "{shown}");
    }

    #[tokio::test]
    async fn grafana_400_shows_grafanas_message() {
        let server = MockServer::start().await;
        grafana_call("PUT", "/api/user/password")
            .respond_with(json_answer(
                400,
                json!({"message": "New password is too short"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .change_admin_password("x")
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("HTTP 400 Bad Request: New password is too short"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn grafana_reload_provisioning() {
        let server = MockServer::start().await;
        for (what, reply) in [
            ("dashboards", "Dashboards config reloaded"),
            ("datasources", "Datasources config reloaded"),
            ("alerting", "Alerting config reloaded"),
        ] {
            grafana_call("POST", &format!("/api/admin/provisioning/{what}/reload"))
                .respond_with(json_answer(200, json!({"message": reply})))
                .expect(1)
                .mount(&server)
                .await;
        }
        let grafana = grafana(&server);
        for what in ["dashboards", "datasources", "alerting"] {
            grafana.reload_provisioning(what).await.unwrap();
        }
        let error = grafana.reload_provisioning("plugins").await.unwrap_err();
        assert!(error.to_string().contains("`plugins`"), "{error}");
    }

    #[tokio::test]
    async fn grafana_reload_provisioning_as_a_non_admin_is_refused() {
        let server = MockServer::start().await;
        grafana_call("POST", "/api/admin/provisioning/dashboards/reload")
            .respond_with(json_answer(
                403,
                json!({
                    "accessErrorId": "ACE0947587429",
                    "message": "You'll need additional permissions to perform this action.",
                    "title": "Access denied"
                }),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .reload_provisioning("dashboards")
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        let doing = format!(
            "reloading Grafana dashboards provisioning at {}: ",
            server.uri()
        );
        assert!(message.starts_with(&doing), "{message}");
        assert!(
            message.contains("HTTP 403 Forbidden: You'll need additional permissions"),
            "{message}"
        );
    }

    fn folder_json(uid: &str, title: &str) -> serde_json::Value {
        json!({
            "id": 1, "uid": uid, "title": title,
            "url": format!("/dashboards/f/{uid}/{}", title.to_lowercase()),
            "hasAcl": false, "canSave": true, "canEdit": true, "canAdmin": true,
            "createdBy": "admin", "created": "2024-01-01T00:00:00Z",
            "updatedBy": "admin", "updated": "2024-01-01T00:00:00Z", "version": 1
        })
    }

    fn folder_not_found() -> ResponseTemplate {
        json_answer(
            404,
            json!({"message": "folder not found", "status": "not-found"}),
        )
    }

    #[tokio::test]
    async fn grafana_ensure_folder_creates_a_missing_folder() {
        let server = MockServer::start().await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(folder_not_found())
            .expect(1)
            .mount(&server)
            .await;
        grafana_call("POST", "/api/folders")
            .and(body_json(json!({"uid": "monstack", "title": "Monstack"})))
            .respond_with(json_answer(200, folder_json("monstack", "Monstack")))
            .expect(1)
            .mount(&server)
            .await;
        grafana(&server)
            .ensure_folder("monstack", "Monstack")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn grafana_ensure_folder_keeps_an_existing_folder() {
        let server = MockServer::start().await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(json_answer(200, folder_json("monstack", "Renamed")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        grafana(&server)
            .ensure_folder("monstack", "Monstack")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn grafana_ensure_folder_accepts_409_when_the_folder_now_exists() {
        let server = MockServer::start().await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(folder_not_found())
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(json_answer(200, folder_json("monstack", "Monstack")))
            .expect(1)
            .mount(&server)
            .await;
        grafana_call("POST", "/api/folders")
            .and(body_json(json!({"uid": "monstack", "title": "Monstack"})))
            .respond_with(json_answer(
                409,
                json!({"message": "a folder with the same uid already exists"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        grafana(&server)
            .ensure_folder("monstack", "Monstack")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn grafana_ensure_folder_reports_a_409_for_another_folder() {
        let name_taken =
            "a folder or dashboard in the general folder with the same name already exists";
        let server = MockServer::start().await;
        grafana_call("GET", "/api/folders/monstack")
            .respond_with(folder_not_found())
            .expect(2)
            .mount(&server)
            .await;
        grafana_call("POST", "/api/folders")
            .respond_with(json_answer(409, json!({ "message": name_taken })))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .ensure_folder("monstack", "Monstack")
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        let doing = format!("creating Grafana folder `monstack` at {}: ", server.uri());
        assert!(message.starts_with(&doing), "{message}");
        assert!(
            message.contains("HTTP 409 Conflict") && message.contains(name_taken),
            "{message}"
        );
    }

    fn saved_dashboard() -> ResponseTemplate {
        json_answer(
            200,
            json!({
                "id": 42, "uid": "node-overview", "url": "/d/node-overview/node-overview",
                "status": "success", "version": 3, "slug": "node-overview"
            }),
        )
    }

    fn a_dashboard() -> serde_json::Value {
        json!({
            "id": 7, "uid": "node-overview", "title": "Node overview",
            "panels": [], "schemaVersion": 39
        })
    }

    #[tokio::test]
    async fn grafana_push_dashboard_into_a_folder() {
        let server = MockServer::start().await;
        grafana_call("POST", "/api/dashboards/db")
            .and(body_partial_json(json!({
                "dashboard": {"uid": "node-overview", "title": "Node overview",
                              "panels": [], "schemaVersion": 39},
                "folderUid": "monstack",
                "overwrite": true,
                "message": "monstack import-dashboard"
            })))
            .and(exact_dashboard_request(&[
                "dashboard",
                "folderUid",
                "overwrite",
                "message",
            ]))
            .respond_with(saved_dashboard())
            .expect(1)
            .mount(&server)
            .await;
        let url = grafana(&server)
            .push_dashboard(a_dashboard(), Some("monstack"))
            .await
            .unwrap();
        assert_eq!(url, "/d/node-overview/node-overview");
    }

    #[tokio::test]
    async fn grafana_push_dashboard_without_a_folder_sends_no_folder_uid() {
        let server = MockServer::start().await;
        grafana_call("POST", "/api/dashboards/db")
            .and(body_partial_json(json!({
                "dashboard": {"uid": "node-overview"},
                "overwrite": true,
                "message": "monstack import-dashboard"
            })))
            .and(exact_dashboard_request(&[
                "dashboard",
                "overwrite",
                "message",
            ]))
            .respond_with(saved_dashboard())
            .expect(1)
            .mount(&server)
            .await;
        let url = grafana(&server)
            .push_dashboard(a_dashboard(), None)
            .await
            .unwrap();
        assert_eq!(url, "/d/node-overview/node-overview");
    }

    #[tokio::test]
    async fn grafana_push_dashboard_412_names_the_status() {
        let server = MockServer::start().await;
        grafana_call("POST", "/api/dashboards/db")
            .respond_with(json_answer(
                412,
                json!({
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch"
                }),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let error = grafana(&server)
            .push_dashboard(a_dashboard(), Some("monstack"))
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        let doing = format!(
            "pushing dashboard `node-overview` to Grafana at {}: ",
            server.uri()
        );
        assert!(message.starts_with(&doing), "{message}");
        assert!(
            message.contains("(version-mismatch): The dashboard has been changed by someone else"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn grafana_push_dashboard_refuses_a_non_object() {
        let server = MockServer::start().await;
        let error = grafana(&server)
            .push_dashboard(json!([1, 2]), None)
            .await
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("must be a JSON object"),
            "{error:#}"
        );
        assert!(server.received_requests().await.unwrap().is_empty());
    }
}
