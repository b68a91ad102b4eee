//! Typed queries over the read models. Each is one or two Redis round trips and never scans
//! the keyspace. Any query can first wait, bounded, until its projection has applied a given
//! global position, so a client reads its own writes.
//!
//! Queries go to Redis replicas when there are any (`replicas`): a query without a position
//! to wait for reads from the next healthy replica; one with a position waits on that replica
//! for a moment and, if the replica has not replicated that far, reads from the primary. A
//! replica that fails a query is skipped and the query is answered by the primary.
//!
//! - this file: [`ReadModels`], which picks where each query reads;
//! - `model`: what queries are asked and answer, and why one fails;
//! - `reader`: the queries themselves, against one Redis;
//! - `replicas`: the replicas and their health.

mod catalogue;
mod model;
mod own_writes;
mod reader;
mod replicas;
mod walked_search;

pub use model::{
    Documents, HistoryPage, HistoryQuery, ProjectionStatus, QueryError, SearchPage, SearchQuery,
    SearchSort,
};
pub use reader::Reader;
pub use replicas::{Replica, REPLICA_CHECK};

use crate::keys::{active_version_key, building_version_key, status_key};
use crate::views::{CartView, OrderView, ProductListing};
use own_writes::CheckedConnection;
use redis::aio::ConnectionManager;
use replicas::{Pool, Replicas};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Default bound on waiting for a position.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);
/// Largest page any query returns.
pub const MAX_PAGE: usize = 100;
/// How long the active read-model version is cached before being looked up again.
const ACTIVE_TTL: Duration = Duration::from_millis(500);

/// Queries over the active read models.
pub struct ReadModels {
    /// The primary: where the runners write, and where queries go without healthy replicas.
    primary: Pool,
    replicas: Arc<Replicas>,
    active: Arc<Mutex<HashMap<&'static str, (u32, Instant)>>>,
    search: Arc<redis::Script>,
    /// Set once Redis refused `SORT_RO` (an ACL without `@dangerous` or full key reads): history's
    /// newest pages are then read the two-trip way.
    sort_refused: Arc<AtomicBool>,
    /// Applied positions (`position + 1`) of this process's own runners, by projection: what
    /// wakes a `min_position` wait the moment a batch lands, instead of a polling interval.
    applied: Arc<HashMap<&'static str, watch::Receiver<u64>>>,
}

/// How long a `min_position` wait gives a replica before asking the primary instead.
pub const REPLICA_WAIT: Duration = Duration::from_millis(50);

impl ReadModels {
    /// Queries over `redis`.
    pub fn new(redis: ConnectionManager) -> Self {
        Self::pooled(vec![redis])
    }

    /// Queries spread over several connections to the same Redis (at least one).
    pub fn pooled(connections: Vec<ConnectionManager>) -> Self {
        Self {
            primary: Pool::new(connections),
            replicas: Arc::new(Replicas::default()),
            active: Arc::new(Mutex::new(HashMap::new())),
            search: Arc::new(redis::Script::new(include_str!("../search.lua"))),
            sort_refused: Arc::new(AtomicBool::new(false)),
            applied: Arc::new(HashMap::new()),
        }
    }

    /// Spreads queries over these replicas of the primary; their health is checked every
    /// [`REPLICA_CHECK`] by a task this spawns (so it needs a runtime).
    pub fn with_replicas(mut self, replicas: Vec<Replica>) -> Self {
        self.replicas = Arc::new(Replicas::new(replicas));
        tokio::spawn(replicas::watch(Arc::downgrade(&self.replicas)));
        self
    }

    /// Wakes `min_position` waits from these runners' applied positions (`position + 1`, as
    /// [`crate::runner::Runner::applied`] reports them). Redis stays the judge: a wake-up only
    /// prompts the next look at the checkpoint, so another instance's runner, or a rebuild's,
    /// is still waited for (by polling).
    pub fn woken_by(mut self, applied: HashMap<&'static str, watch::Receiver<u64>>) -> Self {
        self.applied = Arc::new(applied);
        self
    }

    /// The replicas and whether each is in use, by name.
    pub fn replica_health(&self) -> Vec<(String, bool)> {
        self.replicas.health()
    }

    fn on(&self, redis: ConnectionManager) -> Reader {
        Reader {
            redis: CheckedConnection::plain(redis),
            active: self.active.clone(),
            search: self.search.clone(),
            sort_refused: self.sort_refused.clone(),
            applied: self.applied.clone(),
        }
    }

    fn on_primary(&self) -> Reader {
        self.on(self.primary.connection())
    }

