//! Ordo's tables in PostgreSQL, created and migrated by Ordo itself on open.
//!
//! Migrations are numbered and applied in order inside one transaction, under an advisory lock
//! so two servers starting together do not race. A schema whose version is newer than this code
//! knows is refused: an older Ordo must not write to a log whose rules it does not know.
//!
//! - `events`: the global log. `position` is assigned by the writer from `head` and is
//!   contiguous; `(stream, version)` and `id` are unique. `hash` is the SHA-256 chain of the
//!   embedded store (`hash = SHA-256(previous || position || body)`, body being the same
//!   postcard record), so `ordo audit verify` proves the same thing on both stores and an
//!   export moved between them keeps its chain head.
//! - `streams`: each stream's last version, for the optimistic concurrency check.
//! - `head`: one row, the next position and the last hash. Every append transaction locks it
//!   (`SELECT ... FOR UPDATE`) first, so appends commit in position order (ADR 0011).
//!
//! Migration 2, what several servers on one database share (ADR 0012, [`super::shared`]):
//! - `leases`: who runs each role that must run once, until when, under which epoch.
//! - `checkpoints` and `cart_due`: the checkout process's position and open carts' due times.
//! - `requests`: `Idempotency-Key` records, claimed while running, then the stored response.

use crate::error::StoreError;
use tokio_postgres::Client;

/// The newest migration this code knows.
pub const VERSION: i32 = 2;

/// The statements of each migration, in order; `{schema}` is replaced by the schema name.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE {schema}.events (
    position        bigint PRIMARY KEY,
    id              uuid NOT NULL UNIQUE,
    stream          text NOT NULL,
    version         bigint NOT NULL,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    recorded_at     bigint NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    headers         bytea NOT NULL,
    payload         bytea NOT NULL,
    hash            bytea NOT NULL,
    UNIQUE (stream, version)
);
CREATE TABLE {schema}.streams (
    stream   text PRIMARY KEY,
    version  bigint NOT NULL
);
CREATE TABLE {schema}.head (
    only_row          boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    next_position     bigint NOT NULL,
    last_hash         bytea NOT NULL,
    last_recorded_at  bigint NOT NULL
);
INSERT INTO {schema}.head (next_position, last_hash, last_recorded_at)
    VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000', 0);
"#,
    r#"
CREATE TABLE {schema}.leases (
    role         text PRIMARY KEY,
    holder       text NOT NULL,
    epoch        bigint NOT NULL,
    acquired_at  timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE TABLE {schema}.checkpoints (
    name      text PRIMARY KEY,
    position  bigint NOT NULL
);
CREATE TABLE {schema}.cart_due (
    cart    text PRIMARY KEY,
    due_ms  bigint NOT NULL
);
CREATE TABLE {schema}.requests (
    record         bytea PRIMARY KEY,
    fingerprint    bytea NOT NULL,
    created_ms     bigint NOT NULL,
    owner          text,
    claimed_until  bigint,
    response       bytea
);
CREATE INDEX requests_created ON {schema}.requests (created_ms);
"#,
];

/// Longest schema name: PostgreSQL's names stop at 63 bytes, and the schema's notification
/// channel (`ordo_events_<schema>`) is such a name too. A longer schema opened, then failed
/// every append at its `NOTIFY` ("channel name too long").
pub const MAX_SCHEMA_LEN: usize = 63 - super::CHANNEL_PREFIX.len();

/// A schema name Ordo accepts: a plain lower-case identifier, so it needs no quoting, short
/// enough for its notification channel.
pub fn check_name(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= MAX_SCHEMA_LEN
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Open {
            path: schema.into(),
            reason: format!(
                "a schema name is 1 to {MAX_SCHEMA_LEN} of a-z, 0-9 and _, not starting with a digit"
            ),
        })
    }
}

/// Creates the schema if needed and applies the migrations it lacks.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    check_name(schema)?;
    let tx = client.transaction().await?;
    // One migrator at a time across every process on this database.
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&format!("ordo-migrate:{schema}")])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_version (version integer NOT NULL);"
    ))
    .await?;
    let found: Option<i32> = tx
        .query_opt(&format!("SELECT max(version) FROM {schema}.schema_version"), &[])
        .await?
        .and_then(|row| row.get(0));
    let found = found.unwrap_or(0);
    if found > VERSION {
        return Err(StoreError::SchemaTooNew { schema: schema.into(), found, known: VERSION });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(&migration.replace("{schema}", schema)).await?;
        let version = index as i32 + 1;
        tx.execute(&format!("INSERT INTO {schema}.schema_version VALUES ($1)"), &[&version])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_schema_name_too_long_for_its_channel_then_it_is_refused() {
        let longest = "s".repeat(MAX_SCHEMA_LEN);
        assert!(check_name(&longest).is_ok());
        assert_eq!(format!("{}{longest}", super::super::CHANNEL_PREFIX).len(), 63);
        let error = check_name(&format!("{longest}s")).expect_err("one byte too long");
        assert!(error.to_string().contains("1 to 51"), "{error}");
    }
}
