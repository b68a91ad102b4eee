//! Orders after checkout: the customer (or staff) cancels; staff ship, deliver and refund.

use super::{Done, Shop};
use crate::caller::Caller;
use crate::error::{AppError, Missing};
use crate::request::Request;
use ordo_domain::order::{self, Actor, OrderCommand, OrderState};
use ordo_domain::{CustomerId, Money, OrderId};
use ordo_eventstore::clock::now;
use ordo_eventstore::EventStore;

impl<S: EventStore> Shop<S> {
    /// The order, if it exists and the caller may see it.
    async fn own_order(&self, order_id: &OrderId, caller: &Caller) -> Result<OrderState, AppError> {
        let state = self.orders.inspect(order_id.as_str(), |_, s| s.clone()).await?;
        match &state.0 {
            Some(order) if caller.may_act_for(order.customer_id.as_str()) => Ok(state),
            _ => Err(AppError::not_found(Missing::Order, order_id)),
        }
    }

    async fn order_command(
        &self,
        order_id: &OrderId,
        command: OrderCommand,
        request: &Request,
    ) -> Result<Done, AppError> {
        let receipt = self.orders.execute(order_id.as_str(), &command, &request.context(0)).await?;
        self.done(order_id.as_str(), &receipt, &[]).await
    }

    /// Cancels an order before it ships (its customer or staff).
    pub async fn cancel_order(
        &self,
        order_id: &str,
        reason: String,
        request: &Request,
    ) -> Result<Done, AppError> {
        let order_id = OrderId::parse(order_id)?;
        self.own_order(&order_id, &request.caller).await?;
        let by = if request.caller.is_admin() {
            Actor::Admin(request.caller.subject.clone())
        } else {
            Actor::Customer(CustomerId::parse(request.caller.subject.clone())?)
        };
        let command = OrderCommand::Cancel(order::CancelOrder { reason, by, at: now() });
        self.order_command(&order_id, command, request).await
    }

    /// Records the shipment (staff).
    pub async fn ship_order(
        &self,
        order_id: &str,
        carrier: String,
        tracking: String,
        request: &Request,
    ) -> Result<Done, AppError> {
        request.require_admin()?;
        let order_id = OrderId::parse(order_id)?;
        let command = OrderCommand::Ship(order::ShipOrder { carrier, tracking, at: now() });
        self.order_command(&order_id, command, request).await
    }

    /// Records the delivery (staff).
    pub async fn deliver_order(&self, order_id: &str, request: &Request) -> Result<Done, AppError> {
        request.require_admin()?;
        let order_id = OrderId::parse(order_id)?;
        let command = OrderCommand::Deliver(order::DeliverOrder { at: now() });
        self.order_command(&order_id, command, request).await
    }

    /// Refunds part or all of what was paid (staff), in the order's currency.
    pub async fn refund_order(
        &self,
        order_id: &str,
        amount_minor: i64,
        request: &Request,
    ) -> Result<Done, AppError> {
        request.require_admin()?;
        let order_id = OrderId::parse(order_id)?;
        let state = self.own_order(&order_id, &request.caller).await?;
        let currency = state.0.as_ref().map_or(self.config.currency, |o| o.total.currency);
        let command = OrderCommand::Refund(order::RefundOrder {
            amount: Money::new(amount_minor, currency),
            at: now(),
        });
        self.order_command(&order_id, command, request).await
    }
}
