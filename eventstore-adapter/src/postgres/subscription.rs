//! Catch-up-then-live subscriptions on PostgreSQL.
//!
//! A subscription reads the log by position, a page at a time, like the embedded one; when it
//! is caught up it waits for the head to move. The head moves when this process's writer
//! commits, and when any process's append `NOTIFY`s (one `LISTEN` connection per store, which
//! reconnects on its own). A notification lost while that connection was down costs at most
//! [`POLL`]: a caught-up subscription also looks again after that long. No gap (appends commit
//! in position order), no duplicate, bounded memory.

use super::{PostgresInner, PostgresStore, CHANNEL_PREFIX};
use crate::error::StoreError;
use crate::model::{EventFilter, Position, RecordedEvent, SubscribeFrom};
use crate::store::Subscription;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

/// Events read per page.
const PAGE: usize = 1_024;
/// Longest a caught-up subscription waits without a notification before looking again.
const POLL: Duration = Duration::from_secs(1);

/// A subscription to a PostgreSQL store's global log.
pub struct PostgresSubscription {
    store: PostgresStore,
    next_position: u64,
    filter: EventFilter,
    buffer: VecDeque<RecordedEvent>,
    head: watch::Receiver<u64>,
}

impl PostgresSubscription {
    pub(super) fn new(store: PostgresStore, from: SubscribeFrom, filter: EventFilter) -> Self {
        let next_position = from.first_counted_position();
        let head = store.head_watch();
        Self { store, next_position, filter, buffer: VecDeque::new(), head }
    }

    /// Reads the next page of the log, waiting while caught up, and keeps what passes the
    /// filter: possibly nothing, and then `read_through` moved all the same.
    async fn fill(&mut self, max: usize) -> Result<(), StoreError> {
        let mut looked_in_vain = false;
        loop {
            // Caught up as far as this process knows (its writer's commits and other servers'
            // NOTIFYs move `head`): wait for the head to pass us before asking PostgreSQL, and
            // look anyway after `POLL`, so a lost notification costs a second. Asking first
            // cost an empty query after every page: most of the log's reads under load.
            if looked_in_vain || *self.head.borrow_and_update() <= self.next_position {
                let _ = tokio::time::timeout(POLL, self.head.changed()).await;
            }
            if self.read_page(max).await? {
                return Ok(());
            }
            looked_in_vain = true;
        }
    }

    /// Reads one page of up to `max` events from `next_position` and keeps those the filter
    /// passes. Whether the page had any events.
    async fn read_page(&mut self, max: usize) -> Result<bool, StoreError> {
        let page = self.store.events_from(self.next_position, max.clamp(1, PAGE)).await?;
        let Some(last) = page.last() else { return Ok(false) };
        self.next_position = last.position.0 + 1;
        self.buffer.extend(page.into_iter().filter(|e| self.filter.accepts(e.stream.as_str())));
        Ok(true)
    }
}

impl Subscription for PostgresSubscription {
    async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Ok(event);
            }
            self.fill(PAGE).await?;
        }
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.buffer.is_empty() {
            self.fill(max).await?;
        }
        // Top up with pages already in the log (never waits for new ones), as the embedded
        // store does: with a filter that keeps part of each page, batches would stay small.
        while self.buffer.len() < max && self.next_position < *self.head.borrow() {
            if !self.read_page(max - self.buffer.len()).await? {
                break;
            }
        }
        let n = self.buffer.len().min(max.max(1));
        Ok(self.buffer.drain(..n).collect())
    }

    fn read_through(&self) -> Option<Position> {
        let next = self.buffer.front().map_or(self.next_position, |e| e.position.0);
        next.checked_sub(1).map(Position)
    }
}

/// Keeps one `LISTEN` connection open for the store's lifetime, moving the head on every
/// notification; reconnects with backoff.
pub(super) async fn listen(inner: Weak<PostgresInner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let config = strong.config.connection.clone();
        let channel = format!("{CHANNEL_PREFIX}{}", strong.schema);
        drop(strong);
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let statement = format!("LISTEN {channel}");
                let listening = client.batch_execute(&statement);
                // The connection must be polled for the LISTEN to complete.
                let started = tokio::select! {
                    result = listening => result.is_ok(),
                    _ = messages.next() => false,
                };
                if started {
                    backoff = Duration::from_millis(100);
                    while let Some(message) = messages.next().await {
                        let Some(strong) = inner.upgrade() else { return };
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                if let Ok(next) = n.payload().parse::<u64>() {
                                    strong.head.send_if_modified(|h| {
                                        let moved = next > *h;
                                        *h = (*h).max(next);
                                        moved
                                    });
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = ?error, ?backoff, "PostgreSQL LISTEN connection failed; retrying");
            }
        }
        if inner.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
