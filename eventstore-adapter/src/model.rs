//! The vocabulary every backend speaks: streams, versions, positions, events.

use crate::error::StoreError;
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// Longest stream name. Generous for `category-<id>` while keeping keys small.
pub const MAX_STREAM_NAME_LEN: usize = 200;

/// A validated stream name such as `order-ord_01J...`.
///
/// Letters, digits and `-_.:@` only, 1 to 200 characters, not starting with `$` (KurrentDB
/// reserves those for system streams), so a name is safe in every backend, key and URL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamName(String);

impl StreamName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, StoreError> {
        let name = name.into();
        let reason = if name.is_empty() || name.len() > MAX_STREAM_NAME_LEN {
            Some(format!("must be 1 to {MAX_STREAM_NAME_LEN} bytes long"))
        } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c)) {
            Some("may only contain ASCII letters, digits and '-', '_', '.', ':', '@'".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(StoreError::InvalidStreamName { name, reason }),
            None => Ok(StreamName(name)),
        }
    }

    /// `<category>-<id>`, the naming convention for aggregate streams.
    pub fn for_aggregate(category: &str, id: &str) -> Result<Self, StoreError> {
        Self::new(format!("{category}-{id}"))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-`: the aggregate type.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(&self.0, |(c, _)| c)
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the writer believes about the stream before appending: the optimistic concurrency check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version (versions start at 0).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `actual` satisfies this expectation.
    pub fn matches(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        }
    }

    /// The expectation for an aggregate loaded at `version` (`None`: never written).
    pub fn from_loaded(version: Option<u64>) -> Self {
        version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("stream exists"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// A place in the global log. Totally ordered; not necessarily contiguous across backends
/// (KurrentDB positions are byte offsets), so only compare, never count, positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position(pub u64);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Read direction within a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first, from the given version up.
    Forward,
    /// Newest first, from the given version down (`u64::MAX` for the end).
    Backward,
}

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// The beginning of the log.
    Start,
    /// Just after this position (a checkpoint: the last event already processed).
    After(Position),
}

impl SubscribeFrom {
    /// The first position to read, on stores whose positions count events (the embedded store
    /// and PostgreSQL; not KurrentDB, see `EventStore::positions_count_events`).
    pub fn first_counted_position(self) -> u64 {
        match self {
            SubscribeFrom::Start => 0,
            SubscribeFrom::After(p) => p.0 + 1,
        }
    }
}

/// Which events a subscription delivers. Filtering happens in the backend, so a projection
/// that needs only orders does not decode products.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Stream-name prefixes to keep; empty keeps every stream.
    pub stream_prefixes: Vec<String>,
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only streams whose names start with one of `prefixes`.
    pub fn streams_starting_with<I: IntoIterator<Item = S>, S: Into<String>>(prefixes: I) -> Self {
        Self { stream_prefixes: prefixes.into_iter().map(Into::into).collect() }
    }

    /// Whether an event of `stream` passes.
    pub fn accepts(&self, stream: &str) -> bool {
        self.stream_prefixes.is_empty()
            || self.stream_prefixes.iter().any(|p| stream.starts_with(p.as_str()))
    }
}

/// Tracing and free-form headers that travel with an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventMetadata {
    /// The request or process run this event belongs to.
    pub correlation_id: Option<Uuid>,
    /// The message (command or event) that directly caused this event.
    pub causation_id: Option<Uuid>,
    /// Anything else worth keeping (actor, client, idempotency key).
    pub headers: BTreeMap<String, String>,
}

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id; re-sending the same id to the same stream is a no-op (idempotent retry).
    pub id: Uuid,
    /// Type name, e.g. `OrderPlaced`; kept outside the payload so readers can skip or route.
    pub event_type: String,
    /// Version of the payload layout; older versions are upcast on decode.
    pub schema_version: u16,
    /// Encoded payload (postcard for domain events).
    pub payload: Vec<u8>,
    /// Correlation, causation and headers.
    pub metadata: EventMetadata,
}

/// An event as stored, with everything the store added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The id it was appended with.
    pub id: Uuid,
    /// Its stream.
    pub stream: StreamName,
    /// Its version within the stream, from 0, contiguous.
    pub version: u64,
    /// Its place in the global log.
    pub position: Position,
    /// Type name.
    pub event_type: String,
    /// Payload layout version.
    pub schema_version: u16,
    /// When the store accepted it, Unix milliseconds; set by the store, never by the writer.
    pub recorded_at: i64,
    /// Correlation, causation and headers.
    pub metadata: EventMetadata,
    /// Encoded payload.
    pub payload: Vec<u8>,
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Version of the first appended event.
    pub first_version: u64,
    /// Version of the last appended event: the stream's new version, for the next expectation.
    pub version: u64,
    /// Global position of the last appended event: what a reader waits for to see this write.
    pub position: Position,
}

/// One stream's part of an append to several streams at once
/// ([`crate::EventStore::append_together`]).
#[derive(Clone, Debug)]
pub struct StreamAppend {
    /// The stream.
    pub stream: StreamName,
    /// Where the stream must be, as for a single append.
    pub expected: ExpectedVersion,
    /// Its events, at least one.
    pub events: Vec<NewEvent>,
}

/// One stream's run of recorded events, ready to append again elsewhere (an import): its stream,
/// the expectation that puts it at the same versions, the events, and their recording times.
pub struct ImportRun {
    /// The run's stream.
    pub stream: StreamName,
    /// The stream must be exactly where the run's first event follows.
    pub expected: ExpectedVersion,
    /// The events, with their ids and metadata.
    pub events: Vec<NewEvent>,
    /// When each was first recorded, kept.
    pub recorded_at: Vec<i64>,
}

impl ImportRun {
    /// The run of `events`, which must be non-empty and of one stream.
    pub fn new(events: Vec<RecordedEvent>) -> Result<Self, crate::error::StoreError> {
        use crate::error::StoreError;
        let Some(first) = events.first() else { return Err(StoreError::EmptyAppend) };
        if events.iter().any(|e| e.stream != first.stream) {
            return Err(StoreError::Storage("an import run must belong to one stream".into()));
        }
        let stream = first.stream.clone();
        let expected = ExpectedVersion::from_loaded(first.version.checked_sub(1));
        let recorded_at = events.iter().map(|e| e.recorded_at).collect();
        let events = events
            .into_iter()
            .map(|e| NewEvent {
                id: e.id,
                event_type: e.event_type,
                schema_version: e.schema_version,
                payload: e.payload,
                metadata: e.metadata,
            })
            .collect();
        Ok(Self { stream, expected, events, recorded_at })
    }
}
