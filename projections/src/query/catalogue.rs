//! The catalogue's queries on one Redis: a product and product search, as listings (typed) or as
//! the documents the API sends (ADR 0017).

use super::walked_search::Walk;
use super::{Documents, QueryError, Reader, SearchPage, SearchQuery, SearchSort, MAX_PAGE};
use crate::keys::Namespace;
use crate::search::{facet, words_and_prefix};
use crate::views::product::{catalogue_key, PREFIX_SETS_LAYOUT};
use crate::views::{
    availability_field, documents_key, push_with_availability, with_availability, ProductListing,
    ProductView, View,
};

impl Reader {
    /// One product, listed or not.
    pub async fn product(&self, sku: &str) -> Result<Option<ProductListing>, QueryError> {
        let ns = self.namespace(ProductView::PROJECTION).await?;
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(ProductView::key(&ns, sku))
            .arg(&ProductListing::FIELDS[..])
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(ProductListing::from_values(values))
    }

    /// Product search: full text with type-ahead, filters, sort and paging, in two round trips
    /// (a read-only Lua script over the catalogue's sets and sorted sets picks the page, no
    /// Redis modules needed; a pipeline reads its products).
    pub async fn search(&self, q: &SearchQuery) -> Result<SearchPage, QueryError> {
        let (ns, matches) = self.search_skus(q, false).await?;
        // The page's products, in one pipelined round trip on the same Redis. A product
        // delisted between the two reads is left out, as the next search would.
        let mut fetch = redis::pipe();
        for sku in &matches.skus {
            fetch.cmd("HMGET").arg(ProductView::key(&ns, sku)).arg(&ProductListing::FIELDS[..]);
        }
        let rows: Vec<Vec<Option<String>>> = if matches.skus.is_empty() {
            Vec::new()
        } else {
            fetch.query_async(&mut self.redis.clone()).await?
        };
        let products =
            rows.into_iter().filter_map(ProductListing::from_values).filter(|p| p.listed).collect();
        Ok(matches.page(products))
    }

    /// The same page as [`Self::search`], the products as the documents the API sends, in one
    /// round trip: the simplest searches with `SORT_RO` (see `walked_search`), the others with
    /// the script, which reads the page's documents from the catalogue's documents hash and
    /// joins them.
    pub async fn search_documents(
        &self,
        q: &SearchQuery,
    ) -> Result<SearchPage<Documents>, QueryError> {
        if let Some(walk) = Walk::of(q) {
            let ns = self.namespace(ProductView::PROJECTION).await?;
            let (offset, limit) = paging(q)?;
            if let Some(page) = self.walked_search(&ns, &walk, offset, limit).await? {
                return Ok(page);
            }
        }
        let (ns, mut matches) = self.search_skus(q, true).await?;
        let documents = match matches.joined.take() {
            Some(page) => joined_page(&page, matches.returned)?,
            // A product of the page without a stored document: its documents are read here,
            // in one pipelined round trip, and the missing ones rendered from their fields.
            None => {
                let mut fetch = redis::pipe();
                for sku in &matches.skus {
                    fetch
                        .cmd("HMGET")
                        .arg(documents_key(&ns))
                        .arg(sku)
                        .arg(availability_field(sku));
                }
                let stored: Vec<(Option<String>, Option<String>)> = if matches.skus.is_empty() {
                    Vec::new()
                } else {
                    fetch.query_async(&mut self.redis.clone()).await?
                };
                let mut documents = Vec::with_capacity(matches.skus.len());
                for (sku, (entry, available)) in matches.skus.iter().zip(stored) {
                    match joined(&entry, &available) {
                        Some(document) => documents.push(document),
                        None => documents.extend(self.render_listed(&ns, sku).await?),
                    }
                }
                Documents::join(&documents)
            }
        };
        Ok(matches.page(documents))
    }

    /// A listed product as the document the API sends (`None`: no such product, or delisted).
    pub async fn product_document(&self, sku: &str) -> Result<Option<String>, QueryError> {
        let ns = self.namespace(ProductView::PROJECTION).await?;
        self.document_of(&ns, sku).await
    }

    /// [`Self::product_document`] in namespace `ns`.
    async fn document_of(&self, ns: &Namespace, sku: &str) -> Result<Option<String>, QueryError> {
        let (entry, available): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(documents_key(ns))
            .arg(sku)
            .arg(availability_field(sku))
            .query_async(&mut self.redis.clone())
            .await?;
        match joined(&entry, &available) {
            Some(document) => Ok(Some(document)),
            None => self.render_listed(ns, sku).await,
        }
    }

    /// A listed product without a stored document, rendered from its fields: a delisted or
    /// missing one (`None`), or one last written by an Ordo that did not store documents yet (a
    /// rebuild adds them all).
    async fn render_listed(&self, ns: &Namespace, sku: &str) -> Result<Option<String>, QueryError> {
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(ProductView::key(ns, sku))
            .arg(&ProductListing::FIELDS[..])
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(ProductListing::from_values(values).filter(|p| p.listed).map(|p| p.document()))
    }

