//! The order view and its customer-history indexes.

use super::document::order_document_key;
use super::fields::{json, opt, Fields};
use super::View;
use crate::change::{Change, IndexEntry};
use crate::keys::Namespace;
use ordo_domain::order::{Actor, Address, OrderEvent};
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};

/// One line of an order, as shown to people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLineView {
    /// Product.
    pub sku: String,
    /// Name at order time.
    pub name: String,
    /// Units.
    pub quantity: u32,
    /// Unit price in minor units.
    pub unit_price_minor: i64,
    /// Line total in minor units.
    pub line_total_minor: i64,
}

/// An order as queries see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderView {
    /// The order.
    pub order_id: String,
    /// Its customer.
    pub customer_id: String,
    /// placed, confirmed, shipped, delivered, cancelled.
    pub status: String,
    /// pending, authorized, declined, partially_refunded, refunded.
    pub payment_status: String,
    /// Lines.
    pub lines: Vec<OrderLineView>,
    /// Total in minor units.
    pub total_minor: i64,
    /// Refunded so far, minor units.
    pub refunded_minor: i64,
    /// ISO currency.
    pub currency: String,
    /// Shipping address.
    pub address: Address,
    /// Unix ms.
    pub placed_at: i64,
    /// Unix ms.
    pub confirmed_at: Option<i64>,
    /// Unix ms.
    pub shipped_at: Option<i64>,
    /// Unix ms.
    pub delivered_at: Option<i64>,
    /// Unix ms.
    pub cancelled_at: Option<i64>,
    /// Why it was cancelled.
    pub cancel_reason: String,
    /// customer, admin or system.
    pub cancelled_by: String,
    /// Carrier once shipped.
    pub carrier: String,
    /// Tracking number once shipped.
    pub tracking: String,
    /// Last applied stream version: lets a reader tell how fresh the view is.
    pub version: u64,
}

impl OrderView {
    fn payment_after_refund(&self) -> String {
        match self.refunded_minor {
            0 => "authorized",
            r if r >= self.total_minor => "refunded",
            _ => "partially_refunded",
        }
        .to_owned()
    }
}

/// Key of a customer's history index, optionally narrowed to one status.
pub fn history_key(ns: &Namespace, customer: &str, status: Option<&str>) -> String {
    match status {
        None => ns.key(&format!("history:{{{customer}}}")),
        Some(s) => ns.key(&format!("history:{{{customer}}}:status:{s}")),
    }
}

impl View for OrderView {
    const PROJECTION: &'static str = "orders";
    const CATEGORY: &'static str = "order";

    fn apply(view: Option<Self>, event: &AnyEvent, recorded: &RecordedEvent) -> Option<Self> {
        let AnyEvent::Order(event) = event else { return view };
        if let OrderEvent::Placed(e) = event {
            return Some(OrderView {
                order_id: e.order_id.to_string(),
                customer_id: e.customer_id.to_string(),
                status: "placed".into(),
                payment_status: "pending".into(),
                lines: e
                    .lines
                    .iter()
                    .map(|l| OrderLineView {
                        sku: l.sku.to_string(),
                        name: l.name.clone(),
                        quantity: l.quantity,
                        unit_price_minor: l.unit_price.minor,
                        line_total_minor: l.line_total.minor,
                    })
                    .collect(),
                total_minor: e.total.minor,
                refunded_minor: 0,
                currency: e.total.currency.to_string(),
                address: e.shipping_address.clone(),
                placed_at: e.placed_at.millis(),
                confirmed_at: None,
                shipped_at: None,
                delivered_at: None,
                cancelled_at: None,
                cancel_reason: String::new(),
                cancelled_by: String::new(),
                carrier: String::new(),
                tracking: String::new(),
                version: recorded.version,
            });
        }
        let mut v = view?;
        v.version = recorded.version;
        match event {
            OrderEvent::Placed(_) => {}
            OrderEvent::PaymentAuthorized(_) => v.payment_status = "authorized".into(),
            OrderEvent::PaymentDeclined(_) => v.payment_status = "declined".into(),
            OrderEvent::Confirmed(e) => {
                v.status = "confirmed".into();
                v.confirmed_at = Some(e.at.millis());
            }
            OrderEvent::Shipped(e) => {
                v.status = "shipped".into();
                v.shipped_at = Some(e.at.millis());
                v.carrier = e.carrier.clone();
                v.tracking = e.tracking.clone();
            }
            OrderEvent::Delivered(e) => {
                v.status = "delivered".into();
                v.delivered_at = Some(e.at.millis());
            }
            OrderEvent::Cancelled(e) => {
                v.status = "cancelled".into();
                v.cancelled_at = Some(e.at.millis());
                v.cancel_reason = e.reason.clone();
                v.cancelled_by = match &e.by {
                    Actor::Customer(_) => "customer",
                    Actor::Admin(_) => "admin",
                    Actor::System => "system",
                }
                .into();
            }
            OrderEvent::Refunded(e) => {
                v.refunded_minor += e.amount.minor;
                v.payment_status = v.payment_after_refund();
            }
        }
        Some(v)
    }

