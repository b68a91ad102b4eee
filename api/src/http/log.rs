//! Staff's window on the event log: its tail, one stream's timeline with the state after each
//! event, and `audit verify`. The web console's staff pages are built on these.

use super::admin::{admin_only, EventDto};
use super::params::Stream;
use super::problem::Problem;
use super::rendered::Body;
use super::responses::Private;
use super::state::{App, BearerAuth, Tag};
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::{Direction, EventStore, Position, RecordedEvent, StreamName, SubscribeFrom};
use ordo_projections::views::{CartView, OrderView, ProductView, View};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest timeline served: an order or a cart has tens of events; a busy product's stream
/// is paged through `GET /v1/admin/streams/{stream}/events` instead.
const TIMELINE_MAX: usize = 1_000;

/// The log endpoints.
pub struct Log(pub Arc<App>);

/// A page of the global log, oldest first.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LogPageDto {
    /// The events on this page.
    pub events: Vec<EventDto>,
    /// Pass as `after` for the next page (the last event's position, or `after` itself when
    /// the page is empty); absent while the log is empty.
    pub next_after: Option<u64>,
}

/// One field of a read model that an event changed.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChangeDto {
    /// The field, as the read model names it.
    pub field: String,
    /// Its value before the event; absent if the field did not exist yet.
    pub before: Option<String>,
    /// Its value after; absent if the event removed the document.
    pub after: Option<String>,
}

/// One event of a timeline and what it did.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TimelineEntryDto {
    /// The event as recorded.
    pub event: EventDto,
    /// The fields of the stream's read model this event changed.
    pub changed: Vec<ChangeDto>,
    /// The read model as of this event (every field); absent for streams without one
    /// (payments) or once the document is gone.
    pub state: Option<BTreeMap<String, String>>,
}

/// A stream's history, each event with the state it left behind.
#[derive(Object)]
pub struct TimelineDto {
    /// The stream.
    pub stream: String,
    /// Every event, oldest first (at most 1,000).
    pub entries: Vec<TimelineEntryDto>,
    /// Whether the stream has more events than were returned.
    pub truncated: bool,
}

/// The outcome of `audit verify`.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditDto {
    /// Whether the log is intact and every event decodes.
    pub ok: bool,
    /// One line saying what was checked and found.
    pub summary: String,
    /// Events decoded (on success).
    pub events: Option<u64>,
    /// Events upcast from an older schema version (on success).
    pub upcast: Option<u64>,
    /// Head of the hash chain (on success, where the store keeps one).
    pub chain_head: Option<String>,
    /// First bad position (on failure).
    pub failed_at: Option<u64>,
}

fn store_failed(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "reading the event log failed");
    Problem::store_unavailable("retry")
}

#[OpenApi]
impl Log {
    /// The global event log, oldest first, after a position (admin). Without `after`, the
    /// last `limit` events: the start of a live tail, which then passes `next_after` back.
    #[oai(path = "/v1/admin/events", method = "get", tag = "Tag::Admin", operation_id = "log")]
    async fn log(
        &self,
        auth: BearerAuth,
        /// Return events after this position.
        after: Query<Option<u64>>,
        /// Page size.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> Private<LogPageDto> {
        if let Err(p) = admin_only(&auth) {
            return Private::Forbidden(Json(p));
        }
        let store = match self.0.store() {
            Ok(store) => store,
            Err(p) => return p.into(),
        };
        let limit = limit.0.unwrap_or(100) as usize;
        let from = match after.0 {
            Some(after) => SubscribeFrom::After(Position(after)),
            None => match store.last_position().await {
                Err(e) => return store_failed(e).into(),
                Ok(None) => SubscribeFrom::Start,
                // Step back only where positions count events; elsewhere the tail starts now.
                Ok(Some(head)) if store.positions_count_events() => {
                    match head.0.checked_sub(limit as u64) {
                        Some(p) => SubscribeFrom::After(Position(p)),
                        None => SubscribeFrom::Start,
                    }
                }
                Ok(Some(head)) => SubscribeFrom::After(head),
            },
        };
        let events = match store.read_all(from, limit).await {
            Ok(events) => events,
            Err(e) => return store_failed(e).into(),
        };
        let next_after = events.last().map(|e| e.position.0).or(match from {
            SubscribeFrom::After(p) => Some(p.0),
            SubscribeFrom::Start => None,
        });
        Private::Ok(Body::Value(LogPageDto {
            events: events.iter().map(EventDto::from).collect(),
            next_after,
        }))
    }

