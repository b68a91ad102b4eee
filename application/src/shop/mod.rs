//! The write side's use cases, one file per area. Each is a short script over the deciders:
//! load the states involved, ask the domain (a decider, or a [`ordo_domain::plan`] for use
//! cases spanning aggregates) what to do, run the commands through the command path
//! ([`Repository`]: load, `decide`, append with optimistic concurrency).
//!
//! No use case waits for the read side, and who may do what is checked against the write
//! model, not Redis, so commands keep working while Redis is down.
//!
//! - [`catalogue`]: list, reprice, restock, delist (staff).
//! - [`carts`]: open a cart, set and remove lines (a line and its hold in one commit).
//! - [`checkout`]: holds renewed, order placed with the cart closed; a retry finishes a
//!   cut-short one.
//! - `joined`: how one commit carries a second aggregate's events (ADR 0022).
//! - [`orders`]: cancel (owner or staff), ship, deliver, refund (staff).

pub mod carts;
pub mod catalogue;
pub mod checkout;
mod joined;
pub mod orders;

use crate::error::AppError;
use ordo_domain::cart::Cart;
use ordo_domain::order::Order;
use ordo_domain::payment::Payment;
use ordo_domain::product::Product;
use ordo_domain::Currency;
use ordo_eventstore::command::{Receipt, Repository};
use ordo_eventstore::{EventStore, Position};
use std::sync::Arc;
use std::time::Duration;

pub use catalogue::NewProduct;

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

/// The shop's command side: one repository (command path with its aggregate cache) per
/// aggregate, shared with the processes.
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

    /// Products' command path (the processes share it and its cache).
    pub fn products(&self) -> &Repository<Product, S> {
        &self.products
    }

    /// Carts' command path.
    pub fn carts(&self) -> &Repository<Cart, S> {
        &self.carts
    }

    /// Orders' command path.
    pub fn orders(&self) -> &Repository<Order, S> {
        &self.orders
    }

    /// Payments' command path (only the processes use it).
    pub fn payments(&self) -> &Repository<Payment, S> {
        &self.payments
    }

    /// The event store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The receipt of a use case whose main command gave `last`; `also` are the positions
    /// of its other commands, so `position` covers every event it wrote.
    async fn done<E>(
        &self,
        id: &str,
        last: &Receipt<E>,
        also: &[Option<Position>],
    ) -> Result<Done, AppError> {
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
}
