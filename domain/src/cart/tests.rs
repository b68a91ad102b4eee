//! One test per cart rule.

use super::*;
use crate::testing::DeciderTest;
use crate::{CartId, Currency, CustomerId, Money, MoneyError, OrderId, Sku, Timestamp};

const TTL: i64 = 900_000;

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("valid sku")
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn order(id: &str) -> OrderId {
    OrderId::parse(id).expect("valid order id")
}

fn opened() -> CartEvent {
    CartEvent::Opened(CartOpened {
        cart_id: CartId::parse("cart-1").expect("valid"),
        customer_id: CustomerId::parse("cus-1").expect("valid"),
        ttl_ms: TTL,
        expires_at: t(TTL),
        at: t(0),
    })
}

fn item_set(s: &str, quantity: u32, now: i64) -> CartEvent {
    CartEvent::ItemQuantitySet(ItemQuantitySet {
        sku: sku(s),
        quantity,
        unit_price: eur(500),
        expires_at: t(now + TTL),
        at: t(now),
    })
}

fn set(s: &str, quantity: u32, price: Money, now: i64) -> CartCommand {
    CartCommand::SetItemQuantity(SetItemQuantity {
        sku: sku(s),
        quantity,
        unit_price: price,
        now: t(now),
    })
}

fn checked_out(id: &str) -> CartEvent {
    CartEvent::CheckedOut(CartCheckedOut { order_id: order(id), at: t(20) })
}

fn check_out(id: &str, now: i64) -> CartCommand {
    CartCommand::CheckOut(CheckOut { order_id: order(id), now: t(now) })
}

fn open_cmd(ttl_ms: i64) -> CartCommand {
    CartCommand::Open(OpenCart {
        cart_id: CartId::parse("cart-1").expect("valid"),
        customer_id: CustomerId::parse("cus-1").expect("valid"),
        ttl_ms,
        now: t(0),
    })
}

#[test]
fn opens_a_cart_that_expires_after_its_ttl() {
    Cart::given([]).when(open_cmd(TTL)).then([opened()]);
}

#[test]
fn rejects_opening_a_cart_twice() {
    Cart::given([opened()]).when(open_cmd(TTL)).then_err(CartError::AlreadyOpened);
}

#[test]
fn rejects_a_ttl_outside_its_bounds() {
    Cart::given([]).when(open_cmd(0)).then_err(CartError::InvalidTtl(0));
    Cart::given([]).when(open_cmd(MAX_TTL_MS + 1)).then_err(CartError::InvalidTtl(MAX_TTL_MS + 1));
}

#[test]
fn adding_an_item_extends_the_expiry() {
    let state = Cart::given([opened()])
        .when(set("MUG-1", 2, eur(500), 10))
        .then([item_set("MUG-1", 2, 10)]);
    let cart = state.0.expect("opened");
    assert_eq!(cart.expires_at, t(10 + TTL));
    assert_eq!(cart.total(), Ok(Some(eur(1_000))));
}

#[test]
fn setting_quantity_zero_removes_the_line() {
    let state = Cart::given([opened(), item_set("MUG-1", 2, 10)])
        .when(set("MUG-1", 0, eur(500), 20))
        .then([CartEvent::ItemRemoved(ItemRemoved {
            sku: sku("MUG-1"),
            expires_at: t(20 + TTL),
            at: t(20),
        })]);
    assert!(state.0.expect("opened").lines.is_empty());
}

#[test]
fn setting_quantity_zero_on_a_missing_line_changes_nothing() {
    Cart::given([opened()]).when(set("MUG-1", 0, eur(500), 20)).then([]);
}

#[test]
fn rejects_a_quantity_above_the_line_limit() {
    Cart::given([opened()])
        .when(set("MUG-1", MAX_QUANTITY_PER_LINE + 1, eur(500), 10))
        .then_err(CartError::QuantityTooLarge(MAX_QUANTITY_PER_LINE + 1));
}

#[test]
fn rejects_more_lines_than_the_limit() {
    let lines = (0..MAX_LINES).map(|i| item_set(&format!("SKU-{i}"), 1, 10));
    let given: Vec<_> = std::iter::once(opened()).chain(lines).collect();
    Cart::given(given).when(set("SKU-NEW", 1, eur(500), 11)).then_err(CartError::TooManyLines);
}

#[test]
fn rejects_a_second_currency() {
    Cart::given([opened(), item_set("MUG-1", 1, 10)])
        .when(set("MUG-2", 1, Money::new(500, Currency::USD), 11))
        .then_err(CartError::Money(MoneyError::CurrencyMismatch {
            left: Currency::EUR,
            right: Currency::USD,
        }));
}

#[test]
fn rejects_a_non_positive_unit_price() {
    Cart::given([opened()])
        .when(set("MUG-1", 1, eur(0), 10))
        .then_err(CartError::PriceNotPositive(eur(0)));
}

#[test]
fn rejects_changes_after_checkout() {
    Cart::given([opened(), item_set("MUG-1", 1, 10), checked_out("ord-1")])
        .when(set("MUG-1", 3, eur(500), 30))
        .then_err(CartError::CheckedOut(order("ord-1")));
}

#[test]
fn rejects_changes_once_past_expiry_even_before_it_is_recorded() {
    Cart::given([opened()]).when(set("MUG-1", 1, eur(500), TTL)).then_err(CartError::Expired);
}

