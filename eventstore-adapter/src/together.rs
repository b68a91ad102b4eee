//! The rules of an append, to one stream or to several at once, that both transactional
//! backends (the embedded file and PostgreSQL) apply the same way: what an append must look
//! like before it is queued, and how the checks of its parts add up to one answer.
//!
//! Why appends to several streams exist: a cart line holds stock on the product first, and
//! both facts must land or neither. Two commits one after the other cost two waits for the
//! disk and leave a window where a crash keeps the hold without the line (ADR 0022).

use crate::error::StoreError;
use crate::model::{AppendOutcome, StreamAppend};
use std::collections::HashSet;

/// Largest total payload one append (all of its parts) may carry.
pub const MAX_APPEND_BYTES: usize = 16 * 1024 * 1024;

/// Refuses an append before it reaches the writer: no part, a part without events, a stream
/// named twice, an event id used twice, or too many bytes.
pub fn check_shape(parts: &[StreamAppend]) -> Result<(), StoreError> {
    if parts.is_empty() || parts.iter().any(|p| p.events.is_empty()) {
        return Err(StoreError::EmptyAppend);
    }
    let bytes: usize = parts.iter().flat_map(|p| &p.events).map(|e| e.payload.len()).sum();
    if bytes > MAX_APPEND_BYTES {
        return Err(StoreError::AppendTooLarge { bytes, limit: MAX_APPEND_BYTES });
    }
    if parts.len() > 1 {
        let mut streams = HashSet::with_capacity(parts.len());
        let mut ids = HashSet::new();
        for part in parts {
            if !streams.insert(part.stream.as_str()) {
                return Err(StoreError::StreamTwice(part.stream.to_string()));
            }
            for event in &part.events {
                if !ids.insert(event.id) {
                    return Err(StoreError::EventIdConflict {
                        id: event.id,
                        reason: "the id appears twice in one append".to_owned(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The outcome of an append of one part.
pub(crate) fn only(mut outcomes: Vec<AppendOutcome>) -> Result<AppendOutcome, StoreError> {
    outcomes.pop().ok_or(StoreError::EmptyAppend)
}

/// What the store found for one part, before writing anything.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// Every event id of the part is stored already, as this part: a retry of it.
    Stored(AppendOutcome),
    /// New events, and the stream is where the part expects it: they go at this version.
    New {
        /// The version of the part's first event.
        first_version: u64,
    },
}

/// Checks one part: `earlier` is what the backend's id lookup found (a stored retry, or a
/// reused id refused), `actual` the stream's last version (looked up only when `earlier` is
/// `None`).
pub fn check(
    part: &StreamAppend,
    earlier: Option<Result<AppendOutcome, StoreError>>,
    actual: Option<u64>,
) -> Result<Check, StoreError> {
    if let Some(earlier) = earlier {
        return earlier.map(Check::Stored);
    }
    if !part.expected.matches(actual) {
        return Err(StoreError::WrongExpectedVersion {
            stream: part.stream.to_string(),
            expected: part.expected,
            actual,
        });
    }
    Ok(Check::New { first_version: actual.map_or(0, |v| v + 1) })
}

/// What to do with a whole append.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write every part, each from this first version.
    Write(Vec<u64>),
    /// A retry of an append that is stored whole: answer with its first outcomes.
    Stored(Vec<AppendOutcome>),
}

/// One answer from the checks of each part, in order: the first refusal refuses the whole
/// append; all stored is a retry; all new is written. Some parts stored and some new cannot be
/// a retry of one atomic append, so it is refused as a reused id would be.
pub fn verdict(
    parts: &[StreamAppend],
    checks: Vec<Result<Check, StoreError>>,
) -> Result<Verdict, StoreError> {
    let (mut stored, mut new) = (Vec::new(), Vec::new());
    let mut first_new = None;
    for (part, check) in parts.iter().zip(checks) {
        match check? {
            Check::Stored(outcome) => stored.push(outcome),
            Check::New { first_version } => {
                first_new = first_new.or(Some(part));
                new.push(first_version);
            }
        }
    }
    match first_new {
        None => Ok(Verdict::Stored(stored)),
        Some(_) if stored.is_empty() => Ok(Verdict::Write(new)),
        Some(part) => Err(StoreError::EventIdConflict {
            id: part.events[0].id,
            reason: "a retry must resend exactly the same events".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventMetadata, ExpectedVersion, NewEvent, Position, StreamName};
    use uuid::Uuid;

    fn part(stream: &str, ids: &[u128]) -> StreamAppend {
        StreamAppend {
            stream: StreamName::new(stream).expect("stream name"),
            expected: ExpectedVersion::Any,
            events: ids
                .iter()
                .map(|id| NewEvent {
                    id: Uuid::from_u128(*id),
                    event_type: "Happened".into(),
                    schema_version: 1,
                    metadata: EventMetadata::default(),
                    payload: vec![1],
                })
                .collect(),
        }
    }

    fn outcome(version: u64) -> AppendOutcome {
        AppendOutcome { first_version: version, version, position: Position(version) }
    }

    #[test]
    fn given_a_stream_named_twice_when_checked_then_the_append_is_refused() {
        let parts = [part("product-A", &[1]), part("product-A", &[2])];
        assert!(matches!(check_shape(&parts), Err(StoreError::StreamTwice(s)) if s == "product-A"));
    }

    #[test]
    fn given_one_id_in_two_parts_when_checked_then_the_append_is_refused() {
        let parts = [part("product-A", &[1]), part("cart-B", &[1])];
        assert!(matches!(check_shape(&parts), Err(StoreError::EventIdConflict { .. })));
    }

    #[test]
    fn given_a_part_without_events_when_checked_then_the_append_is_refused() {
        let parts = [part("product-A", &[1]), part("cart-B", &[])];
        assert!(matches!(check_shape(&parts), Err(StoreError::EmptyAppend)));
        assert!(matches!(check_shape(&[]), Err(StoreError::EmptyAppend)));
    }

    #[test]
    fn given_parts_all_new_or_all_stored_then_they_are_written_or_answered_as_before() {
        let parts = [part("product-A", &[1]), part("cart-B", &[2])];
        let new = |first_version| Ok(Check::New { first_version });
        assert_eq!(verdict(&parts, vec![new(3), new(0)]).ok(), Some(Verdict::Write(vec![3, 0])));
        let stored = vec![Ok(Check::Stored(outcome(3))), Ok(Check::Stored(outcome(7)))];
        assert_eq!(
            verdict(&parts, stored).ok(),
            Some(Verdict::Stored(vec![outcome(3), outcome(7)]))
        );
    }

    #[test]
    fn given_one_part_stored_and_one_new_then_it_is_no_retry_and_is_refused() {
        let parts = [part("product-A", &[1]), part("cart-B", &[2])];
        let checks = vec![Ok(Check::Stored(outcome(3))), Ok(Check::New { first_version: 0 })];
        assert!(matches!(
            verdict(&parts, checks),
            Err(StoreError::EventIdConflict { id, .. }) if id == Uuid::from_u128(2)
        ));
    }

    #[test]
    fn given_a_part_where_its_stream_is_expected_then_it_is_new_from_the_next_version() {
        let mut part = part("cart-B", &[2]);
        part.expected = ExpectedVersion::Exact(4);
        assert_eq!(check(&part, None, Some(4)).ok(), Some(Check::New { first_version: 5 }));
        assert!(matches!(
            check(&part, None, Some(5)),
            Err(StoreError::WrongExpectedVersion { actual: Some(5), .. })
        ));
        let stored = check(&part, Some(Ok(outcome(2))), None);
        assert_eq!(stored.ok(), Some(Check::Stored(outcome(2))), "a retry, whatever the version");
    }

    #[test]
    fn given_a_refused_part_then_its_refusal_is_the_answer() {
        let parts = [part("product-A", &[1]), part("cart-B", &[2])];
        let wrong = StoreError::WrongExpectedVersion {
            stream: "cart-B".into(),
            expected: ExpectedVersion::Exact(0),
            actual: Some(1),
        };
        let checks = vec![Ok(Check::New { first_version: 1 }), Err(wrong)];
        assert!(matches!(
            verdict(&parts, checks),
            Err(StoreError::WrongExpectedVersion { stream, .. }) if stream == "cart-B"
        ));
    }
}
