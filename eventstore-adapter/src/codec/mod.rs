//! Domain events to stored payloads and back.
//!
//! The envelope is the store's own record: the event type name and schema version live in
//! [`NewEvent`]/[`RecordedEvent`] fields, and only the event's own struct is postcard-encoded.
//! So a reader can route or skip an event without decoding it, and an old payload is decoded
//! with the struct of its own version and then upcast to today's (see [`Payload::upcast`]).
//! Golden fixtures in `schemas/events/` pin every (type, version) encoding: changing an event
//! struct incompatibly fails a test instead of breaking stored data.

mod catalogue;
mod payload;
mod samples;

pub use catalogue::catalogue_markdown;
pub use payload::{CartOpenedV1, Payload, V1_CART_TTL_MS};
pub use samples::{sample_events, sample_old_versions, OldVersionSample};

use crate::model::{EventMetadata, NewEvent, RecordedEvent};
use ordo_domain::cart::CartEvent;
use ordo_domain::order::OrderEvent;
use ordo_domain::payment::PaymentEvent;
use ordo_domain::product::ProductEvent;
use uuid::Uuid;

/// A payload could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// No event of this type exists in this aggregate.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// The version is newer than this code, or older than any upcaster.
    #[error("{event_type} has no decoder for schema version {version}")]
    UnsupportedVersion {
        /// Type name.
        event_type: String,
        /// Stored version.
        version: u16,
    },
    /// The bytes do not match the struct of their version.
    #[error("{event_type} v{version} payload does not decode: {reason}")]
    Malformed {
        /// Type name.
        event_type: String,
        /// Stored version.
        version: u16,
        /// Decoder's message.
        reason: String,
    },
    /// Encoding failed (should not happen for domain types).
    #[error("cannot encode {event_type}: {reason}")]
    Encode {
        /// Type name.
        event_type: String,
        /// Encoder's message.
        reason: String,
    },
}

/// A domain event's stored form: type, version and postcard bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// Type name.
    pub event_type: &'static str,
    /// Schema version of `payload`.
    pub schema_version: u16,
    /// postcard bytes of the event struct.
    pub payload: Vec<u8>,
}

impl EncodedEvent {
    /// Wraps this payload into an event to append, with its id and metadata.
    pub fn into_new_event(self, id: Uuid, metadata: EventMetadata) -> NewEvent {
        NewEvent {
            id,
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            payload: self.payload,
            metadata,
        }
    }
}

/// One row of the event catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTypeInfo {
    /// Aggregate (stream category) the event belongs to.
    pub category: &'static str,
    /// Type name.
    pub event_type: &'static str,
    /// Current schema version.
    pub version: u16,
    /// Older versions that still decode through upcasters.
    pub older_versions: &'static [u16],
}

/// An aggregate's event enum, as the store sees it.
pub trait DomainEvent: Sized {
    /// Stream category of the aggregate.
    const CATEGORY: &'static str;

    /// Type name of this event.
    fn event_type(&self) -> &'static str;

    /// Encodes at the current schema version.
    fn encode(&self) -> Result<EncodedEvent, CodecError>;

    /// Decodes any supported version, upcasting older ones.
    fn decode(event_type: &str, version: u16, payload: &[u8]) -> Result<Self, CodecError>;

    /// Every type of this aggregate with its versions.
    fn catalogue() -> Vec<EventTypeInfo>;

    /// Decodes a recorded event.
    fn from_recorded(event: &RecordedEvent) -> Result<Self, CodecError> {
        Self::decode(&event.event_type, event.schema_version, &event.payload)
    }
}

macro_rules! domain_event {
    ($enum:ident, $category:literal, { $($variant:ident($payload:ty) => $name:literal),* $(,)? }) => {
        impl DomainEvent for $enum {
            const CATEGORY: &'static str = $category;

            fn event_type(&self) -> &'static str {
                match self { $($enum::$variant(_) => $name),* }
            }

            fn encode(&self) -> Result<EncodedEvent, CodecError> {
                match self { $($enum::$variant(p) => payload::encode($name, p)),* }
            }

            fn decode(event_type: &str, version: u16, bytes: &[u8]) -> Result<Self, CodecError> {
                match event_type {
                    $($name => payload::decode::<$payload>($name, version, bytes).map($enum::$variant),)*
                    other => Err(CodecError::UnknownType(other.to_owned())),
                }
            }

            fn catalogue() -> Vec<EventTypeInfo> {
                vec![$(EventTypeInfo {
                    category: $category,
                    event_type: $name,
                    version: <$payload as Payload>::VERSION,
                    older_versions: <$payload as Payload>::OLDER_VERSIONS,
                }),*]
            }
        }
    };
}

