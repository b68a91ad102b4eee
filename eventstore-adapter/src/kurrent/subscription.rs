//! A catch-up subscription to `$all`, read by a task of its own into a bounded channel.

use super::mapping::{classify, ordo_event};
use crate::error::StoreError;
use crate::model::*;
use crate::store::Subscription;

/// Events a subscription reads ahead of its consumer: the bound on its memory.
const READ_AHEAD: usize = 4_096;

/// A catch-up subscription to `$all`, served by the KurrentDB server.
///
/// The client's subscription yields one event per call and must not be cancelled mid-call (it
/// would resubscribe), so a task of its own reads it into a bounded channel, and the consumer
/// takes whatever is there in one batch. When the consumer falls behind, the channel fills and
/// the task waits: memory stays bounded.
pub struct KurrentSubscription {
    events: tokio::sync::mpsc::Receiver<Result<RecordedEvent, StoreError>>,
    reader: tokio::task::JoinHandle<()>,
    /// A failure that came after a batch's events; reported on the next call, so the events
    /// before it are delivered first.
    failed: Option<StoreError>,
}

impl KurrentSubscription {
    pub(super) fn spawn(mut inner: kurrentdb::Subscription, mut after: Option<Position>) -> Self {
        let (tx, events) = tokio::sync::mpsc::channel(READ_AHEAD);
        let reader = tokio::spawn(async move {
            loop {
                let event = match inner.next().await {
                    Ok(event) => event,
                    Err(e) => {
                        let _ = tx.send(Err(classify(e))).await;
                        return;
                    }
                };
                let Some(event) = ordo_event(event.get_original_event()) else { continue };
                // Events at or before the starting point are not delivered.
                if after.is_some_and(|p| event.position <= p) {
                    continue;
                }
                after = Some(event.position);
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        });
        Self { events, reader, failed: None }
    }
}

impl Drop for KurrentSubscription {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Subscription for KurrentSubscription {
    async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        if let Some(failure) = self.failed.take() {
            return Err(failure);
        }
        self.events.recv().await.unwrap_or(Err(StoreError::Closed))
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut batch = vec![self.next().await?];
        while batch.len() < max.max(1) {
            match self.events.try_recv() {
                Ok(Ok(event)) => batch.push(event),
                Ok(Err(failure)) => {
                    self.failed = Some(failure);
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(batch)
    }
}
