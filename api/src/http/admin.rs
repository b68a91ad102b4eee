//! Audit and operations endpoints for staff: a stream's raw history, how far each projection
//! has got, and which instance runs each role.

use super::params::Stream;
use super::problem::Problem;
use super::rendered::Body;
use super::responses::Private;
use super::state::{App, BearerAuth, Tag};
use ordo_application::{outbox, processes};
use ordo_eventstore::clock::rfc3339;
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::{
    AnyStore, Direction, EventFilter, EventStore, Position, RecordedEvent, StreamName,
    SubscribeFrom,
};
use ordo_projections::views::{CartView, OrderView, ProductView, View};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Admin endpoints.
pub struct Admin(pub Arc<App>);

/// One recorded event, as stored and as decoded by today's code.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventDto {
    /// Event id (unique; the store's de-duplication key).
    pub id: String,
    /// The stream it belongs to.
    pub stream: String,
    /// Version within its stream, from 0.
    pub version: u64,
    /// Position in the global log.
    pub position: u64,
    /// Event type.
    #[oai(rename = "type")]
    pub event_type: String,
    /// Schema version of the stored payload (older ones are upcast when decoded).
    pub schema_version: u16,
    /// When it was recorded (RFC 3339, UTC).
    pub recorded_at: String,
    /// The request or process run that caused it.
    pub correlation_id: Option<String>,
    /// The message that caused it.
    pub causation_id: Option<String>,
    /// Who did it (actor, role) and other headers.
    pub headers: BTreeMap<String, String>,
    /// The decoded event; absent if today's code cannot decode it (`ordo audit verify`
    /// reports those).
    pub data: Option<serde_json::Value>,
}

impl From<&RecordedEvent> for EventDto {
    fn from(e: &RecordedEvent) -> Self {
        EventDto {
            id: e.id.to_string(),
            stream: e.stream.to_string(),
            version: e.version,
            position: e.position.0,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            recorded_at: rfc3339(e.recorded_at),
            correlation_id: e.metadata.correlation_id.map(|u| u.to_string()),
            causation_id: e.metadata.causation_id.map(|u| u.to_string()),
            headers: e.metadata.headers.clone(),
            data: AnyEvent::from_recorded(e).ok().and_then(|d| serde_json::to_value(d).ok()),
        }
    }
}

/// A page of a stream's events, oldest first.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventPageDto {
    /// The stream.
    pub stream: String,
    /// The events on this page.
    pub events: Vec<EventDto>,
    /// Pass as `from_version` for the next page; absent on the last page.
    pub next_from_version: Option<u64>,
}

/// A projection's progress.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProjectionDto {
    /// Projection name.
    pub name: String,
    /// The version queries read.
    pub active_version: u32,
    /// The version a running rebuild is filling, if any.
    pub building_version: Option<u32>,
    /// Last applied global position.
    pub position: Option<u64>,
    /// The event store's last position now.
    pub head_position: Option<u64>,
    /// Events not yet applied (head minus position).
    pub lag_events: Option<u64>,
    /// Age of the oldest unapplied event when the runner last reported, seconds.
    pub lag_seconds: Option<f64>,
    /// When the runner last reported (RFC 3339).
    pub updated_at: Option<String>,
    /// The last error, until a batch succeeds again.
    pub last_error: Option<String>,
}

/// Every projection.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProjectionsDto {
    /// One entry per projection.
    pub projections: Vec<ProjectionDto>,
}

/// Who runs one role (work that must happen once: a process, the outbox, a projection).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RoleDto {
    /// The role: `checkout`, `outbox`, `projection:<name>`.
    pub role: String,
    /// The instance holding its lease, if any has taken it.
    pub holder: Option<String>,
    /// Whether the answering instance is the holder.
    pub held_here: bool,
    /// Whether the lease is live; a lapsed lease is free for the next instance to take.
    pub live: bool,
    /// Takeovers so far (the lease's fencing token).
    pub epoch: Option<i64>,
    /// When the holder took it (RFC 3339).
    pub since: Option<String>,
    /// When the lease lapses unless renewed (RFC 3339); absent for a single server's own.
    pub expires_at: Option<String>,
    /// The role's last handled global position.
    pub position: Option<u64>,
    /// Events not yet handled (head minus position), where positions count events.
    pub lag_events: Option<u64>,
}

