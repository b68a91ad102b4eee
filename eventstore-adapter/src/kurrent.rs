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

use crate::error::StoreError;
use crate::model::*;
use crate::store::{EventStore, Subscription};
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, ReadAllOptions,
    ReadStreamOptions, StreamPosition, StreamState, SubscribeToAllOptions, SubscriptionFilter,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A KurrentDB-backed event store.
#[derive(Clone)]
pub struct KurrentStore {
    client: Client,
}

/// What Ordo keeps in a KurrentDB event's custom metadata.
#[derive(Serialize, Deserialize, Default)]
struct Meta {
    #[serde(rename = "schemaVersion", default = "one")]
    schema_version: u16,
    #[serde(rename = "$correlationId", default, skip_serializing_if = "Option::is_none")]
    correlation_id: Option<Uuid>,
    #[serde(rename = "$causationId", default, skip_serializing_if = "Option::is_none")]
    causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

fn one() -> u16 {
    1
}

fn kurrent(e: impl std::fmt::Display) -> StoreError {
    StoreError::Kurrent(e.to_string())
}

/// A client error, classified: what a retry may get past (leader changes, unavailability,
/// deadlines, lost connections) stays [`StoreError::Kurrent`], which is transient; what it
/// cannot (deleted streams, access denied, malformed or unsupported calls) is
/// [`StoreError::KurrentRefused`].
fn classify(e: kurrentdb::Error) -> StoreError {
    use kurrentdb::Error as E;
    match e {
        E::NotLeaderException(_)
        | E::ConnectionClosed
        | E::GrpcConnectionError(_)
        | E::DeadlineExceeded
        | E::ServerError(_) => StoreError::Kurrent(e.to_string()),
        E::Grpc {
            code:
                tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Aborted
                | tonic::Code::ResourceExhausted,
            ..
        } => StoreError::Kurrent(e.to_string()),
        other => StoreError::KurrentRefused(other.to_string()),
    }
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

fn stream_state(expected: ExpectedVersion) -> StreamState {
    match expected {
        ExpectedVersion::Any => StreamState::Any,
        ExpectedVersion::NoStream => StreamState::NoStream,
        ExpectedVersion::StreamExists => StreamState::StreamExists,
        ExpectedVersion::Exact(v) => StreamState::StreamRevision(v),
    }
}

/// The event as Ordo's, or `None` for what is not Ordo's to read: tombstones and other system
/// events (`$` types), streams whose names Ordo would not write, metadata Ordo did not write.
/// Such events are skipped (a shared cluster may hold other applications' streams), never fatal.
fn ordo_event(event: &kurrentdb::RecordedEvent) -> Option<RecordedEvent> {
    if event.event_type.starts_with('$') {
        return None;
    }
    match from_kurrent(event) {
        Ok(event) => Some(event),
        Err(error) => {
            tracing::debug!(%error, stream = event.stream_id(), "skipped a KurrentDB event that is not Ordo's");
            None
        }
    }
}

fn from_kurrent(event: &kurrentdb::RecordedEvent) -> Result<RecordedEvent, StoreError> {
    let meta: Meta = if event.custom_metadata.is_empty() {
        Meta { schema_version: 1, ..Meta::default() }
    } else {
        serde_json::from_slice(&event.custom_metadata).map_err(kurrent)?
    };
    Ok(RecordedEvent {
        id: event.id,
        stream: StreamName::new(event.stream_id())?,
        version: event.revision,
        position: Position(event.position.commit),
        event_type: event.event_type.clone(),
        schema_version: meta.schema_version,
        recorded_at: recorded_at_millis(event),
        metadata: EventMetadata {
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            headers: meta.headers,
        },
        payload: event.data.to_vec(),
    })
}

/// When the server recorded the event, to the millisecond. The client's `created` keeps only
/// whole seconds (it divides the server's 100 ns ticks by 10^7); the ticks themselves are still
/// in the event's system metadata under `created`.
fn recorded_at_millis(event: &kurrentdb::RecordedEvent) -> i64 {
    created_millis(event.metadata.get("created").map(String::as_str))
        .unwrap_or_else(|| event.created.timestamp_millis())
}

/// The server's `created` (100 ns ticks since the Unix epoch) in milliseconds.
fn created_millis(ticks: Option<&str>) -> Option<i64> {
    ticks.and_then(|t| t.parse::<i64>().ok()).map(|t| t / 10_000)
}

fn kurrent_position(p: Position) -> kurrentdb::Position {
    kurrentdb::Position { commit: p.0, prepare: p.0 }
}

fn prefix_filter(filter: &EventFilter) -> SubscriptionFilter {
    if filter.stream_prefixes.is_empty() {
        return SubscriptionFilter::on_stream_name().exclude_system_events();
    }
    filter.stream_prefixes.iter().fold(SubscriptionFilter::on_stream_name(), |f, p| f.add_prefix(p))
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
    fn spawn(mut inner: kurrentdb::Subscription, mut after: Option<Position>) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_a_retry_can_get_past_are_transient_and_the_rest_are_not() {
        use kurrentdb::Error as E;
        for transient in [
            E::DeadlineExceeded,
            E::ConnectionClosed,
            E::Grpc { code: tonic::Code::Unavailable, message: "down".into() },
        ] {
            assert!(classify(transient).is_transient());
        }
        for refused in [
            E::AccessDenied,
            E::ResourceDeleted,
            E::Grpc { code: tonic::Code::InvalidArgument, message: "bad".into() },
        ] {
            let e = classify(refused);
            assert!(matches!(e, StoreError::KurrentRefused(_)) && !e.is_transient(), "{e}");
        }
    }

    #[test]
    fn recorded_times_keep_their_milliseconds() {
        // 2026-11-22T05:49:30.848Z as the server sends it.
        assert_eq!(created_millis(Some("17957849708480000")), Some(1_795_784_970_848));
        assert_eq!(created_millis(Some("not ticks")), None);
        assert_eq!(created_millis(None), None);
    }
}
