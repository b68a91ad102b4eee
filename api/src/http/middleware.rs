//! Middleware around every operation: problem documents for errors raised outside the
//! operations, `Allow` on 405, and request metrics.

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
/// operation id (not the path) labels it, so label values stay few whatever ids clients send.
pub(super) async fn observe<E: poem::Endpoint>(
    next: E,
    req: poem::Request,
) -> poem::Result<poem::Response> {
    let method = req.method().as_str().to_owned();
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
