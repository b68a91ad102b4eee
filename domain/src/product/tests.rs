//! One test per product rule, plus property tests of the stock invariants.

use super::*;
use crate::testing::DeciderTest;
use crate::{Currency, Decider, Money, ReservationId, Sku, Timestamp};
use proptest::prelude::*;

const EUR: Currency = Currency::EUR;

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

fn sku() -> Sku {
    Sku::parse("MUG-001").expect("valid sku")
}

fn rid(id: &str) -> ReservationId {
    ReservationId::parse(id).expect("valid reservation id")
}

fn list_mug() -> ListProduct {
    ListProduct {
        sku: sku(),
        name: "Stoneware mug".into(),
        description: "Holds 350 ml.".into(),
        category: "kitchen".into(),
        brand: "Potter & Co".into(),
        price: Money::new(1_250, EUR),
        image_urls: vec!["https://img.example/mug.jpg".into()],
        store_currency: EUR,
        now: t(0),
    }
}

fn listed() -> ProductEvent {
    ProductEvent::Listed(ProductListed {
        sku: sku(),
        name: "Stoneware mug".into(),
        description: "Holds 350 ml.".into(),
        category: "kitchen".into(),
        brand: "Potter & Co".into(),
        price: Money::new(1_250, EUR),
        image_urls: vec!["https://img.example/mug.jpg".into()],
        at: t(0),
    })
}

fn received(quantity: u32) -> ProductEvent {
    ProductEvent::StockReceived(StockReceived { quantity, at: t(0) })
}

fn reserved(id: &str, quantity: u32, expires_at: i64) -> ProductEvent {
    ProductEvent::StockReserved(StockReserved {
        reservation_id: rid(id),
        quantity,
        expires_at: t(expires_at),
        at: t(10),
    })
}

fn reserve(id: &str, quantity: u32, expires_at: i64, now: i64) -> ProductCommand {
    ProductCommand::Reserve(ReserveStock {
        reservation_id: rid(id),
        quantity,
        expires_at: t(expires_at),
        now: t(now),
    })
}

fn adjust(delta: i64, reason: &str, now: i64) -> ProductCommand {
    ProductCommand::AdjustStock(AdjustStock { delta, reason: reason.into(), now: t(now) })
}

#[test]
fn lists_a_valid_product() {
    Product::given([]).when(ProductCommand::List(list_mug())).then([listed()]);
}

#[test]
fn rejects_listing_twice() {
    Product::given([listed()])
        .when(ProductCommand::List(list_mug()))
        .then_err(ProductError::AlreadyListed);
}

#[test]
fn rejects_empty_or_overlong_names() {
    let cmd = ListProduct { name: "  ".into(), ..list_mug() };
    Product::given([]).when(ProductCommand::List(cmd)).then_err(ProductError::NameLength(2));
    let cmd = ListProduct { name: "x".repeat(121), ..list_mug() };
    Product::given([]).when(ProductCommand::List(cmd)).then_err(ProductError::NameLength(121));
}

#[test]
fn rejects_overlong_descriptions() {
    let cmd = ListProduct { description: "x".repeat(4_001), ..list_mug() };
    Product::given([])
        .when(ProductCommand::List(cmd))
        .then_err(ProductError::DescriptionTooLong(4_001));
}

#[test]
fn rejects_missing_category() {
    let cmd = ListProduct { category: "".into(), ..list_mug() };
    Product::given([])
        .when(ProductCommand::List(cmd))
        .then_err(ProductError::FacetLength { field: "category", len: 0 });
}

#[test]
fn rejects_non_http_image_urls() {
    let cmd = ListProduct { image_urls: vec!["ftp://x/y.png".into()], ..list_mug() };
    Product::given([])
        .when(ProductCommand::List(cmd))
        .then_err(ProductError::InvalidImageUrl("ftp://x/y.png".into()));
}

