//! Middleware around every operation: problem documents for errors raised outside the
//! operations, `Allow` on 405, request metrics, and the span each request logs in.

use super::problem::Problem;
use anyhow::Context;
use std::sync::Arc;

/// Errors raised outside the operations (unknown path, wrong method, unreadable body) as
/// problem JSON too.
pub(super) fn problem_for(error: &poem::Error) -> Problem {
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

/// Adds `Allow` to 405 answers.
pub(super) async fn allow_header<E: poem::Endpoint>(
    next: Arc<E>,
    req: poem::Request,
    routes: Arc<Routes>,
) -> poem::Result<poem::Response> {
    let path = req.uri().path().to_owned();
    let mut response = next.get_response(req).await;
    if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
        if let Some(value) = routes.allowed(&path).and_then(|m| m.parse().ok()) {
            response.headers_mut().insert(poem::http::header::ALLOW, value);
        }
    }
    Ok(response)
}

/// Counts every request by operation, method and status, and times it by operation. The
/// operation id (not the path) labels it, and a method outside HTTP's own is counted as
/// `other`, so label values stay few whatever ids and methods clients send (each new value is a
/// series kept for as long as the server runs).
pub(super) async fn observe<E: poem::Endpoint>(
    next: E,
    req: poem::Request,
) -> poem::Result<poem::Response> {
    let method = method_label(req.method());
    let started = std::time::Instant::now();
    let response = next.get_response(req).await;
    let operation = response.data::<poem_openapi::OperationId>().map_or("other", |o| o.0);
    let status = response.status().as_u16().to_string();
    metrics::counter!("ordo_http_requests_total", "operation" => operation, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("ordo_http_request_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
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

/// Runs each request in an info-level `request` span (method, path, request id), so every line
/// it logs carries them. The request's own line is at debug (an access log with
/// `RUST_LOG=info,ordo_api::http=debug`), and at warn when the answer is a server error.
///
/// Not one info line per request, as poem's `Tracing` middleware writes: at 18,000 requests/s
/// that was a synchronous write to standard error per request, and the largest single cost in a
/// profile of `GET /v1/products/{sku}`. `ordo_http_requests_total` counts every request by
/// operation and status. The path is logged without its query string, which may carry what
/// shoppers typed.
pub(super) async fn trace_request<E: poem::Endpoint>(
    next: E,
    req: poem::Request,
) -> poem::Result<poem::Response> {
    use tracing::Instrument;
    // Recorded as the span is made, by reference: nothing is copied for it per request.
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = req.uri().path(),
        request_id = req.extensions().get::<poem::middleware::ReqId>().map(tracing::field::display),
    );
    async move {
        let started = std::time::Instant::now();
        let response = next.get_response(req).await;
        let (status, duration) = (response.status(), started.elapsed());
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), ?duration, "response");
        } else {
            tracing::debug!(status = status.as_u16(), ?duration, "response");
        }
        Ok(response)
    }
    .instrument(span)
    .await
}
