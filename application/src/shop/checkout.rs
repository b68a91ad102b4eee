//! Checkout: the cart's holds renewed for the payment, the order placed and the cart closed
//! (in one commit where the store can) (the plan in [`ordo_domain::plan::plan_checkout`]). The order's id is derived from the cart's,
//! so a checkout cut short by a crash is finished by the retry, never doubled.

use super::joined::Side;
use super::{Done, Shop};
use crate::error::AppError;
use crate::ids::order_id_for;
use crate::request::Request;
use ordo_domain::cart::{CartCommand, CartEvent};
use ordo_domain::order::{Address, OrderCommand, OrderError, OrderEvent};
use ordo_domain::plan::plan_checkout;
use ordo_domain::product::ProductCommand;
use ordo_domain::{CartId, OrderId};
use ordo_eventstore::clock::{millis, now};
use ordo_eventstore::command::{CommandError, Receipt};
use ordo_eventstore::EventStore;
use std::collections::BTreeMap;

/// The step of placing the order: each step of a keyed request derives its own key from the
/// request's, so a retry repeats each step under the same event ids.
pub const PLACE: usize = 0;
/// The step of closing the cart.
pub const CLOSE: usize = 1;
/// The step of renewing the first line's hold; the others follow.
pub const FIRST_HOLD: usize = 10;

impl<S: EventStore> Shop<S> {
    /// Turns the cart into an order and returns the order's receipt.
    pub async fn check_out(
        &self,
        cart_id: &str,
        shipping_address: Address,
        payment_token: String,
        request: &Request,
    ) -> Result<Done, AppError> {
        let cart_id = CartId::parse(cart_id)?;
        let cart = self.own_cart(&cart_id, &request.caller).await?;
        let mut names = BTreeMap::new();
        for sku in cart.0.iter().flat_map(|c| c.lines.keys()) {
            let name = self
                .products
                .inspect(sku.as_str(), |_, p| p.listing.as_ref().map(|l| l.name.clone()))
                .await?;
            names.insert(sku.clone(), name.unwrap_or_default());
        }
        let order_id = order_id_for(&cart_id);
        let hold_ms = millis(self.config.payment_hold);
        let planned = plan_checkout(
            &cart,
            &names,
            order_id.clone(),
            shipping_address,
            payment_token,
            now(),
            hold_ms,
        );
        let plan = match planned {
            Ok(plan) => plan,
            // A keyed retry of a checkout that went through, whose answer was lost (its server
            // died before storing it): the same order again, not "cart checked out".
            Err(refused) => {
                if self.carts.took_step(cart_id.as_str(), &request.context(CLOSE)).await? {
                    let placed = self.orders.unchanged(order_id.as_str()).await?;
                    return self.done(order_id.as_str(), &placed, &[]).await;
                }
                return Err(refused.into());
            }
        };
        // The holds are on different products' streams, so they are renewed together: they
        // share the store's next commits instead of waiting for one each (a cart of three
        // lines took five commits one after another; now three). Every renewal runs to its
        // end, so a refusal leaves no renewal cut short; the first refusal is the answer.
        let mut positions = Vec::with_capacity(plan.renew.len() + 1);
        let renewals = plan.renew.into_iter().enumerate().map(|(step, (sku, hold))| async move {
            let renew = ProductCommand::Reserve(hold);
            let context = request.context(FIRST_HOLD + step);
            self.products.execute(sku.as_str(), &renew, &context).await
        });
        for held in futures_util::future::join_all(renewals).await {
            positions.push(held?.position);
        }
        let place = OrderCommand::Place(plan.place);
        let close = CartCommand::CheckOut(plan.close);
        if let Some((placed, closed)) =
            self.place_with_close(&order_id, &cart_id, &place, &close, request).await?
        {
            positions.push(closed.position);
            return self.done(order_id.as_str(), &placed, &positions).await;
        }
        let placed =
            match self.orders.execute(order_id.as_str(), &place, &request.context(PLACE)).await {
                Ok(receipt) => receipt,
                // A retry of a checkout that crashed after placing: the order is there; finish.
                Err(CommandError::Domain(OrderError::AlreadyPlaced)) => {
                    self.orders.unchanged(order_id.as_str()).await?
                }
                Err(e) => return Err(e.into()),
            };
        let closed = self.carts.execute(cart_id.as_str(), &close, &request.context(CLOSE)).await?;
        positions.push(closed.position);
        self.done(order_id.as_str(), &placed, &positions).await
    }

    /// The order placed and the cart closed in one commit, both or neither (ADR 0022), on
    /// stores that append to several streams at once. `None`: take the steps one by one (a
    /// store of one stream per commit, or an order already placed by an attempt that crashed
    /// before closing the cart).
    async fn place_with_close(
        &self,
        order_id: &OrderId,
        cart_id: &CartId,
        place: &OrderCommand,
        close: &CartCommand,
        request: &Request,
    ) -> Result<Option<(Receipt<OrderEvent>, Receipt<CartEvent>)>, AppError> {
        if !self.store.appends_together() {
            return Ok(None);
        }
        let context = request.context(PLACE);
        let order = match self.orders.prepare(order_id.as_str(), place, &context).await {
            Ok(order) if !order.events.is_empty() => order,
            Ok(_) | Err(CommandError::Domain(OrderError::AlreadyPlaced)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let cart = Side { repository: &self.carts, id: cart_id.as_str() };
        let orders = Side { repository: &self.orders, id: order_id.as_str() };
        // `None` when the order's stream moved: placed meanwhile by a concurrent attempt,
        // which the step-by-step path finishes.
        let joined = self.joined(cart, close, &request.context(CLOSE), orders, order).await?;
        Ok(joined.map(|(closed, placed)| (placed, closed)))
    }
}
