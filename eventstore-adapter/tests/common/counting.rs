//! A store that counts the appends it is asked for and can hold them at a gate: how the
//! command-path tests see batching and commits in flight.

use ordo_eventstore::*;
use std::sync::Arc;

/// The embedded store, counting the appends it is asked for; each append passes `gate` first
/// (one permit per append: a commit is held in flight while there are none).
pub struct CountingStore {
    inner: EmbeddedStore,
    appends: std::sync::atomic::AtomicUsize,
    /// Reads of a stream from its first event: an aggregate loaded whole, not read on from a
    /// cached state.
    whole_reads: std::sync::atomic::AtomicUsize,
    /// One permit per append; tests add permits to let held appends through.
    pub gate: tokio::sync::Semaphore,
    /// The append (counted from 1) that fails as a broken disk would; 0: none.
    pub fail_at: std::sync::atomic::AtomicUsize,
}

impl CountingStore {
    pub fn new(inner: Arc<EmbeddedStore>, gate_open: bool) -> Self {
        let permits = if gate_open { tokio::sync::Semaphore::MAX_PERMITS } else { 0 };
        Self {
            inner: Arc::try_unwrap(inner).ok().expect("sole owner"),
            appends: 0.into(),
            whole_reads: 0.into(),
            fail_at: 0.into(),
            gate: tokio::sync::Semaphore::new(permits),
        }
    }

    pub fn appends(&self) -> usize {
        self.appends.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts an append, waits at the gate, fails it if it is the one `fail_at` names.
    async fn pass(&self) -> Result<(), StoreError> {
        let n = self.appends.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        self.gate.acquire().await.expect("the gate stays").forget();
        if n == self.fail_at.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Storage("the disk failed (a test)".into()));
        }
        Ok(())
    }

    pub fn whole_reads(&self) -> usize {
        self.whole_reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl EventStore for CountingStore {
    type Subscription = ordo_eventstore::embedded::EmbeddedSubscription;

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.pass().await?;
        self.inner.append(stream, expected, events).await
    }

    fn appends_together(&self) -> bool {
        true
    }

    async fn append_together(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        self.pass().await?;
        self.inner.append_together(parts).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if from == 0 && direction == Direction::Forward {
            self.whole_reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.read_stream(stream, from, direction, limit).await
    }

    async fn read_all(
        &self,
        from: SubscribeFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from, limit).await
    }

    async fn last_position(&self) -> Result<Option<Position>, StoreError> {
        self.inner.last_position().await
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> Result<ordo_eventstore::embedded::EmbeddedSubscription, StoreError> {
        self.inner.subscribe_all(from, filter).await
    }
}
