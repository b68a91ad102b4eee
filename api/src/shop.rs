//! The write side's use cases. Each HTTP command becomes one or more aggregate commands here,
//! run through the normal command path ([`Repository`]): load, `decide`, append with
//! optimistic concurrency.
//!
//! Use cases that touch two aggregates are ordered so that a crash between the steps leaves
//! nothing a retry cannot finish:
//! - putting an item in a cart first reserves the units on the product (the step that can fail
//!   for lack of stock), then records the line on the cart; if the cart refuses, the hold is
//!   put back as it was;
//! - checkout renews every line's hold for the payment window, places the order (its id is
//!   derived from the cart's, so a retry finds it), then marks the cart checked out.
//!
//! No command waits for the read side. Who may do what is checked here against the write
//! model, not against Redis, so commands keep working while Redis is down.

use crate::auth::Caller;
use ordo_domain::cart::{self, Cart, CartCommand, CartError, CartState, CartStatus};
use ordo_domain::order::{self, Actor, Address, Order, OrderCommand, OrderError, OrderState};
use ordo_domain::payment::Payment;
use ordo_domain::product::{self, Product, ProductCommand, ProductError, ProductState};
use ordo_domain::{
    CartId, Currency, CustomerId, IdError, Money, OrderId, ReservationId, Sku, Timestamp,
};
use ordo_eventstore::codec::CodecError;
use ordo_eventstore::command::{derived_id, CommandContext, CommandError, Receipt, Repository};
use ordo_eventstore::{EventStore, Position, StoreError};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// Aggregates kept in memory per repository.
const CACHE: usize = 100_000;

/// Shop-wide settings.
#[derive(Clone, Debug)]
pub struct ShopConfig {
    /// The one currency prices and orders are in.
    pub currency: Currency,
    /// How long an untouched cart (and its stock holds) lives; each change extends it.
    pub cart_ttl: Duration,
    /// How long checkout holds stock while the payment is authorized.
    pub payment_hold: Duration,
}

impl Default for ShopConfig {
    fn default() -> Self {
        Self {
            currency: Currency::EUR,
            cart_ttl: Duration::from_secs(15 * 60),
            payment_hold: Duration::from_secs(15 * 60),
        }
    }
}

/// What a command did: the id it concerns, its stream's new version and the global
/// position a reader can wait for (`min_position`) to see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The product, cart or order id.
    pub id: String,
    /// The stream written (or, when nothing changed, the one asked about).
    pub stream: String,
    /// The stream's version afterwards.
    pub version: Option<u64>,
    /// A global position at or after every event of this command.
    pub position: u64,
}

