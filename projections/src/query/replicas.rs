//! Redis replicas the queries spread over, and their health.
//!
//! A replica is used while it says it is a replica with its link to the primary up
//! (`INFO replication`: `role:slave`, `master_link_status:up`), checked every
//! [`REPLICA_CHECK`]. One that stops answering, loses its link (it falls behind for good) or is
//! turned into a primary is skipped until it is healthy again; a query it fails meanwhile is
//! answered by the primary. How far behind a healthy replica may be is the `min_position`
//! wait's business: it gives the replica a moment, then asks the primary.

use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often each replica's health is checked.
pub const REPLICA_CHECK: Duration = Duration::from_millis(250);

/// Connections to one Redis, used in turn: one connection's reader task parses every reply on
/// one thread, which caps a busy server at one core's worth of Redis replies.
pub(super) struct Pool {
    connections: Vec<ConnectionManager>,
    next: AtomicUsize,
}

impl Pool {
    pub(super) fn new(connections: Vec<ConnectionManager>) -> Self {
        assert!(!connections.is_empty(), "a Redis pool needs a connection");
        Self { connections, next: AtomicUsize::new(0) }
    }

    /// The next connection to use.
    pub(super) fn connection(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.connections[i % self.connections.len()].clone()
    }
}

/// One replica.
pub struct Replica {
    name: String,
    pool: Pool,
    healthy: AtomicBool,
}

impl Replica {
    /// A replica known as `name` (its URL, redacted) over these connections (at least one).
    /// It is used once its first health check passes.
    pub fn new(name: impl Into<String>, connections: Vec<ConnectionManager>) -> Self {
        Self { name: name.into(), pool: Pool::new(connections), healthy: AtomicBool::new(false) }
    }

    /// Its name in logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn connection(&self) -> ConnectionManager {
        self.pool.connection()
    }

    pub(super) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(super) fn set_healthy(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            match healthy {
                true => tracing::info!(replica = %self.name, "reading from the replica"),
                false => tracing::warn!(replica = %self.name, "skipping the replica"),
            }
            let gauge =
                metrics::gauge!("ordo_redis_replica_in_use", "replica" => self.name.clone());
            gauge.set(if healthy { 1.0 } else { 0.0 });
        }
    }

    /// Whether it answers as a replica whose link to its primary is up.
    async fn check(&self) -> bool {
        let info: Result<String, _> =
            redis::cmd("INFO").arg("replication").query_async(&mut self.connection()).await;
        info.is_ok_and(|info| {
            let field = |name: &str| {
                info.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("")
            };
            field("role:") == "slave" && field("master_link_status:") == "up"
        })
    }
}

/// Every replica, handed out in turn.
#[derive(Default)]
pub(super) struct Replicas {
    list: Vec<Arc<Replica>>,
    next: AtomicUsize,
}

impl Replicas {
    pub(super) fn new(list: Vec<Replica>) -> Self {
        Self { list: list.into_iter().map(Arc::new).collect(), next: AtomicUsize::new(0) }
    }

    /// The next healthy replica, if any.
    pub(super) fn next_healthy(&self) -> Option<Arc<Replica>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..self.list.len())
            .map(|i| &self.list[(start + i) % self.list.len()])
            .find(|r| r.is_healthy())
            .cloned()
    }

    pub(super) fn health(&self) -> Vec<(String, bool)> {
        self.list.iter().map(|r| (r.name.clone(), r.is_healthy())).collect()
    }
}

/// Checks every replica every [`REPLICA_CHECK`] until the read models are dropped.
pub(super) async fn watch(replicas: Weak<Replicas>) {
    let mut every = tokio::time::interval(REPLICA_CHECK);
    loop {
        every.tick().await;
        let Some(replicas) = replicas.upgrade() else { return };
        for replica in &replicas.list {
            let healthy = tokio::time::timeout(REPLICA_CHECK, replica.check()).await;
            replica.set_healthy(healthy.unwrap_or(false));
        }
    }
}
