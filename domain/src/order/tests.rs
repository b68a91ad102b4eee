//! One test per order rule, plus property tests for transitions and totals.

use super::*;
use crate::testing::DeciderTest;
use crate::{
    Currency, CustomerId, Decider, Money, MoneyError, OrderId, ReservationId, Sku, Timestamp,
};
use proptest::prelude::*;

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn address() -> Address {
    Address {
        name: "Ada Lovelace".into(),
        line1: "1 Analytical St".into(),
        line2: String::new(),
        city: "London".into(),
        postal_code: "N1 9GU".into(),
        country: "GB".into(),
    }
}

fn line(sku: &str, quantity: u32, unit: i64) -> NewOrderLine {
    NewOrderLine {
        sku: Sku::parse(sku).expect("valid"),
        name: format!("{sku} name"),
        quantity,
        unit_price: eur(unit),
    }
}

fn place_cmd(lines: Vec<NewOrderLine>) -> PlaceOrder {
    PlaceOrder {
        order_id: OrderId::parse("ord-1").expect("valid"),
        customer_id: CustomerId::parse("cus-1").expect("valid"),
        reservation_id: ReservationId::parse("cart-1").expect("valid"),
        lines,
        shipping_address: address(),
        payment_token: "tok_approve".into(),
        placed_at: t(0),
    }
}

/// The order placed by [`place_cmd`] with two mugs at 12.50 and one pot at 30.00.
fn placed() -> OrderEvent {
    let events = Order::decide(
        &OrderCommand::Place(place_cmd(vec![line("MUG-1", 2, 1_250), line("POT-1", 1, 3_000)])),
        &OrderState::default(),
    );
    events.expect("valid order").remove(0)
}

fn authorized() -> OrderEvent {
    OrderEvent::PaymentAuthorized(OrderPaymentAuthorized { amount: eur(5_500), at: t(1) })
}

fn declined() -> OrderEvent {
    OrderEvent::PaymentDeclined(OrderPaymentDeclined { reason: "card declined".into(), at: t(1) })
}

fn confirmed() -> OrderEvent {
    OrderEvent::Confirmed(OrderConfirmed { at: t(2) })
}

fn shipped() -> OrderEvent {
    OrderEvent::Shipped(OrderShipped { carrier: "DHL".into(), tracking: "JD0001".into(), at: t(3) })
}

fn cancelled() -> OrderEvent {
    OrderEvent::Cancelled(OrderCancelled {
        reason: "changed mind".into(),
        by: Actor::System,
        at: t(4),
    })
}

fn refunded(minor: i64) -> OrderEvent {
    OrderEvent::Refunded(OrderRefunded { amount: eur(minor), at: t(5) })
}

fn cancel() -> OrderCommand {
    OrderCommand::Cancel(CancelOrder { reason: "changed mind".into(), by: Actor::System, at: t(4) })
}

fn ship() -> OrderCommand {
    OrderCommand::Ship(ShipOrder { carrier: "DHL".into(), tracking: "JD0001".into(), at: t(3) })
}

fn refund(minor: i64) -> OrderCommand {
    OrderCommand::Refund(RefundOrder { amount: eur(minor), at: t(5) })
}

#[test]
fn placing_computes_line_and_order_totals() {
    let OrderEvent::Placed(e) = placed() else { panic!("expected OrderPlaced") };
    let line_totals: Vec<_> = e.lines.iter().map(|l| l.line_total).collect();
    assert_eq!(line_totals, vec![eur(2_500), eur(3_000)]);
    assert_eq!(e.total, eur(5_500));
}

#[test]
fn rejects_an_order_without_lines() {
    Order::given([])
        .when(OrderCommand::Place(place_cmd(vec![])))
        .then_err(OrderError::LineCount(0));
}

#[test]
fn rejects_the_same_sku_on_two_lines() {
    let cmd = place_cmd(vec![line("MUG-1", 1, 100), line("MUG-1", 2, 100)]);
    Order::given([])
        .when(OrderCommand::Place(cmd))
        .then_err(OrderError::DuplicateSku("MUG-1".into()));
}

#[test]
fn rejects_mixed_currencies_in_one_order() {
    let mut usd = line("POT-1", 1, 100);
    usd.unit_price = Money::new(100, Currency::USD);
    let cmd = place_cmd(vec![line("MUG-1", 1, 100), usd]);
    Order::given([]).when(OrderCommand::Place(cmd)).then_err(OrderError::Money(
        MoneyError::CurrencyMismatch { left: Currency::EUR, right: Currency::USD },
    ));
}

