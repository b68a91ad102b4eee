//! Health checks and metrics.

use super::problem::{Problem, RETRY_AFTER_SECONDS};
use super::state::{App, Tag};
use ordo_eventstore::EventStore;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, OpenApi};
use std::sync::Arc;

/// Health and metrics endpoints.
pub struct Operations(pub Arc<App>);

/// Readiness.
#[derive(ApiResponse)]
enum ReadyResponse {
    /// The store and Redis answer.
    #[oai(status = 200)]
    Ready(PlainText<&'static str>),
    /// Something the service needs does not answer.
    #[oai(status = 503, content_type = "application/problem+json")]
    NotReady(Json<Problem>, #[oai(header = "Retry-After")] u32),
}

#[OpenApi]
impl Operations {
    /// Liveness: the process is up and serving.
    #[oai(path = "/health/live", method = "get", tag = "Tag::Operations", operation_id = "live")]
    async fn live(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// Metrics in Prometheus text format: requests by operation, method and status, request
    /// latency by operation, and projection progress, batch time and lag.
    #[oai(path = "/metrics", method = "get", tag = "Tag::Operations", operation_id = "metrics")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(self.0.metrics.as_ref().map(|h| h.render()).unwrap_or_default())
    }

    /// Readiness: the event store and Redis both answer.
    #[oai(path = "/health/ready", method = "get", tag = "Tag::Operations", operation_id = "ready")]
    async fn ready(&self) -> ReadyResponse {
        let store_ok = match &self.0.store {
            Some(store) => store.last_position().await.is_ok(),
            None => false,
        };
        let redis_ok = match self.0.redis.get_multiplexed_async_connection().await {
            Ok(mut con) => redis::cmd("PING").query_async::<String>(&mut con).await.is_ok(),
            Err(_) => false,
        };
        match (store_ok, redis_ok) {
            (true, true) => ReadyResponse::Ready(PlainText("ready")),
            _ => ReadyResponse::NotReady(
                Json(Problem::unavailable(format!(
                    "event store ok: {store_ok}, redis ok: {redis_ok}"
                ))),
                RETRY_AFTER_SECONDS,
            ),
        }
    }
}
