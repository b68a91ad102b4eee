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

use crate::change::Change;
use crate::keys::{status_key, Namespace};
use crate::views::{changes, document_id, Fields, View};
use lru::LruCache;
use ordo_eventstore::clock::now_millis;
use ordo_eventstore::codec::{AnyEvent, CodecError};
use ordo_eventstore::follow::{follow, FollowConfig, FollowError, Handler};
use ordo_eventstore::{EventFilter, EventStore, Position, RecordedEvent, StoreError};
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;
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
pub async fn fenced_connection(
    client: &redis::Client,
) -> Result<ConnectionManager, redis::RedisError> {
    let info = client.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP2);
    redis::Client::open(info.set_redis_settings(settings))?.get_connection_manager().await
}

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

    /// Folds one batch and writes it with its checkpoint atomically.
    pub async fn apply(&mut self, batch: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = batch.last() else { return Ok(()) };
        // Disarmed from here on, unless the batch gets through to the reply that re-arms it.
        let armed = std::mem::take(&mut self.fence_armed);
        let started = Instant::now();
        let mut decoded = Vec::new();
        for event in batch {
            if let Some(id) = document_id::<V>(event) {
                let any = AnyEvent::from_recorded(event).map_err(|source| {
                    ProjectionError::Codec { position: event.position.0, source }
                })?;
                decoded.push((id.to_owned(), any, event));
            }
        }
        let mut missing: Vec<String> = decoded
            .iter()
            .map(|(id, ..)| id.clone())
            .filter(|id| !self.cache.contains(id))
            .collect();
        missing.sort_unstable();
        missing.dedup();

        // Round trip 1, unless the last batch armed the fence and every document is in
        // memory: fence the checkpoint and read the documents not in memory.
        let documents: Vec<HashMap<String, String>> = if armed && missing.is_empty() {
            Vec::new()
        } else {
            let mut read = redis::pipe();
            if !armed {
                read.cmd("WATCH").arg(self.ns.checkpoint()).ignore();
                read.cmd("GET").arg(self.ns.checkpoint());
            }
            for id in &missing {
                read.cmd("HGETALL").arg(V::key(&self.ns, id));
            }
            let mut values: Vec<redis::Value> = read.query_async(&mut self.redis).await?;
            if !armed {
                let stored =
                    redis::from_redis_value(values.remove(0)).map_err(redis::RedisError::from)?;
                if parse_checkpoint(stored) != self.checkpoint {
                    let _: () = redis::cmd("UNWATCH").query_async(&mut self.redis).await?;
                    return Err(ProjectionError::Fenced(self.ns.prefix().to_owned()));
                }
            }
            values
                .into_iter()
                .map(redis::from_redis_value)
                .collect::<Result<_, _>>()
                .map_err(redis::RedisError::from)?
        };
        let mut docs: HashMap<String, (Option<V>, Option<V>)> = HashMap::new();
        for (id, fields) in missing.into_iter().zip(documents) {
            let view = if fields.is_empty() { None } else { V::from_fields(&Fields(fields)) };
            docs.insert(id, (view.clone(), view));
        }
        for (id, event, recorded) in &decoded {
            let entry = match docs.get_mut(id) {
                Some(entry) => entry,
                None => {
                    let cached = self.cache.get(id).cloned().flatten();
                    docs.entry(id.clone()).or_insert((cached.clone(), cached))
                }
            };
            entry.1 = V::apply(entry.1.take(), event, recorded);
        }

        // The last round trip: every write and the checkpoint, atomically, then the fence for the
        // next batch: `WATCH` again and read the checkpoint back. Written out rather than
        // `Pipeline::atomic`, which cannot send anything after its `EXEC`.
        let mut write = redis::pipe();
        write.cmd("MULTI").ignore();
        for (id, (old, new)) in &docs {
            for change in changes(&self.ns, id, old.as_ref(), new.as_ref()) {
                add_change(&mut write, change);
            }
        }
        write.cmd("SET").arg(self.ns.checkpoint()).arg(last.position.0).ignore();
        self.add_status(&mut write, last).await;
        write.cmd("EXEC");
        write.cmd("WATCH").arg(self.ns.checkpoint()).ignore();
        write.cmd("GET").arg(self.ns.checkpoint());
        // A command the transaction refused fails the whole reply (errors inside `EXEC`'s
        // array included), and so does the batch.
        let (done, after): (redis::Value, Option<String>) =
            write.query_async(&mut self.redis).await?;
        if done == redis::Value::Nil {
            return Err(ProjectionError::Fenced(self.ns.prefix().to_owned()));
        }
        // Read back after the `WATCH`: if it is this batch's, any later write to it makes the
        // next batch's `EXEC` fail. If not, someone wrote it just after this batch; the next
        // batch fences again and finds out.
        self.fence_armed = parse_checkpoint(after) == Some(last.position);

        for (id, (_, new)) in docs {
            if self.cache.push(id, new).is_some_and(|(evicted, _)| !self.cache.contains(&evicted)) {
                self.cache_is_complete = false;
            }
        }
        self.checkpoint = Some(last.position);
        self.events_applied += batch.len() as u64;
        self.applied.send_replace(last.position.0 + 1);
        metrics::counter!("ordo_projection_events_applied_total", "projection" => V::PROJECTION)
            .increment(batch.len() as u64);
        metrics::histogram!("ordo_projection_batch_seconds", "projection" => V::PROJECTION)
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Adds the status update (position, lag, update time) to the batch's transaction, so it
    /// costs no round trip of its own and always agrees with the checkpoint.
    async fn add_status(&self, write: &mut redis::Pipeline, last: &RecordedEvent) {
        let head = self.store.last_position().await.ok().flatten().map_or(last.position, |p| p);
        let caught_up = head <= last.position;
        // A distance in events only where positions count events (not on KurrentDB); the
        // lag in seconds holds everywhere.
        let lag_events = if self.store.positions_count_events() {
            head.0.saturating_sub(last.position.0).to_string()
        } else {
            String::new()
        };
        let lag_seconds =
            if caught_up { 0.0 } else { (now_millis() - last.recorded_at).max(0) as f64 / 1_000.0 };
        if let Ok(events) = lag_events.parse::<f64>() {
            metrics::gauge!("ordo_projection_lag_events", "projection" => V::PROJECTION)
                .set(events);
        }
        metrics::gauge!("ordo_projection_lag_seconds", "projection" => V::PROJECTION)
            .set(lag_seconds);
        write
            .cmd("HSET")
            .arg(status_key(V::PROJECTION))
            .arg("version")
            .arg(self.ns.version)
            .arg("position")
            .arg(last.position.0)
            .arg("lag_events")
            .arg(lag_events)
            .arg("lag_seconds")
            .arg(lag_seconds)
            .arg("updated_at")
            .arg(now_millis())
            .arg("last_error")
            .arg("")
            .ignore();
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

    fn filter(&self) -> EventFilter {
        EventFilter::all()
    }

    /// Reloads the checkpoint Redis holds and forgets cached documents: after a failure,
    /// Redis may have lost writes the cache still remembers.
    async fn checkpoint(&mut self) -> Result<Option<Position>, ProjectionError> {
        self.runner.reset().await?;
        Ok(self.runner.checkpoint)
    }

    async fn handle(&mut self, batch: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.runner.apply(batch).await?;
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

fn add_change(pipe: &mut redis::Pipeline, change: Change) {
    match change {
        Change::SetFields { fields, .. } if fields.is_empty() => {}
        Change::SetFields { key, fields } => {
            let cmd = pipe.cmd("HSET").arg(key);
            for (field, value) in fields {
                cmd.arg(field).arg(value);
            }
            cmd.ignore();
        }
        Change::Delete { key } => {
            pipe.cmd("DEL").arg(key).ignore();
        }
        Change::ZAdd { key, score, member } => {
            pipe.cmd("ZADD").arg(key).arg(score).arg(member).ignore();
        }
        Change::ZRem { key, member } => {
            pipe.cmd("ZREM").arg(key).arg(member).ignore();
        }
        Change::SAdd { key, member } => {
            pipe.cmd("SADD").arg(key).arg(member).ignore();
        }
        Change::SRem { key, member } => {
            pipe.cmd("SREM").arg(key).arg(member).ignore();
        }
        Change::HSetField { key, field, value } => {
            pipe.cmd("HSET").arg(key).arg(field).arg(value).ignore();
        }
        Change::HDel { key, field } => {
            pipe.cmd("HDEL").arg(key).arg(field).ignore();
        }
    }
}
