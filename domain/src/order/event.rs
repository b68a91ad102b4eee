//! What happened to an order.

use super::command::{Actor, Address};
use crate::{CustomerId, Money, OrderId, ReservationId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

/// Every event in an order stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "placement happens once per order; boxing it would only move the cost into an allocation"
)]
pub enum OrderEvent {
    /// The order was placed.
    Placed(OrderPlaced),
    /// Its payment was authorized.
    PaymentAuthorized(OrderPaymentAuthorized),
    /// Its payment was declined.
    PaymentDeclined(OrderPaymentDeclined),
    /// It was confirmed for fulfilment.
    Confirmed(OrderConfirmed),
    /// It shipped.
    Shipped(OrderShipped),
    /// It arrived.
    Delivered(OrderDelivered),
    /// It was cancelled.
    Cancelled(OrderCancelled),
    /// Money went back to the customer.
    Refunded(OrderRefunded),
}

/// A priced order line; totals are computed once, here, and stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The product.
    pub sku: Sku,
    /// Product name at order time.
    pub name: String,
    /// Units.
    pub quantity: u32,
    /// Price per unit.
    pub unit_price: Money,
    /// `unit_price * quantity`.
    pub line_total: Money,
}

/// The order was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// The order.
    pub order_id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// Reservation holding its stock.
    pub reservation_id: ReservationId,
    /// Priced lines.
    pub lines: Vec<OrderLine>,
    /// Sum of line totals.
    pub total: Money,
    /// Destination.
    pub shipping_address: Address,
    /// Token for the payment authorization.
    pub payment_token: String,
    /// When.
    pub placed_at: Timestamp,
}

/// Payment authorized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaymentAuthorized {
    /// Amount authorized.
    pub amount: Money,
    /// When.
    pub at: Timestamp,
}

/// Payment declined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaymentDeclined {
    /// Provider's reason.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// Confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    /// When.
    pub at: Timestamp,
}

/// Shipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    /// Carrier.
    pub carrier: String,
    /// Tracking number.
    pub tracking: String,
    /// When.
    pub at: Timestamp,
}

/// Delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDelivered {
    /// When.
    pub at: Timestamp,
}

/// Cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// Why.
    pub reason: String,
    /// Who.
    pub by: Actor,
    /// When.
    pub at: Timestamp,
}

/// Refunded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefunded {
    /// Amount returned.
    pub amount: Money,
    /// When.
    pub at: Timestamp,
}
