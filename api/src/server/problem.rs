//! RFC 9457 problem details: the one shape every HTTP error takes.
//!
//! Errors map to HTTP here and nowhere else: bad input -> 400, no or bad token -> 401, wrong
//! role -> 403, missing (or someone else's) -> 404, refused by a business rule or lost to
//! concurrent changes -> 409, body too large -> 413, idempotency key reused -> 422, read side
//! unavailable or behind -> 503 with `Retry-After`. Internal details are logged, not echoed.

use crate::shop::{Rejection, ShopError};
use ordo_eventstore::StoreError;
use ordo_projections::query::QueryError;
use poem_openapi::Object;

/// A problem report (RFC 9457), sent as `application/problem+json`.
#[derive(Object, Debug, Clone)]
pub struct Problem {
    /// A URI naming the kind of problem; relative, resolved against the API's base.
    #[oai(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence, for people.
    pub detail: String,
}

impl Problem {
    /// A problem of `kind` (the last part of its type URI).
    pub fn new(status: u16, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{kind}"),
            title: title.to_owned(),
            status,
            detail: detail.into(),
        }
    }

    /// Malformed or invalid request parameters.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "bad-request", "The request is not valid", detail)
    }

    /// The named resource does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not-found", "Not found", detail)
    }

    /// The read side cannot answer now.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "unavailable", "The read models are unavailable", detail)
    }

    /// No valid bearer token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", "Authentication is required", detail)
    }

    /// The token's role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "forbidden", "Not allowed", detail)
    }

    /// A business rule refused the command in the current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, "conflict", "The command conflicts with the current state", detail)
    }

    /// Something failed inside; details are in the server's log under the request id.
    pub fn internal() -> Self {
        Self::new(
            500,
            "internal",
            "Internal error",
            "the request failed inside the server; its log has the details under this request's id",
        )
    }
}

impl poem::IntoResponse for Problem {
    fn into_response(self) -> poem::Response {
        use poem_openapi::types::ToJSON;
        let status = poem::http::StatusCode::from_u16(self.status)
            .unwrap_or(poem::http::StatusCode::INTERNAL_SERVER_ERROR);
        poem::Response::builder()
            .status(status)
            .content_type("application/problem+json")
            .body(self.to_json_string())
    }
}

impl From<ShopError> for Problem {
    fn from(error: ShopError) -> Self {
        match error {
            ShopError::Rejected { kind, message } => match kind {
                Rejection::Invalid => Problem::bad_request(message),
                Rejection::NotFound => Problem::not_found(message),
                Rejection::Forbidden => Problem::forbidden(message),
                Rejection::Conflict => Problem::conflict(message),
            },
            ShopError::Contention(stream) => Problem::new(
                409,
                "contention",
                "Too many concurrent changes",
                format!("{stream} kept changing concurrently; retry"),
            ),
            ShopError::Store(StoreError::Closed) => Problem::new(
                503,
                "shutting-down",
                "The server is shutting down",
                "retry on another instance or shortly",
            ),
            error => {
                tracing::error!(%error, "command failed");
                Problem::internal()
            }
        }
    }
}

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// How a failed query is reported.
pub enum QueryFailure {
    /// 400.
    BadRequest(Problem),
    /// 503 with `Retry-After`.
    Unavailable(Problem),
}

impl From<QueryError> for QueryFailure {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::InvalidCursor => QueryFailure::BadRequest(Problem::bad_request(
                "the cursor was not issued by this service",
            )),
            QueryError::NotYetApplied { position, .. } => QueryFailure::Unavailable(Problem::new(
                503,
                "not-yet-applied",
                "The read side has not caught up yet",
                format!("position {position} is not applied yet; retry shortly"),
            )),
            QueryError::Unavailable(e) => {
                tracing::warn!(error = %e, "query failed: Redis unavailable");
                QueryFailure::Unavailable(Problem::unavailable(
                    "the read models cannot be reached; retry shortly",
                ))
            }
        }
    }
}

impl From<QueryError> for Problem {
    fn from(error: QueryError) -> Self {
        match QueryFailure::from(error) {
            QueryFailure::BadRequest(p) | QueryFailure::Unavailable(p) => p,
        }
    }
}
