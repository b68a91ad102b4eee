//! Ordo's read side: projections from the event log into Redis, and the queries served from it.
//!
//! # Layout
//!
//! - [`views`]: the read models as pure folds (`apply(view, event) -> view`) with their Redis
//!   layout (hash fields, index entries). Tested without Redis.
//! - [`change`]: Redis writes as data, and the diff of index memberships between two views.
//! - [`keys`]: the key layout: `ordo:<projection>:v<version>:...` (ADR 0007).
//! - [`search`]: tokenizer shared by indexing and querying.
//! - [`runner`]: subscribes to the store, folds batches, writes each batch and its checkpoint
//!   in one `MULTI/EXEC`, publishes the applied position and status.
//! - [`query`]: typed queries (order, order history, product, product search, cart), each one
//!   or two round trips, with an optional bounded wait for a global position.
//! - [`rebuild`]: fills a fresh version from the log while the active one serves, then switches.
//! - [`supervisor`]: keeps a projection running on the active version for a server, following
//!   switches made by a rebuild.
//!
//! Events flow store -> runner -> views -> changes -> Redis; queries read Redis only.

#![forbid(unsafe_code)]

pub mod change;
pub mod keys;
pub mod query;
pub mod rebuild;
pub mod redis_server;
pub mod runner;
pub mod search;
pub mod supervisor;
pub mod views;
