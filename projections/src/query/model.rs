//! What queries are asked and what they answer: the filters of a history or a search, their
//! pages, a projection's status, and why a query failed.

use crate::views::{OrderView, ProductListing};

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Redis failed or is unreachable: the read side is unavailable, try again shortly.
    #[error("read models unavailable: {0}")]
    Unavailable(redis::RedisError),
    /// The projection did not reach the requested position in time.
    #[error("{projection} has not applied position {position} yet")]
    NotYetApplied {
        /// Projection waited on.
        projection: &'static str,
        /// The position asked for.
        position: u64,
    },
    /// A cursor that this service did not hand out.
    #[error("invalid cursor")]
    InvalidCursor,
}

impl From<redis::RedisError> for QueryError {
    fn from(e: redis::RedisError) -> Self {
        QueryError::Unavailable(e)
    }
}

/// Order history filters.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Placed at or after (Unix ms).
    pub from: Option<i64>,
    /// Placed at or before (Unix ms).
    pub to: Option<i64>,
    /// Continue after this cursor (from the previous page).
    pub cursor: Option<String>,
    /// Page size, 1 to [`MAX_PAGE`](super::MAX_PAGE).
    pub limit: usize,
}

/// A page of order history, newest first: the orders as views, or as the documents the API
/// sends ([`OrderView::document`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage<T = OrderView> {
    /// Orders on this page.
    pub orders: Vec<T>,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// How search results are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchSort {
    /// Best match first (name beats brand beats description); without words, cheapest first.
    #[default]
    Relevance,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
}

/// Product search parameters.
#[derive(Clone, Debug, Default)]
pub struct SearchQuery {
    /// Free text; every word must match, the last one as a prefix (type-ahead).
    pub text: String,
    /// Category filter.
    pub category: Option<String>,
    /// Brand filter.
    pub brand: Option<String>,
    /// Lowest price, minor units, inclusive.
    pub min_price: Option<i64>,
    /// Highest price, minor units, inclusive.
    pub max_price: Option<i64>,
    /// Only products with available stock.
    pub in_stock: bool,
    /// Order of results.
    pub sort: SearchSort,
    /// Continue after this cursor.
    pub cursor: Option<String>,
    /// Page size, 1 to [`MAX_PAGE`](super::MAX_PAGE).
    pub limit: usize,
}

/// A page of search results: the products as listings, or as the documents the API sends
/// ([`Documents`]).
#[derive(Clone, Debug)]
pub struct SearchPage<P = Vec<ProductListing>> {
    /// Matches in total: exact when `total_is_exact`, otherwise a lower bound ("200+").
    pub total: u64,
    /// Whether `total` was counted exactly. Large result sets are only counted up to a bound,
    /// the way search engines report "more than N hits", because counting is the costly part.
    pub total_is_exact: bool,
    /// Products on this page.
    pub products: P,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Products as the API sends them ([`ProductListing::document`]), already joined: the members
/// of a JSON array, `{...},{...}`, without its brackets. Search pages come from Redis this way,
/// in one value (see `search.lua`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Documents {
    /// The documents, separated by commas.
    pub joined: String,
}

impl Documents {
    /// Joins `documents`.
    pub fn join(documents: &[String]) -> Self {
        Self { joined: documents.join(",") }
    }
}

/// A projection's progress as its runner last recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionStatus {
    /// The projection.
    pub projection: &'static str,
    /// The version queries read.
    pub active_version: u32,
    /// The version a running rebuild fills, if any.
    pub building_version: Option<u32>,
    /// Last applied global position (`None`: nothing applied yet).
    pub position: Option<u64>,
    /// Events in the log not yet applied, when last measured.
    pub lag_events: Option<u64>,
    /// Age of the oldest unapplied event, when last measured.
    pub lag_seconds: Option<f64>,
    /// When the runner last wrote its status (Unix ms).
    pub updated_at: Option<i64>,
    /// The last error, until a batch succeeds again.
    pub last_error: Option<String>,
}
