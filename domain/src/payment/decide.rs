//! The payment's rules: one authorization per order, ever; refunds within what was authorized.

use super::command::*;
use super::event::*;
use super::state::PaymentState;
use crate::{Decider, Money};

/// A payment command that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// A second, different authorization request for the same order.
    #[error("this order already has a payment authorization request")]
    AlreadyRequested,
    /// Recording an answer with no request outstanding.
    #[error("no authorization was requested")]
    NotRequested,
    /// The authorization was already answered the other way, or is final.
    #[error("payment is already settled as {0}")]
    AlreadySettled(&'static str),
    /// Amount zero or negative.
    #[error("amount must be positive")]
    AmountNotPositive,
    /// Payment token missing.
    #[error("a payment token is required")]
    TokenRequired,
    /// Voiding or refunding a payment that is not authorized.
    #[error("payment is not authorized")]
    NotAuthorized,
    /// Refund above what remains or in another currency.
    #[error("refund of {requested} exceeds the refundable {refundable} minor units")]
    RefundExceedsAuthorization {
        /// Requested.
        requested: Money,
        /// Remaining, in minor units of the payment's currency.
        refundable: i64,
    },
}

/// The payment decider.
pub struct Payment;

impl Decider for Payment {
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type State = PaymentState;
    type Error = PaymentError;
    const CATEGORY: &'static str = "payment";

    fn initial_state() -> PaymentState {
        PaymentState::default()
    }

    fn decide(
        command: &PaymentCommand,
        state: &PaymentState,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        match command {
            PaymentCommand::RequestAuthorization(c) => request(c, state),
            PaymentCommand::RecordAuthorized(c) => authorized(c, state),
            PaymentCommand::RecordDeclined(c) => declined(c, state),
            PaymentCommand::Void(c) => void(c, state),
            PaymentCommand::Refund(c) => refund(c, state),
        }
    }

    fn evolve(state: PaymentState, event: &PaymentEvent) -> PaymentState {
        state.apply(event)
    }
}

fn settled_as(state: &PaymentState) -> &'static str {
    match state {
        PaymentState::NotRequested => "not requested",
        PaymentState::Requested { .. } => "requested",
        PaymentState::Authorized { .. } => "authorized",
        PaymentState::Declined => "declined",
        PaymentState::Voided => "voided",
    }
}

fn request(
    c: &RequestAuthorization,
    state: &PaymentState,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    match state {
        PaymentState::NotRequested => {}
        // The same request again is a retry: already done.
        PaymentState::Requested { order_id, amount }
            if *order_id == c.order_id && *amount == c.amount =>
        {
            return Ok(vec![]);
        }
        _ => return Err(PaymentError::AlreadyRequested),
    }
    if !c.amount.is_positive() {
        return Err(PaymentError::AmountNotPositive);
    }
    if c.token.trim().is_empty() {
        return Err(PaymentError::TokenRequired);
    }
    Ok(vec![PaymentEvent::Requested(PaymentRequested {
        order_id: c.order_id.clone(),
        amount: c.amount,
        token: c.token.clone(),
        at: c.at,
    })])
}

fn authorized(
    c: &RecordAuthorized,
    state: &PaymentState,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    match state {
        PaymentState::Requested { amount, .. } => {
            Ok(vec![PaymentEvent::Authorized(PaymentAuthorized {
                provider_ref: c.provider_ref.clone(),
                amount: *amount,
                at: c.at,
            })])
        }
        PaymentState::Authorized { provider_ref, .. } if *provider_ref == c.provider_ref => {
            Ok(vec![])
        }
        PaymentState::NotRequested => Err(PaymentError::NotRequested),
        other => Err(PaymentError::AlreadySettled(settled_as(other))),
    }
}

fn declined(c: &RecordDeclined, state: &PaymentState) -> Result<Vec<PaymentEvent>, PaymentError> {
    match state {
        PaymentState::Requested { .. } => {
            Ok(vec![PaymentEvent::Declined(PaymentDeclined { reason: c.reason.clone(), at: c.at })])
        }
        PaymentState::Declined => Ok(vec![]),
        PaymentState::NotRequested => Err(PaymentError::NotRequested),
        other => Err(PaymentError::AlreadySettled(settled_as(other))),
    }
}

fn void(c: &VoidPayment, state: &PaymentState) -> Result<Vec<PaymentEvent>, PaymentError> {
    match state {
        PaymentState::Authorized { .. } => {
            Ok(vec![PaymentEvent::Voided(PaymentVoided { at: c.at })])
        }
        PaymentState::Voided => Ok(vec![]),
        _ => Err(PaymentError::NotAuthorized),
    }
}

fn refund(c: &RefundPayment, state: &PaymentState) -> Result<Vec<PaymentEvent>, PaymentError> {
    let PaymentState::Authorized { amount, refunded, .. } = state else {
        return Err(PaymentError::NotAuthorized);
    };
    if !c.amount.is_positive() {
        return Err(PaymentError::AmountNotPositive);
    }
    let refundable = amount.minor - refunded;
    if c.amount.currency != amount.currency || c.amount.minor > refundable {
        return Err(PaymentError::RefundExceedsAuthorization { requested: c.amount, refundable });
    }
    Ok(vec![PaymentEvent::Refunded(PaymentRefunded { amount: c.amount, at: c.at })])
}
