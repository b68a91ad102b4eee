//! The simplest searches without Lua (ADR 0024): one word (or a word being typed, through its own
//! set, ADR 0029), or a category or brand (or the whole catalogue) by price, with no other
//! filter. Their page is a stretch of one sorted set in its own order, so `SORT_RO <set> BY
//! nosort [DESC] LIMIT <offset> <limit>` reads it and fetches each product's stored document
//! with a `GET` pattern, all inside Redis.
//!
//! The search script answers the same page by walking the same set (`walk` in `search.lua`),
//! but every value that crosses into Lua and back costs Redis's one thread about half a
//! microsecond: 61 µs per twenty-product page against about 16 µs for `SORT_RO`. Everything
//! else (several words, ranges, stock filters, pages too deep to walk) stays with the script,
//! and so does any page this path cannot answer exactly as the script would: a product without
//! a stored document (written by an older Ordo, ADR 0028), a word being typed in a catalogue
//! begun without prefix sets (ADR 0029), or a Redis that refuses `SORT_RO`.

use super::catalogue::Matches;
use super::{Documents, QueryError, Reader, SearchPage, SearchQuery, SearchSort};
use crate::keys::Namespace;
use crate::search::{facet, words_and_prefix};
use crate::views::product::{catalogue_key, PREFIX_SETS_LAYOUT};
use crate::views::{product_document_key, ProductView, View};
use std::sync::atomic::Ordering;

/// Matches are counted exactly up to this many (`EXACT_UP_TO` in `search.lua`).
const EXACT_UP_TO: u64 = 200;
/// How deep a page this path reads; deeper ones go to the script, which walks or materialises
/// by what each would cost (ADR 0030).
const WALK_UP_TO: u64 = 4 * 256;

/// A search whose page is a stretch of one sorted set.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Walk {
    /// The set, relative to the catalogue's namespace (`term:mug`, `category:bath`, `price`).
    set: String,
    descending: bool,
    /// A type-ahead word's own set: the page's only in a catalogue begun with such sets
    /// (otherwise the script unites the sets of the terms it begins; ADR 0029).
    prefix_set: bool,
}

impl Walk {
    /// The walk that answers `q`, if it is one of the simplest searches.
    pub(super) fn of(q: &SearchQuery) -> Option<Walk> {
        if q.min_price.is_some() || q.max_price.is_some() || q.in_stock {
            return None;
        }
        let category = q.category.as_deref().map(facet).filter(|f| !f.is_empty());
        let brand = q.brand.as_deref().map(facet).filter(|f| !f.is_empty());
        let (words, prefix) = words_and_prefix(&q.text);
        match (words.as_slice(), prefix) {
            // Without words: by price (relevance means cheapest first), through the one facet
            // or the whole price index (which holds exactly the listed products).
            ([], None) => {
                let set = match (category, brand) {
                    (Some(_), Some(_)) => return None,
                    (Some(category), None) => format!("category:{category}"),
                    (None, Some(brand)) => format!("brand:{brand}"),
                    (None, None) => "price".to_owned(),
                };
                Some(Walk { set, descending: q.sort == SearchSort::PriceDesc, prefix_set: false })
            }
            // One word alone, best match first: its term's set from the top.
            _ if q.sort != SearchSort::Relevance || category.is_some() || brand.is_some() => None,
            ([word], None) => {
                Some(Walk { set: format!("term:{word}"), descending: true, prefix_set: false })
            }
            // A word being typed: its own set of the products with a term it begins.
            ([], Some(word)) => {
                Some(Walk { set: format!("prefix:{word}"), descending: true, prefix_set: true })
            }
            _ => None,
        }
    }
}

