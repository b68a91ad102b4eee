//! The product's rules: catalogue validation and the stock invariants.
//!
//! Invariants kept here: `on_hand >= 0` and `available = on_hand - live holds >= 0` at every
//! command's `now`.

use super::command::*;
use super::event::*;
use super::state::ProductState;
use crate::{Currency, Decider, Money, ReservationId, Timestamp, MAX_AMOUNT_MINOR};

/// Longest product name.
pub const MAX_NAME_LEN: usize = 120;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 4_000;
/// Longest category or brand.
pub const MAX_FACET_LEN: usize = 60;
/// Most images per product.
pub const MAX_IMAGES: usize = 10;
/// Longest image URL.
pub const MAX_URL_LEN: usize = 2_048;
/// Upper bound on on-hand stock: far above any real warehouse, far below overflow.
pub const MAX_ON_HAND: i64 = 1_000_000_000;

/// A product command that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// Name empty or too long.
    #[error("product name must be 1 to {MAX_NAME_LEN} characters, got {0}")]
    NameLength(usize),
    /// Description too long.
    #[error("description must be at most {MAX_DESCRIPTION_LEN} characters, got {0}")]
    DescriptionTooLong(usize),
    /// Category or brand empty or too long.
    #[error("{field} must be 1 to {MAX_FACET_LEN} characters, got {len}")]
    FacetLength {
        /// `category` or `brand`.
        field: &'static str,
        /// Length received.
        len: usize,
    },
    /// More than [`MAX_IMAGES`] images.
    #[error("at most {MAX_IMAGES} images, got {0}")]
    TooManyImages(usize),
    /// Image URL not http(s) or too long.
    #[error("image URL {0:?} must be an http(s) URL of at most {MAX_URL_LEN} characters")]
    InvalidImageUrl(String),
    /// Price zero or negative.
    #[error("price must be positive, got {0}")]
    PriceNotPositive(Money),
    /// Price above [`MAX_AMOUNT_MINOR`]: no cart could hold it.
    #[error("price must be at most {MAX_AMOUNT_MINOR} minor units, got {0}")]
    PriceTooHigh(Money),
    /// Price in a currency the shop does not sell in.
    #[error("price must be in the store currency {expected}, got {got}")]
    WrongCurrency {
        /// The store currency.
        expected: Currency,
        /// The currency received.
        got: Currency,
    },
    /// Listing a product that is already in the catalogue.
    #[error("product is already listed")]
    AlreadyListed,
    /// The product was never listed.
    #[error("product does not exist")]
    NotListed,
    /// Reserving a product that has been delisted.
    #[error("product is delisted")]
    Delisted,
    /// A zero quantity or adjustment.
    #[error("quantity must be positive")]
    QuantityNotPositive,
    /// Stock would exceed [`MAX_ON_HAND`].
    #[error("on-hand stock may not exceed {MAX_ON_HAND}")]
    StockLimitExceeded,
    /// An adjustment without a reason.
    #[error("a stock adjustment needs a reason")]
    ReasonRequired,
    /// Removing more than is free: on-hand or available would go negative.
    #[error("adjustment of {delta} would leave available stock negative ({available} available)")]
    AdjustmentBelowAvailable {
        /// Requested change.
        delta: i64,
        /// Units free to remove at the command's time.
        available: i64,
    },
    /// Not enough free stock for the reservation.
    #[error("insufficient stock: requested {requested}, available {available}")]
    InsufficientStock {
        /// Units requested under this reservation id.
        requested: u32,
        /// Units this reservation id could hold at most.
        available: i64,
    },
    /// A reservation that would already be expired when made.
    #[error("reservation would expire at {expires_at}, which is not after now ({now})")]
    ExpiryNotInFuture {
        /// Requested expiry.
        expires_at: Timestamp,
        /// The command's time.
        now: Timestamp,
    },
    /// Releasing or committing a reservation that does not exist.
    #[error("no reservation {0}")]
    UnknownReservation(ReservationId),
}

/// The product decider.
pub struct Product;

