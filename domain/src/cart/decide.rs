//! The cart's rules: limits, one currency, and no changes once checked out or expired.

use super::command::*;
use super::event::*;
use super::state::{CartState, CartStatus, OpenedCart};
use crate::{Decider, Money, MoneyError, OrderId, Sku, Timestamp, MAX_AMOUNT_MINOR};

/// Most distinct SKUs in one cart.
pub const MAX_LINES: usize = 50;
/// Most units of one SKU in one cart.
pub const MAX_QUANTITY_PER_LINE: u32 = 99;
/// Longest allowed idle time: a week. Longer would let a cart hoard stock indefinitely.
pub const MAX_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1_000;

/// A cart command that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    /// No such cart.
    #[error("cart does not exist")]
    NotFound,
    /// Opening an id that is taken.
    #[error("cart already exists")]
    AlreadyOpened,
    /// TTL not in (0, [`MAX_TTL_MS`]].
    #[error("cart TTL must be between 1 ms and {MAX_TTL_MS} ms, got {0}")]
    InvalidTtl(i64),
    /// The cart became an order.
    #[error("cart was checked out as order {0}")]
    CheckedOut(OrderId),
    /// The cart expired (or is past its expiry).
    #[error("cart has expired")]
    Expired,
    /// Above [`MAX_QUANTITY_PER_LINE`].
    #[error("at most {MAX_QUANTITY_PER_LINE} units per line, got {0}")]
    QuantityTooLarge(u32),
    /// Above [`MAX_LINES`].
    #[error("at most {MAX_LINES} lines per cart")]
    TooManyLines,
    /// Zero or negative unit price.
    #[error("unit price must be positive, got {0}")]
    PriceNotPositive(Money),
    /// The line would take the cart's total above [`MAX_AMOUNT_MINOR`].
    #[error(
        "this line would take the cart total above the limit of {MAX_AMOUNT_MINOR} minor units"
    )]
    TotalTooLarge,
    /// Mixed currencies or a total that overflows.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Removing a SKU the cart does not hold.
    #[error("{0} is not in the cart")]
    ItemNotInCart(Sku),
    /// Checking out nothing.
    #[error("cart is empty")]
    Empty,
    /// Expiring a cart that is not due.
    #[error("cart is not due to expire until {0}")]
    NotDue(Timestamp),
}

/// The cart decider.
pub struct Cart;

impl Decider for Cart {
    type Command = CartCommand;
    type Event = CartEvent;
    type State = CartState;
    type Error = CartError;
    const CATEGORY: &'static str = "cart";

    fn initial_state() -> CartState {
        CartState::default()
    }

    fn decide(command: &CartCommand, state: &CartState) -> Result<Vec<CartEvent>, CartError> {
        match command {
            CartCommand::Open(c) => open(c, state),
            CartCommand::SetItemQuantity(c) => set_quantity(c, open_for_changes(state, c.now)?),
            CartCommand::RemoveItem(c) => remove(c, open_for_changes(state, c.now)?),
            CartCommand::CheckOut(c) => check_out(c, state),
            CartCommand::Expire(c) => expire(c, state),
        }
    }

    fn evolve(state: CartState, event: &CartEvent) -> CartState {
        state.apply(event)
    }
}

/// The cart, if it exists, is open and not past its expiry at `now`: the one definition of
/// "the cart takes changes", used by `decide` and by the use-case plans.
pub fn open_for_changes(state: &CartState, now: Timestamp) -> Result<&OpenedCart, CartError> {
    let cart = state.0.as_ref().ok_or(CartError::NotFound)?;
    match &cart.status {
        CartStatus::CheckedOut(order) => Err(CartError::CheckedOut(order.clone())),
        CartStatus::Expired => Err(CartError::Expired),
        CartStatus::Open if cart.is_due(now) => Err(CartError::Expired),
        CartStatus::Open => Ok(cart),
    }
}

fn open(c: &OpenCart, state: &CartState) -> Result<Vec<CartEvent>, CartError> {
    if state.0.is_some() {
        return Err(CartError::AlreadyOpened);
    }
    if c.ttl_ms <= 0 || c.ttl_ms > MAX_TTL_MS {
        return Err(CartError::InvalidTtl(c.ttl_ms));
    }
    Ok(vec![CartEvent::Opened(CartOpened {
        cart_id: c.cart_id.clone(),
        customer_id: c.customer_id.clone(),
        ttl_ms: c.ttl_ms,
        expires_at: c.now.plus_millis(c.ttl_ms),
        at: c.now,
    })])
}

