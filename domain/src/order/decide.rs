//! The order's rules: legal transitions, totals, and refunds bounded by what was paid.

use super::command::*;
use super::event::*;
use super::state::{OrderState, OrderStatus, PaymentStatus, PlacedOrder};
use crate::{Decider, Money, MoneyError};
use std::collections::BTreeSet;

/// Most lines per order; matches the cart's limit with room for direct orders.
pub const MAX_ORDER_LINES: usize = 100;
const MAX_TEXT_LEN: usize = 200;

/// An order command that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// No such order.
    #[error("order does not exist")]
    NotFound,
    /// Placing an id that is taken.
    #[error("order already exists")]
    AlreadyPlaced,
    /// No lines, or more than [`MAX_ORDER_LINES`].
    #[error("an order needs 1 to {MAX_ORDER_LINES} lines, got {0}")]
    LineCount(usize),
    /// The same SKU on two lines.
    #[error("SKU {0} appears on more than one line")]
    DuplicateSku(String),
    /// A line with zero units.
    #[error("line quantities must be positive")]
    QuantityNotPositive,
    /// A line with a zero or negative price.
    #[error("unit prices must be positive")]
    PriceNotPositive,
    /// Mixed currencies or a total that does not fit.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// A required text field is empty or too long.
    #[error("{0} must be 1 to {MAX_TEXT_LEN} characters")]
    InvalidField(&'static str),
    /// Country not an ISO 3166-1 alpha-2 code.
    #[error("country must be a two-letter upper-case code such as DE")]
    InvalidCountry,
    /// The payment was already answered differently.
    #[error("payment was already recorded")]
    PaymentAlreadyRecorded,
    /// Authorized amount differs from the order total.
    #[error("authorized {got} does not match order total {expected}")]
    PaymentAmountMismatch {
        /// Order total.
        expected: Money,
        /// Amount authorized.
        got: Money,
    },
    /// Confirming or refunding without an authorized payment.
    #[error("payment is not authorized")]
    PaymentNotAuthorized,
    /// Shipping before confirmation.
    #[error("order is not confirmed")]
    NotConfirmed,
    /// Delivering before shipment.
    #[error("order has not shipped")]
    NotShipped,
    /// Cancelling or re-shipping after shipment.
    #[error("order has already shipped")]
    AlreadyShipped,
    /// Acting on a cancelled order.
    #[error("order is cancelled")]
    AlreadyCancelled,
    /// Refund of zero, a negative amount, or in another currency.
    #[error("refund must be a positive amount in the order currency")]
    InvalidRefund,
    /// More refunded than paid.
    #[error("refund of {requested} exceeds the refundable {refundable}")]
    RefundExceedsPayment {
        /// Requested.
        requested: Money,
        /// Still refundable.
        refundable: Money,
    },
}

/// The order decider.
pub struct Order;

impl Decider for Order {
    type Command = OrderCommand;
    type Event = OrderEvent;
    type State = OrderState;
    type Error = OrderError;
    const CATEGORY: &'static str = "order";

    fn initial_state() -> OrderState {
        OrderState::default()
    }

    fn decide(command: &OrderCommand, state: &OrderState) -> Result<Vec<OrderEvent>, OrderError> {
        let OrderCommand::Place(c) = command else {
            let order = state.0.as_ref().ok_or(OrderError::NotFound)?;
            return decide_placed(command, order);
        };
        if state.0.is_some() {
            return Err(OrderError::AlreadyPlaced);
        }
        place(c)
    }

    fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
        state.apply(event)
    }
}

fn decide_placed(
    command: &OrderCommand,
    order: &PlacedOrder,
) -> Result<Vec<OrderEvent>, OrderError> {
    match command {
        OrderCommand::Place(_) => Err(OrderError::AlreadyPlaced),
        OrderCommand::RecordPaymentAuthorized(c) => authorized(c, order),
        OrderCommand::RecordPaymentDeclined(c) => declined(c, order),
        OrderCommand::Confirm(c) => confirm(c, order),
        OrderCommand::Ship(c) => ship(c, order),
        OrderCommand::Deliver(c) => deliver(c, order),
        OrderCommand::Cancel(c) => cancel(c, order),
        OrderCommand::Refund(c) => refund(c, order),
    }
}

fn text(field: &'static str, value: &str, required: bool) -> Result<(), OrderError> {
    let len = value.chars().count();
    if (required && value.trim().is_empty()) || len > MAX_TEXT_LEN {
        return Err(OrderError::InvalidField(field));
    }
    Ok(())
}

fn check_address(a: &Address) -> Result<(), OrderError> {
    text("name", &a.name, true)?;
    text("line1", &a.line1, true)?;
    text("line2", &a.line2, false)?;
    text("city", &a.city, true)?;
    text("postal_code", &a.postal_code, true)?;
    if a.country.len() != 2 || !a.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(OrderError::InvalidCountry);
    }
    Ok(())
}

fn price_lines(lines: &[NewOrderLine]) -> Result<(Vec<OrderLine>, Money), OrderError> {
    let first = lines.first().ok_or(OrderError::LineCount(0))?;
    if lines.len() > MAX_ORDER_LINES {
        return Err(OrderError::LineCount(lines.len()));
    }
    let mut seen = BTreeSet::new();
    let mut priced = Vec::with_capacity(lines.len());
    for line in lines {
        if !seen.insert(&line.sku) {
            return Err(OrderError::DuplicateSku(line.sku.to_string()));
        }
        if line.quantity == 0 {
            return Err(OrderError::QuantityNotPositive);
        }
        if !line.unit_price.is_positive() {
            return Err(OrderError::PriceNotPositive);
        }
        text("line name", &line.name, true)?;
        priced.push(OrderLine {
            sku: line.sku.clone(),
            name: line.name.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            line_total: line.unit_price.checked_mul(line.quantity)?,
        });
    }
    let total =
        Money::checked_sum(first.unit_price.currency, priced.iter().map(|l| &l.line_total))?;
    Ok((priced, total))
}

