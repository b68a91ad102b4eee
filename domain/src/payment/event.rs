//! What happened to a payment.

use crate::{Money, OrderId, Timestamp};
use serde::{Deserialize, Serialize};

/// Every event in a payment stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEvent {
    /// Authorization asked for; the provider call follows.
    Requested(PaymentRequested),
    /// Approved.
    Authorized(PaymentAuthorized),
    /// Declined.
    Declined(PaymentDeclined),
    /// Released without capture.
    Voided(PaymentVoided),
    /// Money returned.
    Refunded(PaymentRefunded),
}

/// Authorization requested.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequested {
    /// The order paying.
    pub order_id: OrderId,
    /// Amount.
    pub amount: Money,
    /// Provider token.
    pub token: String,
    /// When.
    pub at: Timestamp,
}

/// Approved by the provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorized {
    /// Provider's reference.
    pub provider_ref: String,
    /// Amount authorized.
    pub amount: Money,
    /// When.
    pub at: Timestamp,
}

/// Declined by the provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDeclined {
    /// Reason.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// Voided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentVoided {
    /// When.
    pub at: Timestamp,
}

/// Refunded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    /// Amount.
    pub amount: Money,
    /// When.
    pub at: Timestamp,
}
