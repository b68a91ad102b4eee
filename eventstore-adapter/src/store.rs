//! The contract every backend implements. `tests/embedded_contract.rs` and
//! `tests/kurrent_contract.rs` hold each backend to it.

use crate::error::StoreError;
use crate::model::*;
use std::future::Future;

/// An append-only event store.
///
/// Guarantees every backend gives:
/// - an append is atomic; its events are contiguous in the stream and in the global log;
/// - versions within a stream start at 0 and have no gaps;
/// - re-sending an append whose event ids are already stored in that stream returns the first
///   outcome and writes nothing;
/// - positions only grow, and a reader that saw position `p` sees every event before `p`;
/// - where [`EventStore::appends_together`] says so, an append to several streams is atomic.
pub trait EventStore: Send + Sync + 'static {
    /// The live feed type [`EventStore::subscribe_all`] returns.
    type Subscription: Subscription;

    /// Appends `events` to `stream` if the stream is where `expected` says.
    fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send;

    /// Whether [`EventStore::append_together`] works here: the embedded store and PostgreSQL
    /// commit several streams in one transaction. KurrentDB's client has no such call (its
    /// server's multi-stream append is newer than the client), so there it is refused.
    fn appends_together(&self) -> bool {
        false
    }

    /// Appends to several streams in one commit: every part or none. Each part is checked as
    /// [`EventStore::append`] checks it (its expected version, its event ids); the first part
    /// refused refuses the whole append with its own error, naming its stream. Parts land in the
    /// order given, each contiguous, and a stream may appear only once. Re-sending an append
    /// whose parts are all stored already returns their first outcomes and writes nothing.
    /// Returns one outcome per part, in order.
    fn append_together(
        &self,
        parts: Vec<StreamAppend>,
    ) -> impl Future<Output = Result<Vec<AppendOutcome>, StoreError>> + Send {
        let _ = parts;
        async { Err(StoreError::Unsupported("appends to several streams in one commit")) }
    }

    /// Up to `limit` events of `stream` starting at version `from`, in `direction`.
    fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Up to `limit` events of the global log after `from`, oldest first.
    fn read_all(
        &self,
        from: SubscribeFrom,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Position of the newest event in the global log, `None` while the log is empty. Used to
    /// report how far behind a subscriber is.
    fn last_position(&self) -> impl Future<Output = Result<Option<Position>, StoreError>> + Send;

    /// Whether positions count events (0, 1, 2, ...), so that the distance between two is a
    /// number of events. True of the embedded store and PostgreSQL; KurrentDB's positions are
    /// byte offsets in its log, so nothing may subtract them or step back by one there.
    fn positions_count_events(&self) -> bool {
        true
    }

    /// Whether re-sending an event id already in the log is recognised by the store (the first
    /// outcome, or `EventIdConflict`) at any expected version. KurrentDB checks ids only
    /// against an expected version older than the stream's, so there the command path looks
    /// for an earlier attempt itself.
    fn refuses_reused_event_ids(&self) -> bool {
        true
    }

    /// Whether other processes may append to this store at the same time (a database server,
    /// not a file one process has locked). Then a cached aggregate may be behind, and the
    /// command path reads the events after it before letting anything decide on it.
    fn is_shared(&self) -> bool {
        false
    }

    /// Whether its subscriptions tell how far they have read ([`Subscription::read_through`]),
    /// past the events their filter dropped. Then a follower whose checkpoint others wait on (a
    /// projection: queries wait for the position of their own writes) may read only its own
    /// streams and still move its checkpoint over everything else. The embedded store and
    /// PostgreSQL filter as they read the log and know. KurrentDB filters on the server, which
    /// reports how far it got only every so many events (its checkpoint interval): too late for
    /// a query waiting to read its own write, so followers there read every event.
    fn reports_read_through(&self) -> bool {
        false
    }

    /// The stream's last version, or `None` if it has no events.
    fn stream_version(
        &self,
        stream: &StreamName,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// A feed of the global log from `from`: catches up, then follows live appends with no gap
    /// and no duplicate. It reads the log itself, so a slow consumer only falls behind; it is
    /// never dropped and nothing is buffered without bound.
    fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> impl Future<Output = Result<Self::Subscription, StoreError>> + Send;
}

/// A live feed of events.
pub trait Subscription: Send {
    /// The next event, waiting for one to be appended if the feed is caught up.
    fn next(&mut self) -> impl Future<Output = Result<RecordedEvent, StoreError>> + Send;

    /// Up to `max` events that are already available, waiting only while there is none.
    /// Backends that read in pages return a whole page at once; the default returns one. Where
    /// [`Subscription::read_through`] is known, a batch may be empty: the feed read past events
    /// its filter dropped, up to the end of the log, and `read_through` moved.
    fn next_batch(
        &mut self,
        _max: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        async { Ok(vec![self.next().await?]) }
    }

    /// How far the feed has read the log: every event up to this position has been returned or
    /// dropped by the filter. `None` before it read anything, and where the backend cannot tell
    /// (see [`EventStore::reports_read_through`]); then only the events returned say how far it
    /// got.
    fn read_through(&self) -> Option<Position> {
        None
    }
}
