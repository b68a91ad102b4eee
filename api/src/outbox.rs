//! The outbox: public order events, published to a Redis Stream for outside services.
//!
//! The event log is the outbox. This follower reads order events from its checkpoint and
//! appends the public ones (placed, confirmed, cancelled, shipped, delivered, refunded) to the
//! stream `ordo:integration:orders` with `XADD`, moving the checkpoint in the same Redis
//! transaction. Delivery is at least once (a Redis that loses writes loses the checkpoint
//! with them, so those events go out again with the same `event_id`), in log order (so in
//! order per order); consumers de-duplicate by `event_id`. The contract is in
//! `docs/integration-events.md`.

use crate::processes::{aggregate_id, ProcessError, ProcessState};
use ordo_domain::order::{Actor, OrderEvent};
use ordo_eventstore::codec::DomainEvent;
use ordo_eventstore::{
    EventFilter, EventStore, Position, RecordedEvent, SubscribeFrom, Subscription,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The Redis Stream integration events go to.
pub const STREAM: &str = "ordo:integration:orders";
/// Entries the stream keeps (approximately); older ones are trimmed.
pub const MAX_LEN: u64 = 1_000_000;
/// Schema version of every entry's `data`.
pub const SCHEMA_VERSION: u32 = 1;
/// The outbox's checkpoint: the last global position it published, beside the stream.
pub const CHECKPOINT_KEY: &str = "ordo:integration:orders:checkpoint";
/// Where the checkpoint was kept before it moved into Redis (read once, on upgrade).
const LEGACY_CHECKPOINT: &str = "outbox";

/// The public form of an order event: its type and its `data`, or `None` for internal events
/// (payment bookkeeping).
pub fn public_event(event: &OrderEvent, order_id: &str) -> Option<(&'static str, Value)> {
    Some(match event {
        OrderEvent::Placed(e) => (
            "order.placed",
            json!({
                "order_id": order_id,
                "customer_id": e.customer_id.as_str(),
                "total_minor": e.total.minor,
                "currency": e.total.currency.as_str(),
                "lines": e.lines.iter().map(|l| json!({
                    "sku": l.sku.as_str(), "name": l.name, "quantity": l.quantity,
                    "unit_price_minor": l.unit_price.minor,
                })).collect::<Vec<_>>(),
                "shipping_address": e.shipping_address,
            }),
        ),
        OrderEvent::Confirmed(_) => ("order.confirmed", json!({ "order_id": order_id })),
        OrderEvent::Cancelled(e) => (
            "order.cancelled",
            json!({
                "order_id": order_id,
                "reason": e.reason,
                "cancelled_by": match e.by {
                    Actor::Customer(_) => "customer",
                    Actor::Admin(_) => "admin",
                    Actor::System => "system",
                },
            }),
        ),
        OrderEvent::Shipped(e) => (
            "order.shipped",
            json!({ "order_id": order_id, "carrier": e.carrier, "tracking": e.tracking }),
        ),
        OrderEvent::Delivered(_) => ("order.delivered", json!({ "order_id": order_id })),
        OrderEvent::Refunded(e) => (
            "order.refunded",
            json!({
                "order_id": order_id,
                "amount_minor": e.amount.minor,
                "currency": e.amount.currency.as_str(),
            }),
        ),
        OrderEvent::PaymentAuthorized(_) | OrderEvent::PaymentDeclined(_) => return None,
    })
}

fn entry(event: &RecordedEvent) -> Result<Option<Vec<(&'static str, String)>>, ProcessError> {
    let decoded = OrderEvent::from_recorded(event)?;
    let order_id = aggregate_id(&event.stream);
    let Some((kind, data)) = public_event(&decoded, order_id) else { return Ok(None) };
    Ok(Some(vec![
        ("event_id", event.id.to_string()),
        ("type", kind.to_owned()),
        ("schema_version", SCHEMA_VERSION.to_string()),
        ("order_id", order_id.to_owned()),
        ("order_version", event.version.to_string()),
        ("position", event.position.0.to_string()),
        ("occurred_at", crate::audit::rfc3339(event.recorded_at)),
        (
            "correlation_id",
            event.metadata.correlation_id.map(|c| c.to_string()).unwrap_or_default(),
        ),
        ("data", data.to_string()),
    ]))
}

/// Publishes until `stopping` turns true; waits out Redis outages without losing events.
///
/// The checkpoint lives in Redis, next to what it accounts for, and moves in the same
/// `MULTI/EXEC` as the batch's `XADD`s. Whatever happens to Redis (a restart that loses its
/// last second of writes, a failover to a replica that lagged, a wipe), the stream and the
/// checkpoint stay consistent: entries Redis lost are published again, never skipped. (With the
/// checkpoint in a local file, as before, a Redis that came back without its last entries left
/// them unpublished for good.) After any Redis error the follower starts over from the
/// checkpoint Redis holds.
pub async fn run<S: EventStore>(
    store: Arc<S>,
    redis: redis::Client,
    state: Arc<ProcessState>,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), ProcessError> {
    let mut pause = Duration::from_millis(100);
    loop {
        match publish(&*store, &redis, &state, &mut stopping).await {
            Ok(()) => return Ok(()),
            Err(Failure::Store(e)) => return Err(e),
            Err(Failure::Redis(error)) => {
                tracing::warn!(%error, ?pause, "publishing integration events failed; resuming from Redis's checkpoint");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopping.wait_for(|stop| *stop) => return Ok(()),
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Why one run of the follower ended.
enum Failure {
    /// Redis failed: start over from its checkpoint.
    Redis(redis::RedisError),
    /// The log failed: stop.
    Store(ProcessError),
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Self {
        Self::Redis(e)
    }
}

impl Failure {
    fn store(e: impl Into<ProcessError>) -> Self {
        Self::Store(e.into())
    }
}

/// Where publishing resumes: Redis's checkpoint; else, for a stream published before the
/// checkpoint moved into Redis, the one in the process state file; else the start of the log.
async fn resume_from(
    con: &mut redis::aio::MultiplexedConnection,
    state: &ProcessState,
) -> Result<SubscribeFrom, Failure> {
    let (checkpoint, stream_exists): (Option<u64>, bool) =
        redis::pipe().get(CHECKPOINT_KEY).exists(STREAM).query_async(con).await?;
    let legacy = match stream_exists {
        true => state.checkpoint(LEGACY_CHECKPOINT).map_err(Failure::store)?,
        false => None,
    };
    Ok(match checkpoint.or(legacy) {
        Some(p) => SubscribeFrom::After(Position(p)),
        None => SubscribeFrom::Start,
    })
}

async fn publish<S: EventStore>(
    store: &S,
    redis: &redis::Client,
    state: &ProcessState,
    stopping: &mut watch::Receiver<bool>,
) -> Result<(), Failure> {
    let mut con = redis.get_multiplexed_async_connection().await?;
    let from = resume_from(&mut con, state).await?;
    let mut subscription = store
        .subscribe_all(from, EventFilter::streams_starting_with(["order-"]))
        .await
        .map_err(Failure::store)?;
    loop {
        let batch = tokio::select! {
            batch = subscription.next_batch(256) => batch.map_err(Failure::store)?,
            _ = stopping.wait_for(|stop| *stop) => return Ok(()),
        };
        let Some(last) = batch.last().map(|e| e.position.0) else { continue };
        let mut pipe = redis::pipe();
        pipe.atomic();
        for event in &batch {
            if let Some(fields) = entry(event).map_err(Failure::Store)? {
                pipe.cmd("XADD")
                    .arg(STREAM)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(MAX_LEN)
                    .arg("*")
                    .arg(&fields)
                    .ignore();
            }
        }
        pipe.set(CHECKPOINT_KEY, last).ignore();
        pipe.query_async::<()>(&mut con).await?;
    }
}