/// Every role, as seen from the answering instance.
#[derive(Object)]
pub struct RolesDto {
    /// The answering instance (`ordo serve --instance-id`).
    pub instance: String,
    /// One entry per role.
    pub roles: Vec<RoleDto>,
}

pub(super) fn admin_only(auth: &BearerAuth) -> Result<(), Problem> {
    if auth.0.is_admin() {
        Ok(())
    } else {
        Err(Problem::forbidden("this needs an admin token"))
    }
}

#[OpenApi]
impl Admin {
    /// A stream's events, oldest first, with metadata and decoded payloads (admin). Streams
    /// are named `<category>-<id>`: `product-<sku>`, `cart-<id>`, `order-<id>`,
    /// `payment-<order id>`.
    #[oai(
        path = "/v1/admin/streams/:stream/events",
        method = "get",
        tag = "Tag::Admin",
        operation_id = "stream_events"
    )]
    async fn stream_events(
        &self,
        auth: BearerAuth,
        /// The stream, e.g. `order-0193...`.
        stream: Path<Stream>,
        /// First version to return.
        #[oai(validator(minimum(value = "0")))]
        from_version: Query<Option<u64>>,
        /// Page size.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> Private<EventPageDto> {
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
        let from = from_version.0.unwrap_or(0);
        let limit = limit.0.unwrap_or(100) as usize;
        let events = match store.read_stream(&name, from, Direction::Forward, limit + 1).await {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(error = %e, "reading a stream failed");
                return Problem::store_unavailable("retry").into();
            }
        };
        if events.is_empty() && from == 0 {
            return Private::NotFound(Json(Problem::not_found(format!("no stream {}", stream.0))));
        }
        let next_from_version = events.get(limit).map(|e| e.version);
        Private::Ok(Body::Value(EventPageDto {
            stream: stream.0.into(),
            events: events.iter().take(limit).map(EventDto::from).collect(),
            next_from_version,
        }))
    }

    /// Every projection's active version, position, lag and last error (admin).
    #[oai(
        path = "/v1/admin/projections",
        method = "get",
        tag = "Tag::Admin",
        operation_id = "projections"
    )]
    async fn projections(&self, auth: BearerAuth) -> Private<ProjectionsDto> {
        if let Err(p) = admin_only(&auth) {
            return Private::Forbidden(Json(p));
        }
        let head = match &self.0.store {
            Some(store) => store.last_position().await.ok().flatten().map(|p| p.0),
            None => None,
        };
        // Measured now, so a stuck projection shows its growing lag; in events only where
        // positions count events (not on KurrentDB).
        let counts_events = self.0.store.as_ref().is_some_and(|s| s.positions_count_events());
        let mut projections = Vec::new();
        for name in [ProductView::PROJECTION, CartView::PROJECTION, OrderView::PROJECTION] {
            let status = match self.0.reads.status(name).await {
                Ok(status) => status,
                Err(e) => return e.into(),
            };
            projections.push(ProjectionDto {
                name: name.to_owned(),
                active_version: status.active_version,
                building_version: status.building_version,
                position: status.position,
                head_position: head,
                lag_events: head
                    .filter(|_| counts_events)
                    .map(|h| h.saturating_sub(status.position.unwrap_or(0))),
                lag_seconds: status.lag_seconds,
                updated_at: status.updated_at.map(rfc3339),
                last_error: status.last_error,
            });
        }
        Private::Ok(Body::Value(ProjectionsDto { projections }))
    }

    /// Which instance runs each role (the checkout process, the outbox, each projection),
    /// since when, under which lease epoch, and how far behind the log it is (admin).
    #[oai(path = "/v1/admin/roles", method = "get", tag = "Tag::Admin", operation_id = "roles")]
    async fn roles(&self, auth: BearerAuth) -> Private<RolesDto> {
        if let Err(p) = admin_only(&auth) {
            return Private::Forbidden(Json(p));
        }
        let (Some(roles), Some(store)) = (&self.0.roles, &self.0.store) else {
            return Private::Unavailable(Json(Problem::unavailable("no event store")), 1);
        };
        let holders = match roles.holders().await {
            Ok(holders) => holders,
            Err(e) => {
                tracing::error!(error = %e, "reading the leases failed");
                return Private::Unavailable(
                    Json(Problem::new(503, "unavailable", "The lease store failed", "retry")),
                    1,
                );
            }
        };
        // Read once: every role's lag is measured against the same head.
        let head = store.last_position().await.ok().flatten().map(|p| p.0);
        let mut answer = Vec::new();
        for role in super::background::all_roles() {
            let holder = holders.iter().find(|h| h.role == role);
            let (position, lag_events) = self.role_progress(store, head, &role).await;
            answer.push(RoleDto {
                holder: holder.map(|h| h.instance.clone()),
                held_here: roles.holds(&role),
                live: holder.is_some_and(|h| h.live),
                epoch: holder.map(|h| h.epoch),
                since: holder.map(|h| rfc3339(h.since_ms)),
                expires_at: holder.and_then(|h| h.expires_ms).map(rfc3339),
                position,
                lag_events,
                role,
            });
        }
        Private::Ok(Body::Value(RolesDto { instance: roles.instance().to_owned(), roles: answer }))
    }
}