impl Decider for Product {
    type Command = ProductCommand;
    type Event = ProductEvent;
    type State = ProductState;
    type Error = ProductError;
    const CATEGORY: &'static str = "product";

    fn initial_state() -> ProductState {
        ProductState::default()
    }

    fn decide(
        command: &ProductCommand,
        state: &ProductState,
    ) -> Result<Vec<ProductEvent>, ProductError> {
        match command {
            ProductCommand::List(c) => list(c, state),
            ProductCommand::ChangePrice(c) => change_price(c, state),
            ProductCommand::Delist(c) => delist(c, state),
            ProductCommand::ReceiveStock(c) => receive(c, state),
            ProductCommand::AdjustStock(c) => adjust(c, state),
            ProductCommand::Reserve(c) => reserve(c, state),
            ProductCommand::Release(c) => release(c, state),
            ProductCommand::Commit(c) => commit(c, state),
        }
    }

    fn evolve(state: ProductState, event: &ProductEvent) -> ProductState {
        state.apply(event)
    }
}

fn check_price(price: &Money, store_currency: Currency) -> Result<(), ProductError> {
    if price.currency != store_currency {
        return Err(ProductError::WrongCurrency { expected: store_currency, got: price.currency });
    }
    if !price.is_positive() {
        return Err(ProductError::PriceNotPositive(*price));
    }
    if price.minor > MAX_AMOUNT_MINOR {
        return Err(ProductError::PriceTooHigh(*price));
    }
    Ok(())
}

fn check_facet(field: &'static str, value: &str) -> Result<(), ProductError> {
    let len = value.trim().chars().count();
    if len == 0 || value.chars().count() > MAX_FACET_LEN {
        return Err(ProductError::FacetLength { field, len });
    }
    Ok(())
}

fn check_listing(c: &ListProduct) -> Result<(), ProductError> {
    let name_len = c.name.chars().count();
    if c.name.trim().is_empty() || name_len > MAX_NAME_LEN {
        return Err(ProductError::NameLength(name_len));
    }
    let description_len = c.description.chars().count();
    if description_len > MAX_DESCRIPTION_LEN {
        return Err(ProductError::DescriptionTooLong(description_len));
    }
    check_facet("category", &c.category)?;
    check_facet("brand", &c.brand)?;
    if c.image_urls.len() > MAX_IMAGES {
        return Err(ProductError::TooManyImages(c.image_urls.len()));
    }
    if let Some(bad) = c.image_urls.iter().find(|u| !is_http_url(u)) {
        return Err(ProductError::InvalidImageUrl(bad.clone()));
    }
    check_price(&c.price, c.store_currency)
}

fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    url.len() <= MAX_URL_LEN
        && rest.is_some_and(|r| !r.is_empty() && !r.chars().any(char::is_whitespace))
}

fn list(c: &ListProduct, state: &ProductState) -> Result<Vec<ProductEvent>, ProductError> {
    if state.is_listed() {
        return Err(ProductError::AlreadyListed);
    }
    check_listing(c)?;
    Ok(vec![ProductEvent::Listed(ProductListed {
        sku: c.sku.clone(),
        name: c.name.clone(),
        description: c.description.clone(),
        category: c.category.clone(),
        brand: c.brand.clone(),
        price: c.price,
        image_urls: c.image_urls.clone(),
        at: c.now,
    })])
}

fn change_price(c: &ChangePrice, state: &ProductState) -> Result<Vec<ProductEvent>, ProductError> {
    let listing = state.listing.as_ref().ok_or(ProductError::NotListed)?;
    check_price(&c.price, c.store_currency)?;
    if listing.price == c.price {
        return Ok(vec![]);
    }
    Ok(vec![ProductEvent::PriceChanged(PriceChanged { price: c.price, at: c.now })])
}

fn delist(c: &DelistProduct, state: &ProductState) -> Result<Vec<ProductEvent>, ProductError> {
    match &state.listing {
        None => Err(ProductError::NotListed),
        Some(l) if !l.listed => Ok(vec![]),
        Some(_) => Ok(vec![ProductEvent::Delisted(ProductDelisted { at: c.now })]),
    }
}

