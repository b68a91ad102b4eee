//! One test per rule of the cross-aggregate plans: given the aggregates' events, when a use
//! case is planned, then these commands (or this refusal).

use super::*;
use crate::cart::{
    Cart, CartCheckedOut, CartError, CartEvent, CartOpened, CartState, CheckOut, ItemQuantitySet,
    SetItemQuantity,
};
use crate::order::{Address, NewOrderLine};
use crate::product::{
    Product, ProductCommand, ProductError, ProductEvent, ProductListed, ProductState,
    ReleaseReservation, ReserveStock, StockReceived,
};
use crate::{CartId, Currency, CustomerId, Decider, Money, OrderId, ReservationId, Sku, Timestamp};
use std::collections::BTreeMap;

const TTL: i64 = 900_000;

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

fn mug() -> Sku {
    Sku::parse("MUG-1").expect("sku")
}

fn cart_id() -> CartId {
    CartId::parse("cart-1").expect("cart id")
}

fn hold() -> ReservationId {
    ReservationId::from(&cart_id())
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn cart(events: &[CartEvent]) -> CartState {
    let opened = CartEvent::Opened(CartOpened {
        cart_id: cart_id(),
        customer_id: CustomerId::parse("cus-1").expect("customer"),
        ttl_ms: TTL,
        expires_at: t(TTL),
        at: t(0),
    });
    std::iter::once(&opened).chain(events).fold(CartState::default(), Cart::evolve)
}

fn line(quantity: u32, at: i64) -> CartEvent {
    CartEvent::ItemQuantitySet(ItemQuantitySet {
        sku: mug(),
        quantity,
        unit_price: eur(1_250),
        expires_at: t(at + TTL),
        at: t(at),
    })
}

/// A listed mug with `stock` units on hand.
fn product(stock: u32) -> ProductState {
    let listed = ProductEvent::Listed(ProductListed {
        sku: mug(),
        name: "Stoneware mug".into(),
        description: String::new(),
        category: "kitchen".into(),
        brand: "Potter".into(),
        price: eur(1_250),
        image_urls: vec![],
        at: t(0),
    });
    let received = ProductEvent::StockReceived(StockReceived { quantity: stock, at: t(0) });
    [listed, received].iter().fold(ProductState::default(), Product::evolve)
}

#[test]
fn a_new_line_holds_the_stock_first_and_releases_it_if_the_cart_refuses() {
    let plan = plan_set_item(&cart(&[]), &product(10), &mug(), 2, t(10)).expect("planned");
    assert_eq!(
        plan,
        LinePlan::Hold {
            reserve: ReserveStock {
                reservation_id: hold(),
                quantity: 2,
                expires_at: t(10 + TTL),
                now: t(10)
            },
            set: SetItemQuantity { sku: mug(), quantity: 2, unit_price: eur(1_250), now: t(10) },
            undo: ProductCommand::Release(ReleaseReservation {
                reservation_id: hold(),
                now: t(10)
            }),
        }
    );
}

#[test]
fn changing_a_line_undoes_to_the_hold_it_had_before() {
    let plan =
        plan_set_item(&cart(&[line(3, 5)]), &product(10), &mug(), 1, t(10)).expect("planned");
    let LinePlan::Hold { undo, .. } = plan else { panic!("expected a hold, got {plan:?}") };
    assert_eq!(
        undo,
        ProductCommand::Reserve(ReserveStock {
            reservation_id: hold(),
            quantity: 3,
            expires_at: t(5 + TTL),
            now: t(10),
        })
    );
}

#[test]
fn quantity_zero_drops_the_line_and_then_releases_its_hold() {
    let plan =
        plan_set_item(&cart(&[line(3, 5)]), &product(10), &mug(), 0, t(10)).expect("planned");
    assert_eq!(
        plan,
        LinePlan::Drop {
            set: SetItemQuantity { sku: mug(), quantity: 0, unit_price: eur(1_250), now: t(10) },
            release: ReleaseReservation { reservation_id: hold(), now: t(10) },
        }
    );
    assert_eq!(plan_set_item(&cart(&[]), &product(10), &mug(), 0, t(10)), Ok(LinePlan::Nothing));
}

#[test]
fn refuses_before_holding_anything_what_the_cart_would_refuse() {
    let closed = CartEvent::CheckedOut(CartCheckedOut {
        order_id: OrderId::parse("ord-1").expect("order"),
        at: t(5),
    });
    assert_eq!(
        plan_set_item(&cart(&[line(1, 1), closed]), &product(10), &mug(), 2, t(10)),
        Err(SetItemRefused::Cart(CartError::CheckedOut(OrderId::parse("ord-1").expect("order"))))
    );
    assert_eq!(
        plan_set_item(&cart(&[]), &product(500), &mug(), 100, t(10)),
        Err(SetItemRefused::Cart(CartError::QuantityTooLarge(100)))
    );
    assert_eq!(
        plan_set_item(&cart(&[]), &product(10), &mug(), 1, t(TTL + 1)),
        Err(SetItemRefused::Cart(CartError::Expired))
    );
}

#[test]
fn refuses_before_holding_anything_what_the_product_would_refuse() {
    assert_eq!(
        plan_set_item(&cart(&[]), &ProductState::default(), &mug(), 1, t(10)),
        Err(SetItemRefused::Product(ProductError::NotListed))
    );
    assert_eq!(
        plan_set_item(&cart(&[]), &product(1), &mug(), 2, t(10)),
        Err(SetItemRefused::Product(ProductError::InsufficientStock {
            requested: 2,
            available: 1
        }))
    );
}

fn address() -> Address {
    Address {
        name: "Ada Lovelace".into(),
        line1: "1 Main St".into(),
        line2: String::new(),
        city: "Berlin".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    }
}

#[test]
fn checkout_renews_every_hold_then_places_the_order_then_closes_the_cart() {
    let order_id = OrderId::parse("ord-1").expect("order");
    let names = BTreeMap::from([(mug(), "Stoneware mug".to_owned())]);
    let plan = plan_checkout(
        &cart(&[line(2, 5)]),
        &names,
        order_id.clone(),
        address(),
        "tok_visa".into(),
        t(10),
        60_000,
    )
    .expect("planned");
    assert_eq!(
        plan.renew,
        vec![(
            mug(),
            ReserveStock { reservation_id: hold(), quantity: 2, expires_at: t(60_010), now: t(10) }
        )]
    );
    assert_eq!(
        plan.place.lines,
        vec![NewOrderLine {
            sku: mug(),
            name: "Stoneware mug".into(),
            quantity: 2,
            unit_price: eur(1_250)
        }]
    );
    assert_eq!(
        (plan.place.order_id.clone(), plan.place.reservation_id.clone()),
        (order_id.clone(), hold())
    );
    assert_eq!(plan.close, CheckOut { order_id, now: t(10) });
}

#[test]
fn checkout_refuses_an_empty_or_closed_cart() {
    let order_id = OrderId::parse("ord-1").expect("order");
    let plan = |state: &CartState| {
        plan_checkout(
            state,
            &BTreeMap::new(),
            order_id.clone(),
            address(),
            "tok".into(),
            t(10),
            60_000,
        )
    };
    assert_eq!(plan(&cart(&[])), Err(CartError::Empty));
    let closed = CartEvent::CheckedOut(CartCheckedOut { order_id: order_id.clone(), at: t(6) });
    assert_eq!(plan(&cart(&[line(1, 5), closed])), Err(CartError::CheckedOut(order_id.clone())));
}
