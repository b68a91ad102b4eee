//! One fixed example of every event type, the source of the golden fixtures and catalogue.

use super::{AnyEvent, CartOpenedV1, CodecError};
use ordo_domain::cart::{self, CartEvent};
use ordo_domain::order::{self, Actor, Address, OrderEvent, OrderLine};
use ordo_domain::payment::{self, PaymentEvent};
use ordo_domain::product::{self, ProductEvent};
use ordo_domain::{CartId, Currency, CustomerId, Money, OrderId, ReservationId, Sku, Timestamp};

const AT: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

// Fixed, known-valid literals: a failure here is a bug in this file, caught by every test.
fn sku() -> Sku {
    Sku::parse("MUG-001").expect("literal SKU is valid")
}
fn cart_id() -> CartId {
    CartId::parse("cart_01").expect("literal id is valid")
}
fn customer() -> CustomerId {
    CustomerId::parse("cus_01").expect("literal id is valid")
}
fn order_id() -> OrderId {
    OrderId::parse("ord_01").expect("literal id is valid")
}
fn reservation() -> ReservationId {
    ReservationId::parse("cart_01").expect("literal id is valid")
}

/// One example of every event type at its current version.
pub fn sample_events() -> Vec<AnyEvent> {
    use AnyEvent::{Cart, Order, Payment, Product};
    let line = OrderLine {
        sku: sku(),
        name: "Stoneware mug".into(),
        quantity: 2,
        unit_price: eur(1_250),
        line_total: eur(2_500),
    };
    vec![
        Product(ProductEvent::Listed(product::ProductListed {
            sku: sku(),
            name: "Stoneware mug".into(),
            description: "Holds 350 ml.".into(),
            category: "kitchen".into(),
            brand: "Potter & Co".into(),
            price: eur(1_250),
            image_urls: vec!["https://img.example/mug.jpg".into()],
            at: AT,
        })),
        Product(ProductEvent::PriceChanged(product::PriceChanged { price: eur(990), at: AT })),
        Product(ProductEvent::Delisted(product::ProductDelisted { at: AT })),
        Product(ProductEvent::StockReceived(product::StockReceived { quantity: 40, at: AT })),
        Product(ProductEvent::StockAdjusted(product::StockAdjusted {
            delta: -2,
            reason: "broken in transit".into(),
            at: AT,
        })),
        Product(ProductEvent::StockReserved(product::StockReserved {
            reservation_id: reservation(),
            quantity: 2,
            expires_at: AT.plus_millis(900_000),
            at: AT,
        })),
        Product(ProductEvent::ReservationReleased(product::ReservationReleased {
            reservation_id: reservation(),
            quantity: 2,
            at: AT,
        })),
        Product(ProductEvent::ReservationCommitted(product::ReservationCommitted {
            reservation_id: reservation(),
            quantity: 2,
            at: AT,
        })),
        Cart(CartEvent::Opened(cart::CartOpened {
            cart_id: cart_id(),
            customer_id: customer(),
            ttl_ms: 900_000,
            expires_at: AT.plus_millis(900_000),
            at: AT,
        })),
        Cart(CartEvent::ItemQuantitySet(cart::ItemQuantitySet {
            sku: sku(),
            quantity: 2,
            unit_price: eur(1_250),
            expires_at: AT.plus_millis(900_000),
            at: AT,
        })),
        Cart(CartEvent::ItemRemoved(cart::ItemRemoved {
            sku: sku(),
            expires_at: AT.plus_millis(900_000),
            at: AT,
        })),
        Cart(CartEvent::CheckedOut(cart::CartCheckedOut { order_id: order_id(), at: AT })),
        Cart(CartEvent::Expired(cart::CartExpired { at: AT })),
        Order(OrderEvent::Placed(order::OrderPlaced {
            order_id: order_id(),
            customer_id: customer(),
            reservation_id: reservation(),
            lines: vec![line],
            total: eur(2_500),
            shipping_address: Address {
                name: "Ada Lovelace".into(),
                line1: "12 St James's Square".into(),
                line2: String::new(),
                city: "London".into(),
                postal_code: "SW1Y 4LB".into(),
                country: "GB".into(),
            },
            payment_token: "tok_approve".into(),
            placed_at: AT,
        })),
        Order(OrderEvent::PaymentAuthorized(order::OrderPaymentAuthorized {
            amount: eur(2_500),
            at: AT,
        })),
        Order(OrderEvent::PaymentDeclined(order::OrderPaymentDeclined {
            reason: "insufficient funds".into(),
            at: AT,
        })),
        Order(OrderEvent::Confirmed(order::OrderConfirmed { at: AT })),
        Order(OrderEvent::Shipped(order::OrderShipped {
            carrier: "DHL".into(),
            tracking: "JD014600006281234".into(),
            at: AT,
        })),
        Order(OrderEvent::Delivered(order::OrderDelivered { at: AT })),
        Order(OrderEvent::Cancelled(order::OrderCancelled {
            reason: "changed my mind".into(),
            by: Actor::Customer(customer()),
            at: AT,
        })),
        Order(OrderEvent::Refunded(order::OrderRefunded { amount: eur(500), at: AT })),
        Payment(PaymentEvent::Requested(payment::PaymentRequested {
            order_id: order_id(),
            amount: eur(2_500),
            token: "tok_approve".into(),
            at: AT,
        })),
        Payment(PaymentEvent::Authorized(payment::PaymentAuthorized {
            provider_ref: "sim_auth_1".into(),
            amount: eur(2_500),
            at: AT,
        })),
        Payment(PaymentEvent::Declined(payment::PaymentDeclined {
            reason: "insufficient funds".into(),
            at: AT,
        })),
        Payment(PaymentEvent::Voided(payment::PaymentVoided { at: AT })),
        Payment(PaymentEvent::Refunded(payment::PaymentRefunded { amount: eur(500), at: AT })),
    ]
}

/// A payload stored at an older schema version and the event it must upcast to.
#[derive(Clone, Debug)]
pub struct OldVersionSample {
    /// Stream category.
    pub category: &'static str,
    /// Type name.
    pub event_type: &'static str,
    /// The old version.
    pub version: u16,
    /// Bytes as that version wrote them.
    pub payload: Vec<u8>,
    /// What decoding them today must give.
    pub expected: AnyEvent,
}

/// Payloads of older schema versions, each with the event it must upcast to.
pub fn sample_old_versions() -> Result<Vec<OldVersionSample>, CodecError> {
    let v1 = CartOpenedV1 { cart_id: cart_id(), customer_id: customer(), at: AT };
    let bytes = postcard::to_stdvec(&v1).map_err(|e| CodecError::Encode {
        event_type: "CartOpened".into(),
        reason: e.to_string(),
    })?;
    let expected = AnyEvent::Cart(CartEvent::Opened(cart::CartOpened {
        cart_id: cart_id(),
        customer_id: customer(),
        ttl_ms: super::payload::V1_CART_TTL_MS,
        expires_at: AT.plus_millis(super::payload::V1_CART_TTL_MS),
        at: AT,
    }));
    Ok(vec![OldVersionSample {
        category: "cart",
        event_type: "CartOpened",
        version: 1,
        payload: bytes,
        expected,
    }])
}
