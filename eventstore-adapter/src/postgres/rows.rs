//! An event as a row of `events` and back: the columns reads select, a row read into a
//! [`RecordedEvent`], and the record the chain hash covers (the embedded store's encoding, so
//! both stores hash an event alike).

use crate::embedded::schema::StoredBody;
use crate::error::StoreError;
use crate::model::*;
use uuid::Uuid;

/// The columns every read selects, in `to_recorded`'s order.
pub(super) const COLUMNS: &str =
    "position, id, stream, version, event_type, schema_version, recorded_at, \
                       correlation_id, causation_id, headers, payload";

pub(super) fn to_recorded(row: &tokio_postgres::Row) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.get(0);
    let corrupt = |reason: String| StoreError::Corrupt { position: position as u64, reason };
    let headers: Vec<u8> = row.get(9);
    let headers: Vec<(String, String)> =
        postcard::from_bytes(&headers).map_err(|e| corrupt(format!("headers: {e}")))?;
    let version: i64 = row.get(3);
    let schema_version: i32 = row.get(5);
    Ok(RecordedEvent {
        id: row.get::<_, Uuid>(1),
        stream: StreamName::new(row.get::<_, String>(2)).map_err(|e| corrupt(e.to_string()))?,
        version: version as u64,
        position: Position(position as u64),
        event_type: row.get(4),
        schema_version: u16::try_from(schema_version).map_err(|e| corrupt(e.to_string()))?,
        recorded_at: row.get(6),
        metadata: EventMetadata {
            correlation_id: row.get(7),
            causation_id: row.get(8),
            headers: headers.into_iter().collect(),
        },
        payload: row.get(10),
    })
}

/// The record the chain hash covers, as the embedded store encodes it.
pub(super) fn stored_body(e: &RecordedEvent) -> StoredBody {
    StoredBody {
        id: *e.id.as_bytes(),
        stream: e.stream.to_string(),
        version: e.version,
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        recorded_at: e.recorded_at,
        correlation_id: e.metadata.correlation_id.map(|u| *u.as_bytes()),
        causation_id: e.metadata.causation_id.map(|u| *u.as_bytes()),
        headers: e.metadata.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        payload: e.payload.clone(),
    }
}
