//! The same contract on a KurrentDB (formerly EventStoreDB) cluster, via the official client.
//!
//! Mapping:
//! - Streams, revisions and expected versions map one to one (`StreamState`).
//! - [`Position`] is the event's `$all` commit position. For gRPC appends (no explicit
//!   transactions) every event has its own commit position equal to its prepare position,
//!   so it is unique and ordered (KurrentDB PR #2522).
//! - Event ids are KurrentDB event ids, so the server deduplicates retries.
//! - The schema version, correlation and causation ids and headers travel in the event's custom
//!   metadata as JSON (`$correlationId`/`$causationId` follow KurrentDB's convention).
//! - Filters become server-side `$all` stream-name prefix filters; system streams are excluded.
//!
//! Known limits, compared with the embedded store (also in the README):
//! - KurrentDB deduplicates by event id only: a reused id with a different payload is treated
//!   as a retry, not reported as [`StoreError::EventIdConflict`].
//! - Deduplication for `ExpectedVersion::Any` relies on the server's cache of recent ids; with
//!   an exact expected version (what command handling uses) it is checked against the stream.
//! - The server may drop a live subscription that falls too far behind; the client resubscribes
//!   from the last delivered position, so nothing is skipped, but the feed pauses meanwhile.
//! - There is no hash chain: tamper evidence is the embedded and PostgreSQL stores' feature.
//! - Positions are commit positions (byte offsets), not counts: nothing subtracts them
//!   ([`EventStore::positions_count_events`] is false).
//! - Errors are classified: not-leader, unavailable, deadline and lost connections are
//!   transient ([`StoreError::Kurrent`]); deleted streams, access denied and malformed calls
//!   are not ([`StoreError::KurrentRefused`]). Appends get the client's 10 s deadline; reads
//!   get [`DEADLINE`] here.
//! - Tombstones, system events, foreign streams and foreign metadata are skipped.
//! - Recorded times come from the server's ticks, to the millisecond.
//!
//! Here the store and its calls; `mapping.rs` turns Ordo's events, versions, positions, filters
//! and the client's errors into KurrentDB's and back; `subscription.rs` feeds a catch-up
//! subscription through a bounded channel.

mod mapping;
mod subscription;

pub use subscription::KurrentSubscription;

use crate::error::StoreError;
use crate::model::*;
use crate::store::EventStore;
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, ReadAllOptions,
    ReadStreamOptions, StreamPosition, SubscribeToAllOptions, SubscriptionFilter,
};
use mapping::*;

/// A KurrentDB-backed event store.
#[derive(Clone)]
pub struct KurrentStore {
    client: Client,
}

/// How long a read may take before it counts as failed (and transient).
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
impl KurrentStore {
    /// Connects to the cluster at `url` (`kurrentdb://host:2113?tls=false`, `esdb://...`).
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let settings: ClientSettings = url.parse().map_err(kurrent)?;
        let client = Client::new(settings).map_err(kurrent)?;
        Ok(Self { client })
    }

    fn to_event_data(event: NewEvent) -> Result<EventData, StoreError> {
        let meta = Meta {
            schema_version: event.schema_version,
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
            headers: event.metadata.headers,
        };
        let meta = serde_json::to_vec(&meta).map_err(kurrent)?;
        Ok(EventData::binary(event.event_type, event.payload.into())
            .id(event.id)
            .metadata(meta.into()))
    }
}
impl EventStore for KurrentStore {
    type Subscription = KurrentSubscription;

    fn positions_count_events(&self) -> bool {
        false
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn refuses_reused_event_ids(&self) -> bool {
        false
    }

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let count = events.len() as u64;
        if count == 0 {
            return Err(StoreError::EmptyAppend);
        }
        let data = events.into_iter().map(Self::to_event_data).collect::<Result<Vec<_>, _>>()?;
        let options = AppendToStreamOptions::default().stream_state(stream_state(expected));
        match self.client.append_to_stream(stream.as_str(), &options, data).await {
            Ok(result) => Ok(AppendOutcome {
                first_version: result.next_expected_version + 1 - count,
                version: result.next_expected_version,
                position: Position(result.position.commit),
            }),
            Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
                Err(StoreError::WrongExpectedVersion {
                    stream: stream.to_string(),
                    expected,
                    actual: match current {
                        CurrentRevision::Current(v) => Some(v),
                        CurrentRevision::NoStream => None,
                    },
                })
            }
            Err(other) => Err(classify(other)),
        }
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let start =
            if from == u64::MAX { StreamPosition::End } else { StreamPosition::Position(from) };
        let options = ReadStreamOptions::default().position(start).max_count(limit);
        let options = match direction {
            Direction::Forward => options.forwards(),
            Direction::Backward => options.backwards(),
        };
        let mut read = match self.client.read_stream(stream.as_str(), &options).await {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(vec![]),
            Err(other) => return Err(classify(other)),
        };
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let next = tokio::time::timeout_at(deadline, read.next()).await.map_err(|_| {
                StoreError::Kurrent("read_stream took longer than its deadline".into())
            })?;
            match next {
                Ok(Some(event)) => out.extend(ordo_event(event.get_original_event())),
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(out),
                Err(other) => return Err(classify(other)),
            }
        }
    }

    async fn read_all(
        &self,
        from: SubscribeFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let (start, after) = match from {
            SubscribeFrom::Start => (StreamPosition::Start, None),
            SubscribeFrom::After(p) => (StreamPosition::Position(kurrent_position(p)), Some(p)),
        };
        // Reading from a position includes it; ask for one more and drop it.
        let options = ReadAllOptions::default()
            .position(start)
            .max_count(limit.saturating_add(1))
            .filter(SubscriptionFilter::on_stream_name().exclude_system_events());
        let mut read = self.client.read_all(&options).await.map_err(classify)?;
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let next = tokio::time::timeout_at(deadline, read.next()).await.map_err(|_| {
                StoreError::Kurrent("read_all took longer than its deadline".into())
            })?;
            let Some(event) = next.map_err(classify)? else { break };
            let Some(event) = ordo_event(event.get_original_event()) else { continue };
            if after.is_none_or(|p| event.position > p) && out.len() < limit {
                out.push(event);
            }
        }
        Ok(out)
    }

    async fn last_position(&self) -> Result<Option<Position>, StoreError> {
        let options = ReadAllOptions::default()
            .position(StreamPosition::End)
            .backwards()
            .max_count(1)
            .filter(SubscriptionFilter::on_stream_name().exclude_system_events());
        let mut read = self.client.read_all(&options).await.map_err(classify)?;
        let next = tokio::time::timeout(DEADLINE, read.next()).await.map_err(|_| {
            StoreError::Kurrent("last_position took longer than its deadline".into())
        })?;
        match next.map_err(classify)? {
            Some(event) => Ok(Some(Position(event.get_original_event().position.commit))),
            None => Ok(None),
        }
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        let last = self.read_stream(stream, u64::MAX, Direction::Backward, 1).await?;
        Ok(last.first().map(|e| e.version))
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> Result<KurrentSubscription, StoreError> {
        let start = match from {
            SubscribeFrom::Start => StreamPosition::Start,
            SubscribeFrom::After(p) => StreamPosition::Position(kurrent_position(p)),
        };
        let options =
            SubscribeToAllOptions::default().position(start).filter(prefix_filter(&filter));
        let inner = self.client.subscribe_to_all(&options).await;
        let after = match from {
            SubscribeFrom::Start => None,
            SubscribeFrom::After(p) => Some(p),
        };
        Ok(KurrentSubscription::spawn(inner, after))
    }
}
