//! Guest sessions and carts.

use super::dto::{CartDto, CheckoutDto, QuantityDto, ReceiptDto, SessionDto};
use super::params::{Id, Sku};
use super::problem::Problem;
use super::rendered::Body;
use super::responses::{Command, Created, Private};
use super::state::{run, App, BearerAuth, Tag};
use crate::http::auth::GUEST_TOKEN_TTL;
use ordo_application::Role;
use ordo_projections::query::{Reader, DEFAULT_WAIT};
use ordo_projections::views::{CartView, View};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::OpenApi;
use std::sync::Arc;

/// Session and cart endpoints.
pub struct Carts(pub Arc<App>);

#[OpenApi]
impl Carts {
    /// Start a guest session: a new customer id and a customer token for it (30 days).
    #[oai(
        path = "/v1/sessions",
        method = "post",
        tag = "Tag::Sessions",
        operation_id = "start_session"
    )]
    async fn start_session(
        &self,
        // Declared for the document; the idempotency middleware acts on it.
        /// Makes a retry safe: the same key answers with the same session.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        _idempotency_key: Header<Option<String>>,
    ) -> Created<SessionDto> {
        let customer_id = format!("guest-{}", uuid::Uuid::now_v7());
        let (token, expires_at) = self.0.keys.mint(&customer_id, Role::Customer, GUEST_TOKEN_TTL);
        let expires_at = ordo_eventstore::clock::rfc3339((expires_at as i64).saturating_mul(1_000));
        Created::Ok(Json(SessionDto { token, customer_id, expires_at }))
    }

    /// Open a cart for the calling customer. Carts expire after a period without changes,
    /// releasing the stock their items hold.
    #[oai(path = "/v1/carts", method = "post", tag = "Tag::Carts", operation_id = "open_cart")]
    async fn open_cart(
        &self,
        auth: BearerAuth,
        /// Makes a retry safe: the same key answers with the same cart.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        req: &poem::Request,
    ) -> Created<ReceiptDto> {
        let request = auth.request(idempotency_key.0.as_deref(), req);
        run(&self.0, |shop| shop.open_cart(&request)).await.into()
    }

    /// The cart (its owner or an admin).
    #[oai(
        path = "/v1/carts/:cart_id",
        method = "get",
        tag = "Tag::Carts",
        operation_id = "get_cart"
    )]
    async fn cart(
        &self,
        auth: BearerAuth,
        /// The cart.
        cart_id: Path<Id>,
        /// Wait (up to 2 s) until the read side has applied this global position.
        #[oai(validator(minimum(value = "0")))]
        min_position: Query<Option<u64>>,
    ) -> Private<CartDto> {
        if let Err(e) = self.0.check_min_position(min_position.0).await {
            return e.into();
        }
        let id = &cart_id.0;
        let cart = move |r: Reader| async move { r.cart(id).await };
        match self.0.reads.read(CartView::PROJECTION, min_position.0, DEFAULT_WAIT, cart).await {
            Ok(Some(cart)) if auth.0.may_act_for(&cart.customer_id) => {
                Private::Ok(Body::Value(cart.into()))
            }
            Ok(_) => Private::NotFound(Json(Problem::not_found(format!("no cart {}", cart_id.0)))),
            Err(e) => e.into(),
        }
    }

    /// Set how many units of a product the cart holds, reserving them (0 removes the line).
    /// Answers 409 when not enough stock is available.
    #[oai(
        path = "/v1/carts/:cart_id/items/:sku",
        method = "put",
        tag = "Tag::Carts",
        operation_id = "set_cart_item"
    )]
    async fn set_item(
        &self,
        auth: BearerAuth,
        /// The cart.
        cart_id: Path<Id>,
        /// The product.
        sku: Path<Sku>,
        body: Json<QuantityDto>,
        req: &poem::Request,
    ) -> Command<ReceiptDto> {
        let request = auth.request(None, req);
        run(&self.0, |shop| shop.set_item(&cart_id.0, &sku.0, body.0.quantity, &request))
            .await
            .into()
    }

    /// Remove a line from the cart, releasing its stock.
    #[oai(
        path = "/v1/carts/:cart_id/items/:sku",
        method = "delete",
        tag = "Tag::Carts",
        operation_id = "remove_cart_item"
    )]
    async fn remove_item(
        &self,
        auth: BearerAuth,
        /// The cart.
        cart_id: Path<Id>,
        /// The product.
        sku: Path<Sku>,
        req: &poem::Request,
    ) -> Command<ReceiptDto> {
        let request = auth.request(None, req);
        run(&self.0, |shop| shop.remove_item(&cart_id.0, &sku.0, &request)).await.into()
    }

    /// Check out: the cart becomes an order (the receipt's `id`), its stock held while the
    /// payment is authorized.
    #[oai(
        path = "/v1/carts/:cart_id/checkout",
        method = "post",
        tag = "Tag::Carts",
        operation_id = "check_out"
    )]
    async fn check_out(
        &self,
        auth: BearerAuth,
        /// The cart.
        cart_id: Path<Id>,
        body: Json<CheckoutDto>,
        /// Makes a retry safe: the same key and body answer with the first response.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        req: &poem::Request,
    ) -> Created<ReceiptDto> {
        let request = auth.request(idempotency_key.0.as_deref(), req);
        let Json(CheckoutDto { shipping_address, payment_token }) = body;
        run(&self.0, |shop| {
            shop.check_out(&cart_id.0, shipping_address.into(), payment_token.into(), &request)
        })
        .await
        .into()
    }
}