#[test]
fn rejects_changes_to_an_expired_cart() {
    let expired = CartEvent::Expired(CartExpired { at: t(TTL) });
    Cart::given([opened(), expired])
        .when(set("MUG-1", 1, eur(500), 5))
        .then_err(CartError::Expired);
}

#[test]
fn rejects_removing_an_item_that_is_not_there() {
    Cart::given([opened()])
        .when(CartCommand::RemoveItem(RemoveItem { sku: sku("MUG-1"), now: t(5) }))
        .then_err(CartError::ItemNotInCart(sku("MUG-1")));
}

#[test]
fn rejects_changes_to_a_cart_that_does_not_exist() {
    Cart::given([]).when(set("MUG-1", 1, eur(500), 5)).then_err(CartError::NotFound);
}

#[test]
fn checks_out_a_cart_with_items() {
    Cart::given([opened(), item_set("MUG-1", 1, 10)])
        .when(check_out("ord-1", 20))
        .then([checked_out("ord-1")]);
}

#[test]
fn rejects_checking_out_an_empty_cart() {
    Cart::given([opened()]).when(check_out("ord-1", 20)).then_err(CartError::Empty);
}

#[test]
fn a_retried_checkout_for_the_same_order_changes_nothing() {
    Cart::given([opened(), item_set("MUG-1", 1, 10), checked_out("ord-1")])
        .when(check_out("ord-1", 25))
        .then([]);
    Cart::given([opened(), item_set("MUG-1", 1, 10), checked_out("ord-1")])
        .when(check_out("ord-2", 25))
        .then_err(CartError::CheckedOut(order("ord-1")));
}

#[test]
fn expires_a_cart_that_is_due() {
    Cart::given([opened()])
        .when(CartCommand::Expire(ExpireCart { now: t(TTL) }))
        .then([CartEvent::Expired(CartExpired { at: t(TTL) })]);
}

#[test]
fn rejects_expiring_a_cart_before_it_is_due() {
    Cart::given([opened(), item_set("MUG-1", 1, 10)])
        .when(CartCommand::Expire(ExpireCart { now: t(TTL) }))
        .then_err(CartError::NotDue(t(10 + TTL)));
}

#[test]
fn expiring_twice_changes_nothing_and_a_checked_out_cart_never_expires() {
    let expired = CartEvent::Expired(CartExpired { at: t(TTL) });
    Cart::given([opened(), expired])
        .when(CartCommand::Expire(ExpireCart { now: t(TTL + 1) }))
        .then([]);
    Cart::given([opened(), item_set("MUG-1", 1, 10), checked_out("ord-1")])
        .when(CartCommand::Expire(ExpireCart { now: t(TTL * 3) }))
        .then_err(CartError::CheckedOut(order("ord-1")));
}

#[test]
fn rejects_a_line_that_would_take_the_total_past_the_limit() {
    // 2^62 a unit (a price listed before prices were bounded): 99 of them do not fit in i64.
    Cart::given([opened()])
        .when(set("MUG-1", 99, eur(1 << 62), 10))
        .then_err(CartError::TotalTooLarge);
    Cart::given([opened(), item_set("MUG-1", 1, 10)])
        .when(set("MUG-2", 1, eur(crate::MAX_AMOUNT_MINOR), 11))
        .then_err(CartError::TotalTooLarge);
}

#[test]
fn a_line_may_bring_the_total_exactly_to_the_limit() {
    Cart::given([opened(), item_set("MUG-1", 2, 10)])
        .when(set("MUG-2", 1, eur(crate::MAX_AMOUNT_MINOR - 1_000), 11))
        .then([CartEvent::ItemQuantitySet(ItemQuantitySet {
            sku: sku("MUG-2"),
            quantity: 1,
            unit_price: eur(crate::MAX_AMOUNT_MINOR - 1_000),
            expires_at: t(11 + TTL),
            at: t(11),
        })]);
}

proptest::proptest! {
    /// Whatever prices and quantities arrive, a cart's total is exact and within the limit:
    /// a line that would break it is refused, never wrapped or saturated.
    #[test]
    fn a_cart_total_is_always_exact_and_within_the_limit(
        lines in proptest::collection::vec((0usize..6, 1u32..=MAX_QUANTITY_PER_LINE, 1i64..=i64::MAX), 1..30)
    ) {
        use crate::Decider;
        let mut state = Cart::evolve(CartState::default(), &opened());
        for (i, (sku_index, quantity, price)) in lines.into_iter().enumerate() {
            let command = set(&format!("SKU-{sku_index}"), quantity, eur(price), 10 + i as i64);
            let Ok(events) = Cart::decide(&command, &state) else { continue };
            state = events.iter().fold(state, Cart::evolve);
            let cart = state.0.as_ref().expect("opened");
            let exact: i128 = cart.lines.values()
                .map(|l| i128::from(l.unit_price.minor) * i128::from(l.quantity))
                .sum();
            proptest::prop_assert!(exact <= i128::from(crate::MAX_AMOUNT_MINOR));
            proptest::prop_assert_eq!(cart.total().map(|t| t.map(|t| i128::from(t.minor))), Ok(Some(exact)));
        }
    }
}
