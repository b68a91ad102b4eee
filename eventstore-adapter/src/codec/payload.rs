//! Per-struct schema versions and upcasters.

use super::CodecError;
use ordo_domain::{cart, order, payment, product, CartId, CustomerId, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// An event struct as stored: its current schema version and how older versions upcast.
pub trait Payload: Serialize + DeserializeOwned {
    /// Version written today.
    const VERSION: u16 = 1;
    /// Older versions [`Payload::upcast`] understands.
    const OLDER_VERSIONS: &'static [u16] = &[];

    /// Decodes a payload of an older `version` into today's struct.
    fn upcast(event_type: &str, version: u16, _bytes: &[u8]) -> Result<Self, CodecError> {
        Err(CodecError::UnsupportedVersion { event_type: event_type.to_owned(), version })
    }
}

pub(super) fn encode<P: Payload>(
    event_type: &'static str,
    payload: &P,
) -> Result<super::EncodedEvent, CodecError> {
    let bytes = postcard::to_stdvec(payload).map_err(|e| CodecError::Encode {
        event_type: event_type.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(super::EncodedEvent { event_type, schema_version: P::VERSION, payload: bytes })
}

pub(super) fn decode<P: Payload>(
    event_type: &str,
    version: u16,
    bytes: &[u8],
) -> Result<P, CodecError> {
    if version == P::VERSION {
        postcard_decode(event_type, version, bytes)
    } else {
        P::upcast(event_type, version, bytes)
    }
}

fn postcard_decode<T: DeserializeOwned>(
    event_type: &str,
    version: u16,
    bytes: &[u8],
) -> Result<T, CodecError> {
    postcard::from_bytes(bytes).map_err(|e| CodecError::Malformed {
        event_type: event_type.to_owned(),
        version,
        reason: e.to_string(),
    })
}

macro_rules! version_one {
    ($($t:ty),* $(,)?) => { $(impl Payload for $t {})* };
}

version_one!(
    product::ProductListed,
    product::PriceChanged,
    product::ProductDelisted,
    product::StockReceived,
    product::StockAdjusted,
    product::StockReserved,
    product::ReservationReleased,
    product::ReservationCommitted,
    cart::ItemQuantitySet,
    cart::ItemRemoved,
    cart::CartCheckedOut,
    cart::CartExpired,
    order::OrderPlaced,
    order::OrderPaymentAuthorized,
    order::OrderPaymentDeclined,
    order::OrderConfirmed,
    order::OrderShipped,
    order::OrderDelivered,
    order::OrderCancelled,
    order::OrderRefunded,
    payment::PaymentRequested,
    payment::PaymentAuthorized,
    payment::PaymentDeclined,
    payment::PaymentVoided,
    payment::PaymentRefunded,
);

/// `CartOpened` as first written, before carts had their own TTL: every cart lived for the
/// default 15 minutes. Kept so stored v1 events still decode; also the worked example of an
/// upcaster for whoever adds the next one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartOpenedV1 {
    /// The cart.
    pub cart_id: CartId,
    /// Its owner.
    pub customer_id: CustomerId,
    /// When.
    pub at: Timestamp,
}

/// The TTL every v1 cart had.
pub const V1_CART_TTL_MS: i64 = 15 * 60 * 1_000;

impl Payload for cart::CartOpened {
    const VERSION: u16 = 2;
    const OLDER_VERSIONS: &'static [u16] = &[1];

    fn upcast(event_type: &str, version: u16, bytes: &[u8]) -> Result<Self, CodecError> {
        match version {
            1 => {
                let v1: CartOpenedV1 = postcard_decode(event_type, version, bytes)?;
                Ok(cart::CartOpened {
                    cart_id: v1.cart_id,
                    customer_id: v1.customer_id,
                    ttl_ms: V1_CART_TTL_MS,
                    expires_at: v1.at.plus_millis(V1_CART_TTL_MS),
                    at: v1.at,
                })
            }
            _ => Err(CodecError::UnsupportedVersion { event_type: event_type.to_owned(), version }),
        }
    }
}
