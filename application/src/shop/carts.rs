//! Carts: open one, set and remove lines. A line's units are held on the product as the cart
//! records it (the plan in [`ordo_domain::plan::plan_set_item`]): in one commit where the store
//! appends to several streams at once, else the hold first.

use super::joined::Side;
use super::{Done, Shop};
use crate::caller::Caller;
use crate::error::{AppError, Missing};
use crate::request::Request;
use ordo_domain::cart::{self, CartCommand, CartEvent, CartState};
use ordo_domain::plan::{plan_set_item, LinePlan, SetItemRefused};
use ordo_domain::product::{ProductCommand, ProductError, ReleaseReservation};
use ordo_domain::{CartId, CustomerId, ReservationId, Sku};
use ordo_eventstore::clock::{millis, now};
use ordo_eventstore::command::{CommandError, Prepared};
use ordo_eventstore::EventStore;

/// How often a line is planned again when its cart changed between the plan and the commit.
const REPLANS: usize = 3;

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
        let (id, sku) = (&cart_id, &sku);
        self.replanned(id, || self.set_item_once(id, sku, quantity, request)).await
    }

    /// Runs `attempt` (one plan for a line, carried out) until it is not refused for its
    /// cart moving between the plan and the commit, at most [`REPLANS`] times.
    async fn replanned<F>(
        &self,
        cart_id: &CartId,
        mut attempt: impl FnMut() -> F,
    ) -> Result<Done, AppError>
    where
        F: std::future::Future<Output = Result<Option<Done>, AppError>>,
    {
        for _ in 0..REPLANS {
            if let Some(done) = attempt().await? {
                return Ok(done);
            }
        }
        Err(AppError::Contention { stream: self.carts.stream(cart_id.as_str())?.to_string() })
    }

    /// One plan for the line, carried out; `None` if the cart moved before its commit.
    async fn set_item_once(
        &self,
        cart_id: &CartId,
        sku: &Sku,
        quantity: u32,
        request: &Request,
    ) -> Result<Option<Done>, AppError> {
        let cart = self.own_cart(cart_id, &request.caller).await?;
        // Planned on the product's state where it lies, not on a copy: a product in a flash
        // sale holds one reservation per cart, and copying them all for every add-to-cart
        // made each request's cost grow with the crowd.
        let planned = self
            .products
            .inspect(sku.as_str(), |_, product| plan_set_item(&cart, product, sku, quantity, now()))
            .await?;
        let plan = planned.map_err(|e| match e {
            SetItemRefused::Product(ProductError::NotListed) => {
                AppError::not_found(Missing::Product, sku)
            }
            other => other.into(),
        })?;
        let done = match plan {
            LinePlan::Nothing => {
                let unchanged = self.carts.unchanged(cart_id.as_str()).await?;
                self.done(cart_id.as_str(), &unchanged, &[]).await
            }
            LinePlan::Drop { set, release } => {
                let command = CartCommand::SetItemQuantity(set);
                return self.drop_line(cart_id, sku, command, release, request).await;
            }
            LinePlan::Hold { reserve, set, undo } => {
                let reserve = ProductCommand::Reserve(reserve);
                let set = CartCommand::SetItemQuantity(set);
                if self.store.appends_together() {
                    let context = request.context(1);
                    let line = self.carts.prepare(cart_id.as_str(), &set, &context).await?;
                    if !line.events.is_empty() {
                        return self.hold_with_line(cart_id, sku, &reserve, line, request).await;
                    }
                }
                self.hold_then_line(cart_id, sku, &reserve, &set, undo, request).await
            }
        };
        done.map(Some)
    }

    /// The hold on the product and the cart's line in one commit: both or neither (ADR 0022).
    /// `None`: the cart changed since the line was decided (the same shopper in another tab,
    /// its expiry), nothing was written, and the line is planned again.
    async fn hold_with_line(
        &self,
        cart_id: &CartId,
        sku: &Sku,
        reserve: &ProductCommand,
        line: Prepared<CartEvent>,
        request: &Request,
    ) -> Result<Option<Done>, AppError> {
        let product = Side { repository: &self.products, id: sku.as_str() };
        let cart = Side { repository: &self.carts, id: cart_id.as_str() };
        let joined = self.joined(product, reserve, &request.context(0), cart, line).await?;
        let Some((held, receipt)) = joined else { return Ok(None) };
        self.done(cart_id.as_str(), &receipt, &[held.position]).await.map(Some)
    }

    /// The hold, then the line, in two commits, on stores that cannot commit both at once
    /// (KurrentDB): a line never exists without its hold; a hold whose line was refused is
    /// put back, or lapses at its expiry if that fails too.
    async fn hold_then_line(
        &self,
        cart_id: &CartId,
        sku: &Sku,
        reserve: &ProductCommand,
        set: &CartCommand,
        undo: ProductCommand,
        request: &Request,
    ) -> Result<Done, AppError> {
        let held = self.products.execute(sku.as_str(), reserve, &request.context(0)).await?;
        match self.carts.execute(cart_id.as_str(), set, &request.context(1)).await {
            Ok(receipt) => self.done(cart_id.as_str(), &receipt, &[held.position]).await,
            Err(refused) => {
                // The cart changed since the plan was made: put the hold back.
                let undone = self.products.execute(sku.as_str(), &undo, &request.context(2)).await;
                if let Err(e) = undone {
                    tracing::warn!(error = %e, %cart_id, %sku, "could not undo a stock hold; it lapses at its expiry");
                }
                Err(refused.into())
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
        let (id, sku) = (&cart_id, &sku);
        self.replanned(id, || {
            let at = now();
            let command = CartCommand::RemoveItem(cart::RemoveItem { sku: sku.clone(), now: at });
            let release = ReleaseReservation { reservation_id: ReservationId::from(id), now: at };
            self.drop_line(id, sku, command, release, request)
        })
        .await
    }

    /// Drops a line from the cart and releases its hold on the product, in one commit where
    /// the store can (ADR 0022). `None`: the cart changed since the line's removal was decided;
    /// nothing was written.
    async fn drop_line(
        &self,
        cart_id: &CartId,
        sku: &Sku,
        command: CartCommand,
        release: ReleaseReservation,
        request: &Request,
    ) -> Result<Option<Done>, AppError> {
        if !self.store.appends_together() {
            return self.drop_then_release(cart_id, sku, command, release, request).await.map(Some);
        }
        let context = request.context(0);
        let line = self.carts.prepare(cart_id.as_str(), &command, &context).await?;
        if line.events.is_empty() {
            let unchanged = self.carts.unchanged(cart_id.as_str()).await?;
            return self.done(cart_id.as_str(), &unchanged, &[]).await.map(Some);
        }
        let release = ProductCommand::Release(release);
        let product = Side { repository: &self.products, id: sku.as_str() };
        let cart = Side { repository: &self.carts, id: cart_id.as_str() };
        match self.joined(product, &release, &request.context(1), cart, line).await {
            Ok(Some((released, removed))) => {
                self.done(cart_id.as_str(), &removed, &[released.position]).await.map(Some)
            }
            Ok(None) => Ok(None),
            // The hold already lapsed and was cleaned up: the line goes on its own.
            Err(AppError::Product(ProductError::UnknownReservation(_))) => {
                let context = request.context(0);
                let removed = self.carts.execute(cart_id.as_str(), &command, &context).await?;
                self.done(cart_id.as_str(), &removed, &[]).await.map(Some)
            }
            Err(e) => Err(e),
        }
    }

    /// The line dropped, then its hold released, in two commits (stores of one stream per
    /// commit): a hold left behind by a crash in between lapses at its expiry.
    async fn drop_then_release(
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
