//! The product view: catalogue entry, stock, and its search and filter index entries.

use super::document::{availability_field, product_document_key, with_availability};
use super::fields::{json, Fields};
use super::View;
use crate::change::{Change, IndexEntry};
use crate::keys::Namespace;
use crate::search::{facet, weighted_prefixes, weighted_terms};
use ordo_domain::product::ProductEvent;
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::RecordedEvent;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// The catalogue's layout from which every prefix of a term has a set of its own (ADR 0029);
/// before it, a word being typed unites the sets of the terms it begins.
pub const PREFIX_SETS_LAYOUT: u32 = 2;

/// A product as queries see it.
#[derive(Clone, Debug)]
pub struct ProductView {
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Brand.
    pub brand: String,
    /// Unit price, minor units.
    pub price_minor: i64,
    /// ISO currency.
    pub currency: String,
    /// Image URLs.
    pub image_urls: Vec<String>,
    /// Units in stock.
    pub on_hand: i64,
    /// Units held per reservation id. The view counts a hold until it is released or committed
    /// (expiry issues the release), so availability here is at worst briefly conservative.
    pub holds: BTreeMap<String, u32>,
    /// In the catalogue (false once delisted).
    pub listed: bool,
    /// Last applied stream version.
    pub version: u64,
    /// Search terms with weights, derived from name, brand and description: computed the first
    /// time the projection asks and shared by the clones that stock movements make (only
    /// `Listed` changes the text, and it starts a new memo). Not stored in Redis, and never
    /// computed for a query: a search page of 20 products read back used to spend a fifth of
    /// the server's time tokenizing their descriptions.
    pub terms: Arc<OnceLock<BTreeMap<String, f64>>>,
}

/// Equal when every stored field is equal; the cached search terms are derived from them.
impl PartialEq for ProductView {
    fn eq(&self, other: &Self) -> bool {
        !self.entry_changed(other)
            && self.on_hand == other.on_hand
            && self.holds == other.holds
            && self.version == other.version
    }
}

impl ProductView {
    fn text_changed(&self, other: &ProductView) -> bool {
        self.name != other.name
            || self.brand != other.brand
            || self.description != other.description
    }

    /// The search terms, computed on first use.
    fn search_terms(&self) -> &BTreeMap<String, f64> {
        self.terms.get_or_init(|| weighted_terms(&self.name, &self.brand, &self.description))
    }

    /// Units not held by any reservation.
    pub fn available(&self) -> i64 {
        self.on_hand - self.holds.values().map(|q| i64::from(*q)).sum::<i64>()
    }
}

/// Key of the hash of listed products' documents ([`ProductView::document`]): each one's entry
/// under its SKU, its availability under `{sku}:available`.
pub fn documents_key(ns: &Namespace) -> String {
    catalogue_key(ns, "documents")
}

/// Key of a catalogue-wide index, all sharing the `{catalogue}` hash tag.
pub fn catalogue_key(ns: &Namespace, rest: &str) -> String {
    ns.key(&format!("{{catalogue}}:{rest}"))
}

impl View for ProductView {
    const PROJECTION: &'static str = "catalogue";
    const CATEGORY: &'static str = "product";
    const LAYOUT: u32 = PREFIX_SETS_LAYOUT;

    fn apply(view: Option<Self>, event: &AnyEvent, recorded: &RecordedEvent) -> Option<Self> {
        let AnyEvent::Product(event) = event else { return view };
        let mut v = match (event, view) {
            (ProductEvent::Listed(e), previous) => {
                let (on_hand, holds) = previous.map(|p| (p.on_hand, p.holds)).unwrap_or_default();
                ProductView {
                    sku: e.sku.to_string(),
                    name: e.name.clone(),
                    description: e.description.clone(),
                    category: e.category.clone(),
                    brand: e.brand.clone(),
                    price_minor: e.price.minor,
                    currency: e.price.currency.to_string(),
                    image_urls: e.image_urls.clone(),
                    on_hand,
                    holds,
                    listed: true,
                    version: recorded.version,
                    terms: Arc::default(),
                }
            }
            (_, None) => return None,
            (_, Some(v)) => v,
        };
        v.version = recorded.version;
        match event {
            ProductEvent::Listed(_) => {}
            ProductEvent::PriceChanged(e) => v.price_minor = e.price.minor,
            ProductEvent::Delisted(_) => v.listed = false,
            ProductEvent::StockReceived(e) => v.on_hand += i64::from(e.quantity),
            ProductEvent::StockAdjusted(e) => v.on_hand += e.delta,
            ProductEvent::StockReserved(e) => {
                v.holds.insert(e.reservation_id.to_string(), e.quantity);
            }
            ProductEvent::ReservationReleased(e) => {
                v.holds.remove(e.reservation_id.as_str());
            }
            ProductEvent::ReservationCommitted(e) => {
                v.holds.remove(e.reservation_id.as_str());
                v.on_hand -= i64::from(e.quantity);
            }
        }
        Some(v)
    }

    /// In the search index's hash slot: the search script reads it.
    fn layout_key(ns: &Namespace) -> String {
        catalogue_key(ns, "layout")
    }

