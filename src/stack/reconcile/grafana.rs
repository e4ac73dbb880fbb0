//! Grafana's admin password: from the environment on the first start, through its API
//! afterwards (authenticated with the stored one), kept in `.monstack/secrets/`.

use std::path::Path;

use crate::clients;
use crate::error::Result;
use crate::model::{self, Stack};
use crate::output::Printer;
use crate::stack::containers::ContainerSpec;
use crate::stack::secrets;

/// Grafana reads its admin password from the environment only on its first start: afterwards a
/// changed password is applied through its API, authenticated with the stored one.
pub async fn apply_grafana_password(
    client: &reqwest::Client,
    stack: &Stack,
    specs: &[ContainerSpec],
    password: &secrets::GrafanaPassword,
    fresh_volume: bool,
    out_dir: &Path,
    printer: &Printer,
) -> Result<()> {
    let Some(spec) = specs.iter().find(|s| s.service == model::GRAFANA) else {
        return Ok(());
    };
    if fresh_volume || password.stored.is_none() {
        if !fresh_volume && password.stored.is_none() {
            printer.warn("Grafana's data volume is older than .monstack/secrets/: it keeps the admin password it had; put that password into .monstack/secrets/grafana-admin-password to let monstack manage it");
        }
        secrets::store_grafana_password(out_dir, &password.desired)?;
        return Ok(());
    }
    if password.needs_change() {
        let stored = password.stored.clone().unwrap_or_default();
        let grafana = clients::Grafana::new(client, spec.url(), &stack.grafana.admin_user, stored);
        grafana.change_admin_password(&password.desired).await?;
        secrets::store_grafana_password(out_dir, &password.desired)?;
        printer.status("Changed", "Grafana's admin password (from the manifest)");
    }
    Ok(())
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients;
    use crate::error::Error;
    use crate::model::Stack;
    use crate::output::{ColorChoice, Printer};
    use crate::render;
    use crate::render::testkit;
    use crate::stack::containers::{self, HostContext};
    use wiremock::matchers::{basic_auth, body_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// The full test stack with Grafana published where the mock server listens.
    fn grafana_specs(server: &MockServer, out_dir: &Path) -> (Stack, Vec<ContainerSpec>) {
        let mut stack = testkit::full();
        stack.grafana.service.port = server.address().port();
        let tree = render::render(&stack).unwrap();
        let host = HostContext {
            out_dir,
            secret_gid: 0,
            grafana_admin_password: "unused",
            agent_image: Some("monstack-agent:test"),
            host_user: (1000, 1000),
            host_gateway: None,
            host_root_shared: false,
        };
        let specs = containers::desired(&stack, &tree, &host);
        (stack, specs)
    }

    fn quiet() -> Printer {
        Printer::new(true, ColorChoice::Never)
    }

    #[tokio::test]
    async fn a_changed_manifest_password_is_applied_through_the_api_with_the_stored_one() {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path("/api/user/password"))
            .and(basic_auth("admin", "old-password-1"))
            .and(body_json(serde_json::json!({"oldPassword": "old-password-1", "newPassword": "new-password-2", "confirmNew": "new-password-2"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"message": "User password changed"})))
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        secrets::store_grafana_password(dir.path(), "old-password-1").unwrap();
        let (stack, specs) = grafana_specs(&server, dir.path());
        let password = secrets::grafana_password(dir.path(), Some("new-password-2")).unwrap();
        let client = clients::http_client().unwrap();
        apply_grafana_password(
            &client,
            &stack,
            &specs,
            &password,
            false,
            dir.path(),
            &quiet(),
        )
        .await
        .unwrap();
        assert_eq!(
            secrets::grafana_password(dir.path(), None).unwrap().desired,
            "new-password-2"
        );
    }

    #[tokio::test]
    async fn a_first_start_takes_the_password_from_the_environment_without_api_calls() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let (stack, specs) = grafana_specs(&server, dir.path());
        let password = secrets::grafana_password(dir.path(), None).unwrap();
        assert!(password.generated);
        let grafana = specs.iter().find(|s| s.service == "grafana").unwrap();
        assert!(
            grafana.env_unhashed.is_empty()
                || grafana.env_unhashed[0].0 == "GF_SECURITY_ADMIN_PASSWORD"
        );
        let client = clients::http_client().unwrap();
        apply_grafana_password(
            &client,
            &stack,
            &specs,
            &password,
            true,
            dir.path(),
            &quiet(),
        )
        .await
        .unwrap();
        assert_eq!(
            secrets::grafana_password(dir.path(), None).unwrap().desired,
            password.desired
        );
    }

    #[tokio::test]
    async fn a_refused_stored_password_is_an_error_and_nothing_is_recorded() {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path("/api/user/password"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"message": "Invalid username or password"})),
            )
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        secrets::store_grafana_password(dir.path(), "stale-password").unwrap();
        let (stack, specs) = grafana_specs(&server, dir.path());
        let password = secrets::grafana_password(dir.path(), Some("wanted-password")).unwrap();
        let client = clients::http_client().unwrap();
        let error = apply_grafana_password(
            &client,
            &stack,
            &specs,
            &password,
            false,
            dir.path(),
            &quiet(),
        )
        .await
        .unwrap_err();
        let Error::Other(error) = error else {
            panic!("expected a plain failure: {error}")
        };
        let text = format!("{error:#}");
        assert!(text.contains("refused the stored admin password"), "{text}");
        assert!(
            !text.contains("stale-password") && !text.contains("wanted-password"),
            "{text}"
        );
        assert_eq!(
            secrets::grafana_password(dir.path(), None).unwrap().desired,
            "stale-password"
        );
    }
}
