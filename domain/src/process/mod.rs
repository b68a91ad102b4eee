//! Pure reaction logic of the shop's processes: given an event (and the state it produced),
//! which commands should follow?
//!
//! The runtimes that read events from the store, call the payment provider and send these
//! commands through the normal command path live in the outer crates; keeping the decisions here
//! means every step of checkout and expiry is testable without I/O.

mod cart_expiry;
mod checkout;
#[cfg(test)]
mod tests;

pub use cart_expiry::{expiry_due_after, expiry_due_at, is_due, react_to_cart};
pub use checkout::{react_to_order, react_to_payment};

use crate::cart::CartCommand;
use crate::order::OrderCommand;
use crate::payment::PaymentCommand;
use crate::product::ProductCommand;
use crate::{CartId, Money, OrderId, Sku};

/// A step a process wants taken next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Send a command to an order.
    Order {
        /// Target order.
        order_id: OrderId,
        /// The command.
        command: OrderCommand,
    },
    /// Send a command to an order's payment.
    Payment {
        /// The order whose payment is meant.
        order_id: OrderId,
        /// The command.
        command: PaymentCommand,
    },
    /// Send a command to a product.
    Product {
        /// Target SKU.
        sku: Sku,
        /// The command.
        command: ProductCommand,
    },
    /// Send a command to a cart.
    Cart {
        /// Target cart.
        cart_id: CartId,
        /// The command.
        command: CartCommand,
    },
    /// Ask the payment provider to authorize; the runtime records the answer on the payment.
    AuthorizeWithProvider {
        /// The order; also the provider's idempotency key.
        order_id: OrderId,
        /// Amount.
        amount: Money,
        /// Provider token.
        token: String,
    },
}
