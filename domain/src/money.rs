//! Money as integer minor units with an ISO 4217 currency. No floating point, ever.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The largest amount Ordo accepts anywhere, in minor units: a price, a cart's or an order's
/// total (10^15, ten trillion euros). Real baskets are many orders of magnitude below it; the
/// point is that every sum Ordo computes (a full cart, an order, its refunds) stays far from
/// `i64::MAX`, so totals are refused by a rule with a name instead of overflowing.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// Why a money operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Adding euros to dollars is a bug somewhere upstream; refuse rather than guess a rate.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The result does not fit in 64-bit minor units; refusing beats silently wrapping.
    #[error("amount overflows")]
    Overflow,
    /// Not a three-letter upper-case ISO 4217 code.
    #[error("invalid currency code {0:?}: expected three upper-case letters such as EUR")]
    InvalidCurrency(String),
}

/// An ISO 4217 currency code such as `EUR`.
///
/// Stored as three ASCII bytes so it is `Copy` and compares cheaply; (de)serialized as text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Euro.
    pub const EUR: Currency = Currency(*b"EUR");
    /// US dollar.
    pub const USD: Currency = Currency(*b"USD");

    /// Parses a three-letter upper-case code.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Currency([a, b, c])),
            _ => Err(MoneyError::InvalidCurrency(code.to_owned())),
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only upper-case ASCII is ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: integer minor units (cents for EUR) plus its currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in the currency's minor unit. Signed so refunds and adjustments can be expressed.
    pub minor: i64,
    /// The currency the amount is in.
    pub currency: Currency,
}

impl Money {
    /// `minor` units of `currency`.
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// Nothing, in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// Whether the amount is strictly positive.
    pub const fn is_positive(&self) -> bool {
        self.minor > 0
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency })
        }
    }

    /// `self + other`, refusing mixed currencies and overflow.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, currency: self.currency })
    }

    /// `self - other`, refusing mixed currencies and overflow.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, currency: self.currency })
    }

    /// `self * quantity`, for line totals.
    pub fn checked_mul(&self, quantity: u32) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_mul(i64::from(quantity)).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, currency: self.currency })
    }

    /// Sums amounts that must all be in `currency`.
    pub fn checked_sum<'a>(
        currency: Currency,
        amounts: impl IntoIterator<Item = &'a Money>,
    ) -> Result<Money, MoneyError> {
        amounts.into_iter().try_fold(Money::zero(currency), |acc, m| acc.checked_add(m))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_amounts_of_the_same_currency() {
        let sum = Money::new(150, Currency::EUR).checked_add(&Money::new(250, Currency::EUR));
        assert_eq!(sum, Ok(Money::new(400, Currency::EUR)));
    }

    #[test]
    fn refuses_to_add_different_currencies() {
        let sum = Money::new(1, Currency::EUR).checked_add(&Money::new(1, Currency::USD));
        assert_eq!(
            sum,
            Err(MoneyError::CurrencyMismatch { left: Currency::EUR, right: Currency::USD })
        );
    }

    #[test]
    fn reports_overflow_instead_of_wrapping() {
        assert_eq!(Money::new(i64::MAX, Currency::EUR).checked_mul(2), Err(MoneyError::Overflow));
        let max = Money::new(i64::MAX, Currency::EUR);
        assert_eq!(max.checked_add(&Money::new(1, Currency::EUR)), Err(MoneyError::Overflow));
        let min = Money::new(i64::MIN, Currency::EUR);
        assert_eq!(min.checked_sub(&Money::new(1, Currency::EUR)), Err(MoneyError::Overflow));
    }

    #[test]
    fn parses_only_three_upper_case_letters() {
        assert_eq!(Currency::parse("EUR"), Ok(Currency::EUR));
        for bad in ["eur", "EU", "EURO", "E1R", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
