//! Catch-up-then-live subscription over the embedded log.
//!
//! There is no separate live channel that could overflow or race with catch-up: the
//! subscription always reads the log by position, a page at a time, and when it reaches the
//! end it sleeps until the writer publishes a new head. No gap, no duplicate, bounded memory.
//! A filter is applied as the pages are read, on the stream name alone (events it drops are
//! never decoded), and the subscription says how far it has read past them.

use super::EmbeddedStore;
use crate::error::StoreError;
use crate::model::{EventFilter, Position, RecordedEvent, SubscribeFrom};
use crate::store::Subscription;
use std::collections::VecDeque;
use tokio::sync::watch;

/// Events read per page; the only buffering a subscription does.
pub const PAGE: usize = 1_024;

/// How a read-only handle learns about new events: it polls the file.
const READ_ONLY_POLL: std::time::Duration = std::time::Duration::from_millis(25);

/// A subscription to the embedded store's global log.
pub struct EmbeddedSubscription {
    store: EmbeddedStore,
    next_position: u64,
    filter: EventFilter,
    buffer: VecDeque<RecordedEvent>,
    head: watch::Receiver<u64>,
}

impl EmbeddedSubscription {
    pub(super) fn new(store: EmbeddedStore, from: SubscribeFrom, filter: EventFilter) -> Self {
        let next_position = from.first_counted_position();
        let head = store.head_watch();
        Self { store, next_position, filter, buffer: VecDeque::with_capacity(PAGE), head }
    }

    /// Reads pages until at least one event passes the filter, or until it has read to the end
    /// of the log past events the filter dropped (the buffer stays empty; `read_through` moved).
    async fn fill(&mut self) -> Result<(), StoreError> {
        let from = self.next_position;
        while self.buffer.is_empty() {
            let head = *self.head.borrow_and_update();
            if self.next_position >= head {
                if self.next_position > from {
                    return Ok(());
                }
                if self.store.is_read_only() {
                    // No writer in this process to wake us: look at the file again shortly.
                    tokio::time::sleep(READ_ONLY_POLL).await;
                    self.store.refresh()?;
                } else {
                    self.head.changed().await.map_err(|_| StoreError::Closed)?;
                }
                continue;
            }
            let page = self.store.read_page(self.next_position, PAGE, &self.filter).await?;
            let Some(next) = page.next else { continue };
            self.next_position = next;
            self.buffer.extend(page.events);
        }
        Ok(())
    }
}

impl Subscription for EmbeddedSubscription {
    async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Ok(event);
            }
            self.fill().await?;
        }
    }

    /// Every event already available, up to `max`, waiting only if there is none. Lets a
    /// projection apply a whole page per Redis round trip.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.buffer.is_empty() {
            self.fill().await?;
        }
        // Top up with pages that are already in the log (never waits for new ones).
        while self.buffer.len() < max && self.next_position < *self.head.borrow() {
            let limit = PAGE.min(max - self.buffer.len()).max(1);
            let page = self.store.read_page(self.next_position, limit, &self.filter).await?;
            let Some(next) = page.next else { break };
            self.next_position = next;
            self.buffer.extend(page.events);
        }
        let n = self.buffer.len().min(max.max(1));
        Ok(self.buffer.drain(..n).collect())
    }

    fn read_through(&self) -> Option<Position> {
        let next = self.buffer.front().map_or(self.next_position, |e| e.position.0);
        next.checked_sub(1).map(Position)
    }
}