    /// Runs `query` where it should read: on the next healthy replica that has applied
    /// `min_position` of `projection` (waiting [`REPLICA_WAIT`] at most), else on the primary
    /// (waiting what is left of `timeout`). A replica that fails is skipped until it is healthy
    /// again, and the query runs on the primary. A query whose primary connection turns out to
    /// have dropped runs once more on it, reconnected.
    pub async fn read<T, Q, F>(
        &self,
        projection: &'static str,
        min_position: Option<u64>,
        timeout: Duration,
        query: Q,
    ) -> Result<T, QueryError>
    where
        Q: Fn(Reader) -> F,
        F: std::future::Future<Output = Result<T, QueryError>>,
    {
        let deadline = Instant::now() + timeout;
        if let Some(replica) = self.replicas.next_healthy() {
            let reader = self.on(replica.connection());
            let answer = match min_position {
                None => query(reader).await,
                Some(position) => {
                    reader.read_at(projection, position, REPLICA_WAIT.min(timeout), &query).await
                }
            };
            match answer {
                Err(QueryError::Unavailable(error)) => {
                    tracing::warn!(replica = replica.name(), %error, "replica failed; reading from the primary");
                    replica.set_healthy(false);
                }
                // Not replicated that far yet: the primary has it sooner.
                Err(QueryError::NotYetApplied { .. }) => {}
                other => return other,
            }
        }
        let connection = self.primary.connection();
        let on_primary = || async {
            let reader = self.on(connection.clone());
            match min_position {
                None => query(reader).await,
                Some(position) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    reader.read_at(projection, position, left, &query).await
                }
            }
        };
        match on_primary().await {
            // The connection had died unseen (Redis restarted while it was idle): this failure
            // makes it reconnect, and a query only reads, so it runs once more. A Redis still
            // away fails the second run within the reconnect's short timeout.
            Err(QueryError::Unavailable(e)) if e.is_connection_dropped() => on_primary().await,
            answer => answer,
        }
    }

    /// Waits until `projection` has applied global `position` on the primary, for at most
    /// `timeout`.
    pub async fn wait_for(
        &self,
        projection: &'static str,
        position: u64,
        timeout: Duration,
    ) -> Result<(), QueryError> {
        self.on_primary().wait_for(projection, position, timeout).await
    }

    /// What `projection`'s runner last reported: active and building versions, applied
    /// position, lag, last update and last error.
    pub async fn status(&self, projection: &'static str) -> Result<ProjectionStatus, QueryError> {
        let (active, building, fields): (Option<u32>, Option<u32>, HashMap<String, String>) =
            redis::pipe()
                .cmd("GET")
                .arg(active_version_key(projection))
                .cmd("GET")
                .arg(building_version_key(projection))
                .cmd("HGETALL")
                .arg(status_key(projection))
                .query_async(&mut self.primary.connection())
                .await?;
        let number = |name: &str| fields.get(name).and_then(|v| v.parse::<f64>().ok());
        Ok(ProjectionStatus {
            projection,
            active_version: active.unwrap_or(1),
            building_version: building,
            position: number("position").map(|p| p as u64),
            lag_events: number("lag_events").map(|p| p as u64),
            lag_seconds: number("lag_seconds"),
            updated_at: number("updated_at").map(|p| p as i64),
            last_error: fields.get("last_error").filter(|e| !e.is_empty()).cloned(),
        })
    }

    /// One order (from the primary).
    pub async fn order(&self, order_id: &str) -> Result<Option<OrderView>, QueryError> {
        self.on_primary().order(order_id).await
    }

    /// One product, listed or not (from the primary).
    pub async fn product(&self, sku: &str) -> Result<Option<ProductListing>, QueryError> {
        self.on_primary().product(sku).await
    }

    /// One cart (from the primary).
    pub async fn cart(&self, cart_id: &str) -> Result<Option<CartView>, QueryError> {
        self.on_primary().cart(cart_id).await
    }

    /// A customer's orders, newest first (from the primary).
    pub async fn order_history(
        &self,
        customer_id: &str,
        q: &HistoryQuery,
    ) -> Result<HistoryPage, QueryError> {
        self.on_primary().order_history(customer_id, q).await
    }

    /// A customer's orders, newest first, as rendered documents (from the primary).
    pub async fn order_history_documents(
        &self,
        customer_id: &str,
        q: &HistoryQuery,
    ) -> Result<HistoryPage<String>, QueryError> {
        self.on_primary().order_history_documents(customer_id, q).await
    }

    /// Product search (from the primary).
    pub async fn search(&self, q: &SearchQuery) -> Result<SearchPage, QueryError> {
        self.on_primary().search(q).await
    }

    /// Product search, each product as the document the API sends (from the primary).
    pub async fn search_documents(
        &self,
        q: &SearchQuery,
    ) -> Result<SearchPage<Documents>, QueryError> {
        self.on_primary().search_documents(q).await
    }

    /// A listed product as the document the API sends (from the primary).
    pub async fn product_document(&self, sku: &str) -> Result<Option<String>, QueryError> {
        self.on_primary().product_document(sku).await
    }

    /// One order as the document the API sends, with its customer (from the primary).
    pub async fn order_document(
        &self,
        order_id: &str,
    ) -> Result<Option<(String, String)>, QueryError> {
        self.on_primary().order_document(order_id).await
    }

    /// The namespace queries of `projection` read (from the primary).
    pub async fn namespace(
        &self,
        projection: &'static str,
    ) -> Result<crate::keys::Namespace, QueryError> {
        self.on_primary().namespace(projection).await
    }
}

/// A history page's cursor: the last order shown, as its time (Unix milliseconds, its score in
/// the history) and id, which [`parse_history_cursor`] reads back.
fn history_cursor(placed_at: i64, order_id: &str) -> String {
    format!("{placed_at}:{order_id}")
}

fn parse_history_cursor(cursor: &str) -> Result<(i64, String), QueryError> {
    let (score, member) = cursor.split_once(':').ok_or(QueryError::InvalidCursor)?;
    Ok((score.parse().map_err(|_| QueryError::InvalidCursor)?, member.to_owned()))
}