impl Reader {
    /// The page of `walk` in one round trip, or `None` when the script must answer it.
    pub(super) async fn walked_search(
        &self,
        ns: &Namespace,
        walk: &Walk,
        offset: usize,
        limit: usize,
    ) -> Result<Option<SearchPage<Documents>>, QueryError> {
        // A cursor is the client's to send: one past this is never sent to Redis as an offset.
        if self.sort_refused.load(Ordering::Relaxed)
            || offset.saturating_add(limit) as u64 > WALK_UP_TO
        {
            return Ok(None);
        }
        let set = catalogue_key(ns, &walk.set);
        let documents = product_document_key(ns, "*");
        let mut pipe = redis::pipe();
        if walk.prefix_set {
            pipe.cmd("GET").arg(ProductView::layout_key(ns));
        }
        pipe.cmd("ZCARD").arg(&set);
        let sort = pipe.cmd("SORT_RO").arg(&set).arg("BY").arg("nosort");
        if walk.descending {
            sort.arg("DESC");
        }
        sort.arg("LIMIT").arg(offset).arg(limit).arg("GET").arg(documents);
        let replies: Result<Vec<redis::Value>, _> = pipe.query_async(&mut self.redis.clone()).await;
        let Some(replies) = self.unless_sort_refused(replies)? else { return Ok(None) };
        let mut replies = replies.into_iter();
        if walk.prefix_set {
            let layout: Option<u32> = next(&mut replies)?;
            if layout.unwrap_or(1) < PREFIX_SETS_LAYOUT {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| {
                    tracing::info!(
                        "the catalogue was begun by an older Ordo, without sets for prefixes: \
                         type-ahead words unite the sets of at most 64 terms, in the search \
                         script, until `ordo rebuild --projection catalogue`"
                    )
                });
                return Ok(None);
            }
        }
        let size: u64 = next(&mut replies)?;
        let count = size.min(EXACT_UP_TO);
        if count == 0 {
            return Ok(Some(Matches::empty(offset, limit).page(Documents::default())));
        }
        // A page deep into a large set is left to the script too.
        if (offset + limit) as u64 * size > WALK_UP_TO * count {
            return Ok(None);
        }
        let documents: Vec<Option<String>> = next(&mut replies)?;
        let mut joined =
            String::with_capacity(documents.iter().flatten().map(|d| d.len() + 1).sum());
        for (i, document) in documents.iter().enumerate() {
            let Some(document) = document else {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| {
                    tracing::info!(
                        "a listed product has no stored document (written by an older Ordo): \
                         its searches run the search script until `ordo rebuild --projection \
                         catalogue`"
                    )
                });
                return Ok(None);
            };
            if i > 0 {
                joined.push(',');
            }
            joined.push_str(document);
        }
        let returned = documents.len();
        // A page short of its limit ends the set, so every match is counted: the set's size.
        // Otherwise, past the exact count, the matches shown are the lower bound. Both as in
        // the script's walk.
        let (total, exact) = if returned < limit {
            (size, true)
        } else {
            (count.max((offset + returned) as u64), count < EXACT_UP_TO)
        };
        let matches = Matches::counted(total, exact, returned, offset, limit);
        Ok(Some(matches.page(Documents { joined })))
    }
}

/// The next of a pipeline's replies, as a `T`.
fn next<T: redis::FromRedisValue>(
    replies: &mut impl Iterator<Item = redis::Value>,
) -> Result<T, QueryError> {
    let Some(reply) = replies.next() else {
        let kind = redis::ErrorKind::UnexpectedReturnType;
        return Err(
            redis::RedisError::from((kind, "a search page", "a reply is missing".into())).into()
        );
    };
    Ok(redis::from_redis_value(reply).map_err(redis::RedisError::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> SearchQuery {
        SearchQuery { text: text.into(), limit: 20, ..SearchQuery::default() }
    }

    fn walk(set: &str, descending: bool, prefix_set: bool) -> Option<Walk> {
        Some(Walk { set: set.into(), descending, prefix_set })
    }

    #[test]
    fn one_word_walks_its_terms_set_from_the_top() {
        assert_eq!(Walk::of(&query("Mug ")), walk("term:mug", true, false));
    }

    #[test]
    fn a_word_being_typed_walks_its_own_set() {
        // Typed without a space after it, the word is a prefix.
        assert_eq!(Walk::of(&query("mug")), walk("prefix:mug", true, true));
        assert_eq!(Walk::of(&query("  steelw")), walk("prefix:steelw", true, true));
        assert_eq!(Walk::of(&query("Öl")), walk("prefix:öl", true, true));
    }

    #[test]
    fn no_words_walk_a_facet_or_the_price_index_by_price() {
        assert_eq!(Walk::of(&query("")), walk("price", false, false));
        let by_category = SearchQuery { category: Some(" Bath".into()), ..query("") };
        assert_eq!(Walk::of(&by_category), walk("category:bath", false, false));
        let dearest =
            SearchQuery { brand: Some("Potter".into()), sort: SearchSort::PriceDesc, ..query("") };
        assert_eq!(Walk::of(&dearest), walk("brand:potter", true, false));
    }

    #[test]
    fn anything_the_walk_would_have_to_check_is_left_to_the_script() {
        let cases = [
            query("steel mug"),
            query("mug steel "),
            SearchQuery { sort: SearchSort::PriceAsc, ..query("mug") },
            SearchQuery { category: Some("bath".into()), ..query("mug") },
            SearchQuery {
                category: Some("bath".into()),
                brand: Some("potter".into()),
                ..query("")
            },
            SearchQuery { in_stock: true, ..query("") },
            SearchQuery { min_price: Some(100), ..query("mug") },
            SearchQuery { max_price: Some(100), ..query("") },
        ];
        for q in cases {
            assert_eq!(Walk::of(&q), None, "{q:?}");
        }
    }
}
