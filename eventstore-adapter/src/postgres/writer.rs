//! Group commit on PostgreSQL: appends queued by this process share one transaction.
//!
//! One task takes every append waiting in the queue, and in one transaction:
//! 1. locks the `head` row (`FOR UPDATE`): appends from every process on this database commit
//!    one after the other, in position order, so a reader of the log can never see a later
//!    position before an earlier one commits (ADR 0011), and the hash chain has one tip;
//! 2. looks up every event id of the batch (a retry returns its first outcome) and every
//!    stream's version (the optimistic concurrency check), in two queries;
//! 3. decides each append on its own, all of its streams or none (a refused append refuses
//!    only itself; `apply`), inserts all accepted events with one `INSERT ... SELECT FROM unnest(...)`, moves `streams` and `head`,
//!    and `NOTIFY`s the new head;
//! 4. commits (`synchronous_commit` on: durable before anyone is answered), then answers.

use super::apply::{Log, Rows, Stored};
use super::{PostgresInner, CHANNEL_PREFIX};
use crate::clock::now_millis;
use crate::embedded::schema::HASH_LEN;
use crate::error::StoreError;
use crate::model::{AppendOutcome, StreamAppend};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// Most events one transaction carries.
const MAX_BATCH_EVENTS: usize = 4_096;

/// One append waiting for the writer: one part, or several streams in one commit.
pub(crate) struct AppendRequest {
    pub parts: Vec<StreamAppend>,
    /// Recording times to keep (an import, one part); `None`: now.
    pub recorded_at: Option<Vec<i64>>,
    pub reply: oneshot::Sender<Result<Vec<AppendOutcome>, StoreError>>,
}

impl AppendRequest {
    fn events(&self) -> usize {
        self.parts.iter().map(|p| p.events.len()).sum()
    }
}

