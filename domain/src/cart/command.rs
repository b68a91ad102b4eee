//! What a shopper (or the expiry process) asks of a cart.

use crate::{CartId, CustomerId, Money, OrderId, Sku, Timestamp};

/// Every command a cart accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CartCommand {
    /// Start a cart.
    Open(OpenCart),
    /// Set a line's quantity; 0 removes the line.
    SetItemQuantity(SetItemQuantity),
    /// Remove a line.
    RemoveItem(RemoveItem),
    /// Turn the cart into an order.
    CheckOut(CheckOut),
    /// End an idle cart whose expiry has passed.
    Expire(ExpireCart),
}

/// Open a new cart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenCart {
    /// The new cart's id.
    pub cart_id: CartId,
    /// Owner.
    pub customer_id: CustomerId,
    /// Idle time after which the cart expires; each change restarts it.
    pub ttl_ms: i64,
    /// When the command was issued.
    pub now: Timestamp,
}

/// Set how many units of a SKU the cart holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetItemQuantity {
    /// The product.
    pub sku: Sku,
    /// New quantity; 0 removes the line.
    pub quantity: u32,
    /// Current unit price, looked up by the caller from the catalogue.
    pub unit_price: Money,
    /// When the command was issued.
    pub now: Timestamp,
}

/// Remove a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoveItem {
    /// The product to remove.
    pub sku: Sku,
    /// When the command was issued.
    pub now: Timestamp,
}

/// Check out into an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOut {
    /// Id of the order this cart becomes.
    pub order_id: OrderId,
    /// When the command was issued.
    pub now: Timestamp,
}

/// Expire the cart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpireCart {
    /// When the command was issued; must be at or after the cart's expiry.
    pub now: Timestamp,
}
