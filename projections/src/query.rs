//! Typed queries over the read models. Each is one or two Redis round trips and never scans
//! the keyspace. Any query can first wait, bounded, until its projection has applied a given
//! global position, so a client reads its own writes.

use crate::keys::{active_version_key, building_version_key, status_key, Namespace};
use crate::search::{facet, tokens};
use crate::views::order::history_key;
use crate::views::product::catalogue_key;
use crate::views::{CartView, Fields, OrderView, ProductView, View};
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Default bound on waiting for a position.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);
/// Largest page any query returns.
pub const MAX_PAGE: usize = 100;
/// How long the active read-model version is cached before being looked up again.
const ACTIVE_TTL: Duration = Duration::from_millis(500);

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
    /// Page size, 1 to [`MAX_PAGE`].
    pub limit: usize,
}

/// A page of order history, newest first.
#[derive(Clone, Debug)]
pub struct HistoryPage {
    /// Orders on this page.
    pub orders: Vec<OrderView>,
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
    /// Page size, 1 to [`MAX_PAGE`].
    pub limit: usize,
}

/// A page of search results.
#[derive(Clone, Debug)]
pub struct SearchPage {
    /// Matches in total: exact when `total_is_exact`, otherwise a lower bound ("200+").
    pub total: u64,
    /// Whether `total` was counted exactly. Large result sets are only counted up to a bound,
    /// the way search engines report "more than N hits", because counting is the costly part.
    pub total_is_exact: bool,
    /// Products on this page.
    pub products: Vec<ProductView>,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
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

/// Queries over the active read models.
pub struct ReadModels {
    /// Multiplexed connections, used in turn: one connection's reader task parses every
    /// reply on one thread, which caps a busy server at one core's worth of Redis replies.
    connections: Vec<ConnectionManager>,
    next: std::sync::atomic::AtomicUsize,
    active: Mutex<HashMap<&'static str, (u32, Instant)>>,
    search: redis::Script,
    /// Applied positions (`position + 1`) of this process's own runners, by projection: what
    /// wakes a `min_position` wait the moment a batch lands, instead of a polling interval.
    applied: HashMap<&'static str, watch::Receiver<u64>>,
}

impl ReadModels {
    /// Queries over `redis`.
    pub fn new(redis: ConnectionManager) -> Self {
        Self::pooled(vec![redis])
    }

    /// Queries spread over several connections to the same Redis (at least one).
    pub fn pooled(connections: Vec<ConnectionManager>) -> Self {
        assert!(!connections.is_empty(), "ReadModels needs a connection");
        Self {
            connections,
            next: std::sync::atomic::AtomicUsize::new(0),
            active: Mutex::new(HashMap::new()),
            search: redis::Script::new(include_str!("search.lua")),
            applied: HashMap::new(),
        }
    }

    /// Wakes `min_position` waits from these runners' applied positions (`position + 1`, as
    /// [`crate::runner::Runner::applied`] reports them). Redis stays the judge: a wake-up only
    /// prompts the next look at the checkpoint, so another instance's runner, or a rebuild's,
    /// is still waited for (by polling).
    pub fn woken_by(mut self, applied: HashMap<&'static str, watch::Receiver<u64>>) -> Self {
        self.applied = applied;
        self
    }

    /// The next connection to use.
    fn redis(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.connections[i % self.connections.len()].clone()
    }

    /// The namespace queries of `projection` read: its active version, cached briefly.
    pub async fn namespace(&self, projection: &'static str) -> Result<Namespace, QueryError> {
        let cached = self.active.lock().ok().and_then(|a| a.get(projection).copied());
        if let Some((version, _)) = cached.filter(|(_, at)| at.elapsed() < ACTIVE_TTL) {
            return Ok(Namespace::new(projection, version));
        }
        let version: Option<u32> = redis::cmd("GET")
            .arg(active_version_key(projection))
            .query_async(&mut self.redis())
            .await?;
        let version = version.unwrap_or(1);
        if let Ok(mut active) = self.active.lock() {
            active.insert(projection, (version, Instant::now()));
        }
        Ok(Namespace::new(projection, version))
    }

