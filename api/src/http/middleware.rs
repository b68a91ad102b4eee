//! What every request passes through before and after its operation, in one layer
//! ([`Front`]): the span it logs in, its metrics, the web console's files, the body checks,
//! `Idempotency-Key`, and `Allow` on 405; and problem documents for errors raised outside the
//! operations.
//!
//! One layer rather than one `around` per concern: each nested layer's future held its own
//! copies of the request (472 bytes each) beside the next layer's future, and the whole chain
//! was a 20,000-byte allocation per request in flight. In a flash sale's burst of a thousand
//! requests that was 20 MB of fresh memory, which the kernel zeroes as it is first touched
//! (ADR 0020).

use super::auth::Keys;
use super::idempotency::{self, Idempotency};
use super::problem::Problem;
use super::{body, console};
use anyhow::Context;
use poem::endpoint::{BoxEndpoint, DynEndpoint};
use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;

/// Errors raised outside the operations (unknown path, wrong method, unreadable body) as
/// problem JSON too.
pub(super) async fn problem_response(error: poem::Error) -> Response {
    problem_for(&error).into_response()
}

/// The API's operations with errors raised outside them (unknown path, wrong method, a
/// parameter that does not parse) as problem JSON, like `catch_all_error(problem_response)`.
///
/// Called through the boxed future the operations' router returns, not through poem's
/// wrappers around it: each wrapper's future held the request (472 bytes) twice more beside
/// the next one's, and every request's future is moved a few times before it runs.
pub(super) struct Api(pub BoxEndpoint<'static, Response>);

impl Endpoint for Api {
    type Output = Response;

    fn call(&self, req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        let answer = DynEndpoint::call(&*self.0, req);
        async move { Ok(answer.await.unwrap_or_else(|error| problem_for(&error).into_response())) }
    }
}

fn problem_for(error: &poem::Error) -> Problem {
    let status = error.status();
    let kind = match status.as_u16() {
        404 => "not-found",
        405 => "method-not-allowed",
        413 => "payload-too-large",
        400..=499 => "bad-request",
        _ => "internal",
    };
    let title = status.canonical_reason().unwrap_or("Error");
    Problem::new(status.as_u16(), kind, title, error.to_string())
}

/// Which methods each documented path template answers, for `Allow` on 405 (RFC 9110).
pub(super) struct Routes(Vec<(Vec<String>, String)>);

impl Routes {
    pub(super) fn from_spec(spec: &str) -> anyhow::Result<Self> {
        let spec: serde_json::Value = serde_json::from_str(spec)?;
        let paths = spec["paths"].as_object().context("the API document has no paths")?;
        let mut routes: Vec<(Vec<String>, String)> = paths
            .iter()
            .map(|(template, operations)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let mut methods: Vec<String> = operations
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                methods.sort();
                (segments, methods.join(", "))
            })
            .collect();
        // Literal segments before parameters, so `/v1/me/orders` wins over `/v1/{x}/orders`.
        routes.sort_by_key(|(segments, _)| segments.iter().filter(|s| s.starts_with('{')).count());
        Ok(Self(routes))
    }

    /// Adds `Allow` to a 405 answer for `path` (RFC 9110).
    fn allow(&self, path: &str, response: &mut Response) {
        if response.status() != StatusCode::METHOD_NOT_ALLOWED {
            return;
        }
        if let Some(value) = self.allowed(path).and_then(|m| m.parse().ok()) {
            response.headers_mut().insert(poem::http::header::ALLOW, value);
        }
    }

    fn allowed(&self, path: &str) -> Option<&str> {
        let parts: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(segments, methods)| {
            let matches = segments.len() == parts.len()
                && segments.iter().zip(&parts).all(|(s, p)| {
                    if s.starts_with('{') {
                        !p.is_empty()
                    } else {
                        s == p
                    }
                });
            matches.then_some(methods.as_str())
        })
    }
}

