//! RFC 9457 problem details: the one shape every HTTP error takes.
//!
//! Errors map to HTTP here and nowhere else: bad input -> 400, no or bad token -> 401, wrong
//! role -> 403, missing (or someone else's) -> 404, refused by a business rule or lost to
//! concurrent changes -> 409, body too large -> 413, not JSON -> 415, idempotency key reused ->
//! 422, read side unavailable or behind -> 503 with `Retry-After`. Internal details are logged,
//! not echoed. Every domain refusal has its own problem type (`/problems/insufficient-stock`),
//! chosen by an exhaustive `match` per aggregate error, listed in [`REFUSALS`] and in the API
//! document.

use ordo_application::{AppError, Missing};
use ordo_domain::cart::CartError;
use ordo_domain::order::OrderError;
use ordo_domain::product::ProductError;
use ordo_domain::MoneyError;
use ordo_eventstore::StoreError;
use ordo_projections::query::QueryError;
use poem_openapi::Object;

/// A problem report (RFC 9457), sent as `application/problem+json`.
#[derive(Object, Debug, Clone)]
pub struct Problem {
    /// A URI naming the kind of problem; relative, resolved against the API's base.
    #[oai(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence, for people.
    pub detail: String,
}

impl Problem {
    /// A problem of `kind` (the last part of its type URI).
    pub fn new(status: u16, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{kind}"),
            title: title.to_owned(),
            status,
            detail: detail.into(),
        }
    }

    /// Malformed or invalid request parameters.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "bad-request", "The request is not valid", detail)
    }

    /// The named resource does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not-found", "Not found", detail)
    }

    /// The read side cannot answer now.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "unavailable", "The read models are unavailable", detail)
    }

    /// The event store did not answer (or none is open); the client may retry.
    pub fn store_unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "unavailable", "The event store failed", detail)
    }

    /// No valid bearer token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", "Authentication is required", detail)
    }

    /// The token's role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "forbidden", "Not allowed", detail)
    }

    /// A business rule refused the command in the current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, "conflict", "The command conflicts with the current state", detail)
    }

    /// Something failed inside; details are in the server's log under the request id.
    pub fn internal() -> Self {
        Self::new(
            500,
            "internal",
            "Internal error",
            "the request failed inside the server; its log has the details under this request's id",
        )
    }
}

impl poem::IntoResponse for Problem {
    fn into_response(self) -> poem::Response {
        use poem_openapi::types::ToJSON;
        let status = poem::http::StatusCode::from_u16(self.status)
            .unwrap_or(poem::http::StatusCode::INTERNAL_SERVER_ERROR);
        poem::Response::builder()
            .status(status)
            .content_type("application/problem+json")
            .body(self.to_json_string())
    }
}

/// A kind of problem: its status, the last part of its type URI, and its title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// HTTP status.
    pub status: u16,
    /// `/problems/<slug>`.
    pub slug: &'static str,
    /// Short summary, the same for every occurrence.
    pub title: &'static str,
}

macro_rules! kinds {
    ($($name:ident = $status:literal, $slug:literal, $title:literal;)*) => {
        $(
            #[doc = $title]
            pub const $name: Kind = Kind { status: $status, slug: $slug, title: $title };
        )*
        /// Every refusal a command can answer with, for the API document.
        pub const REFUSALS: &[Kind] = &[$($name),*];
    };
}

