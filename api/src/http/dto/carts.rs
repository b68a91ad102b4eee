//! A cart's shapes: its lines and the quantity a line is set to.

use ordo_eventstore::clock::rfc3339;
use ordo_projections::views::CartView;
use poem_openapi::Object;

/// How many units of a product the cart should hold.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct QuantityDto {
    /// Units; 0 removes the line.
    #[oai(validator(minimum(value = "0"), maximum(value = "99")))]
    pub quantity: u32,
}

/// A line in a cart.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CartLineDto {
    /// Product.
    pub sku: String,
    /// Units (held for the cart until it expires).
    pub quantity: u32,
    /// Unit price when added, minor units.
    pub unit_price_minor: i64,
    /// Line total, minor units.
    pub line_total_minor: i64,
}

/// A cart.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CartDto {
    /// Cart id.
    pub cart_id: String,
    /// Owner.
    pub customer_id: String,
    /// open, checked_out or expired.
    pub status: String,
    /// The order it became, once checked out.
    pub order_id: Option<String>,
    /// Lines.
    pub lines: Vec<CartLineDto>,
    /// Total, minor units.
    pub total_minor: i64,
    /// ISO currency (empty while the cart is empty).
    pub currency: String,
    /// When the cart and its holds expire unless changed (RFC 3339, UTC).
    pub expires_at: String,
    /// Stream version the view reflects.
    pub version: u64,
}

impl From<CartView> for CartDto {
    fn from(c: CartView) -> Self {
        CartDto {
            cart_id: c.cart_id,
            customer_id: c.customer_id,
            status: c.status,
            order_id: Some(c.order_id).filter(|o| !o.is_empty()),
            lines: c
                .lines
                .into_iter()
                .map(|l| CartLineDto {
                    sku: l.sku,
                    quantity: l.quantity,
                    unit_price_minor: l.unit_price_minor,
                    line_total_minor: l.line_total_minor,
                })
                .collect(),
            total_minor: c.total_minor,
            currency: c.currency,
            expires_at: rfc3339(c.expires_at),
            version: c.version,
        }
    }
}
