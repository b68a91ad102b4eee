//! Ordo's outer layer: what the `ordo` binary runs.
//!
//! # Layout
//!
//! - [`bench`]: `ordo bench ...`, measurements that print one JSON object per run.
//!
//! The binary in `src/main.rs` only parses arguments and calls into these modules.

#![forbid(unsafe_code)]

pub mod bench;
