//! An order as `decide` sees it.

use super::command::{Actor, Address};
use super::event::{OrderEvent, OrderLine};
use crate::{CustomerId, Money, OrderId, ReservationId, Timestamp};

/// `None` until placed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrderState(pub Option<PlacedOrder>);

/// Fulfilment stage. Legal moves: Placed -> Confirmed -> Shipped -> Delivered, and
/// Placed | Confirmed -> Cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum OrderStatus {
    /// Waiting for payment.
    Placed,
    /// Paid, waiting for shipment.
    Confirmed,
    /// With the carrier.
    Shipped,
    /// Arrived; final (refunds still possible).
    Delivered,
    /// Called off; final (refunds still possible).
    Cancelled,
}

impl OrderStatus {
    /// Lower-case name used in views and indexes.
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

/// Where the order's one payment authorization stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PaymentStatus {
    /// Not yet answered by the provider.
    Pending,
    /// Authorized for the order total.
    Authorized,
    /// Declined; final.
    Declined,
}

/// A placed order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PlacedOrder {
    /// The order.
    pub order_id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// Reservation holding its stock.
    pub reservation_id: ReservationId,
    /// Priced lines.
    pub lines: Vec<OrderLine>,
    /// Order total.
    pub total: Money,
    /// Destination.
    pub shipping_address: Address,
    /// When placed.
    pub placed_at: Timestamp,
    /// Fulfilment stage.
    pub status: OrderStatus,
    /// Payment stage.
    pub payment: PaymentStatus,
    /// Amount authorized (zero until authorized).
    pub paid: Money,
    /// Amount refunded so far; never above `paid`.
    pub refunded: Money,
    /// Set when confirmed; tells a later cancellation that stock was already committed.
    pub confirmed_at: Option<Timestamp>,
    /// Carrier and tracking once shipped.
    pub shipment: Option<(String, String)>,
    /// Reason and actor once cancelled.
    pub cancellation: Option<(String, Actor)>,
}

impl OrderState {
    /// Applies one event.
    pub fn apply(self, event: &OrderEvent) -> Self {
        match (self.0, event) {
            (_, OrderEvent::Placed(e)) => OrderState(Some(PlacedOrder {
                order_id: e.order_id.clone(),
                customer_id: e.customer_id.clone(),
                reservation_id: e.reservation_id.clone(),
                lines: e.lines.clone(),
                total: e.total,
                shipping_address: e.shipping_address.clone(),
                placed_at: e.placed_at,
                status: OrderStatus::Placed,
                payment: PaymentStatus::Pending,
                paid: Money::zero(e.total.currency),
                refunded: Money::zero(e.total.currency),
                confirmed_at: None,
                shipment: None,
                cancellation: None,
            })),
            (Some(mut order), event) => {
                order.apply(event);
                OrderState(Some(order))
            }
            // Nothing precedes `Placed` in a stream `decide` wrote; ignoring keeps evolve total.
            (None, _) => OrderState(None),
        }
    }
}

impl PlacedOrder {
    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed(_) => {}
            OrderEvent::PaymentAuthorized(e) => {
                self.payment = PaymentStatus::Authorized;
                self.paid = e.amount;
            }
            OrderEvent::PaymentDeclined(_) => self.payment = PaymentStatus::Declined,
            OrderEvent::Confirmed(e) => {
                self.status = OrderStatus::Confirmed;
                self.confirmed_at = Some(e.at);
            }
            OrderEvent::Shipped(e) => {
                self.status = OrderStatus::Shipped;
                self.shipment = Some((e.carrier.clone(), e.tracking.clone()));
            }
            OrderEvent::Delivered(_) => self.status = OrderStatus::Delivered,
            OrderEvent::Cancelled(e) => {
                self.status = OrderStatus::Cancelled;
                self.cancellation = Some((e.reason.clone(), e.by.clone()));
            }
            OrderEvent::Refunded(e) => {
                // Saturating: `decide` guarantees refunded <= paid, so this never clamps.
                self.refunded.minor = self.refunded.minor.saturating_add(e.amount.minor);
            }
        }
    }

    /// Amount still refundable.
    pub fn refundable(&self) -> i64 {
        self.paid.minor - self.refunded.minor
    }
}