    /// The search script's page: which products match, in order, how many in all, and with
    /// `documents` their documents.
    async fn search_skus(
        &self,
        q: &SearchQuery,
        documents: bool,
    ) -> Result<(Namespace, Matches), QueryError> {
        let ns = self.namespace(ProductView::PROJECTION).await?;
        let (offset, limit) = paging(q)?;
        let (words, prefix) = words_and_prefix(&q.text);
        let typing = prefix.is_some();
        let mut invocation = self.search.prepare_invoke();
        invocation.arg(catalogue_key(&ns, "").trim_end_matches(':')).arg(words.len());
        for w in &words {
            invocation.arg(w);
        }
        invocation
            .arg(prefix.unwrap_or_default())
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
            .arg(limit)
            .arg(if documents { "1" } else { "0" })
            .arg(if typing { PREFIX_SETS_LAYOUT.to_string() } else { String::new() });
        let reply: Vec<redis::Value> = invocation.invoke_async(&mut self.redis.clone()).await?;
        let mut items = reply.into_iter();
        let number = |value: Option<redis::Value>| -> Result<u64, QueryError> {
            let value = value.map(redis::from_redis_value).transpose();
            Ok(value.map_err(redis::RedisError::from)?.unwrap_or(0))
        };
        let total = number(items.next())?;
        let total_is_exact = number(items.next())? == 1;
        let (count, joined) = if documents {
            let count = number(items.next())? as usize;
            let joined: Option<String> = items
                .next()
                .map(redis::from_redis_value)
                .transpose()
                .map_err(redis::RedisError::from)?
                .flatten();
            (Some(count), joined)
        } else {
            (None, None)
        };
        let skus: Vec<Option<String>> = items
            .map(redis::from_redis_value)
            .collect::<Result<_, _>>()
            .map_err(redis::RedisError::from)?;
        let skus: Vec<String> = skus.into_iter().map(Option::unwrap_or_default).collect();
        let returned = count.unwrap_or(skus.len());
        Ok((ns, Matches { total, total_is_exact, skus, joined, returned, offset, limit }))
    }
}

/// A search page's offset (its cursor) and size.
fn paging(q: &SearchQuery) -> Result<(usize, usize), QueryError> {
    let offset = match &q.cursor {
        Some(c) => c.parse().map_err(|_| QueryError::InvalidCursor)?,
        None => 0,
    };
    Ok((offset, q.limit.clamp(1, MAX_PAGE)))
}

/// What a search picked for a page (the script, or a walk: `walked_search`).
pub(super) struct Matches {
    total: u64,
    total_is_exact: bool,
    /// The page's products, unless the script joined their documents.
    skus: Vec<String>,
    /// The page's documents, joined by the script (`None`: not asked for, or a product
    /// without one).
    joined: Option<String>,
    /// How many products the script returned.
    returned: usize,
    offset: usize,
    limit: usize,
}

impl Matches {
    /// A page of `returned` products read elsewhere, of `total` matches.
    pub(super) fn counted(
        total: u64,
        total_is_exact: bool,
        returned: usize,
        offset: usize,
        limit: usize,
    ) -> Self {
        let (skus, joined) = (Vec::new(), None);
        Self { total, total_is_exact, skus, joined, returned, offset, limit }
    }

    /// No match at all.
    pub(super) fn empty(offset: usize, limit: usize) -> Self {
        Self::counted(0, true, 0, offset, limit)
    }

    /// The page of these products (the ones still listed); the cursor counts every match the
    /// script returned, so the next page starts after them.
    pub(super) fn page<P>(self, products: P) -> SearchPage<P> {
        let next = self.offset + self.returned;
        let more = if self.total_is_exact {
            (next as u64) < self.total
        } else {
            self.returned == self.limit
        };
        let next_cursor = more.then(|| next.to_string());
        SearchPage { total: self.total, total_is_exact: self.total_is_exact, products, next_cursor }
    }
}

/// The documents of a page the search script joined: each product's entry and availability,
/// all separated by newlines (see `search.lua`).
fn joined_page(page: &str, count: usize) -> Result<Documents, QueryError> {
    let mut joined = String::with_capacity(page.len() + count * 24);
    let mut parts = page.split('\n');
    for i in 0..count {
        let (entry, available) = (parts.next(), parts.next());
        let Some((entry, available)) = entry.zip(available.and_then(|a| a.parse().ok())) else {
            let detail = format!("product {i} of {count} is not an entry and an availability");
            let kind = redis::ErrorKind::UnexpectedReturnType;
            return Err(redis::RedisError::from((kind, "a search page", detail)).into());
        };
        if i > 0 {
            joined.push(',');
        }
        push_with_availability(&mut joined, entry, available);
    }
    Ok(Documents { joined })
}

/// A product's document from its stored entry and availability (`None` if either is missing).
fn joined(entry: &Option<String>, available: &Option<String>) -> Option<String> {
    let available = available.as_deref()?.parse().ok()?;
    Some(with_availability(entry.as_deref()?, available))
}
