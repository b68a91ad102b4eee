//! Read models as pure folds: given events, the expected view and Redis writes.

use super::*;
use crate::change::Change;
use crate::keys::Namespace;
use ordo_domain::cart::{self, CartEvent};
use ordo_domain::order::{self, Actor, Address, OrderEvent, OrderLine};
use ordo_domain::product::{self, ProductEvent};
use ordo_domain::{CartId, Currency, CustomerId, Money, OrderId, ReservationId, Sku, Timestamp};
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::{EventMetadata, Position, RecordedEvent, StreamName};

pub(super) fn ns(projection: &'static str) -> Namespace {
    Namespace::new(projection, 1)
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

pub(super) fn recorded(stream: &str, version: u64) -> RecordedEvent {
    RecordedEvent {
        id: uuid::Uuid::nil(),
        stream: StreamName::new(stream).expect("valid"),
        version,
        position: Position(version),
        event_type: String::new(),
        schema_version: 1,
        recorded_at: 0,
        metadata: EventMetadata::default(),
        payload: Vec::new(),
    }
}

/// Folds `events` (all of one stream) into a view.
pub(super) fn fold<V: View>(stream: &str, events: &[AnyEvent]) -> Option<V> {
    events.iter().enumerate().fold(None, |v, (i, e)| V::apply(v, e, &recorded(stream, i as u64)))
}

fn placed(order: &str, customer: &str, at: i64) -> AnyEvent {
    AnyEvent::Order(OrderEvent::Placed(order::OrderPlaced {
        order_id: OrderId::parse(order).expect("valid"),
        customer_id: CustomerId::parse(customer).expect("valid"),
        reservation_id: ReservationId::parse("cart-1").expect("valid"),
        lines: vec![OrderLine {
            sku: Sku::parse("MUG-1").expect("valid"),
            name: "Mug".into(),
            quantity: 2,
            unit_price: eur(1_000),
            line_total: eur(2_000),
        }],
        total: eur(2_000),
        shipping_address: Address {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: String::new(),
            city: "Paris".into(),
            postal_code: "75001".into(),
            country: "FR".into(),
        },
        payment_token: "tok".into(),
        placed_at: Timestamp(at),
    }))
}

fn order_event(e: OrderEvent) -> AnyEvent {
    AnyEvent::Order(e)
}

#[test]
fn an_order_view_follows_every_step_and_payment_status() {
    let events = [
        placed("ord-1", "cus-1", 1_000),
        order_event(OrderEvent::PaymentAuthorized(order::OrderPaymentAuthorized {
            amount: eur(2_000),
            at: Timestamp(1_100),
        })),
        order_event(OrderEvent::Confirmed(order::OrderConfirmed { at: Timestamp(1_200) })),
        order_event(OrderEvent::Shipped(order::OrderShipped {
            carrier: "DHL".into(),
            tracking: "T1".into(),
            at: Timestamp(1_300),
        })),
        order_event(OrderEvent::Refunded(order::OrderRefunded {
            amount: eur(500),
            at: Timestamp(1_400),
        })),
    ];
    let view: OrderView = fold("order-ord-1", &events).expect("placed");
    assert_eq!(
        (view.status.as_str(), view.payment_status.as_str()),
        ("shipped", "partially_refunded")
    );
    assert_eq!((view.confirmed_at, view.shipped_at), (Some(1_200), Some(1_300)));
    assert_eq!((view.carrier.as_str(), view.tracking.as_str(), view.version), ("DHL", "T1", 4));
    assert_eq!((view.total_minor, view.refunded_minor, view.lines.len()), (2_000, 500, 1));
}

#[test]
fn a_cancelled_order_records_who_and_why() {
    let cancel = order_event(OrderEvent::Cancelled(order::OrderCancelled {
        reason: "changed mind".into(),
        by: Actor::Customer(CustomerId::parse("cus-1").expect("valid")),
        at: Timestamp(2_000),
    }));
    let view: OrderView =
        fold("order-ord-1", &[placed("ord-1", "cus-1", 1_000), cancel]).expect("placed");
    assert_eq!(
        (view.status.as_str(), view.cancelled_by.as_str(), view.cancel_reason.as_str()),
        ("cancelled", "customer", "changed mind")
    );
}

#[test]
fn a_status_change_moves_the_order_between_history_status_indexes() {
    let ns = ns("orders");
    let before: OrderView =
        fold("order-ord-1", &[placed("ord-1", "cus-1", 1_000)]).expect("placed");
    let mut after = before.clone();
    after.status = "confirmed".into();
    let changes = changes(&ns, "ord-1", Some(&before), Some(&after));
    let placed_key = "ordo:orders:v1:history:{cus-1}:status:placed".to_owned();
    let confirmed_key = "ordo:orders:v1:history:{cus-1}:status:confirmed".to_owned();
    assert!(changes.contains(&Change::ZRem { key: placed_key, member: "ord-1".into() }));
    assert!(changes.contains(&Change::ZAdd {
        key: confirmed_key,
        score: 1_000.0,
        member: "ord-1".into()
    }));
    assert!(
        !changes.iter().any(
            |c| matches!(c, Change::ZAdd { key, .. } if key == "ordo:orders:v1:history:{cus-1}")
        ),
        "the all-statuses history entry is unchanged, so it is not rewritten"
    );
    assert!(
        changes.contains(&Change::Set {
            key: order_document_key(&ns, "ord-1"),
            value: after.document(),
        }),
        "the stored document is the new view's"
    );
}

#[test]
fn an_order_view_round_trips_through_its_hash_fields() {
    let view: OrderView = fold("order-ord-1", &[placed("ord-1", "cus-1", 1_000)]).expect("placed");
    let fields = Fields(view.to_fields().into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
    assert_eq!(OrderView::from_fields(&fields), Some(view));
}

fn listed(name: &str, brand: &str) -> AnyEvent {
    AnyEvent::Product(ProductEvent::Listed(product::ProductListed {
        sku: Sku::parse("MUG-1").expect("valid"),
        name: name.into(),
        description: "Holds 350 ml of tea".into(),
        category: "Kitchen".into(),
        brand: brand.into(),
        price: eur(1_250),
        image_urls: vec![],
        at: Timestamp(0),
    }))
}

pub(super) fn product_event(e: ProductEvent) -> AnyEvent {
    AnyEvent::Product(e)
}

pub(super) fn reservation(id: &str) -> ReservationId {
    ReservationId::parse(id).expect("valid")
}

/// A listed mug with 5 received, 2 of them held by `cart-1`.
pub(super) fn mug_with_a_hold() -> Vec<AnyEvent> {
    vec![
        listed("Stoneware Mug", "Potter"),
        product_event(ProductEvent::StockReceived(product::StockReceived {
            quantity: 5,
            at: Timestamp(1),
        })),
        product_event(ProductEvent::StockReserved(product::StockReserved {
            reservation_id: reservation("cart-1"),
            quantity: 2,
            expires_at: Timestamp(100),
            at: Timestamp(2),
        })),
    ]
}

#[test]
fn a_stock_movement_rewrites_the_stored_availability_but_not_the_products_entry() {
    // Given a listed mug with a hold
    let ns = ns("catalogue");
    let before: ProductView = fold("product-MUG-1", &mug_with_a_hold()).expect("listed");
    let documents = documents_key(&ns);
    // When another cart holds one
    let hold = product_event(ProductEvent::StockReserved(product::StockReserved {
        reservation_id: reservation("cart-2"),
        quantity: 1,
        expires_at: Timestamp(100),
        at: Timestamp(3),
    }));
    let after = ProductView::apply(Some(before.clone()), &hold, &recorded("product-MUG-1", 3))
        .expect("kept");
    let moved = changes(&ns, "MUG-1", Some(&before), Some(&after));
    // Then only the availability is written, and the stored parts make the product's document
    let written: Vec<_> = moved
        .iter()
        .filter_map(|c| match c {
            Change::HSetField { key, field, value } if *key == documents => Some((field, value)),
            _ => None,
        })
        .collect();
    assert_eq!(written, vec![(&availability_field("MUG-1"), &"2".to_owned())]);
    assert_eq!(with_availability(&after.entry(), 2), after.document());
    // and the product's own document gets written whole again (what a walked search reads).
    let rewritten =
        Change::Set { key: product_document_key(&ns, "MUG-1"), value: after.document() };
    assert!(moved.contains(&rewritten), "{moved:?}");
    // and a new listing writes both.
    let listing = changes(&ns, "MUG-1", None, Some(&after));
    let fields: Vec<_> = listing
        .iter()
        .filter_map(|c| match c {
            Change::HSetField { key, field, .. } if *key == documents => Some(field.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(fields, vec!["MUG-1", "MUG-1:available"]);
}

#[test]
fn a_product_view_tracks_stock_and_holds() {
    let mut events = mug_with_a_hold();
    events.extend([
        product_event(ProductEvent::StockReserved(product::StockReserved {
            reservation_id: reservation("cart-2"),
            quantity: 3,
            expires_at: Timestamp(100),
            at: Timestamp(3),
        })),
        product_event(ProductEvent::ReservationCommitted(product::ReservationCommitted {
            reservation_id: reservation("cart-1"),
            quantity: 2,
            at: Timestamp(4),
        })),
    ]);
    let view: ProductView = fold("product-MUG-1", &events).expect("listed");
    assert_eq!((view.on_hand, view.available(), view.holds.len()), (3, 0, 1));
    let entries = view.index_entries(&ns("catalogue"));
    assert!(!entries.iter().any(
        |e| matches!(e, crate::change::IndexEntry::Set { key, .. } if key.ends_with(":instock"))
    ));
}

#[test]
fn given_a_product_with_holds_when_queries_read_its_listing_then_they_see_what_the_view_shows() {
    let view: ProductView = fold("product-MUG-1", &mug_with_a_hold()).expect("listed");
    let stored: std::collections::HashMap<_, _> = view.to_fields().into_iter().collect();

    let values = ProductListing::FIELDS.iter().map(|f| stored.get(f).cloned()).collect();
    let listing = ProductListing::from_values(values).expect("every listing field is stored");

    assert_eq!(
        (listing.sku.as_str(), listing.name.as_str(), listing.brand.as_str()),
        (view.sku.as_str(), view.name.as_str(), view.brand.as_str())
    );
    assert_eq!(
        (listing.price_minor, listing.available, listing.listed),
        (view.price_minor, 3, true)
    );
    assert_eq!(listing.image_urls, view.image_urls);
    assert_eq!(ProductListing::from_values(vec![None; 10]), None, "no such product");
}

#[test]
fn a_product_is_searchable_by_case_folded_name_brand_and_description_terms() {
    let view: ProductView =
        fold("product-MUG-1", &[listed("Stoneware MUG", "Potter & Co")]).expect("listed");
    let entries = view.index_entries(&ns("catalogue"));
    let term = |t: &str| {
        entries.iter().find_map(|e| match e {
            crate::change::IndexEntry::Sorted { key, score, .. }
                if key.ends_with(&format!(":term:{t}")) =>
            {
                Some(*score)
            }
            _ => None,
        })
    };
    assert_eq!(
        (term("mug"), term("potter"), term("tea"), term("&")),
        (Some(3.0), Some(2.0), Some(1.0), None)
    );
    assert!(entries.iter().any(|e| matches!(e, crate::change::IndexEntry::Sorted { key, score, .. } if key.ends_with(":category:kitchen") && *score == 1_250.0)));
}

#[test]
fn delisting_removes_a_product_from_every_search_index_but_keeps_its_page() {
    let ns = ns("catalogue");
    let before: ProductView = fold("product-MUG-1", &[listed("Mug", "Potter")]).expect("listed");
    let delist =
        product_event(ProductEvent::Delisted(product::ProductDelisted { at: Timestamp(9) }));
    let after = ProductView::apply(Some(before.clone()), &delist, &recorded("product-MUG-1", 1))
        .expect("kept");
    let changes = changes(&ns, "MUG-1", Some(&before), Some(&after));
    assert!(
        changes.iter().any(|c| matches!(c, Change::SetFields { .. })),
        "the product page still exists"
    );
    let removals =
        changes.iter().filter(|c| matches!(c, Change::ZRem { .. } | Change::SRem { .. })).count();
    assert_eq!(removals, before.index_entries(&ns).len());
    assert!(
        changes.contains(&Change::HDel { key: documents_key(&ns), field: "MUG-1".into() }),
        "its document leaves the catalogue's documents"
    );
    assert!(
        changes.contains(&Change::Delete { key: product_document_key(&ns, "MUG-1") }),
        "and its own document goes"
    );
}

#[test]
fn a_cart_view_totals_its_lines_and_follows_checkout() {
    let cart = CartId::parse("cart-1").expect("valid");
    let set = |sku: &str, quantity, at| {
        AnyEvent::Cart(CartEvent::ItemQuantitySet(cart::ItemQuantitySet {
            sku: Sku::parse(sku).expect("valid"),
            quantity,
            unit_price: eur(250),
            expires_at: Timestamp(at + 900),
            at: Timestamp(at),
        }))
    };
    let events = [
        AnyEvent::Cart(CartEvent::Opened(cart::CartOpened {
            cart_id: cart.clone(),
            customer_id: CustomerId::parse("cus-1").expect("valid"),
            ttl_ms: 900,
            expires_at: Timestamp(900),
            at: Timestamp(0),
        })),
        set("TEA-1", 1, 10),
        set("MUG-1", 2, 20),
        set("TEA-1", 3, 30),
        AnyEvent::Cart(CartEvent::CheckedOut(cart::CartCheckedOut {
            order_id: OrderId::parse("ord-9").expect("valid"),
            at: Timestamp(40),
        })),
    ];
    let view: CartView = fold("cart-cart-1", &events).expect("opened");
    let lines: Vec<_> = view.lines.iter().map(|l| (l.sku.as_str(), l.quantity)).collect();
    assert_eq!(lines, vec![("MUG-1", 2), ("TEA-1", 3)]);
    assert_eq!(
        (view.total_minor, view.expires_at, view.status.as_str(), view.order_id.as_str()),
        (1_250, 930, "checked_out", "ord-9")
    );
}

#[test]
fn events_of_other_aggregates_leave_a_view_alone() {
    let view = CartView {
        cart_id: "c".into(),
        customer_id: "u".into(),
        status: "open".into(),
        order_id: String::new(),
        lines: vec![],
        total_minor: 0,
        currency: String::new(),
        expires_at: 0,
        version: 0,
    };
    let other = placed("ord-1", "cus-1", 0);
    assert_eq!(
        CartView::apply(Some(view.clone()), &other, &recorded("order-ord-1", 0)),
        Some(view)
    );
}
