//! The outbox: public order events, published to a Redis Stream for outside services.
//!
//! The event log is the outbox. This follower reads order events from its own durable
//! checkpoint and appends the public ones (placed, confirmed, cancelled, shipped, delivered,
//! refunded) to the stream `ordo:integration:orders` with `XADD`, then moves its checkpoint.
//! A crash between the two publishes some events again, with the same `event_id`: delivery is
//! at least once, in log order (so in order per order), and consumers de-duplicate by
//! `event_id`. The contract is in `docs/integration-events.md`.

use crate::processes::{aggregate_id, ProcessError, ProcessState};
use ordo_domain::order::{Actor, OrderEvent};
use ordo_eventstore::codec::DomainEvent;
use ordo_eventstore::{
    EventFilter, EventStore, Position, RecordedEvent, SubscribeFrom, Subscription,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The Redis Stream integration events go to.
pub const STREAM: &str = "ordo:integration:orders";
/// Entries the stream keeps (approximately); older ones are trimmed.
pub const MAX_LEN: u64 = 1_000_000;
/// Schema version of every entry's `data`.
pub const SCHEMA_VERSION: u32 = 1;
const CHECKPOINT: &str = "outbox";

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
pub async fn run<S: EventStore>(
    store: Arc<S>,
    redis: redis::Client,
    state: Arc<ProcessState>,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), ProcessError> {
    let from = match state.checkpoint(CHECKPOINT)? {
        Some(p) => SubscribeFrom::After(Position(p)),
        None => SubscribeFrom::Start,
    };
    let mut subscription =
        store.subscribe_all(from, EventFilter::streams_starting_with(["order-"])).await?;
    let mut connection = None;
    loop {
        let batch = tokio::select! {
            batch = subscription.next_batch(256) => batch?,
            _ = stopping.wait_for(|stop| *stop) => return Ok(()),
        };
        let Some(last) = batch.last().map(|e| e.position.0) else { continue };
        let mut pipe = redis::pipe();
        let mut entries = 0;
        for event in &batch {
            if let Some(fields) = entry(event)? {
                entries += 1;
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
        let mut pause = Duration::from_millis(100);
        // (An empty pipeline would wait for replies that never come.)
        if entries > 0 {
            loop {
                if connection.is_none() {
                    connection = redis.get_multiplexed_async_connection().await.ok();
                }
                let sent = match connection.as_mut() {
                    Some(con) => pipe.query_async::<()>(con).await.map_err(|e| e.to_string()),
                    None => Err("cannot connect".to_owned()),
                };
                match sent {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::warn!(%error, "publishing integration events failed; retrying");
                        connection = None;
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = stopping.wait_for(|stop| *stop) => return Ok(()),
                        }
                        pause = (pause * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.save(CHECKPOINT, last, &HashMap::new()))
            .await
            .map_err(crate::processes::StateError::from)??;
    }
}
