//! Checkout and expiry reactions, one rule per test, and a whole checkout run in memory.

use super::*;
use crate::cart::{Cart, CartCommand, CartEvent, CartExpired, CheckOut, OpenCart, SetItemQuantity};
use crate::order::*;
use crate::payment::*;
use crate::product::{self, ProductCommand};
use crate::{CartId, Currency, CustomerId, Decider, Money, OrderId, ReservationId, Sku, Timestamp};
use std::collections::BTreeMap;

const NOW: Timestamp = Timestamp(1_000);

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn order_id() -> OrderId {
    OrderId::parse("ord-1").expect("valid")
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("valid")
}

fn place(token: &str) -> OrderCommand {
    OrderCommand::Place(PlaceOrder {
        order_id: order_id(),
        customer_id: CustomerId::parse("cus-1").expect("valid"),
        reservation_id: ReservationId::parse("cart-1").expect("valid"),
        lines: vec![
            NewOrderLine {
                sku: sku("MUG-1"),
                name: "Mug".into(),
                quantity: 2,
                unit_price: eur(1_000),
            },
            NewOrderLine {
                sku: sku("POT-1"),
                name: "Pot".into(),
                quantity: 1,
                unit_price: eur(3_000),
            },
        ],
        shipping_address: Address {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: String::new(),
            city: "Paris".into(),
            postal_code: "75001".into(),
            country: "FR".into(),
        },
        payment_token: token.into(),
        placed_at: Timestamp(0),
    })
}

/// Folds `commands` into an order and returns the last event with the state after it.
fn order_after(commands: &[OrderCommand]) -> (OrderEvent, PlacedOrder) {
    let mut state = OrderState::default();
    let mut last = None;
    for c in commands {
        let events = Order::decide(c, &state).expect("command accepted");
        state = events.iter().fold(state, Order::evolve);
        last = events.last().cloned().or(last);
    }
    (last.expect("some event"), state.0.expect("placed"))
}

fn authorize() -> OrderCommand {
    OrderCommand::RecordPaymentAuthorized(RecordPaymentAuthorized {
        amount: eur(5_000),
        at: Timestamp(1),
    })
}

fn cancel() -> OrderCommand {
    OrderCommand::Cancel(CancelOrder {
        reason: "changed mind".into(),
        by: Actor::System,
        at: Timestamp(3),
    })
}

