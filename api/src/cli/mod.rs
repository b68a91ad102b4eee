//! The command-line tools beside `ordo serve`: what an operator runs by hand or from scripts.
//!
//! - [`environment`]: the data directory and the Redis every command uses.
//! - [`token`]: `ordo token`.
//! - [`rebuild`]: `ordo rebuild`, read models rebuilt from the event log.
//! - [`audit`]: `ordo replay`, `ordo audit verify`, `ordo export`, `ordo import`.
//! - [`repair`]: `ordo repair`, a store file left by a killed server made readable offline.
//! - [`progress`]: progress bars for long commands.

pub mod audit;
pub mod environment;
pub mod progress;
pub mod rebuild;
pub mod repair;
pub mod token;