kinds! {
    INVALID_PRODUCT = 400, "invalid-product", "The product's details are not valid";
    INVALID_PRICE = 400, "invalid-price", "The price must be positive";
    PRICE_TOO_HIGH = 400, "price-too-high", "The price is above what a cart may total";
    WRONG_CURRENCY = 400, "wrong-currency", "The amount is not in the shop's currency";
    PRODUCT_ALREADY_LISTED = 409, "product-already-listed", "The product is already listed";
    PRODUCT_NOT_FOUND = 404, "product-not-found", "No such product";
    PRODUCT_DELISTED = 409, "product-delisted", "The product is no longer sold";
    INVALID_QUANTITY = 400, "invalid-quantity", "The quantity must be positive";
    STOCK_LIMIT_EXCEEDED = 409, "stock-limit-exceeded", "Stock would exceed its limit";
    REASON_REQUIRED = 400, "reason-required", "A reason is required";
    ADJUSTMENT_BELOW_AVAILABLE = 409, "adjustment-below-available", "The adjustment would take away held units";
    INSUFFICIENT_STOCK = 409, "insufficient-stock", "Not enough stock";
    INVALID_EXPIRY = 400, "invalid-expiry", "The hold must expire in the future";
    UNKNOWN_RESERVATION = 409, "unknown-reservation", "No such stock hold";
    CART_NOT_FOUND = 404, "cart-not-found", "No such cart";
    CART_ALREADY_OPENED = 409, "cart-already-opened", "The cart exists already";
    INVALID_CART_TTL = 400, "invalid-cart-ttl", "The cart lifetime is out of range";
    CART_CHECKED_OUT = 409, "cart-checked-out", "The cart was checked out";
    CART_EXPIRED = 409, "cart-expired", "The cart has expired";
    QUANTITY_TOO_LARGE = 400, "quantity-too-large", "Too many units on one line";
    TOO_MANY_LINES = 409, "too-many-lines", "The cart has too many lines";
    CART_TOTAL_TOO_LARGE = 409, "cart-total-too-large", "The cart total would exceed its limit";
    CURRENCY_MISMATCH = 409, "currency-mismatch", "Amounts in different currencies";
    AMOUNT_OVERFLOW = 409, "amount-overflow", "The amount does not fit";
    INVALID_CURRENCY = 400, "invalid-currency", "Not an ISO 4217 currency code";
    ITEM_NOT_IN_CART = 404, "item-not-in-cart", "The cart has no such line";
    CART_EMPTY = 409, "cart-empty", "The cart is empty";
    CART_NOT_DUE = 409, "cart-not-due", "The cart is not due to expire";
    ORDER_NOT_FOUND = 404, "order-not-found", "No such order";
    ORDER_ALREADY_PLACED = 409, "order-already-placed", "The order exists already";
    INVALID_ORDER = 400, "invalid-order", "The order's lines are not valid";
    INVALID_ADDRESS = 400, "invalid-address", "The shipping address is not valid";
    PAYMENT_ALREADY_RECORDED = 409, "payment-already-recorded", "The payment was already recorded";
    PAYMENT_AMOUNT_MISMATCH = 409, "payment-amount-mismatch", "The payment does not match the total";
    PAYMENT_NOT_AUTHORIZED = 409, "payment-not-authorized", "The payment is not authorized";
    ORDER_NOT_CONFIRMED = 409, "order-not-confirmed", "The order is not confirmed";
    ORDER_NOT_SHIPPED = 409, "order-not-shipped", "The order has not shipped";
    ORDER_ALREADY_SHIPPED = 409, "order-already-shipped", "The order has shipped";
    ORDER_CANCELLED = 409, "order-cancelled", "The order is cancelled";
    INVALID_REFUND = 400, "invalid-refund", "The refund amount is not valid";
    REFUND_EXCEEDS_PAYMENT = 409, "refund-exceeds-payment", "The refund exceeds what is refundable";
    INVALID_ID = 400, "invalid-id", "An id is not valid";
    FORBIDDEN = 403, "forbidden", "Not allowed";
    CONTENTION = 409, "contention", "Too many concurrent changes";
    SHUTTING_DOWN = 503, "shutting-down", "The server is shutting down";
}

/// Every product refusal's kind. No wildcard arm: a new rule does not compile until it has
/// a status and a type of its own.
fn product_kind(e: &ProductError) -> Kind {
    use ProductError::*;
    match e {
        NameLength(_)
        | DescriptionTooLong(_)
        | FacetLength { .. }
        | TooManyImages(_)
        | InvalidImageUrl(_) => INVALID_PRODUCT,
        PriceNotPositive(_) => INVALID_PRICE,
        PriceTooHigh(_) => PRICE_TOO_HIGH,
        WrongCurrency { .. } => WRONG_CURRENCY,
        AlreadyListed => PRODUCT_ALREADY_LISTED,
        NotListed => PRODUCT_NOT_FOUND,
        Delisted => PRODUCT_DELISTED,
        QuantityNotPositive => INVALID_QUANTITY,
        StockLimitExceeded => STOCK_LIMIT_EXCEEDED,
        ReasonRequired => REASON_REQUIRED,
        AdjustmentBelowAvailable { .. } => ADJUSTMENT_BELOW_AVAILABLE,
        InsufficientStock { .. } => INSUFFICIENT_STOCK,
        ExpiryNotInFuture { .. } => INVALID_EXPIRY,
        UnknownReservation(_) => UNKNOWN_RESERVATION,
    }
}

fn money_kind(e: &MoneyError) -> Kind {
    match e {
        MoneyError::CurrencyMismatch { .. } => CURRENCY_MISMATCH,
        MoneyError::Overflow => AMOUNT_OVERFLOW,
        MoneyError::InvalidCurrency(_) => INVALID_CURRENCY,
    }
}