#[test]
fn rejects_a_zero_price() {
    let cmd = ListProduct { price: Money::new(0, EUR), ..list_mug() };
    Product::given([])
        .when(ProductCommand::List(cmd))
        .then_err(ProductError::PriceNotPositive(Money::new(0, EUR)));
}

#[test]
fn rejects_prices_outside_the_store_currency() {
    let cmd = ProductCommand::ChangePrice(ChangePrice {
        price: Money::new(999, Currency::USD),
        store_currency: EUR,
        now: t(1),
    });
    Product::given([listed()])
        .when(cmd)
        .then_err(ProductError::WrongCurrency { expected: EUR, got: Currency::USD });
}

#[test]
fn changes_the_price_and_ignores_an_unchanged_one() {
    let change = |minor| {
        ProductCommand::ChangePrice(ChangePrice {
            price: Money::new(minor, EUR),
            store_currency: EUR,
            now: t(5),
        })
    };
    let state = Product::given([listed()])
        .when(change(990))
        .then([ProductEvent::PriceChanged(PriceChanged { price: Money::new(990, EUR), at: t(5) })]);
    assert_eq!(state.listing.map(|l| l.price), Some(Money::new(990, EUR)));
    Product::given([listed()]).when(change(1_250)).then([]);
}

#[test]
fn rejects_stock_for_an_unknown_product() {
    Product::given([])
        .when(ProductCommand::ReceiveStock(ReceiveStock { quantity: 5, now: t(1) }))
        .then_err(ProductError::NotListed);
}

#[test]
fn receives_stock_onto_on_hand() {
    let state = Product::given([listed()])
        .when(ProductCommand::ReceiveStock(ReceiveStock { quantity: 5, now: t(0) }))
        .then([received(5)]);
    assert_eq!(state.on_hand, 5);
}

#[test]
fn rejects_receiving_zero_units() {
    Product::given([listed()])
        .when(ProductCommand::ReceiveStock(ReceiveStock { quantity: 0, now: t(0) }))
        .then_err(ProductError::QuantityNotPositive);
}

#[test]
fn adjusts_stock_with_a_reason() {
    let state = Product::given([listed(), received(5)]).when(adjust(-2, " broken ", 1)).then([
        ProductEvent::StockAdjusted(StockAdjusted { delta: -2, reason: "broken".into(), at: t(1) }),
    ]);
    assert_eq!(state.on_hand, 3);
}

#[test]
fn rejects_an_adjustment_without_reason() {
    Product::given([listed(), received(5)])
        .when(adjust(-1, "   ", 1))
        .then_err(ProductError::ReasonRequired);
}

#[test]
fn rejects_an_adjustment_that_would_eat_reserved_stock() {
    Product::given([listed(), received(5), reserved("cart-1", 3, 100)])
        .when(adjust(-3, "stock-take", 50))
        .then_err(ProductError::AdjustmentBelowAvailable { delta: -3, available: 2 });
}

#[test]
fn reserves_available_stock() {
    let state = Product::given([listed(), received(5)])
        .when(reserve("cart-1", 3, 100, 10))
        .then([reserved("cart-1", 3, 100)]);
    assert_eq!(state.available(t(10)), 2);
}

#[test]
fn rejects_reserving_more_than_available() {
    Product::given([listed(), received(5), reserved("cart-1", 3, 100)])
        .when(reserve("cart-2", 3, 100, 10))
        .then_err(ProductError::InsufficientStock { requested: 3, available: 2 });
}

#[test]
fn reserving_again_under_the_same_id_adjusts_the_hold() {
    let state = Product::given([listed(), received(5), reserved("cart-1", 3, 100)])
        .when(reserve("cart-1", 5, 100, 10))
        .then([reserved("cart-1", 5, 100)]);
    assert_eq!(state.reservations.len(), 1);
    assert_eq!(state.available(t(10)), 0);
}

