//! Cart: a shopper's basket with an expiry that activity pushes back, one stream per cart.
//!
//! The cart records intent and prices seen; the stock it holds lives on the product streams as
//! reservations named after the cart, placed by the command path that drives both.

mod command;
mod decide;
mod event;
mod state;
#[cfg(test)]
mod tests;

pub use command::*;
pub use decide::{open_for_changes, Cart, CartError, MAX_LINES, MAX_QUANTITY_PER_LINE, MAX_TTL_MS};
pub use event::*;
pub use state::{CartLine, CartState, CartStatus, OpenedCart};
