//! One test per payment rule, and the "never twice" property.

use super::*;
use crate::testing::DeciderTest;
use crate::{Currency, Decider, Money, OrderId, Timestamp};
use proptest::prelude::*;

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn order_id() -> OrderId {
    OrderId::parse("ord-1").expect("valid")
}

fn request_cmd(minor: i64) -> PaymentCommand {
    PaymentCommand::RequestAuthorization(RequestAuthorization {
        order_id: order_id(),
        amount: eur(minor),
        token: "tok_approve".into(),
        at: Timestamp(0),
    })
}

fn requested() -> PaymentEvent {
    PaymentEvent::Requested(PaymentRequested {
        order_id: order_id(),
        amount: eur(5_500),
        token: "tok_approve".into(),
        at: Timestamp(0),
    })
}

fn authorized() -> PaymentEvent {
    PaymentEvent::Authorized(PaymentAuthorized {
        provider_ref: "sim_1".into(),
        amount: eur(5_500),
        at: Timestamp(1),
    })
}

fn record_authorized(provider_ref: &str) -> PaymentCommand {
    PaymentCommand::RecordAuthorized(RecordAuthorized {
        provider_ref: provider_ref.into(),
        at: Timestamp(1),
    })
}

fn declined() -> PaymentEvent {
    PaymentEvent::Declined(PaymentDeclined {
        reason: "insufficient funds".into(),
        at: Timestamp(1),
    })
}

#[test]
fn requests_an_authorization() {
    Payment::given([]).when(request_cmd(5_500)).then([requested()]);
}

#[test]
fn a_retried_identical_request_changes_nothing() {
    Payment::given([requested()]).when(request_cmd(5_500)).then([]);
}

#[test]
fn rejects_a_second_different_request() {
    Payment::given([requested()]).when(request_cmd(9_999)).then_err(PaymentError::AlreadyRequested);
}

#[test]
fn never_requests_again_after_a_decline() {
    Payment::given([requested(), declined()])
        .when(request_cmd(5_500))
        .then_err(PaymentError::AlreadyRequested);
}

#[test]
fn records_the_authorization_for_the_requested_amount() {
    Payment::given([requested()]).when(record_authorized("sim_1")).then([authorized()]);
}

#[test]
fn rejects_a_second_authorization() {
    Payment::given([requested(), authorized()]).when(record_authorized("sim_1")).then([]);
    Payment::given([requested(), authorized()])
        .when(record_authorized("sim_2"))
        .then_err(PaymentError::AlreadySettled("authorized"));
}

#[test]
fn rejects_an_authorization_that_was_never_requested() {
    Payment::given([]).when(record_authorized("sim_1")).then_err(PaymentError::NotRequested);
}

#[test]
fn rejects_an_authorization_after_a_decline() {
    Payment::given([requested(), declined()])
        .when(record_authorized("sim_1"))
        .then_err(PaymentError::AlreadySettled("declined"));
}

#[test]
fn voids_an_authorized_payment() {
    Payment::given([requested(), authorized()])
        .when(PaymentCommand::Void(VoidPayment { at: Timestamp(2) }))
        .then([PaymentEvent::Voided(PaymentVoided { at: Timestamp(2) })]);
}

#[test]
fn rejects_refunding_more_than_authorized() {
    let refund = |m| PaymentCommand::Refund(RefundPayment { amount: eur(m), at: Timestamp(3) });
    let partly = PaymentEvent::Refunded(PaymentRefunded { amount: eur(5_000), at: Timestamp(3) });
    Payment::given([requested(), authorized(), partly]).when(refund(501)).then_err(
        PaymentError::RefundExceedsAuthorization { requested: eur(501), refundable: 500 },
    );
}

fn arb_command() -> impl Strategy<Value = PaymentCommand> {
    prop_oneof![
        (1i64..3).prop_map(|m| request_cmd(m * 5_500)),
        prop::sample::select(vec!["sim_1", "sim_2"]).prop_map(record_authorized),
        Just(PaymentCommand::RecordDeclined(RecordDeclined {
            reason: "no".into(),
            at: Timestamp(1)
        })),
        Just(PaymentCommand::Void(VoidPayment { at: Timestamp(2) })),
    ]
}

proptest! {
    #[test]
    fn an_order_is_authorized_at_most_once(commands in prop::collection::vec(arb_command(), 1..30)) {
        let mut state = PaymentState::default();
        let mut authorizations = 0;
        for command in commands {
            let Ok(events) = Payment::decide(&command, &state) else { continue };
            authorizations += events.iter().filter(|e| matches!(e, PaymentEvent::Authorized(_))).count();
            state = events.iter().fold(state, Payment::evolve);
        }
        prop_assert!(authorizations <= 1, "authorized {authorizations} times");
    }
}