    /// Waits until `projection` has applied global `position`, for at most `timeout`.
    pub async fn wait_for(
        &self,
        projection: &'static str,
        position: u64,
        timeout: Duration,
    ) -> Result<(), QueryError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        let mut woken = self.applied.get(projection).cloned();
        loop {
            let ns = self.namespace(projection).await?;
            let applied: Option<u64> =
                redis::cmd("GET").arg(ns.checkpoint()).query_async(&mut self.redis()).await?;
            if applied.is_some_and(|a| a >= position) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(QueryError::NotYetApplied { projection, position });
            }
            let nap = pause.min(deadline.saturating_duration_since(Instant::now()));
            match woken.as_mut() {
                // Woken by the local runner's next batch, or after the nap at the latest. (If
                // the local runner is already past it, Redis has not caught up with it yet:
                // just nap.)
                Some(applied) if *applied.borrow() <= position => {
                    let _ = tokio::time::timeout(nap, applied.wait_for(|a| *a > position)).await;
                }
                _ => tokio::time::sleep(nap).await,
            }
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    async fn document<V: View>(&self, id: &str) -> Result<Option<V>, QueryError> {
        let ns = self.namespace(V::PROJECTION).await?;
        let fields: HashMap<String, String> =
            redis::cmd("HGETALL").arg(V::key(&ns, id)).query_async(&mut self.redis()).await?;
        Ok(if fields.is_empty() { None } else { V::from_fields(&Fields(fields)) })
    }

    /// What `projection`'s runner last reported: active and building versions, applied
    /// position, lag, last update and last error.
    pub async fn status(&self, projection: &'static str) -> Result<ProjectionStatus, QueryError> {
        let (active, building, fields): (Option<u32>, Option<u32>, HashMap<String, String>) =
            redis::pipe()
                .cmd("GET")
                .arg(active_version_key(projection))
                .cmd("GET")
                .arg(building_version_key(projection))
                .cmd("HGETALL")
                .arg(status_key(projection))
                .query_async(&mut self.redis())
                .await?;
        let number = |name: &str| fields.get(name).and_then(|v| v.parse::<f64>().ok());
        Ok(ProjectionStatus {
            projection,
            active_version: active.unwrap_or(1),
            building_version: building,
            position: number("position").map(|p| p as u64),
            lag_events: number("lag_events").map(|p| p as u64),
            lag_seconds: number("lag_seconds"),
            updated_at: number("updated_at").map(|p| p as i64),
            last_error: fields.get("last_error").filter(|e| !e.is_empty()).cloned(),
        })
    }

    /// One order.
    pub async fn order(&self, order_id: &str) -> Result<Option<OrderView>, QueryError> {
        self.document(order_id).await
    }

    /// One product, listed or not.
    pub async fn product(&self, sku: &str) -> Result<Option<ProductView>, QueryError> {
        self.document(sku).await
    }

    /// One cart.
    pub async fn cart(&self, cart_id: &str) -> Result<Option<CartView>, QueryError> {
        self.document(cart_id).await
    }

