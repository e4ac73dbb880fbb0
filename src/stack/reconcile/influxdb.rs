//! InfluxDB's first start, done by monstack on every `up` (idempotently): the admin user with
//! the stack's password, then the database. influxd creates neither by itself (the official
//! image's entrypoint script would, from environment variables, but monstack runs influxd
//! directly so that any image behaves the same), and with authentication on it answers nothing
//! before the admin user exists.

use anyhow::anyhow;
use reqwest::Client;

use crate::clients::influxdb::{identifier, query, string_literal, Outcome};
use crate::model::Influxdb;

/// Makes sure the user and the database exist; `Ok(true)` when the user was created now.
pub(super) async fn ensure_database(
    client: &Client,
    url: &str,
    influxdb: &Influxdb,
) -> anyhow::Result<bool> {
    let password = influxdb
        .password
        .as_deref()
        .ok_or_else(|| anyhow!("internal error: the InfluxDB password was not resolved"))?;
    let login = Some((influxdb.user.as_str(), password));
    let create_database = format!("CREATE DATABASE {}", identifier(&influxdb.database));
    let creating = format!("creating the InfluxDB database `{}`", influxdb.database);
    match query(client, url, &create_database, login, &creating).await? {
        Outcome::Done => return Ok(false),
        Outcome::NoAdminYet => {
            let statement = format!(
                "CREATE USER {} WITH PASSWORD {} WITH ALL PRIVILEGES",
                identifier(&influxdb.user),
                string_literal(password)
            );
            let what = format!("creating the InfluxDB user `{}`", influxdb.user);
            if !matches!(
                query(client, url, &statement, None, &what).await?,
                Outcome::Done
            ) {
                // Another admin appeared in between (someone else's first start).
                return Err(refused(influxdb));
            }
        }
        Outcome::Refused => return Err(refused(influxdb)),
    }
    match query(client, url, &create_database, login, &creating).await? {
        Outcome::Done => Ok(true),
        _ => Err(refused(influxdb)),
    }
}

fn refused(influxdb: &Influxdb) -> anyhow::Error {
    anyhow!(
        "InfluxDB refuses the login of user `{}` with the stack's password: its data volume \
         holds another admin user or another password (InfluxDB keeps the ones of its first \
         start). Give that password as `influxdb.password` (or in \
         .monstack/secrets/influxdb-password), or start InfluxDB afresh with `monstack down \
         --volumes`, which deletes its data",
        influxdb.user
    )
}
