//! One append request inside the writer's transaction: the checks that may refuse it (its
//! expected versions, its event ids) and the inserts of its events into the log and the
//! in-memory index. An append to several streams is checked whole before any part is written,
//! so a refused part leaves nothing behind (`crate::together`).

use super::index::{PendingIndex, PendingStream};
use super::schema::*;
use super::writer::{AppendRequest, ChainHead};
use crate::error::StoreError;
use crate::model::{AppendOutcome, Position, StreamAppend};
use crate::together::{check, verdict, Check, Verdict};
use redb::{ReadableTable, Table, WriteTransaction};
use std::collections::HashSet;

pub(super) struct Tables<'t, 'p> {
    events: Table<'t, u64, &'static [u8]>,
    disk_streams: Table<'t, &'static str, u64>,
    disk_ids: Table<'t, u128, u64>,
    /// Entries committed earlier but not yet on disk.
    pending: &'p PendingIndex,
    /// Entries of this batch, not yet committed.
    overlay: PendingIndex,
}

impl<'t, 'p> Tables<'t, 'p> {
    pub(super) fn open(
        txn: &'t WriteTransaction,
        pending: &'p PendingIndex,
    ) -> Result<Self, StoreError> {
        Ok(Tables {
            events: txn.open_table(EVENTS)?,
            disk_streams: txn.open_table(STREAMS)?,
            disk_ids: txn.open_table(EVENT_IDS)?,
            pending,
            overlay: PendingIndex::default(),
        })
    }

    /// Closes the tables and returns the index entries this batch added.
    pub(super) fn into_overlay(self) -> PendingIndex {
        self.overlay
    }

    /// The stream's last version, newest source first: this batch, pending, disk.
    fn stream_head(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        for layer in [&self.overlay, self.pending] {
            if let Some(last) = layer.streams.get(stream).and_then(PendingStream::last_version) {
                return Ok(Some(last));
            }
        }
        Ok(self.disk_streams.get(stream)?.map(|v| v.value()))
    }

    /// Where an event id was stored, if anywhere.
    fn id_position(&self, id: u128) -> Result<Option<u64>, StoreError> {
        for layer in [&self.overlay, self.pending] {
            if let Some(position) = layer.ids.get(&id) {
                return Ok(Some(*position));
            }
        }
        Ok(self.disk_ids.get(id)?.map(|p| p.value()))
    }

    /// Applies one request, all of its parts or none. The outer error is a storage failure
    /// (abort the batch); the inner one is this request's own refusal (nothing written for it).
    pub(super) fn apply(
        &mut self,
        head: &mut ChainHead,
        r: &AppendRequest,
    ) -> Result<Result<Vec<AppendOutcome>, StoreError>, StoreError> {
        let mut checks = Vec::with_capacity(r.parts.len());
        for part in &r.parts {
            checks.push(self.check(part)?);
        }
        match verdict(&r.parts, checks) {
            Err(refused) => Ok(Err(refused)),
            Ok(Verdict::Stored(outcomes)) => Ok(Ok(outcomes)),
            Ok(Verdict::Write(first_versions)) => {
                let mut outcomes = Vec::with_capacity(r.parts.len());
                for (i, (part, first)) in r.parts.iter().zip(first_versions).enumerate() {
                    let recorded_at = if i == 0 { r.recorded_at.as_deref() } else { None };
                    outcomes.push(self.write(head, part, first, recorded_at)?);
                }
                Ok(Ok(outcomes))
            }
        }
    }

    /// Whether `part` is a retry of a stored append, new and expected where its stream is, or
    /// refused. The outer error is a storage failure.
    fn check(&self, part: &StreamAppend) -> Result<Result<Check, StoreError>, StoreError> {
        let earlier = self.earlier_outcome(part)?;
        let actual = match earlier {
            None => self.stream_head(part.stream.as_str())?,
            Some(_) => None,
        };
        Ok(check(part, earlier, actual))
    }

    /// Inserts a checked part's events after the chain's head.
    fn write(
        &mut self,
        head: &mut ChainHead,
        r: &StreamAppend,
        first_version: u64,
        recorded_at: Option<&[i64]>,
    ) -> Result<AppendOutcome, StoreError> {
        for (i, event) in r.events.iter().enumerate() {
            let version = first_version + i as u64;
            let position = head.next_position;
            let body = StoredBody {
                id: *event.id.as_bytes(),
                stream: r.stream.to_string(),
                version,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                recorded_at: recorded_at
                    .and_then(|t| t.get(i).copied())
                    .unwrap_or(head.last_recorded_at),
                correlation_id: event.metadata.correlation_id.map(|u| *u.as_bytes()),
                causation_id: event.metadata.causation_id.map(|u| *u.as_bytes()),
                headers: event
                    .metadata
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                payload: event.payload.clone(),
            };
            let (record, hash) = encode_record(&head.last_hash, position, &body)?;
            self.events.insert(position, record.as_slice())?;
            self.overlay.add(r.stream.as_str(), version, position, event.id.as_u128());
            head.next_position += 1;
            head.last_hash = hash;
        }
        let version = first_version + r.events.len() as u64 - 1;
        Ok(AppendOutcome { first_version, version, position: Position(head.next_position - 1) })
    }

    /// If these event ids were stored before (a retry), the first append's outcome; an error if
    /// they were stored with other content or only some of them were.
    fn earlier_outcome(
        &self,
        r: &StreamAppend,
    ) -> Result<Option<Result<AppendOutcome, StoreError>>, StoreError> {
        let mut unique = HashSet::with_capacity(r.events.len());
        let mut found = Vec::with_capacity(r.events.len());
        for event in &r.events {
            if !unique.insert(event.id) {
                return Ok(Some(Err(conflict(event.id, "the id appears twice in one append"))));
            }
            found.push(self.id_position(event.id.as_u128())?);
        }
        match found.iter().filter(|p| p.is_some()).count() {
            0 => return Ok(None),
            n if n < found.len() => {
                let id = r.events[found.iter().position(Option::is_some).unwrap_or(0)].id;
                return Ok(Some(Err(conflict(id, "a retry must resend exactly the same events"))));
            }
            _ => {}
        }
        let mut first_version = 0;
        let mut version = 0;
        let mut position = 0;
        for (i, (event, stored_at)) in r.events.iter().zip(&found).enumerate() {
            let position_i = stored_at.unwrap_or_default();
            let Some(record) = self.events.get(position_i)? else {
                return Err(StoreError::Corrupt {
                    position: position_i,
                    reason: "indexed event missing".into(),
                });
            };
            let (_, body) = split_record(position_i, record.value())?;
            let stored = decode_body(position_i, body)?;
            if stored.stream != r.stream.as_str() {
                return Ok(Some(Err(conflict(
                    event.id,
                    &format!("it belongs to stream {}", stored.stream),
                ))));
            }
            if stored.event_type != event.event_type || stored.payload != event.payload {
                return Ok(Some(Err(conflict(event.id, "the type or payload differs"))));
            }
            if i == 0 {
                first_version = stored.version;
            } else if stored.version != version + 1 {
                return Ok(Some(Err(conflict(
                    event.id,
                    "the events were stored in another order",
                ))));
            }
            version = stored.version;
            position = position_i;
        }
        Ok(Some(Ok(AppendOutcome { first_version, version, position: Position(position) })))
    }
}

fn conflict(id: uuid::Uuid, reason: &str) -> StoreError {
    StoreError::EventIdConflict { id, reason: reason.to_owned() }
}
