//! A product as `decide` sees it, folded from its events.

use super::event::ProductEvent;
use crate::{Money, ReservationId, Sku, Timestamp};
use std::collections::BTreeMap;

/// Catalogue details and stock of one SKU.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProductState {
    /// `None` until first listed.
    pub listing: Option<Listing>,
    /// Units physically in stock, including those held by reservations. Signed so that a broken
    /// rule shows up as a negative number in tests instead of wrapping.
    pub on_hand: i64,
    /// Holds by reservation id. Expired holds stay here until released but no longer count.
    pub reservations: BTreeMap<ReservationId, Reservation>,
}

/// The catalogue part of a product.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Listing {
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
    /// False once delisted.
    pub listed: bool,
}

/// Stock held for one cart or order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reservation {
    /// Units held.
    pub quantity: u32,
    /// The hold counts strictly before this instant.
    pub expires_at: Timestamp,
}

impl Reservation {
    /// Whether the hold still counts at `now`: a hold expiring at or before `now` has lapsed,
    /// so a late expiry process can never make stock look sold out.
    pub fn holds_at(&self, now: Timestamp) -> bool {
        self.expires_at > now
    }
}

impl ProductState {
    /// Whether the product is in the catalogue right now.
    pub fn is_listed(&self) -> bool {
        self.listing.as_ref().is_some_and(|l| l.listed)
    }

    /// Units held by live reservations at `now`, optionally ignoring one reservation.
    pub fn held(&self, now: Timestamp, except: Option<&ReservationId>) -> i64 {
        self.reservations
            .iter()
            .filter(|(id, r)| Some(*id) != except && r.holds_at(now))
            .map(|(_, r)| i64::from(r.quantity))
            .sum()
    }

    /// Units that can still be reserved at `now`.
    pub fn available(&self, now: Timestamp) -> i64 {
        self.on_hand - self.held(now, None)
    }

    /// Applies one event. Total: the event already happened.
    pub fn apply(mut self, event: &ProductEvent) -> Self {
        match event {
            ProductEvent::Listed(e) => {
                self.listing = Some(Listing {
                    sku: e.sku.clone(),
                    name: e.name.clone(),
                    description: e.description.clone(),
                    category: e.category.clone(),
                    brand: e.brand.clone(),
                    price: e.price,
                    image_urls: e.image_urls.clone(),
                    listed: true,
                });
            }
            ProductEvent::PriceChanged(e) => {
                if let Some(listing) = &mut self.listing {
                    listing.price = e.price;
                }
            }
            ProductEvent::Delisted(_) => {
                if let Some(listing) = &mut self.listing {
                    listing.listed = false;
                }
            }
            ProductEvent::StockReceived(e) => self.on_hand += i64::from(e.quantity),
            ProductEvent::StockAdjusted(e) => self.on_hand += e.delta,
            ProductEvent::StockReserved(e) => {
                let hold = Reservation { quantity: e.quantity, expires_at: e.expires_at };
                self.reservations.insert(e.reservation_id.clone(), hold);
            }
            ProductEvent::ReservationReleased(e) => {
                self.reservations.remove(&e.reservation_id);
            }
            ProductEvent::ReservationCommitted(e) => {
                self.reservations.remove(&e.reservation_id);
                self.on_hand -= i64::from(e.quantity);
            }
        }
        self
    }
}
