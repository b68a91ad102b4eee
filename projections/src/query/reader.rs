//! One query's view of the read models: every read of a query goes to one Redis (the primary or
//! one replica), the one its `min_position` wait was answered by, so it reads its own writes.

use super::own_writes::CheckedConnection;
use super::{
    history_cursor, parse_history_cursor, HistoryPage, HistoryQuery, QueryError, ACTIVE_TTL,
    MAX_PAGE,
};
use crate::keys::{active_version_key, Namespace};
use crate::views::order::history_key;
use crate::views::{order_document_key, CartView, Fields, OrderView, View};
use ordo_eventstore::clock::parse_rfc3339_millis;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// Queries against one Redis (cheap to clone: the connection is multiplexed, the rest shared).
#[derive(Clone)]
pub struct Reader {
    pub(super) redis: CheckedConnection,
    pub(super) active: Arc<Mutex<HashMap<&'static str, (u32, Instant)>>>,
    /// The search script, shared: its source is kilobytes, and a reader is made per query.
    pub(super) search: Arc<redis::Script>,
    pub(super) sort_refused: Arc<AtomicBool>,
    pub(super) applied: Arc<HashMap<&'static str, watch::Receiver<u64>>>,
}

impl Reader {
    /// The namespace queries of `projection` read: its active version, cached briefly.
    pub async fn namespace(&self, projection: &'static str) -> Result<Namespace, QueryError> {
        let cached = self.active.lock().ok().and_then(|a| a.get(projection).copied());
        if let Some((version, _)) = cached.filter(|(_, at)| at.elapsed() < ACTIVE_TTL) {
            return Ok(Namespace::new(projection, version));
        }
        let version: Option<u32> = redis::cmd("GET")
            .arg(active_version_key(projection))
            .query_async(&mut self.redis.clone())
            .await?;
        let version = version.unwrap_or(1);
        if let Ok(mut active) = self.active.lock() {
            active.insert(projection, (version, Instant::now()));
        }
        Ok(Namespace::new(projection, version))
    }

    async fn document<V: View>(&self, id: &str) -> Result<Option<V>, QueryError> {
        let ns = self.namespace(V::PROJECTION).await?;
        let fields: HashMap<String, String> =
            redis::cmd("HGETALL").arg(V::key(&ns, id)).query_async(&mut self.redis.clone()).await?;
        Ok(if fields.is_empty() { None } else { V::from_fields(&Fields(fields)) })
    }

    /// One order.
    pub async fn order(&self, order_id: &str) -> Result<Option<OrderView>, QueryError> {
        self.document(order_id).await
    }

    /// One order as the document the API sends, with its customer (for the caller's access
    /// check): one round trip. An order without a stored document (written by an older Ordo) is
    /// rendered from its fields.
    pub async fn order_document(
        &self,
        order_id: &str,
    ) -> Result<Option<(String, String)>, QueryError> {
        let ns = self.namespace(OrderView::PROJECTION).await?;
        let (customer, document): (Option<String>, Option<String>) = redis::pipe()
            .cmd("HGET")
            .arg(OrderView::key(&ns, order_id))
            .arg("customer_id")
            .cmd("GET")
            .arg(order_document_key(&ns, order_id))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(match (customer, document) {
            (Some(customer), Some(document)) => Some((customer, document)),
            (None, _) => None,
            (Some(_), None) => {
                self.order(order_id).await?.map(|o| (o.customer_id.clone(), o.document()))
            }
        })
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
        let (ns, ids, next_cursor) = self.history_ids(customer_id, q).await?;
        let orders = self.orders(&ns, &ids).await?;
        Ok(HistoryPage { orders, next_cursor })
    }

    /// The same page as [`Self::order_history`], each order as the document the API sends: one
    /// string per order, not nineteen fields, and nothing to convert.
    pub async fn order_history_documents(
        &self,
        customer_id: &str,
        q: &HistoryQuery,
    ) -> Result<HistoryPage<String>, QueryError> {
        let newest = q.cursor.is_none() && q.from.is_none() && q.to.is_none();
        if newest && !self.sort_refused.load(Ordering::Relaxed) {
            if let Some(page) = self.first_history_page(customer_id, q).await? {
                return Ok(page);
            }
        }
        let (ns, ids, next_cursor) = self.history_ids(customer_id, q).await?;
        let mut fetch = redis::pipe();
        for order_id in &ids {
            fetch.cmd("GET").arg(order_document_key(&ns, order_id));
        }
        let documents: Vec<Option<String>> = if ids.is_empty() {
            Vec::new()
        } else {
            fetch.query_async(&mut self.redis.clone()).await?
        };
        // Orders last written by an Ordo that did not render documents yet: read them field by
        // field and render them here (a rebuild stores them all).
        let unrendered: Vec<String> = ids
            .iter()
            .zip(&documents)
            .filter(|(_, document)| document.is_none())
            .map(|(order_id, _)| order_id.clone())
            .collect();
        let mut rendered: HashMap<String, String> = self
            .orders(&ns, &unrendered)
            .await?
            .into_iter()
            .map(|order| (order.order_id.clone(), order.document()))
            .collect();
        let orders = ids
            .iter()
            .zip(documents)
            .filter_map(|(order_id, document)| document.or_else(|| rendered.remove(order_id)))
            .collect();
        Ok(HistoryPage { orders, next_cursor })
    }

