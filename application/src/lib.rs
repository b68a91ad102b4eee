//! Ordo's application layer: the use cases a shop runs, over the pure deciders of
//! `ordo-domain` and the event store of `ordo-eventstore`. No HTTP, no command line, no JWT:
//! the outer layers turn their requests into a [`Request`] and call in.
//!
//! # Layout
//!
//! - [`caller`], [`request`]: who asks ([`Caller`], verified elsewhere) and one command
//!   request (its idempotency key and correlation id, turned into each step's command context).
//! - [`shop`]: the use cases, one file per area (catalogue, carts, checkout, orders). Each is a
//!   short script: load, ask the domain (a decider or a `plan`), append.
//! - [`error`]: [`AppError`], every domain refusal kept as its own type to the edge.
//! - [`processes`]: the checkout process and cart expiry, a handler of the shared log follower
//!   with its checkpoint and cart due times in one file.
//! - [`outbox`]: public order events to a Redis Stream, its checkpoint moving with its entries.
//! - [`payments`]: the payment provider behind [`payments::PaymentGateway`], and the
//!   deterministic simulator that stands in for one.
//! - [`leases`]: work that must happen once (the processes, the outbox, each projection)
//!   runs in one instance at a time, under a lease with a fencing epoch.
//! - [`ids`]: ids derived from other ids, so retries find what the first attempt created.
//!
//! What flows: HTTP handlers call `Shop` use cases; the use cases append events; the log
//! follower hands those events to the processes (which call the same command path) and the
//! outbox (which writes Redis).

#![forbid(unsafe_code)]

pub mod caller;
pub mod error;
pub mod ids;
pub mod leases;
pub mod outbox;
pub mod payments;
pub mod processes;
pub mod redis_shared;
pub mod request;
pub mod shop;

pub use caller::{Caller, Role};
pub use error::{AppError, Missing};
pub use request::Request;
pub use shop::{Done, NewProduct, Shop, ShopConfig};
