//! Order: from placement through payment, confirmation, shipment and delivery, or cancellation,
//! with refunds; one stream per order.

mod command;
mod decide;
mod event;
mod state;
#[cfg(test)]
mod tests;

pub use command::*;
pub use decide::{Order, OrderError, MAX_ORDER_LINES};
pub use event::*;
pub use state::{OrderState, OrderStatus, PaymentStatus, PlacedOrder};
