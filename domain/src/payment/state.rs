//! A payment as `decide` sees it.

use super::event::PaymentEvent;
use crate::{Money, OrderId};

/// Life of the one authorization.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum PaymentState {
    /// Nothing asked yet.
    #[default]
    NotRequested,
    /// Asked; waiting for the provider.
    Requested {
        /// The order.
        order_id: OrderId,
        /// Amount asked for.
        amount: Money,
    },
    /// Approved.
    Authorized {
        /// The order.
        order_id: OrderId,
        /// Amount authorized.
        amount: Money,
        /// Provider's reference.
        provider_ref: String,
        /// Refunded so far.
        refunded: i64,
    },
    /// Declined; final.
    Declined,
    /// Voided; final.
    Voided,
}

impl PaymentState {
    /// Applies one event.
    pub fn apply(self, event: &PaymentEvent) -> Self {
        match (self, event) {
            (_, PaymentEvent::Requested(e)) => {
                PaymentState::Requested { order_id: e.order_id.clone(), amount: e.amount }
            }
            (PaymentState::Requested { order_id, .. }, PaymentEvent::Authorized(e)) => {
                PaymentState::Authorized {
                    order_id,
                    amount: e.amount,
                    provider_ref: e.provider_ref.clone(),
                    refunded: 0,
                }
            }
            (_, PaymentEvent::Declined(_)) => PaymentState::Declined,
            (_, PaymentEvent::Voided(_)) => PaymentState::Voided,
            (
                PaymentState::Authorized { order_id, amount, provider_ref, refunded },
                PaymentEvent::Refunded(e),
            ) => PaymentState::Authorized {
                order_id,
                amount,
                provider_ref,
                refunded: refunded.saturating_add(e.amount.minor),
            },
            // Combinations `decide` never produces leave the state as it was.
            (state, _) => state,
        }
    }
}
