//! The HTTP API (poem-openapi): operations endpoints and the public catalogue queries.

use super::problem::{Problem, QueryFailure, RETRY_AFTER_SECONDS};
use ordo_eventstore::{EmbeddedStore, EventStore};
use ordo_projections::query::{
    QueryError, ReadModels, SearchPage, SearchQuery, SearchSort, DEFAULT_WAIT, MAX_PAGE,
};
use ordo_projections::views::ProductView;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use std::sync::Arc;
use std::time::Duration;

/// Groups in the API document.
#[derive(Tags)]
enum Tag {
    /// Products and search, readable by anyone.
    Catalogue,
    /// Health checks for load balancers and orchestrators.
    Operations,
}

/// The API and what it needs.
pub struct Api {
    /// The event store (readiness checks); `None` only while printing the API document.
    pub store: Option<Arc<EmbeddedStore>>,
    /// Queries over Redis.
    pub reads: Arc<ReadModels>,
    /// Redis, for readiness checks.
    pub redis: redis::Client,
    /// Renders the metrics; `None` only while printing the API document.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// An amount of money.
#[derive(Object)]
struct MoneyDto {
    /// Minor units (cents).
    minor: i64,
    /// ISO 4217 code.
    currency: String,
}

/// A product in the catalogue.
#[derive(Object)]
struct ProductDto {
    /// Stock-keeping unit.
    sku: String,
    /// Display name.
    name: String,
    /// Description.
    description: String,
    /// Category.
    category: String,
    /// Brand.
    brand: String,
    /// Unit price.
    price: MoneyDto,
    /// Image URLs.
    image_urls: Vec<String>,
    /// Units that can still be bought (on hand minus held by carts and orders).
    available: i64,
    /// Whether the product is in the catalogue.
    listed: bool,
}

impl From<ProductView> for ProductDto {
    fn from(p: ProductView) -> Self {
        let available = p.available();
        ProductDto {
            sku: p.sku,
            name: p.name,
            description: p.description,
            category: p.category,
            brand: p.brand,
            price: MoneyDto { minor: p.price_minor, currency: p.currency },
            image_urls: p.image_urls,
            available,
            listed: p.listed,
        }
    }
}

/// A page of search results.
#[derive(Object)]
struct SearchPageDto {
    /// Matches: exact when `total_is_exact`, otherwise at least this many.
    total: u64,
    /// Whether `total` is exact.
    total_is_exact: bool,
    /// The products on this page.
    products: Vec<ProductDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

impl From<SearchPage> for SearchPageDto {
    fn from(p: SearchPage) -> Self {
        SearchPageDto {
            total: p.total,
            total_is_exact: p.total_is_exact,
            products: p.products.into_iter().map(ProductDto::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// Order of search results.
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
enum Sort {
    /// Best match first; cheapest first when there are no words.
    Relevance,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
}

/// Responses that can carry a 400 problem.
trait FromBadRequest {
    fn from_problem(problem: Problem) -> Self;
}

/// poem-openapi's own parse and validation failures, as problem JSON (its bad-request handler).
fn bad_request<R: FromBadRequest>(error: poem::Error) -> R {
    R::from_problem(Problem::bad_request(error.to_string()))
}

macro_rules! query_response {
    ($name:ident, $ok:ty, $doc:literal $(, $not_found:ident)?) => {
        #[doc = $doc]
        #[derive(ApiResponse)]
        #[oai(bad_request_handler = "bad_request")]
        enum $name {
            /// Found.
            #[oai(status = 200)]
            Ok(Json<$ok>),
            /// A parameter is malformed or out of range.
            #[oai(status = 400, content_type = "application/problem+json")]
            BadRequest(Json<Problem>),
            $(
                /// Nothing by that id.
                #[oai(status = 404, content_type = "application/problem+json")]
                $not_found(Json<Problem>),
            )?
            /// The read side is unreachable or has not reached `min_position` in time.
            #[oai(status = 503, content_type = "application/problem+json")]
            Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
        }

        impl From<QueryError> for $name {
            fn from(error: QueryError) -> Self {
                match QueryFailure::from(error) {
                    QueryFailure::BadRequest(p) => $name::BadRequest(Json(p)),
                    QueryFailure::Unavailable(p) => $name::Unavailable(Json(p), RETRY_AFTER_SECONDS),
                }
            }
        }

        impl FromBadRequest for $name {
            fn from_problem(problem: Problem) -> Self {
                $name::BadRequest(Json(problem))
            }
        }
    };
}

query_response!(SearchResponse, SearchPageDto, "Search results.");
query_response!(ProductResponse, ProductDto, "One product.", NotFound);

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
impl Api {
    /// Liveness: the process is up and serving.
    #[oai(path = "/health/live", method = "get", tag = "Tag::Operations", operation_id = "live")]
    async fn live(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// Metrics in Prometheus text format: requests by operation, method and status, request
    /// latency by operation, and projection progress, batch time and lag.
    #[oai(path = "/metrics", method = "get", tag = "Tag::Operations", operation_id = "metrics")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(self.metrics.as_ref().map(|h| h.render()).unwrap_or_default())
    }

    /// Readiness: the event store and Redis both answer.
    #[oai(path = "/health/ready", method = "get", tag = "Tag::Operations", operation_id = "ready")]
    async fn ready(&self) -> ReadyResponse {
        let store_ok = match &self.store {
            Some(store) => store.last_position().await.is_ok(),
            None => false,
        };
        let redis_ok = match self.redis.get_multiplexed_async_connection().await {
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

    /// Search the catalogue: every word must match name, brand or description (the last word
    /// as a prefix, for type-ahead), with optional filters, sorted and paged.
    #[oai(
        path = "/v1/products",
        method = "get",
        tag = "Tag::Catalogue",
        operation_id = "search_products"
    )]
    #[allow(clippy::too_many_arguments, reason = "one parameter per documented query option")]
    async fn search(
        &self,
        /// Free text.
        q: Query<Option<String>>,
        /// Only this category.
        category: Query<Option<String>>,
        /// Only this brand.
        brand: Query<Option<String>>,
        /// Lowest price in minor units, inclusive.
        #[oai(validator(minimum(value = "0")))]
        min_price: Query<Option<i64>>,
        /// Highest price in minor units, inclusive.
        #[oai(validator(minimum(value = "0")))]
        max_price: Query<Option<i64>>,
        /// Only products that can be bought now.
        in_stock: Query<Option<bool>>,
        /// Result order.
        sort: Query<Option<Sort>>,
        /// From a previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// Wait (up to 2 s) until the read side has applied this global position.
        min_position: Query<Option<u64>>,
    ) -> SearchResponse {
        if let Some(position) = min_position.0 {
            if let Err(e) = self.reads.wait_for("catalogue", position, DEFAULT_WAIT).await {
                return e.into();
            }
        }
        let query = SearchQuery {
            text: q.0.unwrap_or_default(),
            category: category.0,
            brand: brand.0,
            min_price: min_price.0,
            max_price: max_price.0,
            in_stock: in_stock.0.unwrap_or(false),
            sort: match sort.0.unwrap_or(Sort::Relevance) {
                Sort::Relevance => SearchSort::Relevance,
                Sort::PriceAsc => SearchSort::PriceAsc,
                Sort::PriceDesc => SearchSort::PriceDesc,
            },
            cursor: cursor.0,
            limit: limit.0.map_or(20, |l| l as usize).min(MAX_PAGE),
        };
        match self.reads.search(&query).await {
            Ok(page) => SearchResponse::Ok(Json(page.into())),
            Err(e) => e.into(),
        }
    }

    /// One product by SKU, listed or delisted.
    #[oai(
        path = "/v1/products/:sku",
        method = "get",
        tag = "Tag::Catalogue",
        operation_id = "get_product"
    )]
    async fn product(
        &self,
        /// The product's SKU.
        sku: Path<String>,
        /// Wait (up to 2 s) until the read side has applied this global position.
        min_position: Query<Option<u64>>,
    ) -> ProductResponse {
        if let Some(position) = min_position.0 {
            if let Err(e) = self.reads.wait_for("catalogue", position, DEFAULT_WAIT).await {
                return e.into();
            }
        }
        match self.reads.product(&sku.0).await {
            Ok(Some(product)) => ProductResponse::Ok(Json(product.into())),
            Ok(None) => {
                ProductResponse::NotFound(Json(Problem::not_found(format!("no product {}", sku.0))))
            }
            Err(e) => e.into(),
        }
    }
}

/// How long in-flight requests may take to finish on shutdown.
pub const DRAIN: Duration = Duration::from_secs(10);
