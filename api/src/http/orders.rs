//! Orders: one order, a customer's history, and the order's later steps.

use super::dto::{
    CancelDto, OrderDto, OrderPageDto, OrderStatusFilter, ReceiptDto, RefundDto, ShipDto,
};
use super::params::Id;
use super::problem::Problem;
use super::rendered::{order_page, Body};
use super::responses::{Command, Private};
use super::state::{run, App, BearerAuth, Tag};
use ordo_eventstore::clock::parse_rfc3339_millis;
use ordo_projections::query::{HistoryQuery, MAX_PAGE};
use ordo_projections::query::{Reader, DEFAULT_WAIT};
use ordo_projections::views::{OrderView, View};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::OpenApi;
use std::sync::Arc;

/// Order endpoints.
pub struct Orders(pub Arc<App>);

/// An RFC 3339 query parameter as Unix milliseconds.
fn parse_time(name: &str, value: Option<String>) -> Result<Option<i64>, Problem> {
    let Some(text) = value else { return Ok(None) };
    let millis = parse_rfc3339_millis(&text).ok_or_else(|| {
        Problem::bad_request(format!(
            "{name} must be an RFC 3339 time such as 2026-11-22T10:00:00Z, got {text:?}"
        ))
    })?;
    Ok(Some(millis))
}

/// The history filters every history endpoint takes.
struct History {
    status: Option<OrderStatusFilter>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
    min_position: Option<u64>,
}

impl Orders {
    async fn history(&self, customer_id: &str, h: History) -> Private<OrderPageDto> {
        if let Err(e) = self.0.check_min_position(h.min_position).await {
            return e.into();
        }
        let (from, to) = match (parse_time("from", h.from), parse_time("to", h.to)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(p), _) | (_, Err(p)) => return Private::BadRequest(Json(p)),
        };
        let query = HistoryQuery {
            status: h.status.map(|s| s.as_str().to_owned()),
            from,
            to,
            cursor: h.cursor.filter(|c| !c.is_empty()),
            limit: h.limit.map_or(20, |l| l as usize).min(MAX_PAGE),
        };
        let query = &query;
        let history =
            move |r: Reader| async move { r.order_history_documents(customer_id, query).await };
        match self.0.reads.read(OrderView::PROJECTION, h.min_position, DEFAULT_WAIT, history).await
        {
            Ok(page) => Private::Ok(order_page(page)),
            Err(e) => e.into(),
        }
    }
}

