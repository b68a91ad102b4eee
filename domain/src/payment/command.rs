//! What the checkout process asks of a payment.

use crate::{Money, OrderId, Timestamp};

/// Every command a payment accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentCommand {
    /// Ask for the order's one authorization.
    RequestAuthorization(RequestAuthorization),
    /// The provider approved.
    RecordAuthorized(RecordAuthorized),
    /// The provider declined or did not answer in time.
    RecordDeclined(RecordDeclined),
    /// Release an authorization that will not be captured.
    Void(VoidPayment),
    /// Return money.
    Refund(RefundPayment),
}

/// Request authorization of `amount` for the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestAuthorization {
    /// The order paying; also the provider's idempotency key.
    pub order_id: OrderId,
    /// Amount to authorize; positive.
    pub amount: Money,
    /// Provider token identifying the payment method.
    pub token: String,
    /// When.
    pub at: Timestamp,
}

/// The provider approved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordAuthorized {
    /// Provider's reference for the authorization.
    pub provider_ref: String,
    /// When.
    pub at: Timestamp,
}

/// The provider declined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordDeclined {
    /// Provider's reason.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// Void the authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoidPayment {
    /// When.
    pub at: Timestamp,
}

/// Refund part of the authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundPayment {
    /// Amount; positive and within what remains.
    pub amount: Money,
    /// When.
    pub at: Timestamp,
}
