//! What happened to a product. Stored forever: change only by adding versions.

use crate::{Money, ReservationId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

/// Every event in a product stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductEvent {
    /// The product entered (or re-entered) the catalogue.
    Listed(ProductListed),
    /// The unit price changed.
    PriceChanged(PriceChanged),
    /// The product left the catalogue.
    Delisted(ProductDelisted),
    /// Goods arrived.
    StockReceived(StockReceived),
    /// On-hand was corrected.
    StockAdjusted(StockAdjusted),
    /// Stock is held for a cart or order (replacing any earlier hold under the same id).
    StockReserved(StockReserved),
    /// A hold was given back.
    ReservationReleased(ReservationReleased),
    /// A hold became a sale and left on-hand.
    ReservationCommitted(ReservationCommitted),
}

/// The product entered the catalogue with these details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductListed {
    /// The product's code.
    pub sku: Sku,
    /// Display name.
    pub name: String,
    /// Long description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Brand.
    pub brand: String,
    /// Unit price.
    pub price: Money,
    /// Image URLs.
    pub image_urls: Vec<String>,
    /// When.
    pub at: Timestamp,
}

/// New unit price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceChanged {
    /// The new price.
    pub price: Money,
    /// When.
    pub at: Timestamp,
}

/// Left the catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductDelisted {
    /// When.
    pub at: Timestamp,
}

/// Goods arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReceived {
    /// Units received.
    pub quantity: u32,
    /// When.
    pub at: Timestamp,
}

/// On-hand corrected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockAdjusted {
    /// Change to on-hand.
    pub delta: i64,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// Stock held; replaces any earlier hold with the same id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    /// Cart or order id.
    pub reservation_id: ReservationId,
    /// Units held in total under this id.
    pub quantity: u32,
    /// The hold stops counting at this instant.
    pub expires_at: Timestamp,
    /// When.
    pub at: Timestamp,
}

/// Hold given back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationReleased {
    /// The released hold.
    pub reservation_id: ReservationId,
    /// Units it held, for readers that do not keep the reservation table.
    pub quantity: u32,
    /// When.
    pub at: Timestamp,
}

/// Hold sold; the units left on-hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationCommitted {
    /// The committed hold.
    pub reservation_id: ReservationId,
    /// Units sold.
    pub quantity: u32,
    /// When.
    pub at: Timestamp,
}