    /// The newest page of a history (no cursor, no date range) in one command: `SORT_RO` walks
    /// the history's sorted set from its newest end (`BY nosort DESC` keeps the set's order,
    /// equal times by descending id, as `ZREVRANGEBYSCORE` does) and reads each order's
    /// document (a `GET` pattern), and nothing else. Read-only, so it runs on replicas. `None`
    /// when an order of the page has no stored document (written by an older Ordo, or deleted):
    /// the two-trip path reads and renders those.
    ///
    /// The next page's cursor needs the id and time of the page's last order: its member and
    /// score in the history, which its document also holds (`order_id`, and `placed_at` to the
    /// millisecond). `GET #` and `GET <order>->placed_at` patterns read them for every order,
    /// and the time cost Redis as much as the documents did (`redis-benchmark`, a page of 21:
    /// 23.7 µs per call, 13.8 with the documents alone); every value of a reply also costs the
    /// redis crate's parser here.
    async fn first_history_page(
        &self,
        customer_id: &str,
        q: &HistoryQuery,
    ) -> Result<Option<HistoryPage<String>>, QueryError> {
        let ns = self.namespace(OrderView::PROJECTION).await?;
        let limit = q.limit.clamp(1, MAX_PAGE);
        let documents: redis::RedisResult<Vec<Option<String>>> = redis::cmd("SORT_RO")
            .arg(history_key(&ns, customer_id, q.status.as_deref()))
            .arg("BY")
            .arg("nosort")
            .arg("DESC")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1)
            .arg("GET")
            .arg(order_document_key(&ns, "*"))
            .query_async(&mut self.redis.clone())
            .await;
        let Some(documents) = self.unless_sort_refused(documents)? else { return Ok(None) };
        Ok(newest_page(documents, limit))
    }

    /// The answer of a read using `SORT_RO` (history's newest page, a walked search); `None`
    /// if Redis refused the command, which these read models remember (with one warning), so
    /// that from then on those reads take their longer ways without asking again.
    pub(super) fn unless_sort_refused<T>(
        &self,
        answer: redis::RedisResult<T>,
    ) -> Result<Option<T>, QueryError> {
        match answer {
            Ok(answer) => Ok(Some(answer)),
            Err(e) if refused(&e) => {
                tracing::warn!(
                    error = %e,
                    "Redis refused SORT_RO; history pages take two round trips and every search \
                     runs the search script"
                );
                self.sort_refused.store(true, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The ids of a history page, newest first, and the cursor for the next page.
    async fn history_ids(
        &self,
        customer_id: &str,
        q: &HistoryQuery,
    ) -> Result<(Namespace, Vec<String>, Option<String>), QueryError> {
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
        let mut page = loop {
            let raw: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&key)
                .arg(&max)
                .arg(&min)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(fetch)
                .query_async(&mut self.redis.clone())
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
        page.truncate(limit);
        let next_cursor =
            has_more.then(|| page.last().map(|(m, s)| history_cursor(*s, m))).flatten();
        Ok((ns, page.into_iter().map(|(order_id, _)| order_id).collect(), next_cursor))
    }

    /// These orders, in this order (one pipelined round trip); missing ones are left out.
    async fn orders(&self, ns: &Namespace, ids: &[String]) -> Result<Vec<OrderView>, QueryError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for order_id in ids {
            pipe.cmd("HGETALL").arg(OrderView::key(ns, order_id));
        }
        let docs: Vec<HashMap<String, String>> = pipe.query_async(&mut self.redis.clone()).await?;
        Ok(docs.into_iter().filter_map(|f| OrderView::from_fields(&Fields(f))).collect())
    }
}

/// A history's newest page from `SORT_RO`'s documents (up to `limit + 1` orders, newest
/// first; `None` where an order has no document). `None` when an order shown has no document,
/// or the last one shown does not say its id and time: the two-trip path answers then.
fn newest_page(documents: Vec<Option<String>>, limit: usize) -> Option<HistoryPage<String>> {
    let mut documents = documents.into_iter();
    let orders: Vec<String> = documents.by_ref().take(limit).collect::<Option<_>>()?;
    // One more document means one more page; its cursor is the last order shown, at its time.
    if documents.next().is_none() {
        return Some(HistoryPage { orders, next_cursor: None });
    }
    let last: Placed = serde_json::from_str(orders.last()?).ok()?;
    let at = parse_rfc3339_millis(last.placed_at)?;
    let next_cursor = Some(history_cursor(at, last.order_id));
    Some(HistoryPage { orders, next_cursor })
}

/// What [`newest_page`] reads of an order's document: its history entry's member and score.
#[derive(serde::Deserialize)]
struct Placed<'a> {
    order_id: &'a str,
    placed_at: &'a str,
}

/// Whether Redis refused a command itself, rather than failed to run it: not allowed by the
/// user's ACL, or unknown to this server. Only these turn `SORT_RO` off for good; any other
/// error (a bad argument, a key of another type) is that one request's.
fn refused(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    match error.kind() {
        ErrorKind::Server(ServerErrorKind::NoPerm) => true,
        ErrorKind::Server(ServerErrorKind::ResponseError) => {
            error.detail().is_some_and(|d| d.to_ascii_lowercase().starts_with("unknown command"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{newest_page, refused};
    use ordo_eventstore::clock::rfc3339;
    use redis::{ErrorKind, RedisError, ServerErrorKind};

    fn server_error(kind: ServerErrorKind, detail: &str) -> RedisError {
        RedisError::from((ErrorKind::Server(kind), "from the server", detail.to_owned()))
    }

    #[test]
    fn only_an_acl_or_an_unknown_command_counts_as_refused() {
        let unknown = "unknown command 'SORT_RO', with args beginning with: 'k'";
        assert!(refused(&server_error(ServerErrorKind::ResponseError, unknown)));
        let acl = "this user has no permissions to run the 'sort_ro' command";
        assert!(refused(&server_error(ServerErrorKind::NoPerm, acl)));
        let argument = "value is out of range, must be positive";
        assert!(!refused(&server_error(ServerErrorKind::ResponseError, argument)));
        assert!(!refused(&server_error(ServerErrorKind::BusyLoading, "loading")));
    }

    /// Documents as `SORT_RO` reads them; `None` for an order without one.
    fn rows(orders: &[Option<(&str, i64)>]) -> Vec<Option<String>> {
        let document = |(id, at): (&str, i64)| {
            let at = rfc3339(at);
            format!(r#"{{"order_id":"{id}","status":"placed","placed_at":"{at}"}}"#)
        };
        orders.iter().map(|order| order.map(document)).collect()
    }

    #[test]
    fn a_full_newest_page_pages_on_after_its_last_order_at_its_time() {
        // Given three orders for a page of two
        let page = rows(&[Some(("o3", 3_000)), Some(("o2", 1_700_000_000_123)), Some(("o1", 1))]);

        // When the page is assembled
        let assembled = newest_page(page.clone(), 2).expect("a page");

        // Then it shows the two newest documents and pages on after the second, at the
        // millisecond its document gives (its score in the history).
        assert_eq!(assembled.orders, page[..2].iter().flatten().cloned().collect::<Vec<_>>());
        assert_eq!(assembled.next_cursor.as_deref(), Some("1700000000123:o2"));
    }

    #[test]
    fn a_last_page_has_no_cursor_and_a_missing_document_needs_the_long_way() {
        // Given a history shorter than the page
        let short = rows(&[Some(("o2", 2)), Some(("o1", 1))]);
        // When it is assembled, then it is the whole history, without a cursor
        let page = newest_page(short.clone(), 5).expect("a page");
        assert_eq!(page.orders, short.into_iter().flatten().collect::<Vec<_>>());
        assert_eq!(page.next_cursor, None);
        // and an order without its document (an older Ordo's) leaves the page to the long way,
        assert_eq!(newest_page(rows(&[Some(("o2", 2)), None]), 5), None);
        // as does a last order whose document does not say when it was placed.
        let undated =
            vec![Some(r#"{"order_id":"o2"}"#.to_owned()), rows(&[Some(("o1", 1))])[0].clone()];
        assert_eq!(newest_page(undated, 1), None);
    }
}