#[test]
fn rejects_a_total_that_overflows() {
    let cmd = place_cmd(vec![line("MUG-1", 2, i64::MAX / 2 + 1)]);
    Order::given([])
        .when(OrderCommand::Place(cmd))
        .then_err(OrderError::Money(MoneyError::Overflow));
}

#[test]
fn rejects_an_address_without_a_valid_country() {
    let mut cmd = place_cmd(vec![line("MUG-1", 1, 100)]);
    cmd.shipping_address.country = "Germany".into();
    Order::given([]).when(OrderCommand::Place(cmd)).then_err(OrderError::InvalidCountry);
}

#[test]
fn rejects_placing_the_same_order_twice() {
    Order::given([placed()])
        .when(OrderCommand::Place(place_cmd(vec![line("MUG-1", 1, 100)])))
        .then_err(OrderError::AlreadyPlaced);
}

#[test]
fn an_authorization_for_the_order_total_confirms_the_order_in_the_same_step() {
    let state = Order::given([placed()])
        .when(OrderCommand::RecordPaymentAuthorized(RecordPaymentAuthorized {
            amount: eur(5_500),
            at: t(1),
        }))
        .then([authorized(), OrderEvent::Confirmed(OrderConfirmed { at: t(1) })]);
    assert_eq!(state.0.map(|o| o.status), Some(OrderStatus::Confirmed));
}

#[test]
fn an_authorization_recorded_again_changes_nothing() {
    Order::given([placed(), authorized(), confirmed()])
        .when(OrderCommand::RecordPaymentAuthorized(RecordPaymentAuthorized {
            amount: eur(5_500),
            at: t(3),
        }))
        .then([]);
}

#[test]
fn rejects_an_authorization_for_another_amount() {
    Order::given([placed()])
        .when(OrderCommand::RecordPaymentAuthorized(RecordPaymentAuthorized {
            amount: eur(5_000),
            at: t(1),
        }))
        .then_err(OrderError::PaymentAmountMismatch { expected: eur(5_500), got: eur(5_000) });
}

#[test]
fn rejects_an_authorization_after_a_decline() {
    Order::given([placed(), declined()])
        .when(OrderCommand::RecordPaymentAuthorized(RecordPaymentAuthorized {
            amount: eur(5_500),
            at: t(1),
        }))
        .then_err(OrderError::PaymentAlreadyRecorded);
}

#[test]
fn confirms_only_after_payment() {
    Order::given([placed()])
        .when(OrderCommand::Confirm(ConfirmOrder { at: t(2) }))
        .then_err(OrderError::PaymentNotAuthorized);
    Order::given([placed(), authorized()])
        .when(OrderCommand::Confirm(ConfirmOrder { at: t(2) }))
        .then([confirmed()]);
}

#[test]
fn rejects_shipping_an_unconfirmed_order() {
    Order::given([placed(), authorized()]).when(ship()).then_err(OrderError::NotConfirmed);
}

#[test]
fn ships_a_confirmed_order_and_then_delivers_it() {
    Order::given([placed(), authorized(), confirmed()]).when(ship()).then([shipped()]);
    let state = Order::given([placed(), authorized(), confirmed(), shipped()])
        .when(OrderCommand::Deliver(DeliverOrder { at: t(6) }))
        .then([OrderEvent::Delivered(OrderDelivered { at: t(6) })]);
    assert_eq!(state.0.map(|o| o.status), Some(OrderStatus::Delivered));
}

#[test]
fn rejects_delivering_before_shipment() {
    Order::given([placed(), authorized(), confirmed()])
        .when(OrderCommand::Deliver(DeliverOrder { at: t(6) }))
        .then_err(OrderError::NotShipped);
}

#[test]
fn cancels_a_placed_or_confirmed_order() {
    Order::given([placed()]).when(cancel()).then([cancelled()]);
    Order::given([placed(), authorized(), confirmed()]).when(cancel()).then([cancelled()]);
}

#[test]
fn rejects_cancelling_a_shipped_order() {
    Order::given([placed(), authorized(), confirmed(), shipped()])
        .when(cancel())
        .then_err(OrderError::AlreadyShipped);
}

#[test]
fn rejects_cancelling_twice() {
    Order::given([placed(), cancelled()]).when(cancel()).then_err(OrderError::AlreadyCancelled);
}

#[test]
fn a_declined_order_can_be_cancelled_but_not_confirmed() {
    Order::given([placed(), declined()])
        .when(OrderCommand::Confirm(ConfirmOrder { at: t(2) }))
        .then_err(OrderError::PaymentNotAuthorized);
    Order::given([placed(), declined()]).when(cancel()).then([cancelled()]);
}

