//! The cart view.

use super::fields::{json, Fields};
use super::View;
use crate::change::IndexEntry;
use crate::keys::Namespace;
use ordo_domain::cart::CartEvent;
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};

/// One line of a cart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLineView {
    /// Product.
    pub sku: String,
    /// Units.
    pub quantity: u32,
    /// Unit price seen, minor units.
    pub unit_price_minor: i64,
    /// Line total, minor units.
    pub line_total_minor: i64,
}

/// A cart as queries see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CartView {
    /// The cart.
    pub cart_id: String,
    /// Owner.
    pub customer_id: String,
    /// open, checked_out, expired.
    pub status: String,
    /// The order it became, once checked out.
    pub order_id: String,
    /// Lines in SKU order.
    pub lines: Vec<CartLineView>,
    /// Sum of line totals, minor units.
    pub total_minor: i64,
    /// ISO currency (empty while the cart is empty).
    pub currency: String,
    /// Unix ms at which the cart expires unless touched.
    pub expires_at: i64,
    /// Last applied stream version.
    pub version: u64,
}

impl View for CartView {
    const PROJECTION: &'static str = "carts";
    const CATEGORY: &'static str = "cart";

    fn apply(view: Option<Self>, event: &AnyEvent, recorded: &RecordedEvent) -> Option<Self> {
        let AnyEvent::Cart(event) = event else { return view };
        let mut v = match (event, view) {
            (CartEvent::Opened(e), _) => CartView {
                cart_id: e.cart_id.to_string(),
                customer_id: e.customer_id.to_string(),
                status: "open".into(),
                order_id: String::new(),
                lines: Vec::new(),
                total_minor: 0,
                currency: String::new(),
                expires_at: e.expires_at.millis(),
                version: recorded.version,
            },
            (_, None) => return None,
            (_, Some(v)) => v,
        };
        v.version = recorded.version;
        match event {
            CartEvent::Opened(_) => {}
            CartEvent::ItemQuantitySet(e) => {
                let line = CartLineView {
                    sku: e.sku.to_string(),
                    quantity: e.quantity,
                    unit_price_minor: e.unit_price.minor,
                    line_total_minor: e.unit_price.minor.saturating_mul(i64::from(e.quantity)),
                };
                match v.lines.binary_search_by(|l| l.sku.as_str().cmp(e.sku.as_str())) {
                    Ok(i) => v.lines[i] = line,
                    Err(i) => v.lines.insert(i, line),
                }
                v.currency = e.unit_price.currency.to_string();
                v.expires_at = e.expires_at.millis();
            }
            CartEvent::ItemRemoved(e) => {
                v.lines.retain(|l| l.sku != e.sku.as_str());
                v.expires_at = e.expires_at.millis();
            }
            CartEvent::CheckedOut(e) => {
                v.status = "checked_out".into();
                v.order_id = e.order_id.to_string();
            }
            CartEvent::Expired(_) => v.status = "expired".into(),
        }
        v.total_minor = v.lines.iter().map(|l| l.line_total_minor).fold(0i64, i64::saturating_add);
        Some(v)
    }

    fn key(ns: &Namespace, id: &str) -> String {
        ns.key(&format!("cart:{{{id}}}"))
    }

    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("cart_id", self.cart_id.clone()),
            ("customer_id", self.customer_id.clone()),
            ("status", self.status.clone()),
            ("order_id", self.order_id.clone()),
            ("lines", json(&self.lines)),
            ("total_minor", self.total_minor.to_string()),
            ("currency", self.currency.clone()),
            ("expires_at", self.expires_at.to_string()),
            ("version", self.version.to_string()),
        ]
    }

    fn from_fields(f: &Fields) -> Option<Self> {
        Some(CartView {
            cart_id: f.text("cart_id")?,
            customer_id: f.text("customer_id")?,
            status: f.text("status")?,
            order_id: f.text("order_id")?,
            lines: f.json("lines")?,
            total_minor: f.int("total_minor")?,
            currency: f.text("currency")?,
            expires_at: f.int("expires_at")?,
            version: f.int("version")?,
        })
    }

    fn index_entries(&self, _ns: &Namespace) -> Vec<IndexEntry> {
        Vec::new()
    }
}