#[test]
fn an_expired_hold_no_longer_blocks_stock_even_before_release() {
    // cart-1's hold ends at t=100; at t=100 exactly it no longer counts.
    Product::given([listed(), received(5), reserved("cart-1", 5, 100)])
        .when(reserve("cart-2", 5, 200, 100))
        .then([ProductEvent::StockReserved(StockReserved {
            reservation_id: rid("cart-2"),
            quantity: 5,
            expires_at: t(200),
            at: t(100),
        })]);
}

#[test]
fn rejects_a_reservation_that_is_already_expired() {
    Product::given([listed(), received(5)])
        .when(reserve("cart-1", 1, 10, 10))
        .then_err(ProductError::ExpiryNotInFuture { expires_at: t(10), now: t(10) });
}

#[test]
fn rejects_reserving_a_delisted_product() {
    let delisted = ProductEvent::Delisted(ProductDelisted { at: t(1) });
    Product::given([listed(), received(5), delisted])
        .when(reserve("cart-1", 1, 100, 10))
        .then_err(ProductError::Delisted);
}

#[test]
fn delisting_twice_is_a_no_op() {
    let delisted = ProductEvent::Delisted(ProductDelisted { at: t(1) });
    Product::given([listed(), delisted])
        .when(ProductCommand::Delist(DelistProduct { now: t(2) }))
        .then([]);
}

#[test]
fn releasing_returns_held_stock() {
    let state = Product::given([listed(), received(5), reserved("cart-1", 3, 100)])
        .when(ProductCommand::Release(ReleaseReservation {
            reservation_id: rid("cart-1"),
            now: t(20),
        }))
        .then([ProductEvent::ReservationReleased(ReservationReleased {
            reservation_id: rid("cart-1"),
            quantity: 3,
            at: t(20),
        })]);
    assert_eq!(state.available(t(20)), 5);
}

#[test]
fn rejects_releasing_an_unknown_reservation() {
    Product::given([listed(), received(5)])
        .when(ProductCommand::Release(ReleaseReservation {
            reservation_id: rid("nope"),
            now: t(1),
        }))
        .then_err(ProductError::UnknownReservation(rid("nope")));
}

#[test]
fn committing_a_hold_removes_the_units_from_on_hand() {
    let state = Product::given([listed(), received(5), reserved("order-1", 2, 100)])
        .when(ProductCommand::Commit(CommitReservation {
            reservation_id: rid("order-1"),
            now: t(50),
        }))
        .then([ProductEvent::ReservationCommitted(ReservationCommitted {
            reservation_id: rid("order-1"),
            quantity: 2,
            at: t(50),
        })]);
    assert_eq!((state.on_hand, state.available(t(50))), (3, 3));
}

#[test]
fn commits_a_lapsed_hold_only_if_its_units_are_still_free() {
    let given = [listed(), received(5), reserved("order-1", 3, 100), reserved("cart-2", 4, 500)];
    let commit =
        ProductCommand::Commit(CommitReservation { reservation_id: rid("order-1"), now: t(200) });
    Product::given(given)
        .when(commit)
        .then_err(ProductError::InsufficientStock { requested: 3, available: 1 });
}

// ---- properties ------------------------------------------------------------------------------

/// A command together with the time it is issued at; time only moves forward.
fn arb_command() -> impl Strategy<Value = ProductCommand> {
    let ids = prop::sample::select(vec!["c1", "c2", "c3", "o1"]);
    prop_oneof![
        (0u32..20)
            .prop_map(|q| ProductCommand::ReceiveStock(ReceiveStock { quantity: q, now: t(0) })),
        (-20i64..20).prop_map(|d| adjust(d, "count", 0)),
        (ids.clone(), 0u32..15, 1i64..60).prop_map(|(id, q, ttl)| reserve(id, q, ttl, 0)),
        ids.clone().prop_map(|id| ProductCommand::Release(ReleaseReservation {
            reservation_id: rid(id),
            now: t(0)
        })),
        ids.prop_map(|id| ProductCommand::Commit(CommitReservation {
            reservation_id: rid(id),
            now: t(0)
        })),
        Just(ProductCommand::Delist(DelistProduct { now: t(0) })),
    ]
}

