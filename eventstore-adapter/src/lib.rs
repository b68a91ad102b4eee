//! Ordo's system of record: an append-only event store behind one contract, and the write path
//! that turns commands into stored events.
//!
//! # Layout
//!
//! - [`model`], [`error`]: stream names, expected versions, positions, new and recorded events,
//!   and [`StoreError`].
//! - [`store`]: the [`EventStore`] and [`Subscription`] traits, the contract every backend keeps.
//! - [`embedded`]: the default backend, one redb file with a group-commit writer and a SHA-256
//!   hash chain over the global log.
//! - [`postgres`]: the same contract on PostgreSQL, shared by many servers: group commit,
//!   appends serialized on one row so the global order never skips, the same hash chain.
//! - [`kurrent`]: the same contract on a KurrentDB cluster, through the official client.
//! - [`together`]: the rules of an append, to one stream or to several in one commit, that the
//!   embedded store and PostgreSQL share.
//! - [`any`]: whichever backend a `--store` URL names, behind the same contract.
//! - [`audit`]: is the log intact (hash chain) and readable by today's code (every event decodes)?
//! - [`codec`]: domain events to and from postcard payloads, with type names and schema versions
//!   kept outside the payload, and upcasters for older versions.
//! - [`command`]: load an aggregate (cached), `decide`, append with optimistic concurrency,
//!   retry on conflict.
//! - [`follow`]: the one log follower: from a checkpoint, batch by batch, with retry and
//!   backoff; projections, processes and the outbox are its handlers.
//! - [`clock`]: the one wall clock and time format.
//!
//! Commands enter through [`command::Repository::execute`]; events leave through
//! [`EventStore::subscribe_all`], which [`follow`] drives for the projections and processes.

#![forbid(unsafe_code)]

pub mod any;
pub mod audit;
pub mod clock;
pub mod codec;
pub mod command;
pub mod embedded;
pub mod error;
pub mod follow;
pub mod kurrent;
pub mod model;
pub mod postgres;
pub mod store;
pub mod together;

pub use any::{Access, AnyStore, StoreLocation};
pub use embedded::{Durability, EmbeddedConfig, EmbeddedStore};
pub use error::StoreError;
pub use model::*;
pub use postgres::{PostgresConfig, PostgresStore};
pub use store::{EventStore, Subscription};