/// The method as a metric label: one of HTTP's own, or `other`.
fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The layer in front of the API (see the module documentation).
pub(super) struct Front<E, D> {
    /// The API's operations, inside a catch-all turning errors into problem documents.
    pub api: E,
    /// The API's documentation (`/docs`, `/openapi.json`), likewise. Kept apart from the
    /// operations, so that an operation's request is routed once: both under one `Route`
    /// (the operations nested at `/`) cost every request a second route match, a rebuilt URI
    /// and path pattern, each an allocation or more.
    pub docs: D,
    /// For `Allow` on 405.
    pub routes: Routes,
    /// Stored answers of keyed POSTs.
    pub requests: Arc<Idempotency>,
    /// Token keys, for the operations' bearer checks.
    pub keys: Keys,
}

impl<E, D> Endpoint for Front<E, D>
where
    E: Endpoint<Output = Response>,
    D: Endpoint<Output = Response>,
{
    type Output = Response;

    /// Runs the request in a `request` span (method, path, request id), so every line it logs
    /// carries them. The request's own line is at debug (an access log with
    /// `RUST_LOG=info,ordo_api::http=debug`), and at warn when the answer is a server error.
    ///
    /// Not one info line per request, as poem's `Tracing` middleware writes: at 18,000
    /// requests/s that was a synchronous write to standard error per request, and the largest
    /// single cost in a profile of `GET /v1/products/{sku}`. `ordo_http_requests_total` counts
    /// every request by operation and status. The path is logged without its query string,
    /// which may carry what shoppers typed.
    ///
    /// The span is at error level, so that it is on whatever `RUST_LOG` says (an info span
    /// under `RUST_LOG=warn` would leave the warnings without their request), and it is the
    /// only span a request makes: poem's `RequestId` middleware, which this replaces, made a
    /// second one for the id alone.
    fn call(&self, mut req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        let id = RequestId::of(&req);
        // Recorded as the span is made, by reference: nothing is copied for it per request.
        // Displayed, not debugged: a path has no character to escape (the parser admits none),
        // and escaping it character by character was most of the span's formatting.
        let span = tracing::error_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            request_id = %id.as_str(),
        );
        req.set_data(id.clone());
        let method = method_label(req.method());
        let started = std::time::Instant::now();
        // The span is entered while the answer runs and logs its line.
        self.answer(req, id, method, started).instrument(span)
    }
}

/// A request's id: the caller's own `x-request-id` when it sends a usable one (so logs join up
/// across services), else a new UUID. Every line the request logs carries it, the response
/// echoes it, and the events a command appends record it as their correlation id.
#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The header that carries it, both ways.
    pub const HEADER: &'static str = "x-request-id";
    /// Longer ids sent by callers are replaced: they would be copied into every log line.
    const MAX_LEN: usize = 128;

    fn of(req: &Request) -> Self {
        let sent = req
            .headers()
            .get(Self::HEADER)
            .filter(|v| !v.is_empty() && v.len() <= Self::MAX_LEN && v.to_str().is_ok());
        Self(sent.cloned().unwrap_or_else(|| {
            let mut text = uuid::Uuid::encode_buffer();
            let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
            HeaderValue::from_str(text).expect("a UUID is a header value")
        }))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Checked visible ASCII when sent; a UUID when made.
        self.0.to_str().unwrap_or_default()
    }
}

impl<E, D> Front<E, D>
where
    E: Endpoint<Output = Response>,
    D: Endpoint<Output = Response>,
{
    /// The console's file, a refused body, or the operation's answer; then its request id, its
    /// metrics and its log line.
    ///
    /// The request is held once: moved into the future, checked in place and moved on to its
    /// operation. Hence no `async fn` (its arguments stay in the future beside the copies moved
    /// on) and no future made outside and awaited inside (held twice likewise). The rare paths
    /// (documentation, keyed POSTs) are boxed, so that their larger futures are not part of
    /// every request's.
    #[allow(clippy::manual_async_fn)] // (see above: an `async fn` holds the request twice)
    fn answer(
        &self,
        mut req: Request,
        id: RequestId,
        method: &'static str,
        started: std::time::Instant,
    ) -> impl Future<Output = poem::Result<Response>> + Send + '_ {
        async move {
            let mut response = if let Some(file) = console::answer(&req) {
                file
            } else {
                req.extensions_mut().insert(self.keys.clone());
                let uri = req.uri().clone();
                let mut response = match body::check_body(&mut req).await {
                    Err(refused) => refused,
                    Ok(()) if is_documentation(req.uri().path()) => {
                        Box::pin(self.docs.get_response(req)).await
                    }
                    Ok(()) => match idempotency::key(&req) {
                        Some(key) => {
                            Box::pin(idempotency::around(&self.api, req, key, &self.requests))
                                .await
                                .unwrap_or_else(|e| e.into_response())
                        }
                        // `call`, not `get_response`: that one keeps a copy of the request.
                        None => self.api.call(req).await.unwrap_or_else(|e| e.into_response()),
                    },
                };
                self.routes.allow(uri.path(), &mut response);
                response
            };
            response.headers_mut().insert(RequestId::HEADER, id.0);
            let duration = started.elapsed();
            observe(&response, method, duration);
            let status = response.status();
            if status.is_server_error() {
                tracing::warn!(status = status.as_u16(), ?duration, "response");
            } else {
                tracing::debug!(status = status.as_u16(), ?duration, "response");
            }
            Ok(response)
        }
    }
}

