//! The response types of the operations: one success shape each, and every problem an
//! operation can answer with, so the API document lists them all.

use super::problem::{Problem, RETRY_AFTER_SECONDS};
use super::rendered::Body;
use ordo_projections::query::QueryError;
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::ApiResponse;

/// The `WWW-Authenticate` challenge sent with every 401 (RFC 6750).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"ordo\"";

/// Responses that can carry a problem.
pub trait FromProblem {
    /// The variant for `problem`'s status.
    fn from_problem(problem: Problem) -> Self;
}

/// poem-openapi's own parse and validation failures (and a missing or invalid bearer token),
/// as problem JSON: the operations' bad-request handler.
pub fn bad_request<R: FromProblem>(error: poem::Error) -> R {
    let problem = match error.status().as_u16() {
        401 if error.is::<poem_openapi::error::AuthorizationError>() => Problem::unauthorized(
            "send `Authorization: Bearer <token>`; get one from POST /v1/sessions (shoppers) \
             or `ordo token` (staff)",
        ),
        401 => Problem::unauthorized(error.to_string()),
        // A path segment or body field that is not what the operation takes (`params.rs`):
        // poem-openapi names a segment by position (`param0`) and prefixes the value's type,
        // which those types name "string"; the reason without that prefix says what is wrong,
        // wherever in the body the field is nested.
        _ => {
            use poem_openapi::error::{ParsePathError, ParseRequestPayloadError};
            let failed = if let Some(path) = error.downcast_ref::<ParsePathError>() {
                Some(("path", path.reason.as_str()))
            } else {
                error
                    .downcast_ref::<ParseRequestPayloadError>()
                    .map(|b| ("body", b.reason.as_str()))
            };
            match failed {
                Some((part, reason)) => {
                    let reason = reason.replace(r#"failed to parse "string": "#, "");
                    Problem::bad_request(format!("the {part} is not valid: {reason}"))
                }
                None => Problem::bad_request(error.to_string()),
            }
        }
    };
    R::from_problem(problem)
}

macro_rules! command_response {
    ($name:ident, $status:literal, $doc:literal, $ok_doc:literal) => {
        #[doc = $doc]
        #[derive(ApiResponse)]
        #[oai(bad_request_handler = "bad_request")]
        pub enum $name<T: ToJSON> {
            #[doc = $ok_doc]
            #[oai(status = $status)]
            Ok(Json<T>),
            /// The input is malformed or out of range.
            #[oai(status = 400, content_type = "application/problem+json")]
            BadRequest(Json<Problem>),
            /// No bearer token, or an invalid or expired one.
            #[oai(status = 401, content_type = "application/problem+json")]
            Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
            /// The token's role may not do this.
            #[oai(status = 403, content_type = "application/problem+json")]
            Forbidden(Json<Problem>),
            /// No such product, cart or order (others' carts and orders count as missing).
            #[oai(status = 404, content_type = "application/problem+json")]
            NotFound(Json<Problem>),
            /// A business rule refused it now (stock, status), a request with the same
            /// idempotency key is still running, or the stream kept changing concurrently.
            #[oai(status = 409, content_type = "application/problem+json")]
            Conflict(Json<Problem>),
            /// The body is over the size limit.
            #[oai(status = 413, content_type = "application/problem+json")]
            PayloadTooLarge(Json<Problem>),
            /// The body is not JSON (`Content-Type` must be `application/json`).
            #[oai(status = 415, content_type = "application/problem+json")]
            UnsupportedMediaType(Json<Problem>),
            /// The idempotency key was already used for a different request.
            #[oai(status = 422, content_type = "application/problem+json")]
            Unprocessable(Json<Problem>),
            /// Something failed inside; the log has it under the request id.
            #[oai(status = 500, content_type = "application/problem+json")]
            Internal(Json<Problem>),
            /// The server is stopping or a dependency is down; retry.
            #[oai(status = 503, content_type = "application/problem+json")]
            Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
        }

        impl<T: ToJSON> FromProblem for $name<T> {
            fn from_problem(problem: Problem) -> Self {
                match problem.status {
                    400 => Self::BadRequest(Json(problem)),
                    401 => Self::Unauthorized(Json(problem), BEARER_CHALLENGE.to_owned()),
                    403 => Self::Forbidden(Json(problem)),
                    404 => Self::NotFound(Json(problem)),
                    409 => Self::Conflict(Json(problem)),
                    413 => Self::PayloadTooLarge(Json(problem)),
                    415 => Self::UnsupportedMediaType(Json(problem)),
                    422 => Self::Unprocessable(Json(problem)),
                    503 => Self::Unavailable(Json(problem), RETRY_AFTER_SECONDS),
                    _ => Self::Internal(Json(problem)),
                }
            }
        }

        impl<T: ToJSON, E: Into<Problem>> From<Result<T, E>> for $name<T> {
            fn from(result: Result<T, E>) -> Self {
                match result {
                    Ok(value) => Self::Ok(Json(value)),
                    Err(e) => Self::from_problem(e.into()),
                }
            }
        }
    };
}

command_response!(Command, 200, "The answer to a command.", "Done; the receipt says where.");
command_response!(Created, 201, "The answer to a command that creates something.", "Created.");

/// The answer to a query that needs a token.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
pub enum Private<T: ToJSON> {
    /// Found.
    #[oai(status = 200)]
    Ok(Body<T>),
    /// A parameter is malformed or out of range.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No bearer token, or an invalid or expired one.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The caller may not see this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// Nothing by that id (others' carts and orders count as missing).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The read side is unreachable or has not reached `min_position` in time.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}

impl<T: ToJSON> FromProblem for Private<T> {
    fn from_problem(problem: Problem) -> Self {
        match problem.status {
            401 => Self::Unauthorized(Json(problem), BEARER_CHALLENGE.to_owned()),
            403 => Self::Forbidden(Json(problem)),
            404 => Self::NotFound(Json(problem)),
            503 => Self::Unavailable(Json(problem), RETRY_AFTER_SECONDS),
            _ => Self::BadRequest(Json(problem)),
        }
    }
}

/// The answer to a public query.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
pub enum Public<T: ToJSON> {
    /// Found.
    #[oai(status = 200)]
    Ok(Body<T>),
    /// A parameter is malformed or out of range.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Nothing by that id.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The read side is unreachable or has not reached `min_position` in time.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}

impl<T: ToJSON> FromProblem for Public<T> {
    fn from_problem(problem: Problem) -> Self {
        match problem.status {
            404 => Self::NotFound(Json(problem)),
            503 => Self::Unavailable(Json(problem), RETRY_AFTER_SECONDS),
            _ => Self::BadRequest(Json(problem)),
        }
    }
}

/// Queries answer with a problem from a failed read or from a check before it.
macro_rules! query_conversions {
    ($($name:ident),*) => {$(
        impl<T: ToJSON> From<QueryError> for $name<T> {
            fn from(error: QueryError) -> Self {
                Self::from_problem(error.into())
            }
        }

        impl<T: ToJSON> From<Problem> for $name<T> {
            fn from(problem: Problem) -> Self {
                Self::from_problem(problem)
            }
        }
    )*};
}

query_conversions!(Private, Public);
