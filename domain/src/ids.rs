//! Validated identifiers. Ids come from outside (the API generates them), never from the domain.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id was empty or longer than its limit.
    #[error("{kind} must be {min} to {max} characters long, got {len}")]
    Length {
        /// Which kind of id.
        kind: &'static str,
        /// The shortest accepted.
        min: usize,
        /// The limit.
        max: usize,
        /// The length received.
        len: usize,
    },
    /// The id contained a character outside its alphabet.
    #[error("{kind} {value:?} may only contain {allowed}")]
    Characters {
        /// Which kind of id.
        kind: &'static str,
        /// The rejected value.
        value: String,
        /// The alphabet, in words.
        allowed: &'static str,
    },
}

fn check(
    kind: &'static str,
    value: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    let len = value.chars().count();
    if len == 0 || len > max {
        return Err(IdError::Length { kind, min: 1, max, len });
    }
    if !value.chars().all(ok) {
        return Err(IdError::Characters { kind, value: value.to_owned(), allowed });
    }
    Ok(())
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value`: 1 to 64 ASCII letters, digits, `-` or `_`, so ids are safe
            /// inside stream names, Redis keys and URLs without escaping.
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($kind, &value, 64, "ASCII letters, digits, '-' and '_'", |c| {
                    c.is_ascii_alphanumeric() || c == '-' || c == '_'
                })?;
                Ok(Self(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// Identifies a cart. Also used as the reservation id of the stock the cart holds.
    CartId,
    "cart id"
);
opaque_id!(
    /// Identifies an order; also the payment provider's idempotency key for its one authorization.
    OrderId,
    "order id"
);
opaque_id!(
    /// Identifies a customer (a registered account or a guest session).
    CustomerId,
    "customer id"
);
opaque_id!(
    /// Names a stock reservation: the id of the cart or order holding it, so reserving again
    /// under the same id adjusts the hold instead of adding a second one.
    ReservationId,
    "reservation id"
);

impl From<&CartId> for ReservationId {
    fn from(cart: &CartId) -> Self {
        ReservationId(cart.0.clone())
    }
}

/// A stock-keeping unit: the shop's own product code.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sku(String);

impl Sku {
    /// Longest accepted SKU.
    pub const MAX_LEN: usize = 32;

    /// Validates a SKU: 3 to 32 characters of upper-case ASCII letters, digits and `-`, starting
    /// with a letter or digit. Upper case only, so `abc-1` and `ABC-1` cannot become two products.
    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let allowed = "upper-case ASCII letters, digits and '-', starting with a letter or digit";
        check("SKU", &value, Self::MAX_LEN, allowed, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'
        })?;
        if value.len() < 3 {
            return Err(IdError::Length {
                kind: "SKU",
                min: 3,
                max: Self::MAX_LEN,
                len: value.len(),
            });
        }
        if value.starts_with('-') {
            return Err(IdError::Characters { kind: "SKU", value, allowed });
        }
        Ok(Self(value))
    }

    /// The SKU as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_well_formed_sku() {
        assert_eq!(Sku::parse("MUG-001").map(|s| s.to_string()), Ok("MUG-001".to_owned()));
    }

    #[test]
    fn rejects_lower_case_short_and_leading_dash_skus() {
        assert!(matches!(Sku::parse("mug-001"), Err(IdError::Characters { .. })));
        assert!(matches!(Sku::parse("AB"), Err(IdError::Length { .. })));
        assert!(matches!(Sku::parse("-MUG"), Err(IdError::Characters { .. })));
        assert!(matches!(Sku::parse("A".repeat(33)), Err(IdError::Length { .. })));
    }

    #[test]
    fn rejects_ids_with_separators_or_empty() {
        assert!(matches!(OrderId::parse(""), Err(IdError::Length { .. })));
        assert!(matches!(CartId::parse("a:b"), Err(IdError::Characters { .. })));
        assert!(CustomerId::parse("cus_01J-x").is_ok());
    }
}