fn products_commanded(reactions: &[Reaction]) -> Vec<(String, ProductCommand)> {
    reactions
        .iter()
        .filter_map(|r| match r {
            Reaction::Product { sku, command } => Some((sku.to_string(), command.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn placing_an_order_requests_authorization_of_its_total() {
    let (event, order) = order_after(&[place("tok_approve")]);
    assert_eq!(
        react_to_order(&event, &order, NOW),
        vec![Reaction::Payment {
            order_id: order_id(),
            command: PaymentCommand::RequestAuthorization(RequestAuthorization {
                order_id: order_id(),
                amount: eur(5_000),
                token: "tok_approve".into(),
                at: NOW,
            }),
        }]
    );
}

#[test]
fn a_requested_payment_goes_to_the_provider() {
    let event = PaymentEvent::Requested(PaymentRequested {
        order_id: order_id(),
        amount: eur(5_000),
        token: "tok".into(),
        at: NOW,
    });
    assert_eq!(
        react_to_payment(&event, &order_id(), NOW),
        vec![Reaction::AuthorizeWithProvider {
            order_id: order_id(),
            amount: eur(5_000),
            token: "tok".into()
        }]
    );
}

#[test]
fn an_authorization_recorded_without_a_confirmation_is_followed_by_one() {
    // Given an order whose payment was recorded on its own (as Ordo did before an authorization
    // confirmed the order in the same step)
    let placed = Order::decide(&place("tok"), &OrderState::default()).expect("placed");
    let paid =
        OrderEvent::PaymentAuthorized(OrderPaymentAuthorized { amount: eur(5_000), at: NOW });
    let state = placed.iter().chain([&paid]).fold(OrderState::default(), Order::evolve);
    // When the process reacts to that event, then it confirms the order
    let confirm = OrderCommand::Confirm(ConfirmOrder { at: NOW });
    assert_eq!(
        react_to_order(&paid, state.0.as_ref().expect("placed"), NOW),
        vec![Reaction::Order { order_id: order_id(), command: confirm.clone() }]
    );
    // and the same reaction to today's authorization, which confirmed the order itself,
    // changes nothing.
    let (last, today) = order_after(&[place("tok"), authorize()]);
    assert!(matches!(last, OrderEvent::Confirmed(_)), "{last:?}");
    assert_eq!(Order::decide(&confirm, &OrderState(Some(today))), Ok(vec![]));
}

#[test]
fn confirmation_commits_every_lines_reservation() {
    let confirm = OrderCommand::Confirm(ConfirmOrder { at: Timestamp(2) });
    let (event, order) = order_after(&[place("tok"), authorize(), confirm]);
    let skus: Vec<_> = products_commanded(&react_to_order(&event, &order, NOW))
        .into_iter()
        .map(|(sku, c)| (sku, matches!(c, ProductCommand::Commit(_))))
        .collect();
    assert_eq!(skus, vec![("MUG-1".to_owned(), true), ("POT-1".to_owned(), true)]);
}

#[test]
fn a_declined_payment_cancels_the_order() {
    let decline = OrderCommand::RecordPaymentDeclined(RecordPaymentDeclined {
        reason: "no funds".into(),
        at: NOW,
    });
    let (event, order) = order_after(&[place("tok"), decline]);
    let reactions = react_to_order(&event, &order, NOW);
    assert!(matches!(
        reactions.as_slice(),
        [Reaction::Order {
            command: OrderCommand::Cancel(CancelOrder { by: Actor::System, .. }),
            ..
        }]
    ));
}

#[test]
fn cancelling_before_confirmation_releases_the_reservations() {
    let (event, order) = order_after(&[place("tok"), cancel()]);
    let reactions = react_to_order(&event, &order, NOW);
    assert_eq!(reactions.len(), 2, "one release per line and no void: nothing was authorized");
    assert!(products_commanded(&reactions)
        .iter()
        .all(|(_, c)| matches!(c, ProductCommand::Release(_))));
}

#[test]
fn cancelling_after_confirmation_restocks_and_voids_the_payment() {
    let confirm = OrderCommand::Confirm(ConfirmOrder { at: Timestamp(2) });
    let (event, order) = order_after(&[place("tok"), authorize(), confirm, cancel()]);
    let reactions = react_to_order(&event, &order, NOW);
    let restocked: Vec<_> = products_commanded(&reactions)
        .into_iter()
        .filter_map(|(sku, c)| match c {
            ProductCommand::AdjustStock(a) => Some((sku, a.delta)),
            _ => None,
        })
        .collect();
    assert_eq!(restocked, vec![("MUG-1".to_owned(), 2), ("POT-1".to_owned(), 1)]);
    assert!(reactions
        .iter()
        .any(|r| matches!(r, Reaction::Payment { command: PaymentCommand::Void(_), .. })));
}

#[test]
fn a_late_authorization_on_a_cancelled_order_is_voided() {
    let (event, order) = order_after(&[place("tok"), cancel(), authorize()]);
    assert_eq!(
        react_to_order(&event, &order, NOW),
        vec![Reaction::Payment {
            order_id: order_id(),
            command: PaymentCommand::Void(VoidPayment { at: NOW })
        }]
    );
}

fn open_cart_with_mug() -> crate::cart::CartState {
    let commands = [
        CartCommand::Open(OpenCart {
            cart_id: CartId::parse("cart-1").expect("valid"),
            customer_id: CustomerId::parse("cus-1").expect("valid"),
            ttl_ms: 100,
            now: Timestamp(0),
        }),
        CartCommand::SetItemQuantity(SetItemQuantity {
            sku: sku("MUG-1"),
            quantity: 2,
            unit_price: eur(1_000),
            now: Timestamp(50),
        }),
    ];
    commands.iter().fold(Cart::initial_state(), |state, c| {
        let events = Cart::decide(c, &state).expect("accepted");
        events.iter().fold(state, Cart::evolve)
    })
}

#[test]
fn a_cart_is_due_once_its_extended_expiry_passes() {
    let cart = open_cart_with_mug();
    assert_eq!(expiry_due_at(&cart), Some(Timestamp(150)));
    assert!(!is_due(&cart, Timestamp(149)));
    assert!(is_due(&cart, Timestamp(150)));
}

#[test]
fn a_checked_out_cart_is_never_due() {
    let cart = open_cart_with_mug();
    let checkout = CartCommand::CheckOut(CheckOut { order_id: order_id(), now: Timestamp(60) });
    let events = Cart::decide(&checkout, &cart).expect("accepted");
    let cart = events.iter().fold(cart, Cart::evolve);
    assert_eq!(expiry_due_at(&cart), None);
    assert!(!is_due(&cart, Timestamp(10_000)));
}

#[test]
fn the_due_time_read_off_each_event_matches_the_state_it_produces() {
    let set = |s: &str, quantity: u32, at: i64| {
        CartCommand::SetItemQuantity(SetItemQuantity {
            sku: sku(s),
            quantity,
            unit_price: eur(1_000),
            now: Timestamp(at),
        })
    };
    let commands = [
        CartCommand::Open(OpenCart {
            cart_id: CartId::parse("cart-1").expect("valid"),
            customer_id: CustomerId::parse("cus-1").expect("valid"),
            ttl_ms: 100,
            now: Timestamp(0),
        }),
        set("MUG-1", 2, 50),
        set("POT-1", 1, 55),
        set("POT-1", 0, 60),
        CartCommand::CheckOut(CheckOut { order_id: order_id(), now: Timestamp(80) }),
    ];
    let mut state = Cart::initial_state();
    let mut seen = Vec::new();
    for command in &commands {
        for event in Cart::decide(command, &state).expect("accepted") {
            state = Cart::evolve(state, &event);
            assert_eq!(expiry_due_after(&event), expiry_due_at(&state), "after {event:?}");
            seen.push(expiry_due_after(&event));
        }
    }
    let due = [Some(100), Some(150), Some(155), Some(160), None].map(|t| t.map(Timestamp));
    assert_eq!(seen, due);
    let expired = CartEvent::Expired(CartExpired { at: Timestamp(200) });
    let state = Cart::evolve(open_cart_with_mug(), &expired);
    assert_eq!(expiry_due_after(&expired), expiry_due_at(&state));
}

#[test]
fn an_expired_cart_releases_each_reserved_line() {
    let expired = CartEvent::Expired(CartExpired { at: Timestamp(150) });
    let cart = Cart::evolve(open_cart_with_mug(), &expired);
    let reactions = react_to_cart(&expired, cart.0.as_ref().expect("opened"), NOW);
    assert_eq!(
        products_commanded(&reactions),
        vec![(
            "MUG-1".to_owned(),
            ProductCommand::Release(product::ReleaseReservation {
                reservation_id: ReservationId::parse("cart-1").expect("valid"),
                now: NOW,
            })
        )]
    );
}

/// Runs checkout to completion in memory: every reaction is sent through the deciders, the
/// provider answers by token, until nothing more happens. Returns final order, payment and stock.
fn run_checkout(
    token: &str,
) -> (PlacedOrder, PaymentState, BTreeMap<String, product::ProductState>) {
    let mut products = BTreeMap::new();
    for (s, stock) in [("MUG-1", 5), ("POT-1", 1)] {
        let commands = [
            ProductCommand::List(product::ListProduct {
                sku: sku(s),
                name: s.into(),
                description: String::new(),
                category: "kitchen".into(),
                brand: "Acme".into(),
                price: eur(1_000),
                image_urls: vec![],
                store_currency: Currency::EUR,
                now: Timestamp(0),
            }),
            ProductCommand::ReceiveStock(product::ReceiveStock {
                quantity: stock,
                now: Timestamp(0),
            }),
            ProductCommand::Reserve(product::ReserveStock {
                reservation_id: ReservationId::parse("cart-1").expect("valid"),
                quantity: if s == "MUG-1" { 2 } else { 1 },
                expires_at: Timestamp(900_000),
                now: Timestamp(0),
            }),
        ];
        let state = commands.iter().fold(product::Product::initial_state(), |st, c| {
            let events = product::Product::decide(c, &st).expect("accepted");
            events.iter().fold(st, product::Product::evolve)
        });
        products.insert(s.to_owned(), state);
    }
    let mut order = OrderState::default();
    let mut payment = PaymentState::default();
    let mut queue: Vec<Reaction> =
        vec![Reaction::Order { order_id: order_id(), command: place(token) }];
    while let Some(reaction) = queue.pop() {
        match reaction {
            Reaction::Order { command, .. } => {
                for e in Order::decide(&command, &order).expect("order command accepted") {
                    order = Order::evolve(order, &e);
                    queue.extend(react_to_order(&e, order.0.as_ref().expect("placed"), NOW));
                }
            }
            Reaction::Payment { command, .. } => {
                for e in Payment::decide(&command, &payment).expect("payment command accepted") {
                    payment = Payment::evolve(payment, &e);
                    queue.extend(react_to_payment(&e, &order_id(), NOW));
                }
            }
            Reaction::Product { sku, command } => {
                let state = products.remove(sku.as_str()).expect("known product");
                let events =
                    product::Product::decide(&command, &state).expect("product command accepted");
                products
                    .insert(sku.to_string(), events.iter().fold(state, product::Product::evolve));
            }
            Reaction::AuthorizeWithProvider { token, .. } => {
                let command = if token == "tok_approve" {
                    PaymentCommand::RecordAuthorized(RecordAuthorized {
                        provider_ref: "sim_1".into(),
                        at: NOW,
                    })
                } else {
                    PaymentCommand::RecordDeclined(RecordDeclined {
                        reason: "declined".into(),
                        at: NOW,
                    })
                };
                queue.push(Reaction::Payment { order_id: order_id(), command });
            }
            Reaction::Cart { .. } => unreachable!("checkout sends no cart commands"),
        }
    }
    (order.0.expect("placed"), payment, products)
}

#[test]
fn an_approved_checkout_ends_confirmed_with_stock_committed() {
    let (order, payment, products) = run_checkout("tok_approve");
    assert_eq!((order.status, order.payment), (OrderStatus::Confirmed, PaymentStatus::Authorized));
    assert!(matches!(payment, PaymentState::Authorized { .. }));
    let on_hand: Vec<_> = products.values().map(|p| (p.on_hand, p.reservations.len())).collect();
    assert_eq!(on_hand, vec![(3, 0), (0, 0)]);
}

#[test]
fn a_declined_checkout_ends_cancelled_with_stock_back() {
    let (order, payment, products) = run_checkout("tok_decline");
    assert_eq!((order.status, order.payment), (OrderStatus::Cancelled, PaymentStatus::Declined));
    assert_eq!(payment, PaymentState::Declined);
    let stock: Vec<_> = products.values().map(|p| (p.on_hand, p.available(NOW))).collect();
    assert_eq!(stock, vec![(5, 5), (1, 1)]);
}
