//! What happened to a cart.

use crate::{CartId, CustomerId, Money, OrderId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

/// Every event in a cart stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartEvent {
    /// The cart was opened.
    Opened(CartOpened),
    /// A line's quantity was set (added or changed).
    ItemQuantitySet(ItemQuantitySet),
    /// A line was removed.
    ItemRemoved(ItemRemoved),
    /// The cart became an order.
    CheckedOut(CartCheckedOut),
    /// The cart expired; its holds are to be released.
    Expired(CartExpired),
}

/// A cart was opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartOpened {
    /// The cart.
    pub cart_id: CartId,
    /// Its owner.
    pub customer_id: CustomerId,
    /// Idle time to expiry.
    pub ttl_ms: i64,
    /// First expiry.
    pub expires_at: Timestamp,
    /// When.
    pub at: Timestamp,
}

/// A line now holds `quantity` units at `unit_price`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemQuantitySet {
    /// The product.
    pub sku: Sku,
    /// New quantity (positive).
    pub quantity: u32,
    /// Unit price seen by the shopper.
    pub unit_price: Money,
    /// Expiry, pushed back by this activity.
    pub expires_at: Timestamp,
    /// When.
    pub at: Timestamp,
}

/// A line was removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRemoved {
    /// The product.
    pub sku: Sku,
    /// Expiry, pushed back by this activity.
    pub expires_at: Timestamp,
    /// When.
    pub at: Timestamp,
}

/// The cart became an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartCheckedOut {
    /// The order it became.
    pub order_id: OrderId,
    /// When.
    pub at: Timestamp,
}

/// The cart expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartExpired {
    /// When.
    pub at: Timestamp,
}