fn set_quantity(c: &SetItemQuantity, cart: &OpenedCart) -> Result<Vec<CartEvent>, CartError> {
    let expires_at = c.now.plus_millis(cart.ttl_ms);
    if c.quantity == 0 {
        if !cart.lines.contains_key(&c.sku) {
            return Ok(vec![]);
        }
        return Ok(vec![CartEvent::ItemRemoved(ItemRemoved {
            sku: c.sku.clone(),
            expires_at,
            at: c.now,
        })]);
    }
    if c.quantity > MAX_QUANTITY_PER_LINE {
        return Err(CartError::QuantityTooLarge(c.quantity));
    }
    if !c.unit_price.is_positive() {
        return Err(CartError::PriceNotPositive(c.unit_price));
    }
    if !cart.lines.contains_key(&c.sku) && cart.lines.len() >= MAX_LINES {
        return Err(CartError::TooManyLines);
    }
    if let Some(currency) = cart.currency() {
        if currency != c.unit_price.currency {
            let (left, right) = (currency, c.unit_price.currency);
            return Err(MoneyError::CurrencyMismatch { left, right }.into());
        }
    }
    total_with_line(cart, c)?;
    Ok(vec![CartEvent::ItemQuantitySet(ItemQuantitySet {
        sku: c.sku.clone(),
        quantity: c.quantity,
        unit_price: c.unit_price,
        expires_at,
        at: c.now,
    })])
}

/// The cart's total once `c`'s line replaces any line of the same SKU, if it stays within
/// [`MAX_AMOUNT_MINOR`] (checked arithmetic throughout, so no input can wrap it).
fn total_with_line(cart: &OpenedCart, c: &SetItemQuantity) -> Result<Money, CartError> {
    let others = cart.lines.iter().filter(|(sku, _)| **sku != c.sku);
    let mut total = c.unit_price.checked_mul(c.quantity).map_err(|_| CartError::TotalTooLarge)?;
    for (_, line) in others {
        let line_total =
            line.unit_price.checked_mul(line.quantity).map_err(|_| CartError::TotalTooLarge)?;
        total = total.checked_add(&line_total).map_err(|e| match e {
            MoneyError::Overflow => CartError::TotalTooLarge,
            other => CartError::Money(other),
        })?;
    }
    if total.minor > MAX_AMOUNT_MINOR {
        return Err(CartError::TotalTooLarge);
    }
    Ok(total)
}

fn remove(c: &RemoveItem, cart: &OpenedCart) -> Result<Vec<CartEvent>, CartError> {
    if !cart.lines.contains_key(&c.sku) {
        return Err(CartError::ItemNotInCart(c.sku.clone()));
    }
    let expires_at = c.now.plus_millis(cart.ttl_ms);
    Ok(vec![CartEvent::ItemRemoved(ItemRemoved { sku: c.sku.clone(), expires_at, at: c.now })])
}

fn check_out(c: &CheckOut, state: &CartState) -> Result<Vec<CartEvent>, CartError> {
    // A retried checkout for the same order is already done: answer with no new events.
    if let Some(OpenedCart { status: CartStatus::CheckedOut(order), .. }) = &state.0 {
        if *order == c.order_id {
            return Ok(vec![]);
        }
    }
    let cart = open_for_changes(state, c.now)?;
    if cart.lines.is_empty() {
        return Err(CartError::Empty);
    }
    cart.total()?;
    Ok(vec![CartEvent::CheckedOut(CartCheckedOut { order_id: c.order_id.clone(), at: c.now })])
}

fn expire(c: &ExpireCart, state: &CartState) -> Result<Vec<CartEvent>, CartError> {
    let cart = state.0.as_ref().ok_or(CartError::NotFound)?;
    match &cart.status {
        CartStatus::Expired => Ok(vec![]),
        CartStatus::CheckedOut(order) => Err(CartError::CheckedOut(order.clone())),
        CartStatus::Open if !cart.is_due(c.now) => Err(CartError::NotDue(cart.expires_at)),
        CartStatus::Open => Ok(vec![CartEvent::Expired(CartExpired { at: c.now })]),
    }
}
