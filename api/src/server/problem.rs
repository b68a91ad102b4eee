//! RFC 9457 problem details: the one shape every HTTP error takes.
//!
//! Errors map to HTTP here and nowhere else: bad input -> 400, missing -> 404, read side
//! unavailable or behind -> 503 with `Retry-After`. Internal details are logged, not echoed.

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