/// How a refused command should be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Malformed or out-of-range input.
    Invalid,
    /// No such product, cart, order or line (or not the caller's).
    NotFound,
    /// The caller's role may not do this.
    Forbidden,
    /// A business rule refused it in the current state (stock, status, ...).
    Conflict,
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// Refused: the state is unchanged.
    #[error("{message}")]
    Rejected {
        /// How to report it.
        kind: Rejection,
        /// For people.
        message: String,
    },
    /// Other processes kept changing the same stream.
    #[error("{0} kept changing concurrently; retry")]
    Contention(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event no longer decodes.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl ShopError {
    fn rejected(kind: Rejection, message: impl Into<String>) -> Self {
        Self::Rejected { kind, message: message.into() }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::rejected(Rejection::NotFound, message)
    }
}

impl From<IdError> for ShopError {
    fn from(e: IdError) -> Self {
        Self::rejected(Rejection::Invalid, e.to_string())
    }
}

/// Sorts each aggregate's business errors into the ways they are reported.
trait Classify: std::error::Error {
    fn rejection(&self) -> Rejection;
}

impl Classify for ProductError {
    fn rejection(&self) -> Rejection {
        use ProductError::*;
        match self {
            NotListed => Rejection::NotFound,
            AlreadyListed
            | Delisted
            | StockLimitExceeded
            | AdjustmentBelowAvailable { .. }
            | InsufficientStock { .. }
            | UnknownReservation(_) => Rejection::Conflict,
            _ => Rejection::Invalid,
        }
    }
}

impl Classify for CartError {
    fn rejection(&self) -> Rejection {
        use CartError::*;
        match self {
            NotFound | ItemNotInCart(_) => Rejection::NotFound,
            InvalidTtl(_) | QuantityTooLarge(_) | PriceNotPositive(_) | Money(_) => {
                Rejection::Invalid
            }
            _ => Rejection::Conflict,
        }
    }
}

impl Classify for OrderError {
    fn rejection(&self) -> Rejection {
        use OrderError::*;
        match self {
            NotFound => Rejection::NotFound,
            LineCount(_) | DuplicateSku(_) | QuantityNotPositive | PriceNotPositive | Money(_)
            | InvalidField(_) | InvalidCountry | InvalidRefund => Rejection::Invalid,
            _ => Rejection::Conflict,
        }
    }
}

impl<E: Classify + 'static> From<CommandError<E>> for ShopError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Domain(e) => Self::rejected(e.rejection(), e.to_string()),
            CommandError::Conflict { stream, .. } => Self::Contention(stream),
            CommandError::Store(StoreError::InvalidStreamName { name, .. }) => {
                Self::rejected(Rejection::Invalid, format!("invalid id in stream name {name}"))
            }
            CommandError::Store(e) => Self::Store(e),
            CommandError::Codec(e) => Self::Codec(e),
        }
    }
}

/// A product to list.
#[derive(Clone, Debug)]
pub struct NewProduct {
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category facet.
    pub category: String,
    /// Brand facet.
    pub brand: String,
    /// Price in minor units of the shop currency.
    pub price_minor: i64,
    /// Image URLs.
    pub image_urls: Vec<String>,
}

/// Per-request command settings: who asks, and the client's idempotency key if any.
#[derive(Clone, Debug)]
pub struct Request {
    /// The verified caller.
    pub caller: Caller,
    /// Makes event ids (and generated ids) deterministic, so a retried request after a crash
    /// becomes a no-op in the store instead of a second effect.
    pub idempotency_key: Option<Uuid>,
    /// Joins the events to the HTTP request's logs.
    pub correlation_id: Option<Uuid>,
}

impl Request {
    /// The command context of step `step` of this request.
    fn context(&self, step: usize) -> CommandContext {
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("actor".to_owned(), self.caller.subject.clone());
        headers.insert(
            "role".to_owned(),
            if self.caller.is_admin() { "admin" } else { "customer" }.to_owned(),
        );
        CommandContext {
            correlation_id: self.correlation_id,
            causation_id: None,
            idempotency_key: self.idempotency_key.map(|key| derived_id(key, step)),
            headers,
        }
    }

    /// A fresh id for something this request creates; the same on every retry of a keyed
    /// request.
    fn new_id(&self) -> Uuid {
        match self.idempotency_key {
            Some(key) => derived_id(key, usize::MAX),
            None => Uuid::now_v7(),
        }
    }

    fn require_admin(&self) -> Result<(), ShopError> {
        if self.caller.is_admin() {
            Ok(())
        } else {
            Err(ShopError::rejected(Rejection::Forbidden, "this needs an admin token"))
        }
    }
}

