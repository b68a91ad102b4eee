//! The projection runner: store subscription in, Redis out, exactly once.
//!
//! Per batch of events: the documents they touch are taken from the runner's cache (it is the
//! only writer of its namespace) or read in one pipelined round trip, the events are folded in
//! memory, and every resulting write goes to Redis together with the new checkpoint in one
//! `MULTI/EXEC`, fenced by `WATCH` on the checkpoint. A batch therefore takes effect completely
//! or not at all, and a restarted runner resumes right after the last batch that did. Each
//! batch's pipeline also arms the next batch's fence (ADR 0025), so at the live edge, with
//! every document cached, a batch is one round trip. The
//! shared log follower ([`ordo_eventstore::follow`]) drives it: if Redis is unreachable it backs
//! off and resumes from the checkpoint Redis holds; the write side never waits for it.
//!
//! Here: the runner's state and its life (start, reset after a failure, follow the log); in
//! `batch`: what one batch does, the rule that makes it exactly once.

mod batch;

use crate::keys::{status_key, Namespace};
use crate::views::View;
use lru::LruCache;
use ordo_eventstore::clock::now_millis;
use ordo_eventstore::codec::CodecError;
use ordo_eventstore::follow::{follow, FollowConfig, FollowError, Handler};
use ordo_eventstore::{EventFilter, EventStore, Position, RecordedEvent, StoreError};
use redis::aio::ConnectionManager;
use std::num::NonZeroUsize;
use std::sync::Arc;
use tokio::sync::watch;

/// Why a batch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Redis failed or is unreachable.
    #[error("redis: {0}")]
    Redis(redis::RedisError),
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not decode with today's code.
    #[error("event at position {position} does not decode: {source}")]
    Codec {
        /// Where.
        position: u64,
        /// Why.
        source: CodecError,
    },
    /// Someone else moved this namespace's checkpoint: another runner is writing it.
    #[error("checkpoint of {0} moved underneath this runner")]
    Fenced(String),
}

impl From<redis::RedisError> for ProjectionError {
    fn from(e: redis::RedisError) -> Self {
        ProjectionError::Redis(e)
    }
}

/// Tuning of a runner.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Most events per Redis transaction.
    pub batch_size: usize,
    /// Documents kept in memory, so hot documents are not read back from Redis.
    pub cache_capacity: usize,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self { batch_size: 5_000, cache_capacity: 250_000 }
    }
}

/// Projects the store into one namespace of view `V`.
pub struct Runner<V: View, S: EventStore> {
    store: Arc<S>,
    redis: ConnectionManager,
    ns: Namespace,
    config: RunnerConfig,
    cache: LruCache<String, Option<V>>,
    checkpoint: Option<Position>,
    applied: watch::Sender<u64>,
    /// Events applied by this runner since it started (positions need not count events).
    events_applied: u64,
    /// Events of the log it has read past since it started, its own and the others' it skipped.
    events_read: u64,
    /// The cache holds every document of the namespace: the runner started it from nothing
    /// and has evicted nothing since. Then a document not in the cache does not exist, and
    /// the read round trip is skipped (what makes rebuilds fast).
    cache_is_complete: bool,
    /// The checkpoint is `WATCH`ed on the runner's connection and was read back equal to
    /// [`Runner::checkpoint`] after the `WATCH`: the next batch may skip its fence round trip.
    /// Each batch's transaction re-arms it in the same round trip (after `EXEC`, which clears
    /// every `WATCH`); any failure disarms it, as a failed request may have cost the connection
    /// and its `WATCH` with it.
    fence_armed: bool,
}

/// A connection for a runner: its own, and one that never replaces itself between a batch's
/// `WATCH` and its `EXEC`.
///
/// A [`ConnectionManager`] reconnects when a request finds the connection dropped, after
/// failing that request, which is what the fence needs: the `EXEC` of a connection that lost
/// its `WATCH` fails, and the batch runs again from a fresh `WATCH`. On RESP3 it also listens
/// for the disconnection and reconnects on its own, before anything fails; a transaction sent
/// next would run on the new connection unwatched, and a runner that lost its namespace to
/// another (a rebuild's switch, an instance taking over) could write over it. So the runner
/// speaks RESP2 whatever the URL asks for: the two differ only in reply types the runner
/// does not use.
///
/// Its replies may take long: a batch's transaction can be large (the first catalogue batch of
/// a rebuild adds the index entries of thousands of products), and measured over the client's
/// default of 500 ms on a loaded machine. A reply that times out after its `EXEC` ran costs a
/// runner its whole cache (a rebuild then reads back every document it touches) and repeats
/// the batch's fence, so the runner waits [`RUNNER_RESPONSE_TIMEOUT`]: long enough for any
/// batch, short enough to give up on a connection that no longer answers.
pub async fn fenced_connection(
    client: &redis::Client,
) -> Result<ConnectionManager, redis::RedisError> {
    let info = client.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP2);
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(RUNNER_RESPONSE_TIMEOUT));
    redis::Client::open(info.set_redis_settings(settings))?
        .get_connection_manager_with_config(config)
        .await
}

/// How long a runner waits for a reply from Redis (see [`fenced_connection`]).
pub const RUNNER_RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Parses a stored checkpoint (`None`: nothing applied yet).
pub fn parse_checkpoint(value: Option<String>) -> Option<Position> {
    value.and_then(|v| v.parse().ok()).map(Position)
}

