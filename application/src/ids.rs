//! Ids derived from other ids, so that a retry finds what the first attempt created.

use ordo_domain::{CartId, OrderId};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A stable UUID naming `name` (the first 16 bytes of its SHA-256), for ids derived from other
/// ids and keys.
pub fn name_uuid(name: &str) -> Uuid {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The order a cart becomes: derived, so a retried checkout finds the order it placed.
pub fn order_id_for(cart_id: &CartId) -> OrderId {
    OrderId::parse(name_uuid(&format!("order-of-cart:{cart_id}")).to_string())
        .expect("a UUID is a valid order id")
}

/// The id part of an aggregate stream name (`order-abc` -> `abc`).
pub fn aggregate_id(stream: &ordo_eventstore::StreamName) -> &str {
    let name = stream.as_str();
    name.split_once('-').map_or(name, |(_, id)| id)
}
