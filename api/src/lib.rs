//! The `ordo` binary's library: the HTTP API and the command-line tools, the outer layer
//! around the application layer (`ordo-application`).
//!
//! # Layout
//!
//! - [`http`]: `ordo serve` and `ordo openapi`: routes and DTOs per area, middleware (body
//!   checks, idempotency, request ids, metrics), problem documents, bearer tokens
//!   ([`http::auth`]), and the wiring that starts the projections, processes and outbox.
//! - [`cli`]: the operator's tools: `token`, `rebuild`, `replay`, `audit verify`, `export`,
//!   `import`, `repair`, and the data directory and Redis they share.
//! - [`bench`](mod@bench) (feature `bench`, on by default): `ordo bench ...`, measurements printed as
//!   JSON. Nothing else depends on it.
//!
//! What may depend on what:
//!
//! ```text
//! main.rs ──> cli ──────┐
//!    │                  ├──> ordo-application ──> ordo-eventstore ──> ordo-domain
//!    ├──> http ─────────┤          (no poem, no clap, no JWT)
//!    └──> bench ──> http┘──> ordo-projections (queries, runners) ──> ordo-eventstore
//! ```
//!
//! The binary in `src/main.rs` only parses arguments and calls into these modules.

#![forbid(unsafe_code)]

#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod http;