    /// A customer's orders, newest first: one round trip for the page of ids, one for the
    /// orders. The cursor names the last order shown, so pages stay stable while new orders
    /// arrive.
    pub async fn order_history(
        &self,
        customer_id: &str,
        q: &HistoryQuery,
    ) -> Result<HistoryPage, QueryError> {
        let ns = self.namespace(OrderView::PROJECTION).await?;
        let key = history_key(&ns, customer_id, q.status.as_deref());
        let limit = q.limit.clamp(1, MAX_PAGE);
        let after = q.cursor.as_deref().map(parse_history_cursor).transpose()?;
        let max = match (after.as_ref(), q.to) {
            (Some((score, _)), _) => score.to_string(),
            (None, Some(to)) => to.to_string(),
            (None, None) => "+inf".into(),
        };
        let min = q.from.map_or("-inf".to_owned(), |f| f.to_string());
        let mut fetch = limit + 1 + 16;
        let page = loop {
            let raw: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&key)
                .arg(&max)
                .arg(&min)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(fetch)
                .query_async(&mut self.redis())
                .await?;
            let full = raw.len() == fetch;
            // Equal scores come in descending member order; skip what the cursor already showed.
            let page: Vec<(String, i64)> = raw
                .into_iter()
                .map(|(m, s)| (m, s as i64))
                .filter(|(m, s)| {
                    after.as_ref().is_none_or(|(cs, cm)| *s < *cs || (*s == *cs && m < cm))
                })
                .take(limit + 1)
                .collect();
            if page.len() > limit || !full {
                break page;
            }
            fetch *= 4;
        };
        let has_more = page.len() > limit;
        let page = &page[..page.len().min(limit)];
        let mut pipe = redis::pipe();
        for (order_id, _) in page {
            pipe.cmd("HGETALL").arg(OrderView::key(&ns, order_id));
        }
        let docs: Vec<HashMap<String, String>> =
            if page.is_empty() { Vec::new() } else { pipe.query_async(&mut self.redis()).await? };
        let orders: Vec<OrderView> =
            docs.into_iter().filter_map(|f| OrderView::from_fields(&Fields(f))).collect();
        let next_cursor = has_more.then(|| page.last().map(|(m, s)| format!("{s}:{m}"))).flatten();
        Ok(HistoryPage { orders, next_cursor })
    }

    /// Product search: full text with type-ahead, filters, sort and paging, in one round trip
    /// (a Lua script over the catalogue's sets and sorted sets; no Redis modules needed).
    pub async fn search(&self, q: &SearchQuery) -> Result<SearchPage, QueryError> {
        let ns = self.namespace(ProductView::PROJECTION).await?;
        let limit = q.limit.clamp(1, MAX_PAGE);
        let offset: usize = match &q.cursor {
            Some(c) => c.parse().map_err(|_| QueryError::InvalidCursor)?,
            None => 0,
        };
        let mut words = tokens(&q.text);
        let prefix = if q.text.ends_with(|c: char| c.is_alphanumeric()) {
            words.pop().unwrap_or_default()
        } else {
            String::new()
        };
        let mut invocation = self.search.prepare_invoke();
        invocation.arg(catalogue_key(&ns, "").trim_end_matches(':')).arg(words.len());
        for w in &words {
            invocation.arg(w);
        }
        invocation
            .arg(prefix)
            .arg(q.category.as_deref().map(facet).unwrap_or_default())
            .arg(q.brand.as_deref().map(facet).unwrap_or_default())
            .arg(q.min_price.map_or("-inf".to_owned(), |p| p.to_string()))
            .arg(q.max_price.map_or("+inf".to_owned(), |p| p.to_string()))
            .arg(if q.in_stock { "1" } else { "0" })
            .arg(match q.sort {
                SearchSort::Relevance => "relevance",
                SearchSort::PriceAsc => "price_asc",
                SearchSort::PriceDesc => "price_desc",
            })
            .arg(offset)
            .arg(limit);
        let reply: Vec<redis::Value> = invocation.invoke_async(&mut self.redis()).await?;
        let mut items = reply.into_iter();
        let mut number = || -> Result<u64, QueryError> {
            let value = items
                .next()
                .map(redis::from_redis_value)
                .transpose()
                .map_err(redis::RedisError::from)?;
            Ok(value.unwrap_or(0))
        };
        let total = number()?;
        let total_is_exact = number()? == 1;
        let mut products = Vec::new();
        while let (Some(_sku), Some(fields)) = (items.next(), items.next()) {
            let fields: HashMap<String, String> =
                redis::from_redis_value(fields).map_err(redis::RedisError::from)?;
            products.extend(ProductView::from_fields(&Fields(fields)));
        }
        let next = offset + products.len();
        let more = if total_is_exact { (next as u64) < total } else { products.len() == limit };
        let next_cursor = more.then(|| next.to_string());
        Ok(SearchPage { total, total_is_exact, products, next_cursor })
    }
}

fn parse_history_cursor(cursor: &str) -> Result<(i64, String), QueryError> {
    let (score, member) = cursor.split_once(':').ok_or(QueryError::InvalidCursor)?;
    Ok((score.parse().map_err(|_| QueryError::InvalidCursor)?, member.to_owned()))
}