/// Whether a path is the API's documentation rather than an operation.
fn is_documentation(path: &str) -> bool {
    path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/")
}

/// Counts every request by operation, method and status, and times it by operation. The
/// operation id (not the path) labels it, and a method outside HTTP's own is counted as
/// `other`, so label values stay few whatever ids and methods clients send (each new value is a
/// series kept for as long as the server runs).
fn observe(response: &Response, method: &'static str, duration: std::time::Duration) {
    let operation = response.data::<poem_openapi::OperationId>().map_or("other", |o| o.0);
    let status = response.status().as_u16().to_string();
    metrics::counter!("ordo_http_requests_total", "operation" => operation, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("ordo_http_request_seconds", "operation" => operation)
        .record(duration.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::EndpointExt;
    use std::mem::size_of_val;

    /// The front layer around an API that answers with the request id it was given.
    fn front(dir: &tempfile::TempDir) -> Front<Api, impl Endpoint<Output = Response>> {
        let keys = Keys::new(b"a secret long enough for the test");
        let requests = Idempotency::open(&dir.path().join("requests.redb"), keys.clone());
        let api = poem::endpoint::make(|req: Request| async move {
            req.data::<RequestId>().map(|id| id.as_str().to_owned()).unwrap_or_default()
        });
        Front {
            api: Api(api.map_to_response().boxed()),
            docs: poem::endpoint::make(|_| async { Response::default() }),
            routes: Routes(vec![]),
            requests: Arc::new(requests.expect("requests file")),
            keys,
        }
    }

    #[test]
    fn given_the_front_layer_when_a_request_is_in_flight_then_it_holds_the_request_once() {
        // Given the front layer around an API that answers at once
        let dir = tempfile::tempdir().expect("temp dir");
        let front = front(&dir);

        // When a request is in flight through it, and through the API alone
        let through_front = size_of_val(&front.call(Request::default()));
        let api_alone = size_of_val(&front.api.call(Request::default()));

        // Then the front adds one request's size and a little (the six nested layers it
        // replaced added 16 KB to every request in flight; poem's wrappers around the API and
        // the request id, 5 KB more)
        let added = through_front - api_alone;
        let request = std::mem::size_of::<Request>();
        assert!(added <= request + 600, "the front layer adds {added} bytes per request in flight");
    }

    #[tokio::test]
    async fn given_a_caller_s_request_id_when_it_is_answered_then_the_id_is_echoed_and_passed_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let front = front(&dir);
        let to_api = || Request::builder().uri(poem::http::Uri::from_static("/v1/products"));
        let with_id = |id: &str| to_api().header(RequestId::HEADER, id).finish();

        // When a caller sends its own id, then the operation sees it and the answer echoes it
        let response = front.call(with_id("trace-me-42")).await.expect("answered");
        assert_eq!(response.header(RequestId::HEADER), Some("trace-me-42"));
        assert_eq!(response.into_body().into_string().await.expect("body"), "trace-me-42");

        // When it sends none, or one too long to copy into every log line, then a new UUID
        // stands in for it
        for request in [to_api().finish(), with_id(&"x".repeat(200))] {
            let response = front.call(request).await.expect("answered");
            let id = response.header(RequestId::HEADER).expect("an id").to_owned();
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
            assert_eq!(response.into_body().into_string().await.expect("body"), id);
        }
    }
}