    /// A stream's events with what each changed and the state as of each (admin): the order,
    /// cart or product read model folded event by event, as the projections fold it.
    #[oai(
        path = "/v1/admin/streams/:stream/timeline",
        method = "get",
        tag = "Tag::Admin",
        operation_id = "timeline"
    )]
    async fn timeline(
        &self,
        auth: BearerAuth,
        /// The stream, e.g. `order-0193...`.
        stream: Path<Stream>,
    ) -> Private<TimelineDto> {
        if let Err(p) = admin_only(&auth) {
            return Private::Forbidden(Json(p));
        }
        let store = match self.0.store() {
            Ok(store) => store,
            Err(p) => return p.into(),
        };
        let name = match StreamName::new(stream.0.clone()) {
            Ok(name) => name,
            Err(e) => return Private::BadRequest(Json(Problem::bad_request(e.to_string()))),
        };
        let mut events =
            match store.read_stream(&name, 0, Direction::Forward, TIMELINE_MAX + 1).await {
                Ok(events) => events,
                Err(e) => return store_failed(e).into(),
            };
        if events.is_empty() {
            return Private::NotFound(Json(Problem::not_found(format!("no stream {}", stream.0))));
        }
        let truncated = events.len() > TIMELINE_MAX;
        events.truncate(TIMELINE_MAX);
        let states = match name.category() {
            OrderView::CATEGORY => states::<OrderView>(&events),
            CartView::CATEGORY => states::<CartView>(&events),
            ProductView::CATEGORY => states::<ProductView>(&events),
            _ => vec![None; events.len()],
        };
        let mut before: Option<BTreeMap<String, String>> = None;
        let mut entries = Vec::with_capacity(events.len());
        for (event, state) in events.iter().zip(states) {
            entries.push(TimelineEntryDto {
                event: EventDto::from(event),
                changed: changes(before.as_ref(), state.as_ref()),
                state: state.clone(),
            });
            before = state;
        }
        Private::Ok(Body::Value(TimelineDto { stream: stream.0.into(), entries, truncated }))
    }

    /// Verifies the log (admin): the hash chain where the store keeps one, then every event
    /// decoded with today's code, as `ordo audit verify` does. Reads the whole log.
    #[oai(path = "/v1/admin/audit", method = "post", tag = "Tag::Admin", operation_id = "audit")]
    async fn audit(&self, auth: BearerAuth) -> Private<AuditDto> {
        if let Err(p) = admin_only(&auth) {
            return Private::Forbidden(Json(p));
        }
        let store = match self.0.store() {
            Ok(store) => store,
            Err(p) => return p.into(),
        };
        match ordo_eventstore::audit::verify(store, |_| {}).await {
            Ok(report) => Private::Ok(Body::Value(AuditDto {
                ok: true,
                summary: report.summary(store.kind()),
                events: Some(report.events),
                upcast: Some(report.upcast),
                chain_head: report.chain.map(|(_, head)| head),
                failed_at: None,
            })),
            Err(ordo_eventstore::audit::AuditError::Failed { position, reason }) => {
                Private::Ok(Body::Value(AuditDto {
                    ok: false,
                    summary: format!("audit failed at position {position}: {reason}"),
                    events: None,
                    upcast: None,
                    chain_head: None,
                    failed_at: Some(position),
                }))
            }
            Err(ordo_eventstore::audit::AuditError::Store(e)) => store_failed(e).into(),
        }
    }
}

/// The read model after each event, folded as its projection folds it.
fn states<V: View>(events: &[RecordedEvent]) -> Vec<Option<BTreeMap<String, String>>> {
    let mut view: Option<V> = None;
    events
        .iter()
        .map(|recorded| {
            if let Ok(event) = AnyEvent::from_recorded(recorded) {
                view = V::apply(view.take(), &event, recorded);
            }
            view.as_ref().map(|v| {
                v.to_fields().into_iter().map(|(field, value)| (field.to_owned(), value)).collect()
            })
        })
        .collect()
}

/// The fields that differ between two states. A field that appears empty is not a change
/// (a new order's `shipped_at` is empty, not news).
fn changes(
    before: Option<&BTreeMap<String, String>>,
    after: Option<&BTreeMap<String, String>>,
) -> Vec<ChangeDto> {
    let empty = BTreeMap::new();
    let (before, after) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter(|f| {
            let (was, now) = (before.get(*f), after.get(*f));
            was != now && !(was.is_none() && now.is_some_and(String::is_empty))
        })
        .map(|f| ChangeDto {
            field: f.clone(),
            before: before.get(f).cloned(),
            after: after.get(f).cloned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn given_two_states_when_diffed_then_only_changed_added_and_removed_fields_show() {
        let before = state(&[("status", "placed"), ("total", "10"), ("gone", "x")]);
        let after = state(&[("status", "confirmed"), ("total", "10"), ("new", "y")]);

        let changed = changes(Some(&before), Some(&after));

        let seen: Vec<_> = changed
            .iter()
            .map(|c| (c.field.as_str(), c.before.as_deref(), c.after.as_deref()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("gone", Some("x"), None),
                ("new", None, Some("y")),
                ("status", Some("placed"), Some("confirmed")),
            ]
        );
    }

    #[test]
    fn given_no_state_before_when_diffed_then_every_field_with_a_value_is_new() {
        let after = state(&[("a", "1"), ("shipped_at", "")]);

        let changed = changes(None, Some(&after));

        assert_eq!(changed.len(), 1, "an empty field is not news");
        assert_eq!((changed[0].field.as_str(), changed[0].before.as_deref()), ("a", None));
    }
}