    fn key(ns: &Namespace, id: &str) -> String {
        catalogue_key(ns, &format!("product:{id}"))
    }

    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("sku", self.sku.clone()),
            ("name", self.name.clone()),
            ("description", self.description.clone()),
            ("category", self.category.clone()),
            ("brand", self.brand.clone()),
            ("price_minor", self.price_minor.to_string()),
            ("currency", self.currency.clone()),
            ("image_urls", json(&self.image_urls)),
            ("on_hand", self.on_hand.to_string()),
            ("available", self.available().to_string()),
            ("holds", json(&self.holds)),
            ("listed", if self.listed { "1" } else { "0" }.into()),
            ("version", self.version.to_string()),
        ]
    }

    /// Listed products' documents share the catalogue's documents hash, so the search script
    /// reads a page of them with one `HMGET`: the entry under the SKU, rewritten when the
    /// product's text, price or listing changes, and the availability beside it, rewritten
    /// when stock moves. A delisted product leaves the hash. The whole document (entry and
    /// availability) is also kept as a string of its own ([`product_document_key`]), rewritten when
    /// either changes, where one `SORT_RO` `GET` pattern reaches it: the simplest searches are
    /// answered that way, without Lua (ADR 0024).
    fn document_changes(
        old: Option<&Self>,
        new: Option<&Self>,
        ns: &Namespace,
        id: &str,
    ) -> Vec<Change> {
        let old = old.filter(|p| p.listed);
        let key = documents_key(ns);
        let mut out = Vec::new();
        match new.filter(|p| p.listed) {
            Some(product) => {
                let entry_changed = old.is_none_or(|o| o.entry_changed(product));
                let available_changed = old.is_none_or(|o| o.available() != product.available());
                if !entry_changed && !available_changed {
                    return out;
                }
                let entry = product.entry();
                out.push(Change::Set {
                    key: product_document_key(ns, id),
                    value: with_availability(&entry, product.available()),
                });
                if entry_changed {
                    out.push(Change::HSetField {
                        key: key.clone(),
                        field: id.to_owned(),
                        value: entry,
                    });
                }
                if available_changed {
                    out.push(Change::HSetField {
                        key,
                        field: availability_field(id),
                        value: product.available().to_string(),
                    });
                }
            }
            None if old.is_some() => {
                out.push(Change::Delete { key: product_document_key(ns, id) });
                out.push(Change::HDel { key: key.clone(), field: id.to_owned() });
                out.push(Change::HDel { key, field: availability_field(id) });
            }
            None => {}
        }
        out
    }

    fn from_fields(f: &Fields) -> Option<Self> {
        Some(ProductView {
            sku: f.text("sku")?,
            name: f.text("name")?,
            description: f.text("description")?,
            category: f.text("category")?,
            brand: f.text("brand")?,
            price_minor: f.int("price_minor")?,
            currency: f.text("currency")?,
            image_urls: f.json("image_urls")?,
            on_hand: f.int("on_hand")?,
            holds: f.json("holds")?,
            listed: f.text("listed")? == "1",
            version: f.int("version")?,
            terms: Arc::default(),
        })
    }

    /// Listed products are in the filter sets, the price index, one sorted set per search term
    /// and one per prefix of a term (scored by relevance weight). Delisted products are in none
    /// of them.
    fn index_entries(&self, ns: &Namespace) -> Vec<IndexEntry> {
        if !self.listed {
            return Vec::new();
        }
        let set = |rest: String| IndexEntry::Set {
            key: catalogue_key(ns, &rest),
            member: self.sku.clone(),
        };
        // Facets are sorted by price, so a filtered price-ordered search walks the facet
        // (a fraction of the catalogue) instead of the whole price index.
        let by_price = |rest: String| IndexEntry::Sorted {
            key: catalogue_key(ns, &rest),
            member: self.sku.clone(),
            score: self.price_minor as f64,
        };
        let mut entries = vec![
            set("listed".into()),
            by_price(format!("category:{}", facet(&self.category))),
            by_price(format!("brand:{}", facet(&self.brand))),
            by_price("price".into()),
        ];
        if self.available() > 0 {
            entries.push(set("instock".into()));
        }
        let terms = self.search_terms();
        for (term, weight) in terms {
            entries.push(IndexEntry::Sorted {
                key: catalogue_key(ns, &format!("term:{term}")),
                member: self.sku.clone(),
                score: *weight,
            });
        }
        // Every prefix a shopper may be typing, each a set of its own (ADR 0029).
        for (prefix, weight) in weighted_prefixes(terms) {
            entries.push(IndexEntry::Sorted {
                key: catalogue_key(ns, &format!("prefix:{prefix}")),
                member: self.sku.clone(),
                score: weight,
            });
        }
        entries
    }

    /// Stock that moves without emptying or refilling the product, the catalogue's most
    /// common change, leaves every entry as it was: no need to list a product's terms twice
    /// to find that out.
    fn indexes_may_differ(&self, other: &Self) -> bool {
        self.sku != other.sku
            || self.listed != other.listed
            || self.category != other.category
            || self.price_minor != other.price_minor
            || (self.available() > 0) != (other.available() > 0)
            || self.text_changed(other)
    }

    /// The term dictionary (for prefix search) only grows: a term another product still uses
    /// must not vanish, and a stale term merely expands to an empty set.
    fn additive_changes(&self, old: Option<&Self>, ns: &Namespace) -> Vec<Change> {
        if old.is_some_and(|o| !o.text_changed(self)) {
            return Vec::new();
        }
        let empty = BTreeMap::new();
        let known = old.map_or(&empty, |o| o.search_terms());
        self.search_terms()
            .keys()
            .filter(|t| !known.contains_key(*t))
            .map(|term| Change::ZAdd {
                key: catalogue_key(ns, "terms"),
                score: 0.0,
                member: term.clone(),
            })
            .collect()
    }
}