    fn key(ns: &Namespace, id: &str) -> String {
        ns.key(&format!("order:{{{id}}}"))
    }

    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("order_id", self.order_id.clone()),
            ("customer_id", self.customer_id.clone()),
            ("status", self.status.clone()),
            ("payment_status", self.payment_status.clone()),
            ("lines", json(&self.lines)),
            ("total_minor", self.total_minor.to_string()),
            ("refunded_minor", self.refunded_minor.to_string()),
            ("currency", self.currency.clone()),
            ("address", json(&self.address)),
            ("placed_at", self.placed_at.to_string()),
            ("confirmed_at", opt(self.confirmed_at)),
            ("shipped_at", opt(self.shipped_at)),
            ("delivered_at", opt(self.delivered_at)),
            ("cancelled_at", opt(self.cancelled_at)),
            ("cancel_reason", self.cancel_reason.clone()),
            ("cancelled_by", self.cancelled_by.clone()),
            ("carrier", self.carrier.clone()),
            ("tracking", self.tracking.clone()),
            ("version", self.version.to_string()),
        ]
    }

    /// A string beside the order's hash ([`order_document_key`]), deleted with it.
    fn document_changes(
        _old: Option<&Self>,
        new: Option<&Self>,
        ns: &Namespace,
        id: &str,
    ) -> Vec<Change> {
        let key = order_document_key(ns, id);
        vec![match new {
            Some(order) => Change::Set { key, value: order.document() },
            None => Change::Delete { key },
        }]
    }

    fn from_fields(f: &Fields) -> Option<Self> {
        Some(OrderView {
            order_id: f.text("order_id")?,
            customer_id: f.text("customer_id")?,
            status: f.text("status")?,
            payment_status: f.text("payment_status")?,
            lines: f.json("lines")?,
            total_minor: f.int("total_minor")?,
            refunded_minor: f.int("refunded_minor")?,
            currency: f.text("currency")?,
            address: f.json("address")?,
            placed_at: f.int("placed_at")?,
            confirmed_at: f.opt_int("confirmed_at")?,
            shipped_at: f.opt_int("shipped_at")?,
            delivered_at: f.opt_int("delivered_at")?,
            cancelled_at: f.opt_int("cancelled_at")?,
            cancel_reason: f.text("cancel_reason")?,
            cancelled_by: f.text("cancelled_by")?,
            carrier: f.text("carrier")?,
            tracking: f.text("tracking")?,
            version: f.int("version")?,
        })
    }

    /// Newest-first history per customer, all statuses and one set per status, scored by
    /// placement time so date ranges are score ranges.
    fn index_entries(&self, ns: &Namespace) -> Vec<IndexEntry> {
        let score = self.placed_at as f64;
        vec![
            IndexEntry::Sorted {
                key: history_key(ns, &self.customer_id, None),
                member: self.order_id.clone(),
                score,
            },
            IndexEntry::Sorted {
                key: history_key(ns, &self.customer_id, Some(&self.status)),
                member: self.order_id.clone(),
                score,
            },
        ]
    }
}
