//! Why a use case failed, with each domain refusal kept as its own type all the way to the
//! edge: the HTTP layer maps every variant of every domain error to its own problem type with
//! an exhaustive `match`, so a new rule does not compile until someone decides its status.

use ordo_domain::cart::CartError;
use ordo_domain::order::OrderError;
use ordo_domain::plan::SetItemRefused;
use ordo_domain::product::ProductError;
use ordo_domain::IdError;
use ordo_eventstore::codec::CodecError;
use ordo_eventstore::command::CommandError;
use ordo_eventstore::StoreError;

/// What a use case could not find (or may not show: another customer's carts and orders are
/// "not found", so their ids cannot be probed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// A product.
    Product,
    /// A cart.
    Cart,
    /// An order.
    Order,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Missing::Product => "product",
            Missing::Cart => "cart",
            Missing::Order => "order",
        })
    }
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A product rule refused it.
    #[error(transparent)]
    Product(ProductError),
    /// A cart rule refused it.
    #[error(transparent)]
    Cart(CartError),
    /// An order rule refused it.
    #[error(transparent)]
    Order(OrderError),
    /// An id in the request is malformed.
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// No such thing, or not the caller's.
    #[error("no {kind} {id}")]
    NotFound {
        /// What kind of thing.
        kind: Missing,
        /// The id asked for.
        id: String,
    },
    /// The caller's role may not do this.
    #[error("this needs an admin token")]
    Forbidden,
    /// Other writers kept changing the same stream.
    #[error("{stream} kept changing concurrently; retry")]
    Contention {
        /// The contended stream.
        stream: String,
    },
    /// The store failed.
    #[error("the event store failed")]
    Store(#[from] StoreError),
    /// A stored event no longer decodes.
    #[error("a stored event does not decode")]
    Codec(#[from] CodecError),
}

impl AppError {
    /// `kind` `id` is missing (or not the caller's).
    pub fn not_found(kind: Missing, id: impl ToString) -> Self {
        Self::NotFound { kind, id: id.to_string() }
    }
}

impl From<ProductError> for AppError {
    fn from(e: ProductError) -> Self {
        Self::Product(e)
    }
}

impl From<CartError> for AppError {
    fn from(e: CartError) -> Self {
        Self::Cart(e)
    }
}

impl From<OrderError> for AppError {
    fn from(e: OrderError) -> Self {
        Self::Order(e)
    }
}

impl From<SetItemRefused> for AppError {
    fn from(e: SetItemRefused) -> Self {
        match e {
            SetItemRefused::Cart(e) => Self::Cart(e),
            SetItemRefused::Product(e) => Self::Product(e),
        }
    }
}

impl<E: std::error::Error + Into<AppError> + 'static> From<CommandError<E>> for AppError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Domain(e) => e.into(),
            CommandError::Conflict { stream, .. } => Self::Contention { stream },
            CommandError::Store(StoreError::InvalidStreamName { name, .. }) => {
                Self::InvalidId(IdError::Characters {
                    kind: "id",
                    value: name,
                    allowed: "letters, digits, '-' and '_'",
                })
            }
            CommandError::Store(e) => Self::Store(e),
            CommandError::Codec(e) => Self::Codec(e),
        }
    }
}
