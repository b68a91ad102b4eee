//! Ordo's outer layer: what the `ordo` binary runs.
//!
//! # Layout
//!
//! - [`bench`]: `ordo bench ...`, measurements that print one JSON object per run.
//! - [`rebuild`]: `ordo rebuild`, read models rebuilt from the event log.
//! - [`environment`]: the data directory and the Redis every command uses.
//!
//! The binary in `src/main.rs` only parses arguments and calls into these modules.

#![forbid(unsafe_code)]

pub mod bench;
pub mod environment;
pub mod rebuild;
