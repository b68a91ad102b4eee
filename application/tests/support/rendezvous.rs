//! The embedded store, seen by a test that asks whether appends were made together: each
//! append of an event of one type waits until a number of them have arrived, or for at most
//! [`WAIT`]. An append that waited that long came alone.

use ordo_eventstore::embedded::EmbeddedSubscription;
use ordo_eventstore::{
    AppendOutcome, Direction, EmbeddedStore, EventFilter, EventStore, ExpectedVersion, NewEvent,
    Position, RecordedEvent, StoreError, StreamName, SubscribeFrom,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How long an append waits for the others before it goes on alone.
pub const WAIT: Duration = Duration::from_secs(1);

/// The store, holding appends of `event_type` until `count` of them arrived.
pub struct Rendezvous {
    store: Arc<EmbeddedStore>,
    event_type: &'static str,
    count: usize,
    arrived: Mutex<usize>,
    arrival: Notify,
    alone: AtomicUsize,
}

impl Rendezvous {
    /// `store`, holding appends of `event_type` until `count` of them arrived.
    pub fn new(store: Arc<EmbeddedStore>, event_type: &'static str, count: usize) -> Self {
        let (arrived, arrival, alone) = (Mutex::new(0), Notify::new(), AtomicUsize::new(0));
        Self { store, event_type, count, arrived, arrival, alone }
    }

    /// How many appends of the type waited [`WAIT`] and went on alone.
    pub fn alone(&self) -> usize {
        self.alone.load(Ordering::SeqCst)
    }

    fn arrived(&self) -> usize {
        *self.arrived.lock().expect("not poisoned")
    }

    async fn meet(&self) {
        *self.arrived.lock().expect("not poisoned") += 1;
        self.arrival.notify_waiters();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // Registered before the check, so an arrival between the two still wakes it.
            let next_arrival = self.arrival.notified();
            if self.arrived() >= self.count {
                return;
            }
            if tokio::time::timeout_at(deadline, next_arrival).await.is_err() {
                self.alone.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

impl EventStore for Rendezvous {
    type Subscription = EmbeddedSubscription;

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.iter().any(|e| e.event_type == self.event_type) {
            self.meet().await;
        }
        self.store.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_stream(stream, from, direction, limit).await
    }

    async fn read_all(
        &self,
        from: SubscribeFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_all(from, limit).await
    }

    async fn last_position(&self) -> Result<Option<Position>, StoreError> {
        self.store.last_position().await
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        self.store.stream_version(stream).await
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> Result<EmbeddedSubscription, StoreError> {
        self.store.subscribe_all(from, filter).await
    }
}