/// How far past a checkpoint the lag of a role that follows only some streams is counted.
const LAG_SCAN: usize = 10_000;

impl Admin {
    /// The last position `role` handled, and how many events it has yet to handle (counted
    /// where positions count events; capped at [`LAG_SCAN`] for the roles that follow only
    /// some streams, whose checkpoint stays on the last event they follow).
    async fn role_progress(
        &self,
        store: &AnyStore,
        head: Option<u64>,
        role: &str,
    ) -> (Option<u64>, Option<u64>) {
        let (position, filter) = self.role_position(role).await;
        if !store.positions_count_events() {
            return (position, None);
        }
        let from = position.map_or(SubscribeFrom::Start, |p| SubscribeFrom::After(Position(p)));
        let lag = match filter {
            None => head.map(|h| h.saturating_sub(position.unwrap_or(0))),
            Some(filter) => match store.read_all(from, LAG_SCAN).await {
                Ok(events) => {
                    Some(events.iter().filter(|e| filter.accepts(e.stream.as_str())).count() as u64)
                }
                Err(_) => None,
            },
        };
        (position, lag)
    }

    /// The last position `role` handled, where it keeps it, and the role's filter if it
    /// follows only some streams.
    async fn role_position(&self, role: &str) -> (Option<u64>, Option<EventFilter>) {
        if let Some(projection) = role.strip_prefix("projection:") {
            for name in [ProductView::PROJECTION, CartView::PROJECTION, OrderView::PROJECTION] {
                if name == projection {
                    let status = self.0.reads.status(name).await.ok();
                    return (status.and_then(|s| s.position), None);
                }
            }
            return (None, None);
        }
        match role {
            super::background::OUTBOX => {
                let Ok(mut con) = self.0.redis.get_multiplexed_async_connection().await else {
                    return (None, Some(outbox::filter()));
                };
                let position = redis::cmd("GET")
                    .arg(outbox::CHECKPOINT_KEY)
                    .query_async::<Option<u64>>(&mut con)
                    .await
                    .ok()
                    .flatten();
                (position, Some(outbox::filter()))
            }
            super::background::CHECKOUT => {
                let position = match &self.0.process_state {
                    Some(state) => state.checkpoint(processes::CHECKPOINT).await.ok().flatten(),
                    None => None,
                };
                (position, Some(processes::filter()))
            }
            _ => (None, None),
        }
    }
}
