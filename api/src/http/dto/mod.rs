//! The JSON shapes of the API: requests, receipts and views. Amounts are integers in minor
//! units (cents) with an ISO 4217 currency; times are RFC 3339 strings in UTC with milliseconds.
//!
//! One file per resource: `catalogue.rs` (products, search), `carts.rs` and `orders.rs` (with
//! checkout's details); here the shapes every resource shares (money, receipts, sessions).

mod carts;
mod catalogue;
mod orders;

pub use carts::*;
pub use catalogue::*;
pub use orders::*;

use ordo_application::shop::Done;
use poem_openapi::Object;

/// An amount of money.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MoneyDto {
    /// Minor units (cents).
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// What a command did. Pass `position` as `min_position` to a query to read your own write.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ReceiptDto {
    /// The product, cart or order the command concerned.
    pub id: String,
    /// Its event stream.
    pub stream: String,
    /// The stream's version after the command.
    pub version: Option<u64>,
    /// A global log position at or after this command's events.
    pub position: u64,
}

impl From<Done> for ReceiptDto {
    fn from(d: Done) -> Self {
        ReceiptDto { id: d.id, stream: d.stream, version: d.version, position: d.position }
    }
}

/// A guest session.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionDto {
    /// Bearer token for the `Authorization` header.
    pub token: String,
    /// The guest's customer id (the token's subject).
    pub customer_id: String,
    /// When the token expires (RFC 3339, UTC).
    pub expires_at: String,
}