/// Moves a command to time `now` (and its expiry relative to it), so sequences have a clock.
fn at(command: ProductCommand, now: i64) -> ProductCommand {
    match command {
        ProductCommand::ReceiveStock(c) => {
            ProductCommand::ReceiveStock(ReceiveStock { now: t(now), ..c })
        }
        ProductCommand::AdjustStock(c) => {
            ProductCommand::AdjustStock(AdjustStock { now: t(now), ..c })
        }
        ProductCommand::Reserve(c) => ProductCommand::Reserve(ReserveStock {
            expires_at: t(now + c.expires_at.0),
            now: t(now),
            ..c
        }),
        ProductCommand::Release(c) => {
            ProductCommand::Release(ReleaseReservation { now: t(now), ..c })
        }
        ProductCommand::Commit(c) => ProductCommand::Commit(CommitReservation { now: t(now), ..c }),
        other => other,
    }
}

/// A deliberately naive model of the stock rules, written independently of `decide`.
#[derive(Default)]
struct Model {
    on_hand: i64,
    holds: std::collections::BTreeMap<String, (i64, i64)>,
}

impl Model {
    fn held(&self, now: i64, except: &str) -> i64 {
        self.holds
            .iter()
            .filter(|(id, (_, exp))| id.as_str() != except && *exp > now)
            .map(|(_, (q, _))| q)
            .sum()
    }
}

proptest! {
    #[test]
    fn stock_never_goes_negative_and_matches_a_model(
        steps in prop::collection::vec((arb_command(), 0i64..10), 1..60)
    ) {
        let mut state = Product::fold(&[listed()]);
        let mut model = Model::default();
        let mut now = 0;
        for (command, dt) in steps {
            now += dt;
            let command = at(command, now);
            let Ok(events) = Product::decide(&command, &state) else { continue };
            state = events.iter().fold(state, Product::evolve);
            match &command {
                ProductCommand::ReceiveStock(c) => model.on_hand += i64::from(c.quantity),
                ProductCommand::AdjustStock(c) => model.on_hand += c.delta,
                ProductCommand::Reserve(c) => {
                    model.holds.insert(c.reservation_id.to_string(), (i64::from(c.quantity), c.expires_at.0));
                }
                ProductCommand::Release(c) => { model.holds.remove(c.reservation_id.as_str()); }
                ProductCommand::Commit(c) => {
                    let (q, _) = model.holds.remove(c.reservation_id.as_str()).unwrap_or_default();
                    model.on_hand -= q;
                }
                _ => {}
            }
            prop_assert!(state.on_hand >= 0, "on_hand went negative: {}", state.on_hand);
            prop_assert!(state.available(t(now)) >= 0, "available went negative");
            prop_assert_eq!(state.on_hand, model.on_hand);
            prop_assert_eq!(state.available(t(now)), model.on_hand - model.held(now, ""));
            prop_assert_eq!(state.reservations.len(), model.holds.len());
        }
    }
}

#[test]
fn rejects_a_price_above_what_a_cart_may_total() {
    let too_high = Money::new(crate::MAX_AMOUNT_MINOR + 1, EUR);
    Product::given([])
        .when(ProductCommand::List(ListProduct { price: too_high, ..list_mug() }))
        .then_err(ProductError::PriceTooHigh(too_high));
    let change =
        |price| ProductCommand::ChangePrice(ChangePrice { price, store_currency: EUR, now: t(5) });
    Product::given([listed()])
        .when(change(too_high))
        .then_err(ProductError::PriceTooHigh(too_high));
    let at_limit = Money::new(crate::MAX_AMOUNT_MINOR, EUR);
    Product::given([listed()])
        .when(change(at_limit))
        .then([ProductEvent::PriceChanged(PriceChanged { price: at_limit, at: t(5) })]);
}
