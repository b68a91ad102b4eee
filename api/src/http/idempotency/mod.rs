//! `Idempotency-Key` on POST: a retried request gets the first response and changes nothing.
//!
//! The middleware sits in front of every operation. For a POST carrying the header it
//! fingerprints the request (method, path and query, body) under the caller's scope (the
//! token's subject), then:
//! - a key whose first request succeeded (2xx) answers with that stored response, marked
//!   `Idempotent-Replayed: true`, if the fingerprint matches, and with 422 if it does not;
//! - a key whose request is still running answers 409 (the client retried too early);
//! - otherwise the request runs, and a 2xx response is stored for 24 hours.
//!
//! Refusals (4xx) are not stored: a refused command changed nothing, so retrying it under the
//! same key is safe and may succeed later (stock arrives, a typo is fixed). Stored responses
//! live in their own redb file beside the event store (`requests.redb`), so they survive
//! restarts; servers sharing a store keep them in its database (PostgreSQL) or in Redis
//! (KurrentDB, or `--coordination redis`) instead, so a retry
//! landing on another server gets the first response, and a key in flight on one server
//! answers 409 on all of them. A crash after the command's events are appended but before its response is
//! stored is covered one level down: the key also fixes the command's event ids, so the store
//! recognises the re-sent events (see `docs/adr/0008-auth-and-idempotency.md`).
//!
//! Here the middleware; `responses.rs` keeps the stored responses and the keys in flight on
//! each backend.

mod responses;

pub use responses::Idempotency;

use super::problem::Problem;
use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use responses::{unix_ms, Claim, Lookup, Stored};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long a stored response is replayed.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The UUID a command derives its event ids from, for `key` sent by `subject`.
pub fn key_uuid(subject: &str, key: &str) -> uuid::Uuid {
    ordo_application::ids::name_uuid(&format!("idempotency\0subject:{subject}\0{key}"))
}

fn problem(status: u16, kind: &str, title: &str, detail: impl Into<String>) -> Response {
    Problem::new(status, kind, title, detail).into_response()
}

/// The request's `Idempotency-Key`, if it is a POST that sends one: the requests this middleware
/// answers for.
pub fn key(req: &Request) -> Option<String> {
    (req.method() == Method::POST).then(|| req.header(HEADER)).flatten().map(str::to_owned)
}

/// The middleware (see the module documentation), for a request sending `key` ([`key`]).
pub async fn around<E: Endpoint>(
    next: &E,
    mut req: Request,
    key: String,
    store: &Arc<Idempotency>,
) -> poem::Result<Response> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Ok(problem(
            400,
            "bad-request",
            "The request is not valid",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"),
        ));
    }
    let body = req.take_body().into_bytes().await?;
    let scope = store.scope(&req);
    let record: [u8; 32] = Sha256::new()
        .chain_update(scope.as_bytes())
        .chain_update([0])
        .chain_update(key.as_bytes())
        .finalize()
        .into();
    let fingerprint: [u8; 32] = Sha256::new()
        .chain_update(req.method().as_str())
        .chain_update([0])
        .chain_update(req.uri().path_and_query().map_or("", |p| p.as_str()))
        .chain_update([0])
        .chain_update(&body)
        .finalize()
        .into();

    let owner = format!("{}/{}", store.instance, uuid::Uuid::now_v7());
    let stored = match store.begin(record, fingerprint, &owner).await {
        Ok(Lookup::Run) => None,
        Ok(Lookup::Stored(stored)) => Some(stored),
        Ok(Lookup::InProgress) => {
            metrics::counter!("ordo_idempotency_conflicts_total", "kind" => "in_progress")
                .increment(1);
            return Ok(problem(
                409,
                "request-in-progress",
                "A request with this Idempotency-Key is still in progress",
                "retry after the first request has answered",
            ));
        }
        Err(e) => {
            tracing::error!(error = ?e, "idempotency store unavailable");
            return Ok(problem(
                503,
                "unavailable",
                "The service is unavailable",
                "idempotent requests cannot be recorded right now; retry shortly",
            ));
        }
    };
    match stored {
        Some(stored) if stored.fingerprint == fingerprint => {
            metrics::counter!("ordo_idempotency_replays_total").increment(1);
            let mut response = Response::builder()
                .status(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
                .header("idempotent-replayed", "true")
                .body(stored.body);
            if let Ok(value) = HeaderValue::from_str(&stored.content_type) {
                response.headers_mut().insert("content-type", value);
            }
            return Ok(response);
        }
        Some(_) => {
            metrics::counter!("ordo_idempotency_conflicts_total", "kind" => "key_reused")
                .increment(1);
            return Ok(problem(
                422,
                "idempotency-key-reused",
                "This Idempotency-Key was used for a different request",
                "send a new key for a new request; a retry must repeat the first request exactly",
            ));
        }
        None => {}
    }
    let mut claim = Claim { store: store.clone(), record, owner, saved: false };

    req.set_body(body);
    let response = next.get_response(req).await;
    if !response.status().is_success() {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let body = body.into_vec().await?;
    let stored = Stored {
        created_ms: unix_ms(),
        fingerprint,
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned(),
        body: body.clone(),
    };
    match store.save(record, &claim.owner, stored).await {
        Ok(()) => claim.saved = true,
        Err(e) => {
            // The command took effect; the client has its answer. A retry with this key re-runs the
            // command, which the store turns into a no-op by its derived event ids.
            tracing::error!(error = ?e, "could not store an idempotent response");
        }
    }
    Ok(Response::from_parts(parts, body.into()))
}
