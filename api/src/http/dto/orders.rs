//! An order's shapes: checkout's details and address, the order, its history pages and what
//! staff send to move it along.

use super::super::params::{Country, NonBlank};
use ordo_domain::order::Address;
use ordo_eventstore::clock::rfc3339;
use ordo_projections::views::OrderView;
use poem_openapi::{Enum, Object};

/// A postal address.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AddressDto {
    /// Recipient.
    #[oai(validator(max_length = 200))]
    pub name: NonBlank,
    /// Street and number.
    #[oai(validator(max_length = 200))]
    pub line1: NonBlank,
    /// More of the address.
    #[oai(default, validator(max_length = 200))]
    pub line2: String,
    /// City.
    #[oai(validator(max_length = 200))]
    pub city: NonBlank,
    /// Postal code.
    #[oai(validator(max_length = 200))]
    pub postal_code: NonBlank,
    /// ISO 3166-1 alpha-2 country code, e.g. `DE`.
    pub country: Country,
}

impl From<AddressDto> for Address {
    fn from(a: AddressDto) -> Self {
        Address {
            name: a.name.into(),
            line1: a.line1.into(),
            line2: a.line2,
            city: a.city.into(),
            postal_code: a.postal_code.into(),
            country: a.country.into(),
        }
    }
}

impl From<Address> for AddressDto {
    fn from(a: Address) -> Self {
        AddressDto {
            name: NonBlank(a.name),
            line1: NonBlank(a.line1),
            line2: a.line2,
            city: NonBlank(a.city),
            postal_code: NonBlank(a.postal_code),
            country: Country(a.country),
        }
    }
}

/// Checkout details.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CheckoutDto {
    /// Where the order goes.
    pub shipping_address: AddressDto,
    /// The payment provider's token for the shopper's payment method. The built-in simulator
    /// approves `tok_visa`, declines `tok_declined` (see the README).
    #[oai(validator(max_length = 200))]
    pub payment_token: NonBlank,
}

/// Why an order is cancelled.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CancelDto {
    /// Reason, for the record.
    #[oai(default, validator(max_length = 500))]
    pub reason: String,
}

/// Shipment details.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ShipDto {
    /// Carrier.
    #[oai(validator(max_length = 100))]
    pub carrier: NonBlank,
    /// Tracking number.
    #[oai(validator(max_length = 100))]
    pub tracking: NonBlank,
}

/// A refund.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RefundDto {
    /// Amount in minor units of the order's currency.
    #[oai(validator(minimum(value = "1")))]
    pub amount_minor: i64,
}

/// A line of an order.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrderLineDto {
    /// Product.
    pub sku: String,
    /// Name at order time.
    pub name: String,
    /// Units.
    pub quantity: u32,
    /// Unit price, minor units.
    pub unit_price_minor: i64,
    /// Line total, minor units.
    pub line_total_minor: i64,
}

/// An order.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrderDto {
    /// Order id.
    pub order_id: String,
    /// Customer.
    pub customer_id: String,
    /// placed, confirmed, shipped, delivered or cancelled.
    pub status: String,
    /// pending, authorized, declined, partially_refunded or refunded.
    pub payment_status: String,
    /// Lines.
    pub lines: Vec<OrderLineDto>,
    /// Total, minor units.
    pub total_minor: i64,
    /// Refunded so far, minor units.
    pub refunded_minor: i64,
    /// ISO currency.
    pub currency: String,
    /// Shipping address.
    pub shipping_address: AddressDto,
    /// When it was placed (RFC 3339, UTC, like every time in the API).
    pub placed_at: String,
    /// When the payment was authorized and the stock committed.
    pub confirmed_at: Option<String>,
    /// When it was handed to the carrier.
    pub shipped_at: Option<String>,
    /// When it arrived.
    pub delivered_at: Option<String>,
    /// When it was cancelled.
    pub cancelled_at: Option<String>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// customer, admin or system.
    pub cancelled_by: Option<String>,
    /// Carrier, once shipped.
    pub carrier: Option<String>,
    /// Tracking number, once shipped.
    pub tracking: Option<String>,
    /// Stream version the view reflects.
    pub version: u64,
}

fn non_empty(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

impl From<OrderView> for OrderDto {
    fn from(o: OrderView) -> Self {
        OrderDto {
            order_id: o.order_id,
            customer_id: o.customer_id,
            status: o.status,
            payment_status: o.payment_status,
            lines: o
                .lines
                .into_iter()
                .map(|l| OrderLineDto {
                    sku: l.sku,
                    name: l.name,
                    quantity: l.quantity,
                    unit_price_minor: l.unit_price_minor,
                    line_total_minor: l.line_total_minor,
                })
                .collect(),
            total_minor: o.total_minor,
            refunded_minor: o.refunded_minor,
            currency: o.currency,
            shipping_address: o.address.into(),
            placed_at: rfc3339(o.placed_at),
            confirmed_at: o.confirmed_at.map(rfc3339),
            shipped_at: o.shipped_at.map(rfc3339),
            delivered_at: o.delivered_at.map(rfc3339),
            cancelled_at: o.cancelled_at.map(rfc3339),
            cancel_reason: non_empty(o.cancel_reason),
            cancelled_by: non_empty(o.cancelled_by),
            carrier: non_empty(o.carrier),
            tracking: non_empty(o.tracking),
            version: o.version,
        }
    }
}

/// A page of order history, newest first.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrderPageDto {
    /// Orders on this page.
    pub orders: Vec<OrderDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Order status, for filtering history.
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum OrderStatusFilter {
    /// Placed, payment pending.
    Placed,
    /// Paid; stock committed.
    Confirmed,
    /// On its way.
    Shipped,
    /// Arrived.
    Delivered,
    /// Cancelled.
    Cancelled,
}

impl OrderStatusFilter {
    /// The status as the read model stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Confirmed => "confirmed",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }
}
