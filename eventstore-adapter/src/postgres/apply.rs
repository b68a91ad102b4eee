//! One batch's view of the log inside the append transaction: the events and stream versions
//! it looked up, the checks of each request (all of its parts or none, the rules in
//! `crate::together`), and the rows its accepted events become, chained after the head.

use crate::embedded::schema::{chain_hash, StoredBody, HASH_LEN};
use crate::error::StoreError;
use crate::model::{AppendOutcome, NewEvent, Position, StreamAppend, StreamName};
use crate::together::{check, verdict, Verdict};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// An event already in the log, as far as a retry needs to know.
pub(super) struct Stored {
    pub(super) position: u64,
    pub(super) stream: String,
    pub(super) version: u64,
    pub(super) event_type: String,
    pub(super) payload: Vec<u8>,
}

/// The log as the transaction sees it: its head, the events and stream versions the batch
/// looked up (and those it added), and the rows to insert.
pub(super) struct Log<'b> {
    pub(super) next: i64,
    pub(super) last_hash: [u8; HASH_LEN],
    pub(super) last_recorded_at: i64,
    pub(super) stored: HashMap<Uuid, Stored>,
    pub(super) versions: HashMap<String, u64>,
    /// Only the streams this batch appended to get their version written back.
    pub(super) appended_to: BTreeSet<&'b str>,
    pub(super) rows: Rows,
}

impl<'b> Log<'b> {
    /// One request, all of its parts or none. The outer error fails the batch; the inner one
    /// is this request's own refusal.
    pub(super) fn request(
        &mut self,
        parts: &'b [StreamAppend],
        recorded_at: Option<&[i64]>,
    ) -> Result<Result<Vec<AppendOutcome>, StoreError>, StoreError> {
        let checks = parts
            .iter()
            .map(|part| {
                let earlier = earlier_outcome(&part.stream, &part.events, &self.stored);
                check(part, earlier, self.versions.get(part.stream.as_str()).copied())
            })
            .collect();
        let first_versions = match verdict(parts, checks) {
            Err(refused) => return Ok(Err(refused)),
            Ok(Verdict::Stored(earlier)) => return Ok(Ok(earlier)),
            Ok(Verdict::Write(first_versions)) => first_versions,
        };
        let mut written = Vec::with_capacity(parts.len());
        for (i, (part, first_version)) in parts.iter().zip(first_versions).enumerate() {
            let recorded_at = if i == 0 { recorded_at } else { None };
            written.push(self.write(part, first_version, recorded_at)?);
        }
        Ok(Ok(written))
    }

    /// A checked part's events as rows after the log's head, chained.
    fn write(
        &mut self,
        part: &'b StreamAppend,
        first_version: u64,
        recorded_at: Option<&[i64]>,
    ) -> Result<AppendOutcome, StoreError> {
        let stream = &part.stream;
        for (i, event) in part.events.iter().enumerate() {
            let version = first_version + i as u64;
            let position = self.next as u64;
            let at = recorded_at.and_then(|t| t.get(i).copied()).unwrap_or(self.last_recorded_at);
            let headers: Vec<(String, String)> =
                event.metadata.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let body = StoredBody {
                id: *event.id.as_bytes(),
                stream: stream.to_string(),
                version,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                recorded_at: at,
                correlation_id: event.metadata.correlation_id.map(|u| *u.as_bytes()),
                causation_id: event.metadata.causation_id.map(|u| *u.as_bytes()),
                headers,
                payload: event.payload.clone(),
            };
            let encoded = postcard::to_stdvec(&body)
                .map_err(|e| StoreError::Storage(format!("encode: {e}")))?;
            self.last_hash = chain_hash(&self.last_hash, position, &encoded);
            let rows = &mut self.rows;
            rows.position.push(self.next);
            rows.id.push(event.id);
            rows.stream.push(body.stream);
            rows.version.push(version as i64);
            rows.event_type.push(body.event_type);
            rows.schema_version.push(i32::from(body.schema_version));
            rows.recorded_at.push(at);
            rows.correlation_id.push(event.metadata.correlation_id);
            rows.causation_id.push(event.metadata.causation_id);
            rows.headers.push(
                postcard::to_stdvec(&body.headers)
                    .map_err(|e| StoreError::Storage(format!("encode: {e}")))?,
            );
            rows.payload.push(body.payload);
            rows.hash.push(self.last_hash.to_vec());
            let stored = Stored {
                position,
                stream: stream.to_string(),
                version,
                event_type: event.event_type.clone(),
                payload: event.payload.clone(),
            };
            self.stored.insert(event.id, stored);
            self.next += 1;
        }
        let version = first_version + part.events.len() as u64 - 1;
        self.versions.insert(stream.to_string(), version);
        self.appended_to.insert(stream.as_str());
        Ok(AppendOutcome { first_version, version, position: Position(self.next as u64 - 1) })
    }
}

/// Rows to insert, column by column (for `unnest`).
#[derive(Default)]
pub(super) struct Rows {
    pub(super) position: Vec<i64>,
    pub(super) id: Vec<Uuid>,
    pub(super) stream: Vec<String>,
    pub(super) version: Vec<i64>,
    pub(super) event_type: Vec<String>,
    pub(super) schema_version: Vec<i32>,
    pub(super) recorded_at: Vec<i64>,
    pub(super) correlation_id: Vec<Option<Uuid>>,
    pub(super) causation_id: Vec<Option<Uuid>>,
    pub(super) headers: Vec<Vec<u8>>,
    pub(super) payload: Vec<Vec<u8>>,
    pub(super) hash: Vec<Vec<u8>>,
}

/// If these event ids are stored already (a retry), the first append's outcome; a refusal if
/// they were stored with other content, elsewhere, or only some of them were.
fn earlier_outcome(
    stream: &StreamName,
    events: &[NewEvent],
    stored: &HashMap<Uuid, Stored>,
) -> Option<Result<AppendOutcome, StoreError>> {
    let found: Vec<Option<&Stored>> = events.iter().map(|e| stored.get(&e.id)).collect();
    let known = found.iter().filter(|f| f.is_some()).count();
    if known == 0 {
        return None;
    }
    let conflict = |id: Uuid, reason: &str| {
        Some(Err(StoreError::EventIdConflict { id, reason: reason.to_owned() }))
    };
    if known < events.len() {
        return conflict(events[0].id, "a retry must resend exactly the same events");
    }
    for (event, s) in events.iter().zip(&found) {
        let s = s.expect("all found");
        if s.stream != stream.as_str() {
            return conflict(event.id, &format!("it belongs to stream {}", s.stream));
        }
        if s.event_type != event.event_type || s.payload != event.payload {
            return conflict(event.id, "the type or payload differs");
        }
    }
    let first = found[0].expect("all found");
    let last = found[found.len() - 1].expect("all found");
    Some(Ok(AppendOutcome {
        first_version: first.version,
        version: last.version,
        position: Position(last.position),
    }))
}
