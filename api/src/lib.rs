//! Ordo's outer layer: what the `ordo` binary runs.
//!
//! # Layout
//!
//! - [`bench`]: `ordo bench ...`, measurements that print one JSON object per run.
//! - [`rebuild`]: `ordo rebuild`, read models rebuilt from the event log.
//! - [`audit`]: `ordo replay`, `ordo audit verify`, `ordo export`, `ordo import`.
//! - [`repair`]: `ordo repair`, a store file left by a killed server made readable offline.
//! - [`environment`]: the data directory and the Redis every command uses.
//! - [`progress`]: progress bars for long commands.
//! - [`auth`]: bearer tokens (JWT) and `ordo token`.
//! - [`shop`]: the write side's use cases, shared by the HTTP API and the processes.
//! - [`processes`], [`payments`], [`outbox`]: checkout and cart expiry after the request,
//!   the payment provider, integration events.
//! - [`server`]: `ordo serve` (HTTP API, projections, graceful shutdown) and `ordo openapi`.
//!
//! The binary in `src/main.rs` only parses arguments and calls into these modules.

#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod bench;
pub mod environment;
pub mod outbox;
pub mod payments;
pub mod processes;
pub mod progress;
pub mod rebuild;
pub mod repair;
pub mod server;
pub mod shop;