fn receive(c: &ReceiveStock, state: &ProductState) -> Result<Vec<ProductEvent>, ProductError> {
    if state.listing.is_none() {
        return Err(ProductError::NotListed);
    }
    if c.quantity == 0 {
        return Err(ProductError::QuantityNotPositive);
    }
    if state.on_hand + i64::from(c.quantity) > MAX_ON_HAND {
        return Err(ProductError::StockLimitExceeded);
    }
    Ok(vec![ProductEvent::StockReceived(StockReceived { quantity: c.quantity, at: c.now })])
}

fn adjust(c: &AdjustStock, state: &ProductState) -> Result<Vec<ProductEvent>, ProductError> {
    if state.listing.is_none() {
        return Err(ProductError::NotListed);
    }
    if c.delta == 0 {
        return Err(ProductError::QuantityNotPositive);
    }
    if c.reason.trim().is_empty() {
        return Err(ProductError::ReasonRequired);
    }
    let available = state.available(c.now);
    // Reject before adding so that an absurd delta cannot overflow.
    if c.delta < -available {
        return Err(ProductError::AdjustmentBelowAvailable { delta: c.delta, available });
    }
    if c.delta > MAX_ON_HAND - state.on_hand {
        return Err(ProductError::StockLimitExceeded);
    }
    let reason = c.reason.trim().to_owned();
    Ok(vec![ProductEvent::StockAdjusted(StockAdjusted { delta: c.delta, reason, at: c.now })])
}

fn reserve(c: &ReserveStock, state: &ProductState) -> Result<Vec<ProductEvent>, ProductError> {
    match &state.listing {
        None => return Err(ProductError::NotListed),
        Some(l) if !l.listed => return Err(ProductError::Delisted),
        Some(_) => {}
    }
    if c.quantity == 0 {
        return Err(ProductError::QuantityNotPositive);
    }
    if c.expires_at <= c.now {
        return Err(ProductError::ExpiryNotInFuture { expires_at: c.expires_at, now: c.now });
    }
    // The earlier hold under the same id is replaced, so it does not count against itself.
    let available = state.on_hand - state.held(c.now, Some(&c.reservation_id));
    if i64::from(c.quantity) > available {
        return Err(ProductError::InsufficientStock { requested: c.quantity, available });
    }
    let current = state.reservations.get(&c.reservation_id);
    if current.is_some_and(|r| r.quantity == c.quantity && r.expires_at == c.expires_at) {
        return Ok(vec![]);
    }
    Ok(vec![ProductEvent::StockReserved(StockReserved {
        reservation_id: c.reservation_id.clone(),
        quantity: c.quantity,
        expires_at: c.expires_at,
        at: c.now,
    })])
}

fn release(
    c: &ReleaseReservation,
    state: &ProductState,
) -> Result<Vec<ProductEvent>, ProductError> {
    let hold = state
        .reservations
        .get(&c.reservation_id)
        .ok_or_else(|| ProductError::UnknownReservation(c.reservation_id.clone()))?;
    Ok(vec![ProductEvent::ReservationReleased(ReservationReleased {
        reservation_id: c.reservation_id.clone(),
        quantity: hold.quantity,
        at: c.now,
    })])
}

/// A lapsed hold can still be committed if the stock it covered is free: the order was paid
/// for, so selling is right whenever it does not take units promised to someone else.
fn commit(c: &CommitReservation, state: &ProductState) -> Result<Vec<ProductEvent>, ProductError> {
    let hold = state
        .reservations
        .get(&c.reservation_id)
        .ok_or_else(|| ProductError::UnknownReservation(c.reservation_id.clone()))?;
    if !hold.holds_at(c.now) {
        let available = state.on_hand - state.held(c.now, Some(&c.reservation_id));
        if i64::from(hold.quantity) > available {
            return Err(ProductError::InsufficientStock { requested: hold.quantity, available });
        }
    }
    Ok(vec![ProductEvent::ReservationCommitted(ReservationCommitted {
        reservation_id: c.reservation_id.clone(),
        quantity: hold.quantity,
        at: c.now,
    })])
}
