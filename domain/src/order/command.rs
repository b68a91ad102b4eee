//! What shoppers, staff and the checkout process ask of an order.

use crate::{CustomerId, Money, OrderId, ReservationId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

/// Every command an order accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "placement happens once per order; boxing it would only move the cost into an allocation"
)]
pub enum OrderCommand {
    /// Create the order.
    Place(PlaceOrder),
    /// The payment provider authorized the amount.
    RecordPaymentAuthorized(RecordPaymentAuthorized),
    /// The payment provider declined (or timed out).
    RecordPaymentDeclined(RecordPaymentDeclined),
    /// Paid: the order goes to fulfilment.
    Confirm(ConfirmOrder),
    /// Handed to a carrier.
    Ship(ShipOrder),
    /// Arrived.
    Deliver(DeliverOrder),
    /// Called off before shipment.
    Cancel(CancelOrder),
    /// Money back, in part or in full.
    Refund(RefundOrder),
}

/// Where to send the goods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// Optional second line.
    pub line2: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country: String,
}

/// Who did something, for the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// The customer who owns the order.
    Customer(CustomerId),
    /// A member of staff, by subject.
    Admin(String),
    /// A process acting on an event (payment declined, ...).
    System,
}

/// One line of a new order, priced by the caller from the cart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrderLine {
    /// The product.
    pub sku: Sku,
    /// Product name at the time of ordering.
    pub name: String,
    /// Units; positive.
    pub quantity: u32,
    /// Price per unit; positive.
    pub unit_price: Money,
}

/// Place an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceOrder {
    /// New order's id.
    pub order_id: OrderId,
    /// Who orders.
    pub customer_id: CustomerId,
    /// The reservation holding this order's stock (the cart's id).
    pub reservation_id: ReservationId,
    /// What is ordered; one line per SKU.
    pub lines: Vec<NewOrderLine>,
    /// Where to send it.
    pub shipping_address: Address,
    /// Payment-provider token for the one authorization.
    pub payment_token: String,
    /// When.
    pub placed_at: Timestamp,
}

/// Record a successful authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordPaymentAuthorized {
    /// Amount authorized; must equal the order total.
    pub amount: Money,
    /// When.
    pub at: Timestamp,
}

/// Record a declined authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordPaymentDeclined {
    /// Provider's reason.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// Confirm a paid order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmOrder {
    /// When.
    pub at: Timestamp,
}

/// Ship a confirmed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipOrder {
    /// Carrier name.
    pub carrier: String,
    /// Carrier's tracking number.
    pub tracking: String,
    /// When.
    pub at: Timestamp,
}

/// Mark a shipped order delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverOrder {
    /// When.
    pub at: Timestamp,
}

/// Cancel an order that has not shipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelOrder {
    /// Why; required.
    pub reason: String,
    /// Who.
    pub by: Actor,
    /// When.
    pub at: Timestamp,
}

/// Refund part of what was paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundOrder {
    /// Amount; positive, at most what remains refundable.
    pub amount: Money,
    /// When.
    pub at: Timestamp,
}
