//! The index shortcut of a stock movement (`View::indexes_may_differ`): taken only when a
//! view's index entries are indeed unchanged, and the one entry a stock movement can move.

use super::product::catalogue_key;
use super::tests::{fold, mug_with_a_hold, ns, product_event, recorded, reservation};
use super::{changes, ProductView, View};
use crate::change::Change;
use ordo_domain::product::{self, ProductEvent};
use ordo_domain::Timestamp;

/// A product with its fields drawn from small sets.
fn any_product() -> impl proptest::strategy::Strategy<Value = ProductView> {
    use proptest::prelude::*;
    let word = prop::sample::select(vec!["oak", "mug", "tea", "Oak"]);
    let facts = (prop::sample::select(vec!["MUG-1", "MUG-2"]), word.clone(), word.clone(), word);
    let trade = (prop::sample::select(vec!["kitchen", "garden"]), 1..3i64, 0..3i64);
    let holds = prop::collection::btree_map(prop::sample::select(vec!["a", "b"]), 1..3u32, 0..3);
    (facts, trade, holds, any::<bool>()).prop_map(
        |((sku, name, brand, description), (category, price, on_hand), holds, listed)| {
            ProductView {
                sku: sku.into(),
                name: name.into(),
                description: description.into(),
                category: category.into(),
                brand: brand.into(),
                price_minor: price,
                currency: "EUR".into(),
                image_urls: Vec::new(),
                on_hand,
                holds: holds.into_iter().map(|(k, q)| (k.to_owned(), q)).collect(),
                listed,
                version: 1,
                terms: Default::default(),
            }
        },
    )
}

/// `product` with one or two of its fields taken from `other`: pairs that differ a little,
/// which two independent products seldom do.
fn one_or_two_fields_of(
    product: &ProductView,
    other: &ProductView,
    fields: [u8; 2],
) -> ProductView {
    let mut changed = product.clone();
    changed.terms = Default::default();
    for field in fields {
        match field {
            0 => changed.sku = other.sku.clone(),
            1 => changed.name = other.name.clone(),
            2 => changed.description = other.description.clone(),
            3 => changed.category = other.category.clone(),
            4 => changed.brand = other.brand.clone(),
            5 => changed.price_minor = other.price_minor,
            6 => changed.on_hand = other.on_hand,
            7 => changed.holds = other.holds.clone(),
            8 => changed.listed = other.listed,
            _ => {}
        }
    }
    changed
}

proptest::proptest! {
    /// The shortcut that skips listing a product's index entries (a stock movement) is only
    /// taken when the entries are indeed the same.
    #[test]
    fn products_said_to_index_alike_have_the_same_index_entries(
        a in any_product(),
        other in any_product(),
        fields in proptest::array::uniform2(0u8..10),
    ) {
        let ns = ns("catalogue");
        let b = one_or_two_fields_of(&a, &other, fields);
        if !a.indexes_may_differ(&b) {
            proptest::prop_assert_eq!(a.index_entries(&ns), b.index_entries(&ns));
        }
    }
}

#[test]
fn given_a_hold_that_empties_a_product_when_projected_then_it_leaves_the_in_stock_set() {
    // Given a mug with one unit available
    let ns = ns("catalogue");
    let before: ProductView = fold("product-MUG-1", &mug_with_a_hold()).expect("listed");
    // When another cart holds the rest
    let hold = product_event(ProductEvent::StockReserved(product::StockReserved {
        reservation_id: reservation("cart-2"),
        quantity: u32::try_from(before.available()).expect("stock left"),
        expires_at: Timestamp(100),
        at: Timestamp(3),
    }));
    let emptied = ProductView::apply(Some(before.clone()), &hold, &recorded("product-MUG-1", 3))
        .expect("kept");
    let instock = catalogue_key(&ns, "instock");
    let removed = changes(&ns, "MUG-1", Some(&before), Some(&emptied));
    // Then the product leaves the in-stock set, and nothing else of the index moves
    let index: Vec<_> = removed
        .iter()
        .filter(|c| {
            matches!(
                c,
                Change::SRem { .. }
                    | Change::SAdd { .. }
                    | Change::ZAdd { .. }
                    | Change::ZRem { .. }
            )
        })
        .collect();
    assert_eq!(index, vec![&Change::SRem { key: instock, member: "MUG-1".into() }]);
}
