//! Checkout: order placed -> payment authorized or declined -> order confirmed (by the
//! authorization itself) with stock committed, or cancelled with stock released and any
//! authorization voided.

use super::Reaction;
use crate::order::OrderCommand;
use crate::order::{
    Actor, CancelOrder, ConfirmOrder, OrderEvent, OrderStatus, PaymentStatus, PlacedOrder,
};
use crate::order::{RecordPaymentAuthorized, RecordPaymentDeclined};
use crate::payment::{
    PaymentCommand, PaymentEvent, RefundPayment, RequestAuthorization, VoidPayment,
};
use crate::product::{AdjustStock, CommitReservation, ProductCommand, ReleaseReservation};
use crate::{OrderId, Timestamp};

/// What follows an order event. `order` is the state after the event was applied.
pub fn react_to_order(event: &OrderEvent, order: &PlacedOrder, now: Timestamp) -> Vec<Reaction> {
    let order_id = &order.order_id;
    match event {
        OrderEvent::Placed(e) => vec![payment(
            order_id,
            PaymentCommand::RequestAuthorization(RequestAuthorization {
                order_id: order_id.clone(),
                amount: e.total,
                token: e.payment_token.clone(),
                at: now,
            }),
        )],
        OrderEvent::PaymentAuthorized(_) => match order.status {
            // An authorization confirms its order in the same step (the order's rule), so this
            // confirmation changes nothing; it confirms orders whose payment an older Ordo
            // recorded on its own.
            OrderStatus::Placed => {
                vec![self_command(order_id, OrderCommand::Confirm(ConfirmOrder { at: now }))]
            }
            // Paid after the customer cancelled: give the money back.
            OrderStatus::Cancelled => {
                vec![payment(order_id, PaymentCommand::Void(VoidPayment { at: now }))]
            }
            _ => vec![],
        },
        OrderEvent::PaymentDeclined(e) if order.status == OrderStatus::Placed => {
            let reason = format!("payment declined: {}", e.reason);
            vec![self_command(
                order_id,
                OrderCommand::Cancel(CancelOrder { reason, by: Actor::System, at: now }),
            )]
        }
        OrderEvent::Confirmed(_) => per_line(order, |_| {
            ProductCommand::Commit(CommitReservation {
                reservation_id: order.reservation_id.clone(),
                now,
            })
        }),
        OrderEvent::Cancelled(_) => on_cancelled(order, now),
        OrderEvent::Refunded(e) => {
            vec![payment(
                order_id,
                PaymentCommand::Refund(RefundPayment { amount: e.amount, at: now }),
            )]
        }
        OrderEvent::PaymentDeclined(_) | OrderEvent::Shipped(_) | OrderEvent::Delivered(_) => {
            vec![]
        }
    }
}

/// Stock goes back the way it left: released if only held, restocked if already committed.
fn on_cancelled(order: &PlacedOrder, now: Timestamp) -> Vec<Reaction> {
    let mut reactions = match order.confirmed_at {
        None => per_line(order, |_| {
            ProductCommand::Release(ReleaseReservation {
                reservation_id: order.reservation_id.clone(),
                now,
            })
        }),
        Some(_) => per_line(order, |quantity| {
            ProductCommand::AdjustStock(AdjustStock {
                delta: i64::from(quantity),
                reason: format!("order {} cancelled after confirmation", order.order_id),
                now,
            })
        }),
    };
    if order.payment == PaymentStatus::Authorized {
        reactions.push(payment(&order.order_id, PaymentCommand::Void(VoidPayment { at: now })));
    }
    reactions
}

/// What follows a payment event for `order_id`.
pub fn react_to_payment(event: &PaymentEvent, order_id: &OrderId, now: Timestamp) -> Vec<Reaction> {
    match event {
        PaymentEvent::Requested(e) => vec![Reaction::AuthorizeWithProvider {
            order_id: order_id.clone(),
            amount: e.amount,
            token: e.token.clone(),
        }],
        PaymentEvent::Authorized(e) => vec![self_command(
            order_id,
            OrderCommand::RecordPaymentAuthorized(RecordPaymentAuthorized {
                amount: e.amount,
                at: now,
            }),
        )],
        PaymentEvent::Declined(e) => vec![self_command(
            order_id,
            OrderCommand::RecordPaymentDeclined(RecordPaymentDeclined {
                reason: e.reason.clone(),
                at: now,
            }),
        )],
        PaymentEvent::Voided(_) | PaymentEvent::Refunded(_) => vec![],
    }
}

fn self_command(order_id: &OrderId, command: OrderCommand) -> Reaction {
    Reaction::Order { order_id: order_id.clone(), command }
}

fn payment(order_id: &OrderId, command: PaymentCommand) -> Reaction {
    Reaction::Payment { order_id: order_id.clone(), command }
}

fn per_line(order: &PlacedOrder, command: impl Fn(u32) -> ProductCommand) -> Vec<Reaction> {
    order
        .lines
        .iter()
        .map(|l| Reaction::Product { sku: l.sku.clone(), command: command(l.quantity) })
        .collect()
}