#[test]
fn records_a_late_authorization_on_a_cancelled_order_so_it_can_be_voided() {
    Order::given([placed(), cancelled()])
        .when(OrderCommand::RecordPaymentAuthorized(RecordPaymentAuthorized {
            amount: eur(5_500),
            at: t(9),
        }))
        .then([OrderEvent::PaymentAuthorized(OrderPaymentAuthorized {
            amount: eur(5_500),
            at: t(9),
        })]);
}

#[test]
fn rejects_a_refund_before_payment() {
    Order::given([placed()]).when(refund(100)).then_err(OrderError::PaymentNotAuthorized);
}

#[test]
fn refunds_in_parts_up_to_what_was_paid() {
    let state = Order::given([placed(), authorized(), refunded(5_000)])
        .when(refund(500))
        .then([refunded(500)]);
    assert_eq!(state.0.map(|o| o.refundable()), Some(0));
}

#[test]
fn rejects_refunding_more_than_was_paid_in_total() {
    Order::given([placed(), authorized(), refunded(5_000)])
        .when(refund(501))
        .then_err(OrderError::RefundExceedsPayment { requested: eur(501), refundable: eur(500) });
}

#[test]
fn rejects_a_zero_refund() {
    Order::given([placed(), authorized()]).when(refund(0)).then_err(OrderError::InvalidRefund);
}

// ---- properties ------------------------------------------------------------------------------

fn arb_command() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        Just(OrderCommand::Place(place_cmd(vec![
            line("MUG-1", 2, 1_250),
            line("POT-1", 1, 3_000)
        ]))),
        (prop_oneof![Just(5_500i64), 1i64..10_000]).prop_map(|m| {
            OrderCommand::RecordPaymentAuthorized(RecordPaymentAuthorized {
                amount: eur(m),
                at: t(1),
            })
        }),
        Just(OrderCommand::RecordPaymentDeclined(RecordPaymentDeclined {
            reason: "no".into(),
            at: t(1)
        })),
        Just(OrderCommand::Confirm(ConfirmOrder { at: t(2) })),
        Just(ship()),
        Just(OrderCommand::Deliver(DeliverOrder { at: t(3) })),
        Just(cancel()),
        (-100i64..6_000).prop_map(refund),
    ]
}

fn legal(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    from == to
        || matches!(
            (from, to),
            (Placed, Confirmed)
                | (Confirmed, Shipped)
                | (Shipped, Delivered)
                | (Placed | Confirmed, Cancelled)
        )
}

proptest! {
    #[test]
    fn an_order_never_reaches_an_illegal_state(commands in prop::collection::vec(arb_command(), 1..40)) {
        let mut state = OrderState::default();
        for command in commands {
            let before = state.0.as_ref().map(|o| o.status);
            let Ok(events) = Order::decide(&command, &state) else { continue };
            state = events.iter().fold(state, Order::evolve);
            let Some(order) = &state.0 else { continue };
            if let Some(before) = before {
                prop_assert!(legal(before, order.status), "illegal move {before:?} -> {:?}", order.status);
            }
            if matches!(order.status, OrderStatus::Confirmed | OrderStatus::Shipped | OrderStatus::Delivered) {
                prop_assert_eq!(order.payment, PaymentStatus::Authorized);
            }
            prop_assert!(order.refunded.minor >= 0 && order.refunded.minor <= order.paid.minor);
            if order.payment == PaymentStatus::Authorized {
                prop_assert_eq!(order.paid, order.total);
            }
        }
    }

    #[test]
    fn totals_are_exact_or_refused_never_wrapped(
        lines in prop::collection::vec((1u32..=u32::MAX, 1i64..=i64::MAX), 1..5)
    ) {
        let new_lines: Vec<_> = lines.iter().enumerate()
            .map(|(i, (q, p))| line(&format!("SKU-{i}"), *q, *p))
            .collect();
        let exact: i128 = lines.iter().map(|(q, p)| i128::from(*q) * i128::from(*p)).sum();
        let each_fits = lines.iter().all(|(q, p)| i64::try_from(i128::from(*q) * i128::from(*p)).is_ok());
        match Order::decide(&OrderCommand::Place(place_cmd(new_lines)), &OrderState::default()) {
            Ok(events) => {
                let OrderEvent::Placed(e) = &events[0] else { panic!("expected OrderPlaced") };
                prop_assert_eq!(i128::from(e.total.minor), exact);
            }
            Err(OrderError::Money(MoneyError::Overflow)) => {
                // Positive partial sums only grow, so refusal is right exactly when a line total
                // or the grand total leaves i64.
                prop_assert!(!each_fits || i64::try_from(exact).is_err());
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}
