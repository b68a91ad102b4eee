//! Ordo's events, versions, positions and filters as KurrentDB's, and back; the client's
//! errors as Ordo's, classified transient or not.

use crate::error::StoreError;
use crate::model::*;
use kurrentdb::{StreamState, SubscriptionFilter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What Ordo keeps in a KurrentDB event's custom metadata.
#[derive(Serialize, Deserialize, Default)]
pub(super) struct Meta {
    #[serde(rename = "schemaVersion", default = "one")]
    pub(super) schema_version: u16,
    #[serde(rename = "$correlationId", default, skip_serializing_if = "Option::is_none")]
    pub(super) correlation_id: Option<Uuid>,
    #[serde(rename = "$causationId", default, skip_serializing_if = "Option::is_none")]
    pub(super) causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) headers: BTreeMap<String, String>,
}

fn one() -> u16 {
    1
}

pub(super) fn kurrent(e: impl std::fmt::Display) -> StoreError {
    StoreError::Kurrent(e.to_string())
}

/// A client error, classified: what a retry may get past (leader changes, unavailability,
/// deadlines, lost connections) stays [`StoreError::Kurrent`], which is transient; what it
/// cannot (deleted streams, access denied, malformed or unsupported calls) is
/// [`StoreError::KurrentRefused`].
pub(super) fn classify(e: kurrentdb::Error) -> StoreError {
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
pub(super) fn stream_state(expected: ExpectedVersion) -> StreamState {
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
pub(super) fn ordo_event(event: &kurrentdb::RecordedEvent) -> Option<RecordedEvent> {
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

pub(super) fn from_kurrent(event: &kurrentdb::RecordedEvent) -> Result<RecordedEvent, StoreError> {
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
pub(super) fn recorded_at_millis(event: &kurrentdb::RecordedEvent) -> i64 {
    created_millis(event.metadata.get("created").map(String::as_str))
        .unwrap_or_else(|| event.created.timestamp_millis())
}

/// The server's `created` (100 ns ticks since the Unix epoch) in milliseconds.
pub(super) fn created_millis(ticks: Option<&str>) -> Option<i64> {
    ticks.and_then(|t| t.parse::<i64>().ok()).map(|t| t / 10_000)
}

pub(super) fn kurrent_position(p: Position) -> kurrentdb::Position {
    kurrentdb::Position { commit: p.0, prepare: p.0 }
}

pub(super) fn prefix_filter(filter: &EventFilter) -> SubscriptionFilter {
    if filter.stream_prefixes.is_empty() {
        return SubscriptionFilter::on_stream_name().exclude_system_events();
    }
    filter.stream_prefixes.iter().fold(SubscriptionFilter::on_stream_name(), |f, p| f.add_prefix(p))
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
