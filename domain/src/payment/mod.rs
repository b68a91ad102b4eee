//! Payment: the one authorization an order may ever have, one stream per order.
//!
//! A separate aggregate from the order (see `docs/adr/0003-payment-aggregate.md`): the stream
//! `payment-<order id>` is the idempotency key towards the provider, and a retried request
//! finds the authorization already requested instead of charging twice.

mod command;
mod decide;
mod event;
mod state;
#[cfg(test)]
mod tests;

pub use command::*;
pub use decide::{Payment, PaymentError};
pub use event::*;
pub use state::PaymentState;
