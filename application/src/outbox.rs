//! The outbox: public order events, published to a Redis Stream for outside services.
//!
//! The event log is the outbox. This follower reads order events from its checkpoint and
//! appends the public ones (placed, confirmed, cancelled, shipped, delivered, refunded) to the
//! stream `ordo:integration:orders` with `XADD`, moving the checkpoint in the same Redis
//! transaction. Delivery is at least once (a Redis that loses writes loses the checkpoint
//! with them, so those events go out again with the same `event_id`), in log order (so in
//! order per order); consumers de-duplicate by `event_id`. The contract is in
//! `docs/integration-events.md`.

use crate::ids::aggregate_id;
use crate::leases::Lease;
use crate::processes::state::{ProcessState, StateError};
use ordo_domain::order::{Actor, OrderEvent};
use ordo_eventstore::clock::rfc3339;
use ordo_eventstore::codec::{CodecError, DomainEvent};
use ordo_eventstore::follow::{follow, FollowConfig, FollowError, Handler};
use ordo_eventstore::{EventFilter, EventStore, Position, RecordedEvent};
use serde_json::{json, Value};
use std::sync::Arc;
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

fn entry(event: &RecordedEvent) -> Result<Option<Vec<(&'static str, String)>>, CodecError> {
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
        ("occurred_at", rfc3339(event.recorded_at)),
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
/// them unpublished for good.) After any failure the shared follower resumes from the
/// checkpoint Redis holds.
///
/// With several instances only the holder of the `outbox` lease publishes, and each batch is
/// fenced by `WATCH` on the checkpoint: a publisher whose checkpoint moved underneath it (a
/// holder that was paused past its lease while another took over) publishes nothing and
/// steps down, so no entry goes out twice.
pub async fn run<S: EventStore>(
    store: Arc<S>,
    redis: redis::Client,
    state: Arc<ProcessState>,
    lease: Lease,
    stopping: watch::Receiver<bool>,
) -> Result<(), OutboxError> {
    let mut handler = Publisher { redis, connection: None, state, lease, in_redis: None };
    match follow(&*store, &mut handler, &FollowConfig::default(), None, stopping).await {
        Ok(()) => Ok(()),
        Err(FollowError::Handler { source, .. }) => Err(source),
        Err(FollowError::Closed) => Err(OutboxError::Closed),
    }
}

/// The events the outbox follows: orders.
pub fn filter() -> EventFilter {
    EventFilter::streams_starting_with(["order-"])
}

/// Why the outbox stopped.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Redis failed (transient: the follower resumes from Redis's checkpoint).
    #[error("redis")]
    Redis(#[from] redis::RedisError),
    /// A stored order event does not decode.
    #[error("an order event does not decode")]
    Codec(#[from] CodecError),
    /// The legacy checkpoint file could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// The event store closed.
    #[error("the event store closed")]
    Closed,
    /// This instance's lease on the outbox is gone: another instance publishes now.
    #[error("the outbox's lease is no longer held here")]
    NotHolder,
    /// The checkpoint in Redis is not the one this publisher last saw (another publisher wrote,
    /// or Redis lost writes): nothing was published; resume from what Redis holds.
    #[error("the outbox's checkpoint moved underneath it")]
    Moved,
}

/// The outbox as the log follower's handler.
struct Publisher {
    redis: redis::Client,
    connection: Option<redis::aio::MultiplexedConnection>,
    state: Arc<ProcessState>,
    lease: Lease,
    /// The checkpoint as Redis holds it, as far as this publisher knows.
    in_redis: Option<u64>,
}

impl Publisher {
    async fn connection(&mut self) -> Result<&mut redis::aio::MultiplexedConnection, OutboxError> {
        if self.connection.is_none() {
            self.connection = Some(self.redis.get_multiplexed_async_connection().await?);
        }
        Ok(self.connection.as_mut().expect("connected just above"))
    }
}

impl Handler for Publisher {
    type Error = OutboxError;

    fn name(&self) -> &'static str {
        "outbox"
    }

    fn filter(&self) -> EventFilter {
        filter()
    }

    /// Redis's checkpoint; else, for a stream published before the checkpoint moved into
    /// Redis, the one in the process state file; else the start of the log. A fresh
    /// connection each time: the old one may be what failed.
    async fn checkpoint(&mut self) -> Result<Option<Position>, OutboxError> {
        self.connection = None;
        let (checkpoint, stream_exists): (Option<u64>, bool) = redis::pipe()
            .get(CHECKPOINT_KEY)
            .exists(STREAM)
            .query_async(self.connection().await?)
            .await?;
        let legacy = match stream_exists {
            true => self.state.checkpoint(LEGACY_CHECKPOINT).await?,
            false => None,
        };
        self.in_redis = checkpoint;
        Ok(checkpoint.or(legacy).map(Position))
    }

    /// Records the batch's last event as the checkpoint, not `through`: nobody waits on this
    /// checkpoint, so reading past other streams' events records nothing (an empty batch).
    async fn handle(
        &mut self,
        batch: &[RecordedEvent],
        _through: Position,
    ) -> Result<(), OutboxError> {
        let Some(last) = batch.last().map(|e| e.position.0) else { return Ok(()) };
        if !self.lease.is_held() {
            return Err(OutboxError::NotHolder);
        }
        // The connection is this publisher's own, so its WATCH fences only this batch.
        let expected = self.in_redis;
        let connection = self.connection().await?;
        let (current,): (Option<u64>,) = redis::pipe()
            .cmd("WATCH")
            .arg(CHECKPOINT_KEY)
            .ignore()
            .get(CHECKPOINT_KEY)
            .query_async(&mut *connection)
            .await?;
        if current != expected {
            let _: () = redis::cmd("UNWATCH").query_async(connection).await?;
            return Err(OutboxError::Moved);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for event in batch {
            if let Some(fields) = entry(event)? {
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
        let done: Option<redis::Value> = pipe.query_async(connection).await?;
        if done.is_none() {
            return Err(OutboxError::Moved);
        }
        self.in_redis = Some(last);
        Ok(())
    }

    fn is_permanent(&self, error: &OutboxError) -> bool {
        match error {
            OutboxError::State(e) => !e.is_transient(),
            OutboxError::Codec(_) | OutboxError::NotHolder => true,
            _ => false,
        }
    }
}
