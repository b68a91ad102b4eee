//! On-disk layout of the embedded store: redb tables and the record format.
//!
//! A record is `hash (32 bytes) || body`, where body is the postcard encoding of
//! [`StoredBody`] and `hash = SHA-256(previous hash || position (8 bytes, big endian) || body)`.
//! The chain links every event to all before it, so changing any stored byte is detectable.

use crate::error::StoreError;
use crate::model::{EventMetadata, Position, RecordedEvent, StreamName};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Global log: position -> record.
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Stream index: (stream, version) -> position.
pub const STREAM_INDEX: TableDefinition<(&str, u64), u64> = TableDefinition::new("stream_index");
/// Stream heads: stream -> last version.
pub const STREAMS: TableDefinition<&str, u64> = TableDefinition::new("streams");
/// Idempotency: event id -> position.
pub const EVENT_IDS: TableDefinition<u128, u64> = TableDefinition::new("event_ids");
/// Store-wide counters: how far the on-disk index reaches.
pub const MARKS: TableDefinition<&str, u64> = TableDefinition::new("marks");
/// Positions below this mark are in the on-disk stream and id indexes.
pub const INDEXED_THROUGH: &str = "indexed_through";
/// Store-wide facts such as the format version.
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// Written once at creation; a different value means this code cannot read the file.
pub const FORMAT: &str = "ordo-eventstore/2";
/// Size of the chain hash prefix of every record.
pub const HASH_LEN: usize = 32;
/// The chain's starting point, before position 0.
pub const GENESIS: [u8; HASH_LEN] = [0; HASH_LEN];

/// Everything stored about an event except its chain hash.
#[derive(Serialize, Deserialize)]
pub struct StoredBody {
    pub id: [u8; 16],
    pub stream: String,
    pub version: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub recorded_at: i64,
    pub correlation_id: Option<[u8; 16]>,
    pub causation_id: Option<[u8; 16]>,
    pub headers: Vec<(String, String)>,
    /// As bytes, not as a sequence of `u8`: postcard writes both the same way (a length, then
    /// the bytes), but reads a sequence one element at a time and bytes in one copy.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// Chain hash of the record at `position` with `body`, following `previous`.
pub fn chain_hash(previous: &[u8; HASH_LEN], position: u64, body: &[u8]) -> [u8; HASH_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(position.to_be_bytes());
    hasher.update(body);
    hasher.finalize().into()
}

/// Encodes a body and prefixes its chain hash. Returns the record and its hash.
pub fn encode_record(
    previous: &[u8; HASH_LEN],
    position: u64,
    body: &StoredBody,
) -> Result<(Vec<u8>, [u8; HASH_LEN]), StoreError> {
    let body =
        postcard::to_stdvec(body).map_err(|e| StoreError::Storage(format!("encode: {e}")))?;
    let hash = chain_hash(previous, position, &body);
    let mut record = Vec::with_capacity(HASH_LEN + body.len());
    record.extend_from_slice(&hash);
    record.extend_from_slice(&body);
    Ok((record, hash))
}

/// Splits a record into its stored hash and decoded body.
pub fn split_record(position: u64, record: &[u8]) -> Result<([u8; HASH_LEN], &[u8]), StoreError> {
    if record.len() < HASH_LEN {
        return Err(StoreError::Corrupt {
            position,
            reason: "record shorter than its hash".into(),
        });
    }
    let (hash, body) = record.split_at(HASH_LEN);
    let mut stored = [0; HASH_LEN];
    stored.copy_from_slice(hash);
    Ok((stored, body))
}

/// Decodes a record body.
pub fn decode_body(position: u64, body: &[u8]) -> Result<StoredBody, StoreError> {
    postcard::from_bytes(body)
        .map_err(|e| StoreError::Corrupt { position, reason: format!("undecodable record: {e}") })
}

/// The stream of a stored record, read without decoding the rest of it: a subscription's
/// filter looks at it before paying for the whole event (its headers, its payload).
pub fn stored_stream(position: u64, record: &[u8]) -> Result<&str, StoreError> {
    /// The first fields of [`StoredBody`], borrowed from the record.
    #[derive(Deserialize)]
    struct Head<'a> {
        _id: [u8; 16],
        stream: &'a str,
    }
    let (_, body) = split_record(position, record)?;
    let (head, _) = postcard::take_from_bytes::<Head>(body).map_err(|e| StoreError::Corrupt {
        position,
        reason: format!("undecodable record: {e}"),
    })?;
    Ok(head.stream)
}

/// Turns a stored record into the public event type.
pub fn to_recorded(position: u64, record: &[u8]) -> Result<RecordedEvent, StoreError> {
    let (_, body) = split_record(position, record)?;
    let b = decode_body(position, body)?;
    let stream = StreamName::new(b.stream).map_err(|e| StoreError::Corrupt {
        position,
        reason: format!("stored stream name: {e}"),
    })?;
    Ok(RecordedEvent {
        id: Uuid::from_bytes(b.id),
        stream,
        version: b.version,
        position: Position(position),
        event_type: b.event_type,
        schema_version: b.schema_version,
        recorded_at: b.recorded_at,
        metadata: EventMetadata {
            correlation_id: b.correlation_id.map(Uuid::from_bytes),
            causation_id: b.causation_id.map(Uuid::from_bytes),
            headers: b.headers.into_iter().collect(),
        },
        payload: b.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`StoredBody`] as it was before its payload was read as bytes: files written then must
    /// read the same now, and the other way round.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct EarlierBody {
        id: [u8; 16],
        stream: String,
        version: u64,
        event_type: String,
        schema_version: u16,
        recorded_at: i64,
        correlation_id: Option<[u8; 16]>,
        causation_id: Option<[u8; 16]>,
        headers: Vec<(String, String)>,
        payload: Vec<u8>,
    }

    fn earlier() -> EarlierBody {
        EarlierBody {
            id: [7; 16],
            stream: "cart-1".to_owned(),
            version: 3,
            event_type: "ItemAdded".to_owned(),
            schema_version: 1,
            recorded_at: 1_765_000_000_000,
            correlation_id: Some([1; 16]),
            causation_id: None,
            headers: vec![("source".to_owned(), "test".to_owned())],
            // Longer than one varint byte of length, with every byte value in it.
            payload: (0..=255).chain(0..=255).collect(),
        }
    }

    #[test]
    fn a_payload_read_as_bytes_keeps_the_layout_of_a_sequence_of_u8() {
        // Given a body written the earlier way
        let written = postcard::to_stdvec(&earlier()).expect("encodes");

        // When it is read as today's body, and today's body is written again
        let body = decode_body(0, &written).expect("decodes");
        let again = postcard::to_stdvec(&body).expect("encodes");

        // Then it holds the same payload, and both ways write the same bytes
        assert_eq!(body.payload, earlier().payload);
        assert_eq!(again, written);
        let back: EarlierBody = postcard::from_bytes(&again).expect("decodes the earlier way");
        assert_eq!(back, earlier());
    }
}
