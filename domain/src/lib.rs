//! Ordo's domain: every business rule of the shop, as pure functions.
//!
//! Nothing in this crate performs I/O, reads a clock or draws a random number. Time, ids and prices
//! arrive inside commands, so the same command against the same state always gives the same events,
//! and every rule can be tested without a runtime.
//!
//! # Layout
//!
//! - [`decider`]: the [`Decider`] trait every aggregate implements: `decide(command, state)` turns a
//!   command into events or a rule violation, `evolve(state, event)` folds one event into state.
//! - [`money`], [`ids`], [`time`]: value types shared by the aggregates ([`Money`] in integer minor
//!   units, validated ids, [`Timestamp`] in Unix milliseconds).
//! - [`product`]: catalogue entry and inventory of one SKU, including stock reservations.
//! - [`cart`]: a shopper's cart with its expiry.
//! - [`order`]: an order's lifecycle from placement to delivery, cancellation and refunds.
//! - [`payment`]: the one authorization an order may ever have.
//! - [`plan`]: use cases that span aggregates (putting an item in a cart, checkout) as pure plans:
//!   which command to which aggregate, in what order, and what undoes a step.
//! - [`process`]: pure reaction logic of the checkout process and cart expiry. The runtimes that
//!   feed them events and send the resulting commands live in the outer crates.
//!
//! Commands flow in, events flow out; infrastructure stores the events and rebuilds state by
//! folding them through `evolve`.

#![forbid(unsafe_code)]
// Money and quantities are exact; a float anywhere in the domain is a bug.
#![deny(clippy::float_arithmetic)]

pub mod cart;
pub mod decider;
pub mod ids;
pub mod money;
pub mod order;
pub mod payment;
pub mod plan;
pub mod process;
pub mod product;
pub mod time;

#[cfg(test)]
mod testing;

pub use decider::Decider;
pub use ids::{CartId, CustomerId, IdError, OrderId, ReservationId, Sku};
pub use money::{Currency, Money, MoneyError, MAX_AMOUNT_MINOR};
pub use time::Timestamp;
