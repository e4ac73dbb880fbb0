//! InfluxDB 1.x's `/query` API, for what monstack does on its first start: create the admin
//! user and the database, idempotently, with authentication on.
//!
//! Statements go in a POST body (never in the URL, which InfluxDB's access log records) and the
//! login in the `Authorization` header; a statement that holds a password never reaches an
//! error message.

use anyhow::anyhow;
use reqwest::{Client, StatusCode};

use super::{read_text, snippet, trim_base};

/// What InfluxDB made of a statement.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// Authentication is on and no admin user exists yet: only `CREATE USER ... WITH ALL
    /// PRIVILEGES` is allowed, without a login.
    NoAdminYet,
    /// The login was refused (401).
    Refused,
}

/// Runs one InfluxQL statement; `what` names it in errors instead of its text.
pub async fn query(
    client: &Client,
    base_url: &str,
    statement: &str,
    login: Option<(&str, &str)>,
    what: &str,
) -> anyhow::Result<Outcome> {
    let url = format!("{}/query", trim_base(base_url));
    let mut request = client.post(&url).form(&[("q", statement)]);
    if let Some((user, password)) = login {
        request = request.basic_auth(user, Some(password));
    }
    let response = request
        .send()
        .await
        .map_err(|e| anyhow!("{what}: POST {url}: {}", super::error_chain(&e)))?;
    let status = response.status();
    let body = read_text(response)
        .await
        .map_err(|e| anyhow!("{what}: reading the answer of {url}: {e}"))?;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let error = json["error"].as_str().unwrap_or_default();
    match status {
        StatusCode::FORBIDDEN if error.contains("create admin user first") => {
            return Ok(Outcome::NoAdminYet)
        }
        StatusCode::UNAUTHORIZED => return Ok(Outcome::Refused),
        StatusCode::OK => {}
        _ => {
            return Err(anyhow!(
                "{what}: {url} answered HTTP {status}: {}",
                snippet(body.as_bytes())
            ))
        }
    }
    // A statement's own failure comes with 200, inside its result.
    let failed = json["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|r| r["error"].as_str());
    match failed {
        Some(error) => Err(anyhow!("{what}: InfluxDB says: {error}")),
        None if json["results"].is_array() => Ok(Outcome::Done),
        None => Err(anyhow!(
            "{what}: {url} did not answer as InfluxDB does: {}",
            snippet(body.as_bytes())
        )),
    }
}

/// `"name"`: an InfluxQL identifier, quoted.
pub fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `'text'`: an InfluxQL string literal.
pub fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::testkit::client;
    use wiremock::matchers::{body_string_contains, header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn names_and_strings_are_quoted() {
        assert_eq!(identifier("shop"), "\"shop\"");
        assert_eq!(identifier("a\"b"), "\"a\\\"b\"");
        assert_eq!(string_literal("it's"), "'it\\'s'");
        assert_eq!(string_literal("a\\b"), "'a\\\\b'");
    }

    #[tokio::test]
    async fn answers_are_told_apart_and_the_statement_stays_out_of_errors() {
        let server = MockServer::start().await;
        for mock in [
            Mock::given(method("POST"))
                .and(path("/query"))
                .and(body_string_contains("NOADMIN"))
                .respond_with(ResponseTemplate::new(403).set_body_string(
                    r#"{"error":"error authorizing query: create admin user first or disable authentication"}"#,
                )),
            Mock::given(method("POST"))
                .and(path("/query"))
                .and(body_string_contains("REFUSED"))
                .respond_with(
                    ResponseTemplate::new(401).set_body_string(r#"{"error":"authorization failed"}"#),
                ),
            Mock::given(method("POST"))
                .and(path("/query"))
                .and(body_string_contains("FAILS"))
                .respond_with(ResponseTemplate::new(200).set_body_string(
                    r#"{"results":[{"statement_id":0,"error":"database name required"}]}"#,
                )),
            Mock::given(method("POST"))
                .and(path("/query"))
                .and(header_exists("authorization"))
                .respond_with(
                    ResponseTemplate::new(200).set_body_string(r#"{"results":[{"statement_id":0}]}"#),
                ),
        ] {
            mock.mount(&server).await;
        }
        let c = client();
        let url = server.uri();
        let login = Some(("monstack", "pw-secret-1"));
        assert!(matches!(
            query(&c, &url, "NOADMIN", None, "x").await.unwrap(),
            Outcome::NoAdminYet
        ));
        assert!(matches!(
            query(&c, &url, "REFUSED", login, "x").await.unwrap(),
            Outcome::Refused
        ));
        assert!(matches!(
            query(&c, &url, "CREATE DATABASE \"db\"", login, "x")
                .await
                .unwrap(),
            Outcome::Done
        ));
        let statement = "FAILS WITH PASSWORD 'pw-secret-1'";
        let error = query(&c, &url, statement, login, "creating the user")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "creating the user: InfluxDB says: database name required"
        );
        assert!(!error.contains("pw-secret-1"));
    }
}
