//! The event store on PostgreSQL: the store a shop already operates (replication, backups,
//! point-in-time recovery), shared by any number of Ordo servers.
//!
//! - [`schema`]: the tables, created and migrated on open.
//! - [`shared`]: leases, process state and request records several servers share.
//! - [`private`]: a throwaway PostgreSQL cluster for tests, benches and trying Ordo out.
//! - `writer`: group commit; appends commit one batch at a time, in position order.
//! - `apply`: inside that transaction, each request's checks (all of its parts or none) and
//!   the rows its events become.
//! - `subscription`: catch-up then live, woken by `LISTEN/NOTIFY`.
//! - `rows`: an event as a row and back.
//!
//! Why appends are serialized on the `head` row rather than numbered by a sequence: with a
//! sequence, a transaction can take position 41, another 42 and commit first, and a reader
//! that saw 42 moves on past 41 for good (the sequence-gap problem every PostgreSQL event
//! store meets). Marten tracks a high-water mark, Emmett and Eventuous read only below the
//! oldest running transaction (`pg_snapshot_xmin`). Ordo locks the single `head` row in each
//! append transaction instead: positions are handed out and committed strictly in order, the
//! hash chain has one tip, and group commit (many appends per transaction) recovers the
//! throughput that serializing would cost. ADR 0011 has the comparison.

mod apply;
pub mod private;
mod rows;
pub mod schema;
pub mod shared;
mod subscription;
mod writer;

pub use subscription::PostgresSubscription;

use crate::embedded::schema::{chain_hash, GENESIS};
use crate::error::StoreError;
use crate::model::*;
use crate::store::EventStore;
use crate::together::only;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rows::{stored_body, to_recorded, COLUMNS};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::NoTls;

/// `NOTIFY` channel of a schema's log: this prefix and the schema name.
pub(crate) const CHANNEL_PREFIX: &str = "ordo_events_";
/// The schema Ordo uses unless the URL names another (`?schema=`).
pub const DEFAULT_SCHEMA: &str = "ordo";
const REQUEST_QUEUE: usize = 4_096;
/// How long PostgreSQL keeps a transaction whose client went quiet (ADR 0012).
pub const IDLE_IN_TRANSACTION: std::time::Duration = std::time::Duration::from_secs(3);
/// Connections per store: the writer's, readers', and subscriptions' page reads.
const POOL_SIZE: usize = 16;

/// Where the store lives.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// Connection settings (from a `postgres://` URL).
    pub connection: tokio_postgres::Config,
    /// Schema holding Ordo's tables.
    pub schema: String,
}

impl PostgresConfig {
    /// Parses `postgres://user:password@host:port/database?schema=name`; `schema` is Ordo's
    /// own parameter (default `ordo`), the rest is libpq's URL syntax.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let bad =
            |reason: String| StoreError::Open { path: crate::any::redact(url).into(), reason };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut schema = DEFAULT_SCHEMA.to_owned();
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("schema", value)) => schema = value.to_owned(),
                _ => rest.push(pair),
            }
        }
        let url =
            if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
        let connection = tokio_postgres::Config::from_str(&url).map_err(|e| bad(e.to_string()))?;
        schema::check_name(&schema)?;
        Ok(Self { connection, schema })
    }
}

pub(crate) struct PostgresInner {
    pub pool: Pool,
    pub schema: String,
    /// The next position known to be committed (from this process's writer and `NOTIFY`).
    pub head: watch::Sender<u64>,
    requests: Mutex<Option<mpsc::Sender<writer::AppendRequest>>>,
    config: PostgresConfig,
    sql: ReadSql,
}

/// The reads' SQL, written once per store (the schema is part of it). Each pooled connection
/// prepares each statement once (`prepare_cached`): sent as plain text, every read was parsed
/// and prepared again, a round trip more each.
struct ReadSql {
    page: String,
    forward: String,
    backward: String,
    head: String,
    version: String,
}

impl ReadSql {
    fn new(schema: &str) -> Self {
        Self {
            page: format!(
                "SELECT {COLUMNS}, hash FROM {schema}.events WHERE position >= $1 ORDER BY position LIMIT $2"
            ),
            forward: format!(
                "SELECT {COLUMNS} FROM {schema}.events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3"
            ),
            backward: format!(
                "SELECT {COLUMNS} FROM {schema}.events WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3"
            ),
            head: format!("SELECT next_position FROM {schema}.head"),
            version: format!("SELECT version FROM {schema}.streams WHERE stream = $1"),
        }
    }
}

/// The event store on a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<PostgresInner>,
}

