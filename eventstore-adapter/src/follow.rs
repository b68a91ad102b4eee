//! The one log follower: everything that reacts to the log (projections, processes, the outbox)
//! is a [`Handler`] driven by [`follow`].
//!
//! The follower owns the loop every reactor needs and gets subtly wrong on its own: resume from
//! the handler's checkpoint, read the log batch by batch, hand each batch over, and on any
//! failure back off and start again from the checkpoint the handler holds, so a batch is never
//! skipped and a restart never repeats more than the last unrecorded batch. The handler owns
//! what differs: where its checkpoint lives and what a batch does. It records the checkpoint
//! itself, together with the batch's effects (one Redis transaction for a projection or the
//! outbox, one file transaction for the processes): a checkpoint lives with the effect it
//! accounts for, so the two never disagree (ADR 0009).
//!
//! This is also the unit a lease will guard when several servers share one store: one
//! follower per handler, running in one instance at a time.

use crate::error::StoreError;
use crate::model::{EventFilter, Position, RecordedEvent, SubscribeFrom};
use crate::store::{EventStore, Subscription};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// Something that reacts to the log from its own checkpoint.
pub trait Handler: Send {
    /// Why loading the checkpoint or handling a batch failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// For logs: which follower this is.
    fn name(&self) -> &'static str;

    /// The streams it reacts to.
    fn filter(&self) -> EventFilter;

    /// The last position whose effects are recorded, from the handler's own store; `None`
    /// before the first batch. Called at start and after every failure, so a handler may also
    /// drop whatever it cached.
    fn checkpoint(&mut self) -> impl Future<Output = Result<Option<Position>, Self::Error>> + Send;

    /// Applies one batch and records `through` as the checkpoint, together with the batch's
    /// effects. On error nothing of the batch may count as recorded.
    ///
    /// `through` is the batch's last position, or further where the store reports how far it
    /// read past events the filter dropped ([`EventStore::reports_read_through`]); then a batch
    /// may also be empty. A handler whose checkpoint nobody waits on may ignore an empty batch.
    fn handle(
        &mut self,
        batch: &[RecordedEvent],
        through: Position,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Whether `error` is permanent (the follower stops) rather than transient (it backs off
    /// and resumes from the checkpoint). Transient unless the handler says otherwise.
    fn is_permanent(&self, _error: &Self::Error) -> bool {
        false
    }

    /// Told about every failure before the follower backs off (to record it where operators
    /// look, for example).
    fn on_failure(&mut self, _error: &str) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How a follower reads and retries.
#[derive(Clone, Debug)]
pub struct FollowConfig {
    /// Most events per batch.
    pub batch_size: usize,
    /// First pause after a failure; doubles per consecutive failure.
    pub first_backoff: Duration,
    /// Longest pause.
    pub max_backoff: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Why a follower stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum FollowError<E: std::error::Error + 'static> {
    /// The handler failed in a way it declared permanent.
    #[error("{name} stopped")]
    Handler {
        /// The follower.
        name: &'static str,
        /// What failed.
        #[source]
        source: E,
    },
    /// The store was closed under it.
    #[error("the event store closed")]
    Closed,
}

/// One failure inside the follow loop.
enum Failure<E> {
    Store(StoreError),
    Handler(E),
}

impl<E: std::fmt::Display> std::fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Store(e) => e.fmt(f),
            Failure::Handler(e) => e.fmt(f),
        }
    }
}

/// Follows the log for `handler` until `stop` turns true, or (with `until`) until its
/// checkpoint reaches that position. Transient failures never end it.
///
/// `stop` is looked at between batches and while waiting (for events, or out a backoff); a
/// batch already handed over runs to its end, so a graceful stop repeats nothing. A handler
/// that must give up mid-batch (the processes, during a slow payment call) watches `stop`
/// itself and fails the batch, which leaves its checkpoint where it was.
pub async fn follow<S: EventStore, H: Handler>(
    store: &S,
    handler: &mut H,
    config: &FollowConfig,
    until: Option<Position>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), FollowError<H::Error>> {
    let mut backoff = config.first_backoff;
    loop {
        let failure = match run_once(store, handler, config, until, &mut backoff, &mut stop).await {
            Ok(()) => return Ok(()),
            Err(Failure::Store(StoreError::Closed)) => return Err(FollowError::Closed),
            Err(Failure::Handler(e)) if handler.is_permanent(&e) => {
                handler.on_failure(&e.to_string()).await;
                return Err(FollowError::Handler { name: handler.name(), source: e });
            }
            Err(failure) => failure.to_string(),
        };
        if *stop.borrow() {
            return Ok(());
        }
        tracing::warn!(follower = handler.name(), error = %failure, ?backoff, "follower paused; resuming from its checkpoint");
        metrics::counter!("ordo_follower_retries_total", "follower" => handler.name()).increment(1);
        handler.on_failure(&failure).await;
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

/// From the checkpoint until a failure, `until`, or `stop` (then `Ok`).
async fn run_once<S: EventStore, H: Handler>(
    store: &S,
    handler: &mut H,
    config: &FollowConfig,
    until: Option<Position>,
    backoff: &mut Duration,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Failure<H::Error>> {
    let checkpoint = handler.checkpoint().await.map_err(Failure::Handler)?;
    if until.is_some() && checkpoint >= until {
        return Ok(());
    }
    let from = checkpoint.map_or(SubscribeFrom::Start, SubscribeFrom::After);
    let mut subscription =
        store.subscribe_all(from, handler.filter()).await.map_err(Failure::Store)?;
    let mut handed = checkpoint;
    loop {
        let batch = tokio::select! {
            batch = subscription.next_batch(config.batch_size) => batch.map_err(Failure::Store)?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        // As far as the batch accounts for: its last event, or past the events dropped after it.
        let through = batch.last().map(|e| e.position).max(subscription.read_through());
        let Some(through) = through.filter(|t| Some(*t) > handed) else { continue };
        handed = Some(through);
        // Time in the handler per batch: its rate is the share of time the follower is busy,
        // which says which follower is the bottleneck once lag grows with load.
        let started = std::time::Instant::now();
        handler.handle(&batch, through).await.map_err(Failure::Handler)?;
        *backoff = config.first_backoff;
        if let Some(newest) = batch.last() {
            let follower = handler.name();
            metrics::histogram!("ordo_follower_batch_seconds", "follower" => follower)
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("ordo_follower_batch_events", "follower" => follower)
                .record(batch.len() as f64);
            // How old the newest handled event was when it was handled: the follower's lag.
            let lag = (crate::clock::now_millis() - newest.recorded_at).max(0) as f64 / 1_000.0;
            metrics::gauge!("ordo_follower_lag_seconds", "follower" => follower).set(lag);
            metrics::counter!("ordo_follower_events_total", "follower" => follower)
                .increment(batch.len() as u64);
        }
        if until.is_some_and(|u| through >= u) {
            return Ok(());
        }
    }
}