/// Every cart refusal's kind (no wildcard arm).
fn cart_kind(e: &CartError) -> Kind {
    use CartError::*;
    match e {
        NotFound => CART_NOT_FOUND,
        AlreadyOpened => CART_ALREADY_OPENED,
        InvalidTtl(_) => INVALID_CART_TTL,
        CheckedOut(_) => CART_CHECKED_OUT,
        Expired => CART_EXPIRED,
        QuantityTooLarge(_) => QUANTITY_TOO_LARGE,
        TooManyLines => TOO_MANY_LINES,
        PriceNotPositive(_) => INVALID_PRICE,
        TotalTooLarge => CART_TOTAL_TOO_LARGE,
        Money(e) => money_kind(e),
        ItemNotInCart(_) => ITEM_NOT_IN_CART,
        Empty => CART_EMPTY,
        NotDue(_) => CART_NOT_DUE,
    }
}

/// Every order refusal's kind (no wildcard arm).
fn order_kind(e: &OrderError) -> Kind {
    use OrderError::*;
    match e {
        NotFound => ORDER_NOT_FOUND,
        AlreadyPlaced => ORDER_ALREADY_PLACED,
        LineCount(_) | DuplicateSku(_) | QuantityNotPositive | PriceNotPositive => INVALID_ORDER,
        Money(e) => money_kind(e),
        InvalidField(_) | InvalidCountry => INVALID_ADDRESS,
        PaymentAlreadyRecorded => PAYMENT_ALREADY_RECORDED,
        PaymentAmountMismatch { .. } => PAYMENT_AMOUNT_MISMATCH,
        PaymentNotAuthorized => PAYMENT_NOT_AUTHORIZED,
        NotConfirmed => ORDER_NOT_CONFIRMED,
        NotShipped => ORDER_NOT_SHIPPED,
        AlreadyShipped => ORDER_ALREADY_SHIPPED,
        AlreadyCancelled => ORDER_CANCELLED,
        InvalidRefund => INVALID_REFUND,
        RefundExceedsPayment { .. } => REFUND_EXCEEDS_PAYMENT,
    }
}

impl Problem {
    /// A problem of `kind` with this occurrence's `detail`.
    pub fn of(kind: Kind, detail: impl Into<String>) -> Self {
        Self::new(kind.status, kind.slug, kind.title, detail)
    }
}

/// The one place a use case's failure becomes HTTP.
impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        let detail = error.to_string();
        match error {
            AppError::Product(e) => Problem::of(product_kind(&e), detail),
            AppError::Cart(e) => Problem::of(cart_kind(&e), detail),
            AppError::Order(e) => Problem::of(order_kind(&e), detail),
            AppError::InvalidId(_) => Problem::of(INVALID_ID, detail),
            AppError::NotFound { kind: Missing::Product, .. } => {
                Problem::of(PRODUCT_NOT_FOUND, detail)
            }
            AppError::NotFound { kind: Missing::Cart, .. } => Problem::of(CART_NOT_FOUND, detail),
            AppError::NotFound { kind: Missing::Order, .. } => Problem::of(ORDER_NOT_FOUND, detail),
            AppError::Forbidden => Problem::of(FORBIDDEN, detail),
            AppError::Contention { .. } => Problem::of(CONTENTION, detail),
            AppError::Store(StoreError::Closed) => {
                Problem::of(SHUTTING_DOWN, "retry on another instance or shortly")
            }
            AppError::Store(_) | AppError::Codec(_) => {
                let cause = std::error::Error::source(&error).map(ToString::to_string);
                tracing::error!(error = %detail, cause, "command failed");
                Problem::internal()
            }
        }
    }
}

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// How a failed query is reported.
pub enum QueryFailure {
    /// 400.
    BadRequest(Problem),
    /// 503 with `Retry-After`.
    Unavailable(Problem),
}

impl From<QueryError> for QueryFailure {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::InvalidCursor => QueryFailure::BadRequest(Problem::bad_request(
                "the cursor was not issued by this service",
            )),
            QueryError::NotYetApplied { position, .. } => QueryFailure::Unavailable(Problem::new(
                503,
                "not-yet-applied",
                "The read side has not caught up yet",
                format!("position {position} is not applied yet; retry shortly"),
            )),
            QueryError::Unavailable(e) => {
                tracing::warn!(error = %e, "query failed: Redis unavailable");
                QueryFailure::Unavailable(Problem::unavailable(
                    "the read models cannot be reached; retry shortly",
                ))
            }
        }
    }
}

impl From<QueryError> for Problem {
    fn from(error: QueryError) -> Self {
        match QueryFailure::from(error) {
            QueryFailure::BadRequest(p) | QueryFailure::Unavailable(p) => p,
        }
    }
}
