//! Orders and products as the HTTP API sends them, rendered once when the projection writes them
//! rather than on every read.
//!
//! Order history and product search are the queries a shop serves most, and most of their cost
//! was not Redis: it was parsing ten to nineteen fields per document out of the reply, rebuilding
//! the view, converting it and serializing it again, twenty times per page, on every request. So
//! the projections store exactly the JSON the API would render (its `Order` and `Product`
//! schemas), and a page is those documents joined in a JSON array. This is how Marten serves
//! documents straight from the database into the response without deserializing them.
//!
//! - An order's document is a string beside its hash ([`order_document_key`]): a history page
//!   reads it with one `GET` per order instead of nineteen fields, or all of them through one
//!   `SORT_RO` `GET` pattern.
//! - Listed products' documents live together in the catalogue's documents hash
//!   ([`documents_key`](super::documents_key)): under the SKU the document without its
//!   availability, under `{sku}:available` the number ([`with_availability`] joins them). The
//!   search script picks a page and reads its documents with one `HMGET`, so a search is one
//!   round trip. A delisted product leaves the hash, as it leaves every other catalogue index.
//! - A listed product's whole document is also a string of its own
//!   ([`product_document_key`]), which the simplest searches read with one `SORT_RO` `GET`
//!   pattern and no Lua (ADR 0024).
//!
//! Strings, not a field of the view's hash: a `GET` pattern that names a hash field
//! (`key->field`) costs Redis a second lookup and a copy of the value for every document of a
//! page, and in the HTTP mix those were a fifth of Redis's time (ADR 0028).
//!
//! The shapes here must stay the API's `OrderDto` and `ProductDto`: the API's tests render both
//! for the same views and compare them. Changing one is a read-model change like any other: bump
//! the projection's version and rebuild. Until then, an order or product without a stored
//! document (written by an older Ordo) is read field by field and rendered on the way out, so an
//! upgrade never serves an empty page; `ordo rebuild` stores them all.

use super::listing::ProductListing;
use super::order::{OrderLineView, OrderView};
use super::product::ProductView;
use crate::keys::Namespace;
use ordo_domain::order::Address;
use ordo_eventstore::clock::rfc3339;
use serde::Serialize;

/// Key of order `id`'s rendered document. With `*` for the id, the `GET` pattern a history's
/// `SORT_RO` reads documents with; it shares the order hash's `{id}` tag.
pub fn order_document_key(ns: &Namespace, id: &str) -> String {
    ns.key(&format!("document:{{{id}}}"))
}

/// Key of listed product `sku`'s whole document (entry and availability). With `*` for the
/// SKU, the `GET` pattern a walked search reads documents with.
pub fn product_document_key(ns: &Namespace, sku: &str) -> String {
    super::product::catalogue_key(ns, &format!("document:{sku}"))
}

#[derive(Serialize)]
struct OrderDocument<'a> {
    order_id: &'a str,
    customer_id: &'a str,
    status: &'a str,
    payment_status: &'a str,
    lines: &'a [OrderLineView],
    total_minor: i64,
    refunded_minor: i64,
    currency: &'a str,
    shipping_address: &'a Address,
    placed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipped_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancelled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancelled_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    carrier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking: Option<&'a str>,
    version: u64,
}

fn non_empty(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.is_empty())
}

impl OrderView {
    /// The order as the API's `Order` schema renders it (times in RFC 3339, empty texts left
    /// out).
    pub fn document(&self) -> String {
        let document = OrderDocument {
            order_id: &self.order_id,
            customer_id: &self.customer_id,
            status: &self.status,
            payment_status: &self.payment_status,
            lines: &self.lines,
            total_minor: self.total_minor,
            refunded_minor: self.refunded_minor,
            currency: &self.currency,
            shipping_address: &self.address,
            placed_at: rfc3339(self.placed_at),
            confirmed_at: self.confirmed_at.map(rfc3339),
            shipped_at: self.shipped_at.map(rfc3339),
            delivered_at: self.delivered_at.map(rfc3339),
            cancelled_at: self.cancelled_at.map(rfc3339),
            cancel_reason: non_empty(&self.cancel_reason),
            cancelled_by: non_empty(&self.cancelled_by),
            carrier: non_empty(&self.carrier),
            tracking: non_empty(&self.tracking),
            version: self.version,
        };
        serde_json::to_string(&document).expect("an order document always serializes")
    }
}

#[derive(Serialize)]
struct Money<'a> {
    minor: i64,
    currency: &'a str,
}

/// A product's document without its availability: what changes when the product is listed,
/// repriced or delisted, not with every stock movement.
#[derive(Serialize)]
struct ProductEntry<'a> {
    sku: &'a str,
    name: &'a str,
    description: &'a str,
    category: &'a str,
    brand: &'a str,
    price: Money<'a>,
    image_urls: &'a [String],
    listed: bool,
}

/// The entry of a `ProductView` or a `ProductListing`: they name these fields alike.
macro_rules! entry_of {
    ($product:expr) => {
        ProductEntry {
            sku: &$product.sku,
            name: &$product.name,
            description: &$product.description,
            category: &$product.category,
            brand: &$product.brand,
            price: Money { minor: $product.price_minor, currency: &$product.currency },
            image_urls: &$product.image_urls,
            listed: $product.listed,
        }
    };
}

impl ProductEntry<'_> {
    fn render(&self) -> String {
        serde_json::to_string(self).expect("a product entry always serializes")
    }
}

/// A product's document: its `entry` (from [`ProductView::entry`]) with `available` added.
///
/// Stock moves with every cart line and order, the rest of a product rarely; the catalogue's
/// documents hash therefore stores the two apart, and a stock movement rewrites a number, not
/// the whole document. Readers join them here.
pub fn with_availability(entry: &str, available: i64) -> String {
    let mut document = String::with_capacity(entry.len() + 24);
    push_with_availability(&mut document, entry, available);
    document
}

/// [`with_availability`], written at the end of `out` (a page of documents joins them without
/// a string each).
pub fn push_with_availability(out: &mut String, entry: &str, available: i64) {
    use std::fmt::Write;
    let body = entry.strip_suffix('}').unwrap_or(entry);
    let _ = write!(out, "{body},\"available\":{available}}}");
}

/// The documents hash field holding a product's availability (its entry is under the SKU).
pub fn availability_field(sku: &str) -> String {
    format!("{sku}:available")
}

impl ProductView {
    /// The product's document without its availability (see [`with_availability`]).
    pub fn entry(&self) -> String {
        entry_of!(self).render()
    }

    /// Whether the entry would render differently: anything but stock and version changed
    /// (with those, every stored field: see `PartialEq`).
    pub(crate) fn entry_changed(&self, other: &ProductView) -> bool {
        self.sku != other.sku
            || self.name != other.name
            || self.description != other.description
            || self.category != other.category
            || self.brand != other.brand
            || self.price_minor != other.price_minor
            || self.currency != other.currency
            || self.image_urls != other.image_urls
            || self.listed != other.listed
    }

    /// The product as the API's `Product` schema renders it.
    pub fn document(&self) -> String {
        with_availability(&self.entry(), self.available())
    }
}

impl ProductListing {
    /// The listing as the API's `Product` schema renders it: the same document as
    /// [`ProductView::document`] for the same product.
    pub fn document(&self) -> String {
        with_availability(&entry_of!(self).render(), self.available)
    }
}