impl<V: View, S: EventStore> Runner<V, S> {
    /// A runner for `V` at read-model `version`. `redis` should come from
    /// [`fenced_connection`]: the runner's `WATCH` must not share a connection with other
    /// users, nor outlive a silent reconnect.
    pub async fn new(
        store: Arc<S>,
        redis: ConnectionManager,
        version: u32,
        config: RunnerConfig,
    ) -> Result<Self, ProjectionError> {
        let ns = Namespace::new(V::PROJECTION, version);
        let capacity = NonZeroUsize::new(config.cache_capacity).unwrap_or(NonZeroUsize::MIN);
        let (applied, _) = watch::channel(0);
        let mut runner = Self {
            store,
            redis,
            ns,
            config,
            cache: LruCache::new(capacity),
            checkpoint: None,
            applied,
            events_applied: 0,
            events_read: 0,
            cache_is_complete: false,
            fence_armed: false,
        };
        runner.reset().await?;
        Ok(runner)
    }

    /// The namespace this runner writes.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// The last applied global position.
    pub fn checkpoint(&self) -> Option<Position> {
        self.checkpoint
    }

    /// How many events this runner has applied since it started.
    pub fn events_applied(&self) -> u64 {
        self.events_applied
    }

    /// How many events of the log this runner has read past since it started: those it applied
    /// and the other aggregates' it skipped. Where positions do not count events (KurrentDB),
    /// it is handed every event, and this is the number it was handed.
    pub fn events_read(&self) -> u64 {
        self.events_read
    }

    /// Applied positions as they happen: the value is `position + 1` (0 = nothing yet), for
    /// queries that wait to read their own writes.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Reports applied positions to `applied` from now on, starting with the checkpoint, instead
    /// of to the runner's own channel: a supervisor's channel outlives the runners it starts.
    pub fn report_to(&mut self, applied: watch::Sender<u64>) {
        applied.send_replace(self.checkpoint.map_or(0, |p| p.0 + 1));
        self.applied = applied;
    }

    /// Forgets cached documents and reloads the checkpoint from Redis.
    async fn reset(&mut self) -> Result<(), ProjectionError> {
        self.cache.clear();
        self.fence_armed = false;
        let stored: Option<String> =
            redis::cmd("GET").arg(self.ns.checkpoint()).query_async(&mut self.redis).await?;
        self.checkpoint = parse_checkpoint(stored);
        self.cache_is_complete = self.checkpoint.is_none();
        self.applied.send_replace(self.checkpoint.map_or(0, |p| p.0 + 1));
        Ok(())
    }

    /// Applies events until the checkpoint reaches `target` (or forever with `None`), resuming
    /// after every failure, through the shared log follower. `progress` sees the checkpoint
    /// after each batch.
    pub async fn run(
        &mut self,
        target: Option<Position>,
        progress: impl FnMut(Position) + Send,
    ) -> Result<(), ProjectionError> {
        let config = FollowConfig { batch_size: self.config.batch_size, ..FollowConfig::default() };
        let store = self.store.clone();
        // Nothing stops a runner from outside but dropping it (the supervisor, a rebuild).
        let (_keep, never) = watch::channel(false);
        let mut handler = Projecting { runner: self, progress };
        let followed = match follow(&*store, &mut handler, &config, target, never).await {
            Ok(()) => Ok(()),
            Err(FollowError::Handler { source, .. }) => Err(source),
            Err(FollowError::Closed) => Err(ProjectionError::Store(StoreError::Closed)),
        };
        // However it ended, no `WATCH` stays behind on the connection (a batch that failed
        // before its `EXEC` leaves the last one's, armed or not): a caller that goes on using
        // the connection (a rebuild switching versions) would otherwise send its own `EXEC`
        // under this runner's fence.
        self.fence_armed = false;
        let unwatched: Result<(), redis::RedisError> =
            redis::cmd("UNWATCH").query_async(&mut self.redis).await;
        followed.and(unwatched.map_err(ProjectionError::from))
    }

    async fn record_error(&mut self, error: &str) {
        let _: Result<(), _> = redis::cmd("HSET")
            .arg(status_key(V::PROJECTION))
            .arg("last_error")
            .arg(error)
            .arg("updated_at")
            .arg(now_millis())
            .query_async(&mut self.redis)
            .await;
    }
}

/// A runner as the follower's handler, reporting progress after each batch.
struct Projecting<'r, V: View, S: EventStore, F> {
    runner: &'r mut Runner<V, S>,
    progress: F,
}

impl<V: View, S: EventStore, F: FnMut(Position) + Send> Handler for Projecting<'_, V, S, F> {
    type Error = ProjectionError;

    fn name(&self) -> &'static str {
        V::PROJECTION
    }

    /// Its own aggregate's streams, where the store says how far it read past the others;
    /// else every event, so that the checkpoint moves over all of them (queries wait on it).
    fn filter(&self) -> EventFilter {
        if self.runner.store.reports_read_through() {
            EventFilter::streams_starting_with([format!("{}-", V::CATEGORY)])
        } else {
            EventFilter::all()
        }
    }

    /// Reloads the checkpoint Redis holds and forgets cached documents: after a failure,
    /// Redis may have lost writes the cache still remembers.
    async fn checkpoint(&mut self) -> Result<Option<Position>, ProjectionError> {
        self.runner.reset().await?;
        Ok(self.runner.checkpoint)
    }

    async fn handle(
        &mut self,
        batch: &[RecordedEvent],
        through: Position,
    ) -> Result<(), ProjectionError> {
        self.runner.apply(batch, through).await?;
        if let Some(p) = self.runner.checkpoint {
            (self.progress)(p);
        }
        Ok(())
    }

    /// An event today's code cannot decode will not decode on retry either.
    fn is_permanent(&self, error: &ProjectionError) -> bool {
        matches!(error, ProjectionError::Codec { .. })
    }

    async fn on_failure(&mut self, error: &str) {
        metrics::counter!("ordo_projection_errors_total", "projection" => V::PROJECTION)
            .increment(1);
        self.runner.record_error(error).await;
    }
}
