//! Checkout: the cart's holds renewed for the payment, the order placed, the cart closed.

use crate::cart::{open_for_changes, Cart, CartCommand, CartError, CartState, CheckOut};
use crate::order::{Address, NewOrderLine, PlaceOrder};
use crate::product::ReserveStock;
use crate::{Decider, OrderId, ReservationId, Sku, Timestamp};
use std::collections::BTreeMap;

/// The steps of a checkout, in the order they must run. Each is idempotent under a retry
/// (same order id, same reservation), so a checkout cut short by a crash is finished by
/// running the plan again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutPlan {
    /// First, per line: hold its units again until the payment window closes, so stock
    /// cannot lapse while the payment is authorized.
    pub renew: Vec<(Sku, ReserveStock)>,
    /// Then place the order, holding stock under the cart's reservation.
    pub place: PlaceOrder,
    /// Last, close the cart: it took part in exactly one order.
    pub close: CheckOut,
}

/// What checking out the cart into `order_id` takes. `names` are the products' current names,
/// copied into the order; `hold_ms` is how long stock stays held for the payment.
pub fn plan_checkout(
    cart: &CartState,
    names: &BTreeMap<Sku, String>,
    order_id: OrderId,
    shipping_address: Address,
    payment_token: String,
    now: Timestamp,
    hold_ms: i64,
) -> Result<CheckoutPlan, CartError> {
    let opened = open_for_changes(cart, now)?;
    let close = CheckOut { order_id: order_id.clone(), now };
    // The cart's own rules (not empty, a total that fits) decide whether it may be checked out.
    Cart::decide(&CartCommand::CheckOut(close.clone()), cart)?;
    let reservation_id = ReservationId::from(&opened.cart_id);
    let hold_until = now.plus_millis(hold_ms);
    let renew = opened
        .lines
        .iter()
        .map(|(sku, line)| {
            let hold = ReserveStock {
                reservation_id: reservation_id.clone(),
                quantity: line.quantity,
                expires_at: hold_until,
                now,
            };
            (sku.clone(), hold)
        })
        .collect();
    let lines = opened
        .lines
        .iter()
        .map(|(sku, line)| NewOrderLine {
            sku: sku.clone(),
            name: names.get(sku).cloned().unwrap_or_default(),
            quantity: line.quantity,
            unit_price: line.unit_price,
        })
        .collect();
    let place = PlaceOrder {
        order_id,
        customer_id: opened.customer_id.clone(),
        reservation_id,
        lines,
        shipping_address,
        payment_token,
        placed_at: now,
    };
    Ok(CheckoutPlan { renew, place, close })
}
