//! Carts: open one, set and remove lines. A line's units are held on the product before the
//! cart records it (the plan in [`ordo_domain::plan::plan_set_item`]).

use super::{Done, Shop};
use crate::caller::Caller;
use crate::error::{AppError, Missing};
use crate::request::Request;
use ordo_domain::cart::{self, CartCommand, CartState};
use ordo_domain::plan::{plan_set_item, LinePlan, SetItemRefused};
use ordo_domain::product::{ProductCommand, ProductError, ReleaseReservation};
use ordo_domain::{CartId, CustomerId, ReservationId, Sku};
use ordo_eventstore::clock::{millis, now};
use ordo_eventstore::command::CommandError;
use ordo_eventstore::EventStore;

impl<S: EventStore> Shop<S> {
    /// Opens a cart for the calling customer.
    pub async fn open_cart(&self, request: &Request) -> Result<Done, AppError> {
        let customer_id = CustomerId::parse(request.caller.subject.clone())?;
        let cart_id = CartId::parse(request.new_id().to_string())?;
        let command = CartCommand::Open(cart::OpenCart {
            cart_id: cart_id.clone(),
            customer_id,
            ttl_ms: millis(self.config.cart_ttl),
            now: now(),
        });
        let receipt = self.carts.execute(cart_id.as_str(), &command, &request.context(0)).await?;
        self.done(cart_id.as_str(), &receipt, &[]).await
    }

    /// The cart, if it exists and the caller may use it (others' carts are "not found", so
    /// ids cannot be probed).
    pub(super) async fn own_cart(
        &self,
        cart_id: &CartId,
        caller: &Caller,
    ) -> Result<CartState, AppError> {
        let state = self.carts.inspect(cart_id.as_str(), |_, s| s.clone()).await?;
        match &state.0 {
            Some(cart) if caller.may_act_for(cart.customer_id.as_str()) => Ok(state),
            _ => Err(AppError::not_found(Missing::Cart, cart_id)),
        }
    }

    /// Sets how many units of `sku` the cart holds (0 removes the line), holding them.
    pub async fn set_item(
        &self,
        cart_id: &str,
        sku: &str,
        quantity: u32,
        request: &Request,
    ) -> Result<Done, AppError> {
        let cart_id = CartId::parse(cart_id)?;
        let sku = Sku::parse(sku)?;
        let cart = self.own_cart(&cart_id, &request.caller).await?;
        // Planned on the product's state where it lies, not on a copy: a product in a flash
        // sale holds one reservation per cart, and copying them all for every add-to-cart
        // made each request's cost grow with the crowd.
        let planned = self
            .products
            .inspect(sku.as_str(), |_, product| {
                plan_set_item(&cart, product, &sku, quantity, now())
            })
            .await?;
        let plan = planned.map_err(|e| match e {
            SetItemRefused::Product(ProductError::NotListed) => {
                AppError::not_found(Missing::Product, &sku)
            }
            other => other.into(),
        })?;
        match plan {
            LinePlan::Nothing => {
                let unchanged = self.carts.unchanged(cart_id.as_str()).await?;
                self.done(cart_id.as_str(), &unchanged, &[]).await
            }
            LinePlan::Drop { set, release } => {
                let command = CartCommand::SetItemQuantity(set);
                self.drop_line(&cart_id, &sku, command, release, request).await
            }
            LinePlan::Hold { reserve, set, undo } => {
                let reserve = ProductCommand::Reserve(reserve);
                let held =
                    self.products.execute(sku.as_str(), &reserve, &request.context(0)).await?;
                let set = CartCommand::SetItemQuantity(set);
                match self.carts.execute(cart_id.as_str(), &set, &request.context(1)).await {
                    Ok(receipt) => self.done(cart_id.as_str(), &receipt, &[held.position]).await,
                    Err(refused) => {
                        // The cart changed since the plan was made: put the hold back.
                        let undone =
                            self.products.execute(sku.as_str(), &undo, &request.context(2)).await;
                        if let Err(e) = undone {
                            tracing::warn!(error = %e, %cart_id, %sku, "could not undo a stock hold; it lapses at its expiry");
                        }
                        Err(refused.into())
                    }
                }
            }
        }
    }

    /// Removes a line from the cart and releases its hold.
    pub async fn remove_item(
        &self,
        cart_id: &str,
        sku: &str,
        request: &Request,
    ) -> Result<Done, AppError> {
        let cart_id = CartId::parse(cart_id)?;
        let sku = Sku::parse(sku)?;
        self.own_cart(&cart_id, &request.caller).await?;
        let at = now();
        let command = CartCommand::RemoveItem(cart::RemoveItem { sku: sku.clone(), now: at });
        let release = ReleaseReservation { reservation_id: ReservationId::from(&cart_id), now: at };
        self.drop_line(&cart_id, &sku, command, release, request).await
    }

    /// Drops a line from the cart, then releases its hold on the product.
    async fn drop_line(
        &self,
        cart_id: &CartId,
        sku: &Sku,
        command: CartCommand,
        release: ReleaseReservation,
        request: &Request,
    ) -> Result<Done, AppError> {
        let removed = self.carts.execute(cart_id.as_str(), &command, &request.context(0)).await?;
        if removed.events.is_empty() {
            return self.done(cart_id.as_str(), &removed, &[]).await;
        }
        let release = ProductCommand::Release(release);
        match self.products.execute(sku.as_str(), &release, &request.context(1)).await {
            Ok(released) => self.done(cart_id.as_str(), &removed, &[released.position]).await,
            // The hold already lapsed and was cleaned up: nothing left to release.
            Err(CommandError::Domain(ProductError::UnknownReservation(_))) => {
                self.done(cart_id.as_str(), &removed, &[]).await
            }
            Err(e) => Err(e.into()),
        }
    }
}
