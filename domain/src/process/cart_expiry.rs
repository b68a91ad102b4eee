//! Cart expiry: when is a cart due, and what does expiring it release?

use super::Reaction;
use crate::cart::{CartEvent, CartState, CartStatus, OpenedCart};
use crate::product::{ProductCommand, ReleaseReservation};
use crate::{ReservationId, Timestamp};

/// When an open cart falls due, or `None` if it never will (not opened, checked out, expired).
/// A scheduler keeps this per cart, derived from the event log, so a restart loses nothing.
pub fn expiry_due_at(cart: &CartState) -> Option<Timestamp> {
    match &cart.0 {
        Some(OpenedCart { status: CartStatus::Open, expires_at, .. }) => Some(*expires_at),
        _ => None,
    }
}

/// When the cart falls due right after `event`, read off the event alone: each change carries
/// the new expiry; checkout and expiry end it. Equal to [`expiry_due_at`] of the state the
/// event produces, so a scheduler can follow carts without folding their streams.
pub fn expiry_due_after(event: &CartEvent) -> Option<Timestamp> {
    match event {
        CartEvent::Opened(e) => Some(e.expires_at),
        CartEvent::ItemQuantitySet(e) => Some(e.expires_at),
        CartEvent::ItemRemoved(e) => Some(e.expires_at),
        CartEvent::CheckedOut(_) | CartEvent::Expired(_) => None,
    }
}

/// Whether an `ExpireCart` command at `now` should be sent.
pub fn is_due(cart: &CartState, now: Timestamp) -> bool {
    expiry_due_at(cart).is_some_and(|due| now >= due)
}

/// What follows a cart event. `cart` is the state after the event was applied.
pub fn react_to_cart(event: &CartEvent, cart: &OpenedCart, now: Timestamp) -> Vec<Reaction> {
    match event {
        CartEvent::Expired(_) => {
            let reservation_id = ReservationId::from(&cart.cart_id);
            cart.lines
                .keys()
                .map(|sku| Reaction::Product {
                    sku: sku.clone(),
                    command: ProductCommand::Release(ReleaseReservation {
                        reservation_id: reservation_id.clone(),
                        now,
                    }),
                })
                .collect()
        }
        _ => vec![],
    }
}
