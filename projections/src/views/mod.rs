//! Read models as pure folds: `apply(view, event) -> view`, plus how a view is laid out in Redis
//! (its hash fields and its index memberships).

mod cart;
mod document;
mod fields;
#[cfg(test)]
mod index_tests;
mod listing;
pub(crate) mod order;
pub(crate) mod product;
#[cfg(test)]
mod tests;

pub use cart::{CartLineView, CartView};
pub use document::{
    availability_field, order_document_key, product_document_key, push_with_availability,
    with_availability,
};
pub use fields::Fields;
pub use listing::ProductListing;
pub use order::{OrderLineView, OrderView};
pub use product::{documents_key, ProductView};

use crate::change::{diff_indexes, Change, IndexEntry};
use crate::keys::Namespace;
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::RecordedEvent;

/// A document read model: one Redis hash per aggregate, plus index entries.
pub trait View: Sized + Clone + PartialEq + Send + Sync + 'static {
    /// Projection name; also the key namespace.
    const PROJECTION: &'static str;
    /// Stream category this view folds.
    const CATEGORY: &'static str;
    /// The layout of this view's keys, raised when a new kind of index is added. A namespace's
    /// first batch stores it ([`View::layout_key`]), so a query knows whether every document
    /// of the namespace has the new index (the namespace was begun with it) or only those
    /// written since an upgrade (begun by an older Ordo: rebuilt, it has them all; ADR 0029).
    const LAYOUT: u32 = 1;

    /// Folds one event into the document (`None`: not created yet, or removed).
    fn apply(view: Option<Self>, event: &AnyEvent, recorded: &RecordedEvent) -> Option<Self>;

    /// Where a namespace stores its [`LAYOUT`](View::LAYOUT), beside the indexes that read it.
    fn layout_key(ns: &Namespace) -> String {
        ns.key("layout")
    }

    /// Hash key of document `id`.
    fn key(ns: &Namespace, id: &str) -> String;

    /// Every field, always the same set in the same order, so writing the fields that differ
    /// from the previous view's turns the stored hash into exactly this view.
    fn to_fields(&self) -> Vec<(&'static str, String)>;

    /// Reads a view back from its hash; `None` if fields are missing or malformed.
    fn from_fields(fields: &Fields) -> Option<Self>;

    /// The writes that keep the view's stored API document up to date when it changes from
    /// `old` to `new` (they differ). Documents are rendered only for the view a change produces,
    /// never for the one it replaces. None by default.
    fn document_changes(
        _old: Option<&Self>,
        _new: Option<&Self>,
        _ns: &Namespace,
        _id: &str,
    ) -> Vec<Change> {
        Vec::new()
    }

    /// Index memberships of this view.
    fn index_entries(&self, ns: &Namespace) -> Vec<IndexEntry>;

    /// Whether this view and `other` may have different [`index_entries`](View::index_entries).
    /// Listing a view's entries can cost more than the rest of its change (a product has one
    /// per search term, each a formatted key) while most changes (stock moving) leave them as
    /// they were; a view that can tell cheaply says so here. `true`, the default, lists and
    /// compares them on every change.
    fn indexes_may_differ(&self, _other: &Self) -> bool {
        true
    }

    /// Writes that are only ever added, never diffed away (the search term dictionary).
    fn additive_changes(&self, _old: Option<&Self>, _ns: &Namespace) -> Vec<Change> {
        Vec::new()
    }
}

/// The aggregate id a recorded event belongs to, if its stream is of `V`'s category.
pub fn document_id<V: View>(event: &RecordedEvent) -> Option<&str> {
    let name = event.stream.as_str();
    name.strip_prefix(V::CATEGORY)?.strip_prefix('-')
}

/// The Redis writes that turn document `id` from `old` into `new`.
pub fn changes<V: View>(ns: &Namespace, id: &str, old: Option<&V>, new: Option<&V>) -> Vec<Change> {
    if old == new {
        return Vec::new();
    }
    let indexed = match (old, new) {
        (Some(before), Some(view)) => before.indexes_may_differ(view),
        _ => true,
    };
    let entries = |view: Option<&V>| match view {
        Some(view) if indexed => view.index_entries(ns),
        _ => Vec::new(),
    };
    let (old_entries, new_entries) = (entries(old), entries(new));
    let mut out = match (old, new) {
        // Only the fields that differ: a stock change does not rewrite the description.
        (Some(before), Some(view)) => {
            let previous = before.to_fields();
            let fields: Vec<_> = view
                .to_fields()
                .into_iter()
                .zip(previous)
                .filter(|(now, was)| now != was)
                .map(|(now, _)| now)
                .collect();
            vec![Change::SetFields { key: V::key(ns, id), fields }]
        }
        (None, Some(view)) => {
            vec![Change::SetFields { key: V::key(ns, id), fields: view.to_fields() }]
        }
        (_, None) => vec![Change::Delete { key: V::key(ns, id) }],
    };
    out.extend(diff_indexes(&old_entries, &new_entries));
    out.extend(V::document_changes(old, new, ns, id));
    if let Some(view) = new {
        out.extend(view.additive_changes(old, ns));
    }
    out
}
