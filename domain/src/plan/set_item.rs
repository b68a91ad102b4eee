//! Putting a quantity of a product in a cart: the stock is held first, then the line recorded.

use crate::cart::{open_for_changes, Cart, CartCommand, CartError, CartState, SetItemQuantity};
use crate::product::{
    Product, ProductCommand, ProductError, ProductState, ReleaseReservation, ReserveStock,
};
use crate::{Decider, ReservationId, Sku, Timestamp};

/// What setting a cart line takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinePlan {
    /// Hold the units on the product (the step that can fail for lack of stock), then record
    /// the line on the cart; if the cart refuses after all (it changed meanwhile), run `undo`
    /// on the product to put the hold back as it was.
    Hold {
        /// On the product.
        reserve: ReserveStock,
        /// On the cart.
        set: SetItemQuantity,
        /// On the product, only if `set` is refused.
        undo: ProductCommand,
    },
    /// Drop the line from the cart, then release its hold on the product.
    Drop {
        /// On the cart (quantity zero).
        set: SetItemQuantity,
        /// On the product.
        release: ReleaseReservation,
    },
    /// The cart already has no such line: nothing to do.
    Nothing,
}

/// Why a line cannot be set, decided before anything is touched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetItemRefused {
    /// The cart refuses the line (closed, expired, over a limit, ...).
    #[error(transparent)]
    Cart(#[from] CartError),
    /// The product cannot be sold (not listed, delisted).
    #[error(transparent)]
    Product(#[from] ProductError),
}

/// Plans setting `quantity` units of `sku` in the cart (zero drops the line). The cart's own
/// `decide` judges the line first, against its current state, so every cart rule (open, not
/// expired, per-line and total limits, one currency) is checked in one place and before any
/// stock is held.
pub fn plan_set_item(
    cart: &CartState,
    product: &ProductState,
    sku: &Sku,
    quantity: u32,
    now: Timestamp,
) -> Result<LinePlan, SetItemRefused> {
    let opened = open_for_changes(cart, now)?;
    let reservation_id = ReservationId::from(&opened.cart_id);
    if quantity == 0 {
        if !opened.lines.contains_key(sku) {
            return Ok(LinePlan::Nothing);
        }
        let unit_price = opened.lines[sku].unit_price;
        let set = SetItemQuantity { sku: sku.clone(), quantity: 0, unit_price, now };
        let release = ReleaseReservation { reservation_id, now };
        return Ok(LinePlan::Drop { set, release });
    }
    let price = product.listing.as_ref().ok_or(ProductError::NotListed)?.price;
    let set = SetItemQuantity { sku: sku.clone(), quantity, unit_price: price, now };
    Cart::decide(&CartCommand::SetItemQuantity(set.clone()), cart)?;
    let reserve = ReserveStock {
        reservation_id: reservation_id.clone(),
        quantity,
        expires_at: now.plus_millis(opened.ttl_ms),
        now,
    };
    // Dry runs of both deciders: refuse now what a step would refuse later (delisted, not
    // enough stock), before anything is written. The steps decide again when they run.
    Product::decide(&ProductCommand::Reserve(reserve.clone()), product)?;
    let undo = match opened.lines.get(sku) {
        Some(line) => ProductCommand::Reserve(ReserveStock {
            reservation_id,
            quantity: line.quantity,
            expires_at: opened.expires_at,
            now,
        }),
        None => ProductCommand::Release(ReleaseReservation { reservation_id, now }),
    };
    Ok(LinePlan::Hold { reserve, set, undo })
}
