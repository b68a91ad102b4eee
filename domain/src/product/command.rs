//! What staff and processes ask of a product.

use crate::{Currency, Money, ReservationId, Sku, Timestamp};

/// Every command a product accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductCommand {
    /// Put a product in the catalogue (or back into it after delisting).
    List(ListProduct),
    /// Set a new price.
    ChangePrice(ChangePrice),
    /// Take the product out of the catalogue; its stock and reservations stay.
    Delist(DelistProduct),
    /// Goods arrived.
    ReceiveStock(ReceiveStock),
    /// Correct the count after a stock-take, damage or loss.
    AdjustStock(AdjustStock),
    /// Hold stock for a cart or order until `expires_at`.
    Reserve(ReserveStock),
    /// Give held stock back.
    Release(ReleaseReservation),
    /// The held stock was sold: it leaves on-hand.
    Commit(CommitReservation),
}

/// List a product in the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListProduct {
    /// The product's code; also names its stream.
    pub sku: Sku,
    /// Display name, 1 to 120 characters.
    pub name: String,
    /// Up to 4,000 characters.
    pub description: String,
    /// Category used for filtering, 1 to 60 characters.
    pub category: String,
    /// Brand used for filtering and search, 1 to 60 characters.
    pub brand: String,
    /// Price per unit; must be positive and in the store currency.
    pub price: Money,
    /// Up to 10 http(s) image URLs.
    pub image_urls: Vec<String>,
    /// The one currency this shop sells in, from configuration.
    pub store_currency: Currency,
    /// When the command was issued.
    pub now: Timestamp,
}

/// Change the unit price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangePrice {
    /// New price; positive, in the store currency.
    pub price: Money,
    /// The shop's currency, from configuration.
    pub store_currency: Currency,
    /// When the command was issued.
    pub now: Timestamp,
}

/// Remove from the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelistProduct {
    /// When the command was issued.
    pub now: Timestamp,
}

/// Record goods received into the warehouse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveStock {
    /// Units received; positive.
    pub quantity: u32,
    /// When the command was issued.
    pub now: Timestamp,
}

/// Correct on-hand stock by `delta` (negative for loss or damage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdjustStock {
    /// Change to on-hand; never zero.
    pub delta: i64,
    /// Why, for the audit trail; required.
    pub reason: String,
    /// When the command was issued; decides which reservations still hold stock.
    pub now: Timestamp,
}

/// Hold stock for a cart or an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveStock {
    /// Cart or order id; reserving again under the same id replaces the earlier hold.
    pub reservation_id: ReservationId,
    /// Units to hold in total under this id; positive.
    pub quantity: u32,
    /// From this instant on the hold no longer counts, released or not.
    pub expires_at: Timestamp,
    /// When the command was issued.
    pub now: Timestamp,
}

/// Give back a hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseReservation {
    /// The hold to release.
    pub reservation_id: ReservationId,
    /// When the command was issued.
    pub now: Timestamp,
}

/// Turn a hold into a sale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitReservation {
    /// The hold to commit.
    pub reservation_id: ReservationId,
    /// When the command was issued.
    pub now: Timestamp,
}
