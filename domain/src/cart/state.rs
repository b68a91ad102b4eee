//! A cart as `decide` sees it.

use super::event::CartEvent;
use crate::{CartId, Currency, CustomerId, Money, MoneyError, OrderId, Sku, Timestamp};
use std::collections::BTreeMap;

/// `None` until the cart is opened.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CartState(pub Option<OpenedCart>);

/// Where a cart is in its life.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CartStatus {
    /// Accepting changes.
    Open,
    /// Became this order; final.
    CheckedOut(OrderId),
    /// Expired; final.
    Expired,
}

/// An opened cart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OpenedCart {
    /// The cart.
    pub cart_id: CartId,
    /// Owner.
    pub customer_id: CustomerId,
    /// Life stage.
    pub status: CartStatus,
    /// Lines by SKU, in SKU order so totals and views are deterministic.
    pub lines: BTreeMap<Sku, CartLine>,
    /// Idle time to expiry.
    pub ttl_ms: i64,
    /// The cart is due to expire at this instant.
    pub expires_at: Timestamp,
}

/// One line of a cart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CartLine {
    /// Units.
    pub quantity: u32,
    /// Price per unit when last set.
    pub unit_price: Money,
}

impl OpenedCart {
    /// Currency of the lines, if any.
    pub fn currency(&self) -> Option<Currency> {
        self.lines.values().next().map(|l| l.unit_price.currency)
    }

    /// Sum of line totals, or `None` for an empty cart.
    pub fn total(&self) -> Result<Option<Money>, MoneyError> {
        let Some(currency) = self.currency() else { return Ok(None) };
        let line_totals = self
            .lines
            .values()
            .map(|l| l.unit_price.checked_mul(l.quantity))
            .collect::<Result<Vec<_>, _>>()?;
        Money::checked_sum(currency, &line_totals).map(Some)
    }

    /// Whether the cart has passed its expiry at `now`.
    pub fn is_due(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

impl CartState {
    /// Applies one event.
    pub fn apply(self, event: &CartEvent) -> Self {
        let CartState(cart) = self;
        match (cart, event) {
            (_, CartEvent::Opened(e)) => CartState(Some(OpenedCart {
                cart_id: e.cart_id.clone(),
                customer_id: e.customer_id.clone(),
                status: CartStatus::Open,
                lines: BTreeMap::new(),
                ttl_ms: e.ttl_ms,
                expires_at: e.expires_at,
            })),
            (Some(mut cart), event) => {
                match event {
                    CartEvent::ItemQuantitySet(e) => {
                        let line = CartLine { quantity: e.quantity, unit_price: e.unit_price };
                        cart.lines.insert(e.sku.clone(), line);
                        cart.expires_at = e.expires_at;
                    }
                    CartEvent::ItemRemoved(e) => {
                        cart.lines.remove(&e.sku);
                        cart.expires_at = e.expires_at;
                    }
                    CartEvent::CheckedOut(e) => {
                        cart.status = CartStatus::CheckedOut(e.order_id.clone())
                    }
                    CartEvent::Expired(_) => cart.status = CartStatus::Expired,
                    CartEvent::Opened(_) => {}
                }
                CartState(Some(cart))
            }
            // Events before `Opened` cannot be produced by `decide`; ignoring keeps evolve total.
            (None, _) => CartState(None),
        }
    }
}