fn place(c: &PlaceOrder) -> Result<Vec<OrderEvent>, OrderError> {
    let (lines, total) = price_lines(&c.lines)?;
    check_address(&c.shipping_address)?;
    text("payment_token", &c.payment_token, true)?;
    Ok(vec![OrderEvent::Placed(OrderPlaced {
        order_id: c.order_id.clone(),
        customer_id: c.customer_id.clone(),
        reservation_id: c.reservation_id.clone(),
        lines,
        total,
        shipping_address: c.shipping_address.clone(),
        payment_token: c.payment_token.clone(),
        placed_at: c.placed_at,
    })])
}

/// A payment answer is recorded even on a cancelled order, so the process can void it. An
/// order still waiting for its payment is confirmed by it in the same step: an authorized
/// payment is all a placed order waits for (ADR 0009, amended).
fn authorized(
    c: &RecordPaymentAuthorized,
    order: &PlacedOrder,
) -> Result<Vec<OrderEvent>, OrderError> {
    match order.payment {
        PaymentStatus::Authorized if order.paid == c.amount => return Ok(vec![]),
        PaymentStatus::Authorized | PaymentStatus::Declined => {
            return Err(OrderError::PaymentAlreadyRecorded)
        }
        PaymentStatus::Pending => {}
    }
    if c.amount != order.total {
        return Err(OrderError::PaymentAmountMismatch { expected: order.total, got: c.amount });
    }
    let paid = OrderEvent::PaymentAuthorized(OrderPaymentAuthorized { amount: c.amount, at: c.at });
    Ok(match order.status {
        OrderStatus::Placed => vec![paid, OrderEvent::Confirmed(OrderConfirmed { at: c.at })],
        _ => vec![paid],
    })
}

fn declined(c: &RecordPaymentDeclined, order: &PlacedOrder) -> Result<Vec<OrderEvent>, OrderError> {
    match order.payment {
        PaymentStatus::Declined => Ok(vec![]),
        PaymentStatus::Authorized => Err(OrderError::PaymentAlreadyRecorded),
        PaymentStatus::Pending => Ok(vec![OrderEvent::PaymentDeclined(OrderPaymentDeclined {
            reason: c.reason.clone(),
            at: c.at,
        })]),
    }
}

fn confirm(c: &ConfirmOrder, order: &PlacedOrder) -> Result<Vec<OrderEvent>, OrderError> {
    match order.status {
        OrderStatus::Placed if order.payment == PaymentStatus::Authorized => {
            Ok(vec![OrderEvent::Confirmed(OrderConfirmed { at: c.at })])
        }
        OrderStatus::Placed => Err(OrderError::PaymentNotAuthorized),
        OrderStatus::Confirmed => Ok(vec![]),
        OrderStatus::Shipped | OrderStatus::Delivered => Err(OrderError::AlreadyShipped),
        OrderStatus::Cancelled => Err(OrderError::AlreadyCancelled),
    }
}

fn ship(c: &ShipOrder, order: &PlacedOrder) -> Result<Vec<OrderEvent>, OrderError> {
    match order.status {
        OrderStatus::Confirmed => {}
        OrderStatus::Placed => return Err(OrderError::NotConfirmed),
        OrderStatus::Shipped | OrderStatus::Delivered => return Err(OrderError::AlreadyShipped),
        OrderStatus::Cancelled => return Err(OrderError::AlreadyCancelled),
    }
    text("carrier", &c.carrier, true)?;
    text("tracking", &c.tracking, true)?;
    Ok(vec![OrderEvent::Shipped(OrderShipped {
        carrier: c.carrier.clone(),
        tracking: c.tracking.clone(),
        at: c.at,
    })])
}

fn deliver(c: &DeliverOrder, order: &PlacedOrder) -> Result<Vec<OrderEvent>, OrderError> {
    match order.status {
        OrderStatus::Shipped => Ok(vec![OrderEvent::Delivered(OrderDelivered { at: c.at })]),
        OrderStatus::Delivered => Ok(vec![]),
        OrderStatus::Placed | OrderStatus::Confirmed => Err(OrderError::NotShipped),
        OrderStatus::Cancelled => Err(OrderError::AlreadyCancelled),
    }
}

fn cancel(c: &CancelOrder, order: &PlacedOrder) -> Result<Vec<OrderEvent>, OrderError> {
    match order.status {
        OrderStatus::Placed | OrderStatus::Confirmed => {}
        OrderStatus::Shipped | OrderStatus::Delivered => return Err(OrderError::AlreadyShipped),
        OrderStatus::Cancelled => return Err(OrderError::AlreadyCancelled),
    }
    text("reason", &c.reason, true)?;
    Ok(vec![OrderEvent::Cancelled(OrderCancelled {
        reason: c.reason.clone(),
        by: c.by.clone(),
        at: c.at,
    })])
}

fn refund(c: &RefundOrder, order: &PlacedOrder) -> Result<Vec<OrderEvent>, OrderError> {
    if order.payment != PaymentStatus::Authorized {
        return Err(OrderError::PaymentNotAuthorized);
    }
    if !c.amount.is_positive() || c.amount.currency != order.paid.currency {
        return Err(OrderError::InvalidRefund);
    }
    let refundable = Money::new(order.refundable(), order.paid.currency);
    if c.amount.minor > refundable.minor {
        return Err(OrderError::RefundExceedsPayment { requested: c.amount, refundable });
    }
    Ok(vec![OrderEvent::Refunded(OrderRefunded { amount: c.amount, at: c.at })])
}