/// A stable UUID naming `name` (SHA-256 based), for ids derived from other ids.
pub fn name_uuid(name: &str) -> Uuid {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The order a cart becomes: derived, so a retried checkout finds the order it placed.
pub fn order_id_for(cart_id: &CartId) -> OrderId {
    OrderId::parse(name_uuid(&format!("order-of-cart:{cart_id}")).to_string())
        .expect("a UUID is a valid order id")
}

/// The current time as a domain timestamp.
pub fn now() -> Timestamp {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The shop's command side.
pub struct Shop<S> {
    store: Arc<S>,
    products: Repository<Product, S>,
    carts: Repository<Cart, S>,
    orders: Repository<Order, S>,
    payments: Repository<Payment, S>,
    config: ShopConfig,
}

impl<S: EventStore> Shop<S> {
    /// Command handling on `store`.
    pub fn new(store: Arc<S>, config: ShopConfig) -> Self {
        Self {
            products: Repository::new(store.clone(), CACHE),
            carts: Repository::new(store.clone(), CACHE),
            orders: Repository::new(store.clone(), CACHE),
            payments: Repository::new(store.clone(), CACHE),
            store,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ShopConfig {
        &self.config
    }

    /// Products, for the processes (which share the command path and its cache).
    pub fn products(&self) -> &Repository<Product, S> {
        &self.products
    }

    /// Carts.
    pub fn carts(&self) -> &Repository<Cart, S> {
        &self.carts
    }

    /// Orders.
    pub fn orders(&self) -> &Repository<Order, S> {
        &self.orders
    }

    /// Payments (stream `payment-<order id>`).
    pub fn payments(&self) -> &Repository<Payment, S> {
        &self.payments
    }

    /// The event store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The receipt of a use case whose main command gave `last`; `also` are the positions
    /// of its other commands.
    async fn done<E>(
        &self,
        id: &str,
        last: &Receipt<E>,
        also: &[Option<Position>],
    ) -> Result<Done, ShopError> {
        let appended = also.iter().chain([&last.position]).flatten().map(|p| p.0).max();
        let position = match appended {
            Some(p) => p,
            // Nothing changed: anything the caller could have seen is at or before the end.
            None => self.store.last_position().await?.map_or(0, |p| p.0),
        };
        Ok(Done {
            id: id.to_owned(),
            stream: last.stream.to_string(),
            version: last.version,
            position,
        })
    }

    async fn product(
        &self,
        sku: &str,
        command: ProductCommand,
        request: &Request,
        step: usize,
    ) -> Result<Receipt<product::ProductEvent>, ShopError> {
        Ok(self.products.execute(sku, &command, &request.context(step)).await?)
    }

    /// Lists a new product (admin).
    pub async fn list_product(
        &self,
        sku: &str,
        p: NewProduct,
        request: &Request,
    ) -> Result<Done, ShopError> {
        request.require_admin()?;
        let command = ProductCommand::List(product::ListProduct {
            sku: Sku::parse(sku)?,
            name: p.name,
            description: p.description,
            category: p.category,
            brand: p.brand,
            price: Money::new(p.price_minor, self.config.currency),
            image_urls: p.image_urls,
            store_currency: self.config.currency,
            now: now(),
        });
        let receipt = self.product(sku, command, request, 0).await?;
        self.done(sku, &receipt, &[]).await
    }

    /// Changes a product's price (admin). Carts keep the price they were filled at.
    pub async fn change_price(
        &self,
        sku: &str,
        price_minor: i64,
        request: &Request,
    ) -> Result<Done, ShopError> {
        request.require_admin()?;
        let command = ProductCommand::ChangePrice(product::ChangePrice {
            price: Money::new(price_minor, self.config.currency),
            store_currency: self.config.currency,
            now: now(),
        });
        let receipt = self.product(&Sku::parse(sku)?.to_string(), command, request, 0).await?;
        self.done(sku, &receipt, &[]).await
    }

    /// Books received units into on-hand stock (admin).
    pub async fn receive_stock(
        &self,
        sku: &str,
        quantity: u32,
        request: &Request,
    ) -> Result<Done, ShopError> {
        request.require_admin()?;
        let command = ProductCommand::ReceiveStock(product::ReceiveStock { quantity, now: now() });
        let receipt = self.product(&Sku::parse(sku)?.to_string(), command, request, 0).await?;
        self.done(sku, &receipt, &[]).await
    }

    /// Takes a product out of the catalogue (admin); history and orders keep it.
    pub async fn delist(&self, sku: &str, request: &Request) -> Result<Done, ShopError> {
        request.require_admin()?;
        let command = ProductCommand::Delist(product::DelistProduct { now: now() });
        let receipt = self.product(&Sku::parse(sku)?.to_string(), command, request, 0).await?;
        self.done(sku, &receipt, &[]).await
    }

    /// Opens a cart for the calling customer.
    pub async fn open_cart(&self, request: &Request) -> Result<Done, ShopError> {
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
    async fn own_cart(&self, cart_id: &CartId, caller: &Caller) -> Result<CartState, ShopError> {
        let state = self.carts.inspect(cart_id.as_str(), |_, s| s.clone()).await?;
        match &state.0 {
            Some(cart) if caller.may_act_for(cart.customer_id.as_str()) => Ok(state),
            _ => Err(ShopError::not_found(format!("no cart {cart_id}"))),
        }
    }

    /// Sets how many units of `sku` the cart holds (0 removes the line), reserving them.
    pub async fn set_item(
        &self,
        cart_id: &str,
        sku: &str,
        quantity: u32,
        request: &Request,
    ) -> Result<Done, ShopError> {
        let cart_id = CartId::parse(cart_id)?;
        let sku = Sku::parse(sku)?;
        let state = self.own_cart(&cart_id, &request.caller).await?;
        let cart = state.0.as_ref().expect("own_cart returns opened carts");
        if quantity == 0 {
            return self.remove_item_from(&cart_id, &sku, request, false).await;
        }
        if quantity > cart::MAX_QUANTITY_PER_LINE {
            return Err(CartError::QuantityTooLarge(quantity).into_rejection());
        }
        // Refuse early what the cart would refuse anyway, before touching stock.
        let at = now();
        ensure_open(cart, at)?;
        let price =
            self.products.inspect(sku.as_str(), |_, p| p.listing.as_ref().map(|l| l.price)).await?;
        let price = price.ok_or_else(|| ShopError::not_found(format!("no product {sku}")))?;
        let previous = cart.lines.get(&sku).map(|l| l.quantity);
        let reservation_id = ReservationId::from(&cart_id);
        let reserve = ProductCommand::Reserve(product::ReserveStock {
            reservation_id: reservation_id.clone(),
            quantity,
            expires_at: at.plus_millis(cart.ttl_ms),
            now: at,
        });
        let held = self.product(sku.as_str(), reserve, request, 0).await?;
        let command = CartCommand::SetItemQuantity(cart::SetItemQuantity {
            sku: sku.clone(),
            quantity,
            unit_price: price,
            now: at,
        });
        match self.carts.execute(cart_id.as_str(), &command, &request.context(1)).await {
            Ok(receipt) => self.done(cart_id.as_str(), &receipt, &[held.position]).await,
            Err(refused) => {
                // Put the hold back as it was before this request.
                let undo = match previous {
                    Some(quantity) => ProductCommand::Reserve(product::ReserveStock {
                        reservation_id,
                        quantity,
                        expires_at: cart.expires_at,
                        now: at,
                    }),
                    None => ProductCommand::Release(product::ReleaseReservation {
                        reservation_id,
                        now: at,
                    }),
                };
                if let Err(e) = self.product(sku.as_str(), undo, request, 2).await {
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
    ) -> Result<Done, ShopError> {
        let cart_id = CartId::parse(cart_id)?;
        let sku = Sku::parse(sku)?;
        self.own_cart(&cart_id, &request.caller).await?;
        self.remove_item_from(&cart_id, &sku, request, true).await
    }

    async fn remove_item_from(
        &self,
        cart_id: &CartId,
        sku: &Sku,
        request: &Request,
        must_exist: bool,
    ) -> Result<Done, ShopError> {
        let at = now();
        let command = if must_exist {
            CartCommand::RemoveItem(cart::RemoveItem { sku: sku.clone(), now: at })
        } else {
            CartCommand::SetItemQuantity(cart::SetItemQuantity {
                sku: sku.clone(),
                quantity: 0,
                unit_price: Money::new(1, self.config.currency),
                now: at,
            })
        };
        let removed = self.carts.execute(cart_id.as_str(), &command, &request.context(0)).await?;
        if removed.events.is_empty() {
            return self.done(cart_id.as_str(), &removed, &[]).await;
        }
        let release = ProductCommand::Release(product::ReleaseReservation {
            reservation_id: ReservationId::from(cart_id),
            now: at,
        });
        match self.product(sku.as_str(), release, request, 1).await {
            Ok(released) => self.done(cart_id.as_str(), &removed, &[released.position]).await,
            // The hold already lapsed and was cleaned up: nothing left to release.
            Err(ShopError::Rejected { kind: Rejection::Conflict, .. }) => {
                self.done(cart_id.as_str(), &removed, &[]).await
            }
            Err(e) => Err(e),
        }
    }

    /// Turns the cart into an order: holds renewed for the payment window, order placed,
    /// cart closed. Returns the order's receipt.
    pub async fn check_out(
        &self,
        cart_id: &str,
        shipping_address: Address,
        payment_token: String,
        request: &Request,
    ) -> Result<Done, ShopError> {
        let cart_id = CartId::parse(cart_id)?;
        let state = self.own_cart(&cart_id, &request.caller).await?;
        let cart = state.0.as_ref().expect("own_cart returns opened carts");
        let at = now();
        ensure_open(cart, at)?;
        if cart.lines.is_empty() {
            return Err(CartError::Empty.into_rejection());
        }
        let order_id = order_id_for(&cart_id);
        let reservation_id = ReservationId::from(&cart_id);
        let hold_until = at.plus_millis(millis(self.config.payment_hold));
        let mut lines = Vec::with_capacity(cart.lines.len());
        let mut holds = Vec::with_capacity(cart.lines.len() + 1);
        for (step, (sku, line)) in cart.lines.iter().enumerate() {
            let renew = ProductCommand::Reserve(product::ReserveStock {
                reservation_id: reservation_id.clone(),
                quantity: line.quantity,
                expires_at: hold_until,
                now: at,
            });
            let held = self.product(sku.as_str(), renew, request, 10 + step).await.map_err(
                |e| match e {
                    ShopError::Rejected { kind, message } => {
                        ShopError::rejected(kind, format!("{sku}: {message}"))
                    }
                    other => other,
                },
            )?;
            let name = self
                .products
                .inspect(sku.as_str(), |_, p: &ProductState| {
                    p.listing.as_ref().map(|l| l.name.clone()).unwrap_or_default()
                })
                .await?;
            lines.push(order::NewOrderLine {
                sku: sku.clone(),
                name,
                quantity: line.quantity,
                unit_price: line.unit_price,
            });
            holds.push(held.position);
        }
        let place = OrderCommand::Place(order::PlaceOrder {
            order_id: order_id.clone(),
            customer_id: cart.customer_id.clone(),
            reservation_id,
            lines,
            shipping_address,
            payment_token,
            placed_at: at,
        });
        let placed = match self.orders.execute(order_id.as_str(), &place, &request.context(0)).await
        {
            Ok(receipt) => receipt,
            // A retry of a checkout that crashed after placing: the order is there; finish.
            Err(CommandError::Domain(OrderError::AlreadyPlaced)) => Receipt {
                stream: self.orders.stream(order_id.as_str())?,
                events: vec![],
                version: self.orders.inspect(order_id.as_str(), |v, _| v).await?,
                position: None,
            },
            Err(e) => return Err(e.into()),
        };
        let close = CartCommand::CheckOut(cart::CheckOut { order_id: order_id.clone(), now: at });
        let closed = self.carts.execute(cart_id.as_str(), &close, &request.context(1)).await?;
        holds.push(closed.position);
        self.done(order_id.as_str(), &placed, &holds).await
    }

    /// The order, if it exists and the caller may see it.
    async fn own_order(
        &self,
        order_id: &OrderId,
        caller: &Caller,
    ) -> Result<OrderState, ShopError> {
        let state = self.orders.inspect(order_id.as_str(), |_, s| s.clone()).await?;
        match &state.0 {
            Some(order) if caller.may_act_for(order.customer_id.as_str()) => Ok(state),
            _ => Err(ShopError::not_found(format!("no order {order_id}"))),
        }
    }

    async fn order_command(
        &self,
        order_id: &OrderId,
        command: OrderCommand,
        request: &Request,
    ) -> Result<Done, ShopError> {
        let receipt = self.orders.execute(order_id.as_str(), &command, &request.context(0)).await?;
        self.done(order_id.as_str(), &receipt, &[]).await
    }

    /// Cancels an order before it ships (its customer or an admin).
    pub async fn cancel_order(
        &self,
        order_id: &str,
        reason: String,
        request: &Request,
    ) -> Result<Done, ShopError> {
        let order_id = OrderId::parse(order_id)?;
        self.own_order(&order_id, &request.caller).await?;
        let by = if request.caller.is_admin() {
            Actor::Admin(request.caller.subject.clone())
        } else {
            Actor::Customer(CustomerId::parse(request.caller.subject.clone())?)
        };
        let command = OrderCommand::Cancel(order::CancelOrder { reason, by, at: now() });
        self.order_command(&order_id, command, request).await
    }

    /// Records the shipment (admin).
    pub async fn ship_order(
        &self,
        order_id: &str,
        carrier: String,
        tracking: String,
        request: &Request,
    ) -> Result<Done, ShopError> {
        request.require_admin()?;
        let order_id = OrderId::parse(order_id)?;
        let command = OrderCommand::Ship(order::ShipOrder { carrier, tracking, at: now() });
        self.order_command(&order_id, command, request).await
    }

    /// Records the delivery (admin).
    pub async fn deliver_order(
        &self,
        order_id: &str,
        request: &Request,
    ) -> Result<Done, ShopError> {
        request.require_admin()?;
        let order_id = OrderId::parse(order_id)?;
        let command = OrderCommand::Deliver(order::DeliverOrder { at: now() });
        self.order_command(&order_id, command, request).await
    }

    /// Refunds part or all of what was paid (admin), in the order's currency.
    pub async fn refund_order(
        &self,
        order_id: &str,
        amount_minor: i64,
        request: &Request,
    ) -> Result<Done, ShopError> {
        request.require_admin()?;
        let order_id = OrderId::parse(order_id)?;
        let state = self.own_order(&order_id, &request.caller).await?;
        let currency = state.0.as_ref().map_or(self.config.currency, |o| o.total.currency);
        let command = OrderCommand::Refund(order::RefundOrder {
            amount: Money::new(amount_minor, currency),
            at: now(),
        });
        self.order_command(&order_id, command, request).await
    }
}

/// The cart's own refusal if it no longer takes changes.
fn ensure_open(cart: &cart::OpenedCart, at: Timestamp) -> Result<(), ShopError> {
    match &cart.status {
        CartStatus::Open if !cart.is_due(at) => Ok(()),
        CartStatus::Open | CartStatus::Expired => Err(CartError::Expired.into_rejection()),
        CartStatus::CheckedOut(order) => Err(CartError::CheckedOut(order.clone()).into_rejection()),
    }
}

trait IntoRejection {
    fn into_rejection(self) -> ShopError;
}

impl<E: Classify> IntoRejection for E {
    fn into_rejection(self) -> ShopError {
        ShopError::rejected(self.rejection(), self.to_string())
    }
}
