//! What every operation shares: the command side, the read models, the token keys.

use super::problem::Problem;
use crate::http::auth::Keys;
use ordo_application::Caller;
use ordo_application::{Request, Shop};
use ordo_eventstore::AnyStore;
use ordo_eventstore::EventStore;
use ordo_projections::query::ReadModels;
use poem_openapi::auth::Bearer;
use poem_openapi::{SecurityScheme, Tags};
use std::sync::Arc;

/// Groups in the API document.
#[derive(Tags)]
pub enum Tag {
    /// Guest sessions: a token for an anonymous shopper.
    Sessions,
    /// Products and search (readable by anyone) and catalogue administration.
    Catalogue,
    /// Carts: items reserve stock; checkout turns a cart into an order.
    Carts,
    /// Orders and order history.
    Orders,
    /// Audit and operations endpoints for staff.
    Admin,
    /// Health checks and metrics for load balancers, orchestrators and monitoring.
    Operations,
}

/// The application state.
pub struct App {
    /// The event store (readiness checks); `None` only while printing the API document.
    pub store: Option<Arc<AnyStore>>,
    /// The command side; `None` only while printing the API document.
    pub shop: Option<Arc<Shop<AnyStore>>>,
    /// Queries over Redis.
    pub reads: Arc<ReadModels>,
    /// Redis, for readiness checks.
    pub redis: redis::Client,
    /// This instance's roles and who holds each; `None` only while printing the API document.
    pub roles: Option<Arc<ordo_application::leases::Roles>>,
    /// The checkout process's checkpoint and due times, for `GET /v1/admin/roles`.
    pub process_state: Option<Arc<ordo_application::processes::state::ProcessState>>,
    /// Renders the metrics; `None` only while printing the API document.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Signs and checks bearer tokens.
    pub keys: Keys,
}

impl App {
    /// The command side.
    pub fn shop(&self) -> Result<&Shop<AnyStore>, Problem> {
        self.shop.as_deref().ok_or_else(|| Problem::unavailable("no event store is open"))
    }

    /// The event store, for reads that go to the log itself (admin endpoints).
    pub fn store(&self) -> Result<&AnyStore, Problem> {
        self.store.as_deref().ok_or_else(|| Problem::store_unavailable("no event store is open"))
    }

    /// Refuses a `min_position` past the end of the log: it was never handed out, so it is a
    /// 400, not a wait. (The wait itself is the query's: [`ReadModels::read`].)
    pub async fn check_min_position(&self, min_position: Option<u64>) -> Result<(), Problem> {
        let Some(position) = min_position else { return Ok(()) };
        if let Some(store) = &self.store {
            let head = store.last_position().await.ok().flatten().map(|p| p.0);
            if head.is_none_or(|head| position > head) {
                return Err(Problem::bad_request(format!(
                    "min_position {position} is past the end of the event log ({})",
                    head.map_or("empty".to_owned(), |h| h.to_string())
                )));
            }
        }
        Ok(())
    }
}

/// A bearer token (JWT, HS256) from `POST /v1/sessions` or `ordo token`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_token")]
pub struct BearerAuth(pub Caller);

async fn check_token(req: &poem::Request, bearer: Bearer) -> poem::Result<Caller> {
    let keys = req.data::<Keys>().ok_or_else(|| {
        poem::Error::from_string("no token keys", poem::http::StatusCode::INTERNAL_SERVER_ERROR)
    })?;
    keys.verify(&bearer.token)
        .map_err(|e| poem::Error::from_string(e.to_string(), poem::http::StatusCode::UNAUTHORIZED))
}

impl BearerAuth {
    /// The command request of this caller, with its idempotency key if sent.
    pub fn request(&self, idempotency_key: Option<&str>, req: &poem::Request) -> Request {
        // The request id (generated or the caller's own) joins the events to the logs.
        let correlation_id = req.data::<super::middleware::RequestId>().map(|id| {
            let id = id.as_str();
            uuid::Uuid::parse_str(id).unwrap_or_else(|_| ordo_application::ids::name_uuid(id))
        });
        Request {
            caller: self.0.clone(),
            idempotency_key: idempotency_key
                .map(|key| super::idempotency::key_uuid(&self.0.subject, key)),
            correlation_id,
        }
    }
}

/// Runs a use case on the shop and maps its outcome to a receipt or a problem.
pub async fn run<'a, F, Fut>(app: &'a App, f: F) -> Result<super::dto::ReceiptDto, Problem>
where
    F: FnOnce(&'a ordo_application::shop::Shop<AnyStore>) -> Fut,
    Fut: std::future::Future<
        Output = Result<ordo_application::shop::Done, ordo_application::AppError>,
    >,
{
    let shop = app.shop()?;
    Ok(f(shop).await?.into())
}