/// Runs until every sender is gone.
pub(crate) async fn run(inner: Arc<PostgresInner>, mut requests: mpsc::Receiver<AppendRequest>) {
    while let Some(first) = requests.recv().await {
        let mut events = first.events();
        let mut batch = vec![first];
        while events < MAX_BATCH_EVENTS {
            match requests.try_recv() {
                Ok(next) => {
                    events += next.events();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let (requests_only, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|r| ((r.parts, r.recorded_at), r.reply)).unzip();
        let started = std::time::Instant::now();
        match commit(&inner, &requests_only).await {
            Ok((outcomes, head)) => {
                metrics::histogram!("ordo_store_commit_seconds", "store" => "postgres")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("ordo_store_events_per_commit", "store" => "postgres")
                    .record(events as f64);
                if let Some(head) = head {
                    inner.head.send_if_modified(|h| {
                        let moved = head > *h;
                        *h = (*h).max(head);
                        moved
                    });
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::error!(error = ?error, "PostgreSQL append transaction failed; the batch is rejected");
                let message = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Storage(message.clone())));
                }
            }
        }
    }
}

type Request = (Vec<StreamAppend>, Option<Vec<i64>>);
type Outcomes = Vec<Result<Vec<AppendOutcome>, StoreError>>;

/// One transaction for the whole batch. The outer error fails the batch; the inner ones are
/// each request's own refusal. Also returns the new head (next position) if it moved.
async fn commit(
    inner: &PostgresInner,
    batch: &[Request],
) -> Result<(Outcomes, Option<u64>), StoreError> {
    let client = inner.pool.get().await.map_err(|e| StoreError::Storage(e.to_string()))?;
    let result = run_transaction(&client, &inner.schema, batch).await;
    if result.is_err() {
        // Whatever was pipelined after the failure was refused; end the transaction so the
        // pooled connection goes back clean.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}

/// The statements of an append transaction, prepared once per pooled connection.
struct Statements {
    head: tokio_postgres::Statement,
    ids: tokio_postgres::Statement,
    streams: tokio_postgres::Statement,
    insert: tokio_postgres::Statement,
    upsert: tokio_postgres::Statement,
    update: tokio_postgres::Statement,
    notify: tokio_postgres::Statement,
}

async fn statements(
    client: &deadpool_postgres::Object,
    schema: &str,
) -> Result<Statements, StoreError> {
    let sql = [
        format!("SELECT next_position, last_hash, last_recorded_at FROM {schema}.head FOR UPDATE"),
        format!(
            "SELECT id, position, stream, version, event_type, payload FROM {schema}.events \
             WHERE id = ANY($1)"
        ),
        format!("SELECT stream, version FROM {schema}.streams WHERE stream = ANY($1)"),
        format!(
            "INSERT INTO {schema}.events (position, id, stream, version, event_type, \
             schema_version, recorded_at, correlation_id, causation_id, headers, payload, hash) \
             SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], \
             $5::text[], $6::int[], $7::bigint[], $8::uuid[], $9::uuid[], $10::bytea[], \
             $11::bytea[], $12::bytea[])"
        ),
        format!(
            "INSERT INTO {schema}.streams (stream, version) \
             SELECT * FROM unnest($1::text[], $2::bigint[]) \
             ON CONFLICT (stream) DO UPDATE SET version = EXCLUDED.version"
        ),
        format!(
            "UPDATE {schema}.head SET next_position = $1, last_hash = $2, last_recorded_at = $3"
        ),
        "SELECT pg_notify($1, $2)".to_owned(),
    ];
    let (head, ids, streams, insert, upsert, update, notify) = tokio::try_join!(
        client.prepare_cached(&sql[0]),
        client.prepare_cached(&sql[1]),
        client.prepare_cached(&sql[2]),
        client.prepare_cached(&sql[3]),
        client.prepare_cached(&sql[4]),
        client.prepare_cached(&sql[5]),
        client.prepare_cached(&sql[6]),
    )?;
    Ok(Statements { head, ids, streams, insert, upsert, update, notify })
}

/// The transaction in two round trips: `BEGIN`, the head lock and both lookups pipelined;
/// then the writes, the notification and `COMMIT` pipelined. Statements on one connection run
/// in the order sent, so the lookups see the log as of the lock.
async fn run_transaction(
    client: &deadpool_postgres::Object,
    schema: &str,
    batch: &[Request],
) -> Result<(Outcomes, Option<u64>), StoreError> {
    let st = statements(client, schema).await?;
    let parts = || batch.iter().flat_map(|r| &r.0);
    let ids: Vec<Uuid> = parts().flat_map(|p| p.events.iter().map(|e| e.id)).collect();
    let names: Vec<&str> = parts().map(|p| p.stream.as_str()).collect();
    let (id_params, stream_params): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
        ([&ids], [&names]);
    let (_, head, found, known_streams) = tokio::try_join!(
        // Custom plans for the append's statements only: a generic plan guessed for one size
        // of their array parameters made batched appends several times slower. Reads keep the
        // default (generic plans once they prove no worse), so they are not planned again on
        // every execution.
        client.batch_execute("BEGIN; SET LOCAL plan_cache_mode = force_custom_plan"),
        client.query_one(&st.head, &[]),
        client.query(&st.ids, &id_params),
        client.query(&st.streams, &stream_params),
    )?;
    let next: i64 = head.get(0);
    let last_hash: [u8; HASH_LEN] = head.get::<_, Vec<u8>>(1).try_into().map_err(|_| {
        StoreError::Corrupt { position: next as u64, reason: "bad head hash".into() }
    })?;
    let mut log = Log {
        next,
        last_hash,
        last_recorded_at: head.get::<_, i64>(2).max(now_millis()),
        stored: HashMap::new(),
        versions: HashMap::new(),
        appended_to: BTreeSet::new(),
        rows: Rows::default(),
    };
    for row in found {
        let (position, version): (i64, i64) = (row.get(1), row.get(3));
        let event = Stored {
            position: position as u64,
            stream: row.get(2),
            version: version as u64,
            event_type: row.get(4),
            payload: row.get(5),
        };
        log.stored.insert(row.get(0), event);
    }
    for row in known_streams {
        log.versions.insert(row.get(0), row.get::<_, i64>(1) as u64);
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (parts, recorded_at) in batch {
        outcomes.push(log.request(parts, recorded_at.as_deref())?);
    }
    let Log { next, last_hash, last_recorded_at, versions, appended_to, rows, .. } = log;
    if rows.position.is_empty() {
        client.batch_execute("ROLLBACK").await?;
        return Ok((outcomes, None));
    }
    let (streams, stream_versions): (Vec<&str>, Vec<i64>) =
        appended_to.iter().map(|s| (*s, versions[*s] as i64)).unzip();
    let channel = format!("{CHANNEL_PREFIX}{schema}");
    let new_head = next.to_string();
    let r = &rows;
    let columns: [&(dyn ToSql + Sync); 12] = [
        &r.position,
        &r.id,
        &r.stream,
        &r.version,
        &r.event_type,
        &r.schema_version,
        &r.recorded_at,
        &r.correlation_id,
        &r.causation_id,
        &r.headers,
        &r.payload,
        &r.hash,
    ];
    let hash = last_hash.to_vec();
    let upsert: [&(dyn ToSql + Sync); 2] = [&streams, &stream_versions];
    let update: [&(dyn ToSql + Sync); 3] = [&next, &hash, &last_recorded_at];
    let notify: [&(dyn ToSql + Sync); 2] = [&channel, &new_head];
    tokio::try_join!(
        client.execute(&st.insert, &columns),
        client.execute(&st.upsert, &upsert),
        client.execute(&st.update, &update),
        client.execute(&st.notify, &notify),
        client.batch_execute("COMMIT"),
    )?;
    Ok((outcomes, Some(next as u64)))
}