#[OpenApi]
impl Orders {
    /// One order with each step it went through (its customer or an admin).
    #[oai(
        path = "/v1/orders/:order_id",
        method = "get",
        tag = "Tag::Orders",
        operation_id = "get_order"
    )]
    async fn order(
        &self,
        auth: BearerAuth,
        /// The order.
        order_id: Path<Id>,
        /// Wait (up to 2 s) until the read side has applied this global position.
        #[oai(validator(minimum(value = "0")))]
        min_position: Query<Option<u64>>,
    ) -> Private<OrderDto> {
        if let Err(e) = self.0.check_min_position(min_position.0).await {
            return e.into();
        }
        let id = &order_id.0;
        let order = move |r: Reader| async move { r.order_document(id).await };
        match self.0.reads.read(OrderView::PROJECTION, min_position.0, DEFAULT_WAIT, order).await {
            Ok(Some((customer, order))) if auth.0.may_act_for(&customer) => {
                Private::Ok(Body::rendered(order))
            }
            Ok(_) => {
                Private::NotFound(Json(Problem::not_found(format!("no order {}", order_id.0))))
            }
            Err(e) => e.into(),
        }
    }

    /// A customer's orders, newest first (that customer or an admin).
    #[oai(
        path = "/v1/customers/:customer_id/orders",
        method = "get",
        tag = "Tag::Orders",
        operation_id = "customer_orders"
    )]
    #[allow(clippy::too_many_arguments, reason = "one parameter per documented query option")]
    async fn customer_orders(
        &self,
        auth: BearerAuth,
        /// The customer.
        customer_id: Path<Id>,
        /// Only orders in this status.
        status: Query<Option<OrderStatusFilter>>,
        /// Placed at or after (RFC 3339, e.g. `2026-11-22T10:00:00Z`).
        from: Query<Option<String>>,
        /// Placed at or before (RFC 3339).
        to: Query<Option<String>>,
        /// From a previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// Wait (up to 2 s) until the read side has applied this global position.
        #[oai(validator(minimum(value = "0")))]
        min_position: Query<Option<u64>>,
    ) -> Private<OrderPageDto> {
        if !auth.0.may_act_for(&customer_id.0) {
            return Private::Forbidden(Json(Problem::forbidden(
                "customers may only read their own order history",
            )));
        }
        let h = History {
            status: status.0,
            from: from.0,
            to: to.0,
            cursor: cursor.0,
            limit: limit.0,
            min_position: min_position.0,
        };
        self.history(&customer_id.0, h).await
    }

    /// The calling customer's orders, newest first.
    #[oai(path = "/v1/me/orders", method = "get", tag = "Tag::Orders", operation_id = "my_orders")]
    #[allow(clippy::too_many_arguments, reason = "one parameter per documented query option")]
    async fn my_orders(
        &self,
        auth: BearerAuth,
        /// Only orders in this status.
        status: Query<Option<OrderStatusFilter>>,
        /// Placed at or after (RFC 3339, e.g. `2026-11-22T10:00:00Z`).
        from: Query<Option<String>>,
        /// Placed at or before (RFC 3339).
        to: Query<Option<String>>,
        /// From a previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// Wait (up to 2 s) until the read side has applied this global position.
        #[oai(validator(minimum(value = "0")))]
        min_position: Query<Option<u64>>,
    ) -> Private<OrderPageDto> {
        let h = History {
            status: status.0,
            from: from.0,
            to: to.0,
            cursor: cursor.0,
            limit: limit.0,
            min_position: min_position.0,
        };
        self.history(&auth.0.subject, h).await
    }

    /// Cancel an order before it ships (its customer or an admin). Held stock goes back and
    /// an authorized payment is voided.
    #[oai(
        path = "/v1/orders/:order_id/cancel",
        method = "post",
        tag = "Tag::Orders",
        operation_id = "cancel_order"
    )]
    async fn cancel(
        &self,
        auth: BearerAuth,
        /// The order.
        order_id: Path<Id>,
        body: Json<CancelDto>,
        /// Makes a retry safe: the same key and body answer with the first response.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        req: &poem::Request,
    ) -> Command<ReceiptDto> {
        let request = auth.request(idempotency_key.0.as_deref(), req);
        let reason = body.0.reason;
        run(&self.0, |shop| shop.cancel_order(&order_id.0, reason, &request)).await.into()
    }

    /// Record that a confirmed order shipped (admin).
    #[oai(
        path = "/v1/orders/:order_id/ship",
        method = "post",
        tag = "Tag::Orders",
        operation_id = "ship_order"
    )]
    async fn ship(
        &self,
        auth: BearerAuth,
        /// The order.
        order_id: Path<Id>,
        body: Json<ShipDto>,
        /// Makes a retry safe: the same key and body answer with the first response.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        req: &poem::Request,
    ) -> Command<ReceiptDto> {
        let request = auth.request(idempotency_key.0.as_deref(), req);
        let Json(ShipDto { carrier, tracking }) = body;
        run(&self.0, |shop| shop.ship_order(&order_id.0, carrier.into(), tracking.into(), &request))
            .await
            .into()
    }

    /// Record that a shipped order arrived (admin).
    #[oai(
        path = "/v1/orders/:order_id/deliver",
        method = "post",
        tag = "Tag::Orders",
        operation_id = "deliver_order"
    )]
    async fn deliver(
        &self,
        auth: BearerAuth,
        /// The order.
        order_id: Path<Id>,
        /// Makes a retry safe: the same key answers with the first response.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        req: &poem::Request,
    ) -> Command<ReceiptDto> {
        let request = auth.request(idempotency_key.0.as_deref(), req);
        run(&self.0, |shop| shop.deliver_order(&order_id.0, &request)).await.into()
    }

    /// Refund part or all of what was paid (admin); the payment provider is refunded too.
    #[oai(
        path = "/v1/orders/:order_id/refund",
        method = "post",
        tag = "Tag::Orders",
        operation_id = "refund_order"
    )]
    async fn refund(
        &self,
        auth: BearerAuth,
        /// The order.
        order_id: Path<Id>,
        body: Json<RefundDto>,
        /// Makes a retry safe: the same key and body answer with the first response.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        req: &poem::Request,
    ) -> Command<ReceiptDto> {
        let request = auth.request(idempotency_key.0.as_deref(), req);
        let amount = body.0.amount_minor;
        run(&self.0, |shop| shop.refund_order(&order_id.0, amount, &request)).await.into()
    }
}