use ordo_domain::{cart, order, payment, product};

domain_event!(ProductEvent, "product", {
    Listed(product::ProductListed) => "ProductListed",
    PriceChanged(product::PriceChanged) => "PriceChanged",
    Delisted(product::ProductDelisted) => "ProductDelisted",
    StockReceived(product::StockReceived) => "StockReceived",
    StockAdjusted(product::StockAdjusted) => "StockAdjusted",
    StockReserved(product::StockReserved) => "StockReserved",
    ReservationReleased(product::ReservationReleased) => "ReservationReleased",
    ReservationCommitted(product::ReservationCommitted) => "ReservationCommitted",
});

domain_event!(CartEvent, "cart", {
    Opened(cart::CartOpened) => "CartOpened",
    ItemQuantitySet(cart::ItemQuantitySet) => "ItemQuantitySet",
    ItemRemoved(cart::ItemRemoved) => "ItemRemoved",
    CheckedOut(cart::CartCheckedOut) => "CartCheckedOut",
    Expired(cart::CartExpired) => "CartExpired",
});

domain_event!(OrderEvent, "order", {
    Placed(order::OrderPlaced) => "OrderPlaced",
    PaymentAuthorized(order::OrderPaymentAuthorized) => "OrderPaymentAuthorized",
    PaymentDeclined(order::OrderPaymentDeclined) => "OrderPaymentDeclined",
    Confirmed(order::OrderConfirmed) => "OrderConfirmed",
    Shipped(order::OrderShipped) => "OrderShipped",
    Delivered(order::OrderDelivered) => "OrderDelivered",
    Cancelled(order::OrderCancelled) => "OrderCancelled",
    Refunded(order::OrderRefunded) => "OrderRefunded",
});

domain_event!(PaymentEvent, "payment", {
    Requested(payment::PaymentRequested) => "PaymentRequested",
    Authorized(payment::PaymentAuthorized) => "PaymentAuthorized",
    Declined(payment::PaymentDeclined) => "PaymentDeclined",
    Voided(payment::PaymentVoided) => "PaymentVoided",
    Refunded(payment::PaymentRefunded) => "PaymentRefunded",
});

/// Any domain event, for tools that read the whole log (replay, audit, catalogue).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum AnyEvent {
    /// A product event.
    Product(ProductEvent),
    /// A cart event.
    Cart(CartEvent),
    /// An order event.
    Order(OrderEvent),
    /// A payment event.
    Payment(PaymentEvent),
}

impl AnyEvent {
    /// Decodes an event of any aggregate by its stream category.
    pub fn decode(
        category: &str,
        event_type: &str,
        version: u16,
        payload: &[u8],
    ) -> Result<Self, CodecError> {
        match category {
            ProductEvent::CATEGORY => {
                ProductEvent::decode(event_type, version, payload).map(AnyEvent::Product)
            }
            CartEvent::CATEGORY => {
                CartEvent::decode(event_type, version, payload).map(AnyEvent::Cart)
            }
            OrderEvent::CATEGORY => {
                OrderEvent::decode(event_type, version, payload).map(AnyEvent::Order)
            }
            PaymentEvent::CATEGORY => {
                PaymentEvent::decode(event_type, version, payload).map(AnyEvent::Payment)
            }
            _ => Err(CodecError::UnknownType(event_type.to_owned())),
        }
    }

    /// Decodes a recorded event.
    pub fn from_recorded(event: &RecordedEvent) -> Result<Self, CodecError> {
        Self::decode(
            event.stream.category(),
            &event.event_type,
            event.schema_version,
            &event.payload,
        )
    }

    /// Encodes at the current version.
    pub fn encode(&self) -> Result<EncodedEvent, CodecError> {
        match self {
            AnyEvent::Product(e) => e.encode(),
            AnyEvent::Cart(e) => e.encode(),
            AnyEvent::Order(e) => e.encode(),
            AnyEvent::Payment(e) => e.encode(),
        }
    }

    /// Stream category.
    pub fn category(&self) -> &'static str {
        match self {
            AnyEvent::Product(_) => ProductEvent::CATEGORY,
            AnyEvent::Cart(_) => CartEvent::CATEGORY,
            AnyEvent::Order(_) => OrderEvent::CATEGORY,
            AnyEvent::Payment(_) => PaymentEvent::CATEGORY,
        }
    }

    /// The catalogue of every event type Ordo stores.
    pub fn catalogue() -> Vec<EventTypeInfo> {
        let mut all = ProductEvent::catalogue();
        all.extend(CartEvent::catalogue());
        all.extend(OrderEvent::catalogue());
        all.extend(PaymentEvent::catalogue());
        all
    }
}