impl PostgresStore {
    /// Connects, migrates the schema, and starts the writer and the `LISTEN`er.
    pub async fn open(config: PostgresConfig) -> Result<Self, StoreError> {
        let mut connection = config.connection.clone();
        // Plans are PostgreSQL's default: reads reuse generic plans, and appends force custom
        // ones in their own transactions (see the writer). No NOTICEs ("schema already
        // exists") in Ordo's log on every start. And a server that
        // stops answering in the middle of a transaction (paused, cut off) loses it after a
        // few seconds: otherwise its lock on `head` would stop every other server's appends,
        // and its lock on a lease row every takeover, for as long as it stays away. Settings in
        // the URL's own `options` come later and win.
        let options = connection.get_options().map(str::to_owned).unwrap_or_default();
        connection.options(
            format!(
                "-c client_min_messages=warning \
                 -c idle_in_transaction_session_timeout={}ms {options}",
                IDLE_IN_TRANSACTION.as_millis()
            )
            .trim(),
        );
        let manager = Manager::from_config(
            connection,
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Storage(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| StoreError::Storage(e.to_string()))?;
        schema::migrate(&mut client, &config.schema).await?;
        let next: i64 = client
            .query_one(&format!("SELECT next_position FROM {}.head", config.schema), &[])
            .await?
            .get(0);
        drop(client);
        let (head, _) = watch::channel(next as u64);
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let inner = Arc::new(PostgresInner {
            pool,
            schema: config.schema.clone(),
            head,
            requests: Mutex::new(Some(tx)),
            sql: ReadSql::new(&config.schema),
            config,
        });
        tokio::spawn(writer::run(inner.clone(), rx));
        tokio::spawn(subscription::listen(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Stops accepting appends; what was queued still commits.
    pub fn close(&self) {
        self.inner.requests.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Appends recorded events of one stream from another store (an import), keeping ids,
    /// order and recording times. Meant for an empty store.
    pub async fn import(&self, events: Vec<RecordedEvent>) -> Result<AppendOutcome, StoreError> {
        let ImportRun { stream, expected, events, recorded_at } = ImportRun::new(events)?;
        let parts = vec![StreamAppend { stream, expected, events }];
        only(self.submit(parts, Some(recorded_at)).await?)
    }

    /// Queues an append of one or more parts for the writer and waits for its commit.
    async fn submit(
        &self,
        parts: Vec<StreamAppend>,
        recorded_at: Option<Vec<i64>>,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        crate::together::check_shape(&parts)?;
        let sender = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let request = writer::AppendRequest { parts, recorded_at, reply };
        sender.send(request).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Walks the whole log: positions contiguous, every chain hash matching its record. The
    /// same proof as the embedded store's, over the same record encoding.
    pub async fn verify(&self) -> Result<(u64, String), StoreError> {
        let mut previous = GENESIS;
        let mut expected = 0u64;
        loop {
            let page = self.read_page(expected, 4_096).await?;
            if page.is_empty() {
                break;
            }
            for (event, stored_hash) in page {
                if event.position.0 != expected {
                    return Err(StoreError::Corrupt {
                        position: expected,
                        reason: "event missing from the log".into(),
                    });
                }
                let body = postcard::to_stdvec(&stored_body(&event))
                    .map_err(|e| StoreError::Storage(format!("encode: {e}")))?;
                let hash = chain_hash(&previous, event.position.0, &body);
                if hash.as_slice() != stored_hash.as_slice() {
                    return Err(StoreError::Corrupt {
                        position: event.position.0,
                        reason: "hash chain mismatch: the event was altered".into(),
                    });
                }
                previous = hash;
                expected += 1;
            }
        }
        Ok((expected, crate::embedded::hex(&previous)))
    }

    /// Up to `limit` events from `position` on, with their stored chain hashes.
    async fn read_page(
        &self,
        position: u64,
        limit: usize,
    ) -> Result<Vec<(RecordedEvent, Vec<u8>)>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(&self.inner.sql.page).await?;
        let rows = client.query(&statement, &[&(position as i64), &(limit as i64)]).await?;
        rows.iter().map(|r| Ok((to_recorded(r)?, r.get::<_, Vec<u8>>(11)))).collect()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(|e| StoreError::Storage(e.to_string()))
    }

    pub(crate) fn head_watch(&self) -> watch::Receiver<u64> {
        self.inner.head.subscribe()
    }

    /// Events from `position` on (at most `limit`), without their hashes.
    pub(crate) async fn events_from(
        &self,
        position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.read_page(position, limit).await?.into_iter().map(|(e, _)| e).collect())
    }
}

impl EventStore for PostgresStore {
    type Subscription = PostgresSubscription;

    fn is_shared(&self) -> bool {
        true
    }

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let part = StreamAppend { stream: stream.clone(), expected, events };
        only(self.submit(vec![part], None).await?)
    }

    fn reports_read_through(&self) -> bool {
        true
    }

    fn appends_together(&self) -> bool {
        true
    }

    async fn append_together(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        self.submit(parts, None).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.client().await?;
        let sql = match direction {
            Direction::Forward => &self.inner.sql.forward,
            Direction::Backward => &self.inner.sql.backward,
        };
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let statement = client.prepare_cached(sql).await?;
        let rows = client.query(&statement, &[&stream.as_str(), &from, &(limit as i64)]).await?;
        rows.iter().map(to_recorded).collect()
    }

    async fn read_all(
        &self,
        from: SubscribeFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let start = from.first_counted_position();
        self.events_from(start, limit).await
    }

    async fn last_position(&self) -> Result<Option<Position>, StoreError> {
        let client = self.client().await?;
        let row =
            client.query_one(&client.prepare_cached(&self.inner.sql.head).await?, &[]).await?;
        let next: i64 = row.get(0);
        Ok((next as u64).checked_sub(1).map(Position))
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(&self.inner.sql.version).await?;
        let row = client.query_opt(&statement, &[&stream.as_str()]).await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> Result<PostgresSubscription, StoreError> {
        Ok(PostgresSubscription::new(self.clone(), from, filter))
    }
}
