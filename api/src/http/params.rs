//! Path parameters held to a pattern, with the pattern compiled once.
//!
//! poem-openapi's `#[oai(validator(pattern = ...))]` compiles its regular expression again on
//! every request. A profile of `GET /v1/products/{sku}` under load put that compile at several
//! per cent of the server's CPU (the SKU pattern's `{2,31}` unrolls into many NFA states). These
//! types publish the same `{"type": "string", "pattern": ...}` schema in the API document and
//! check the value against a regex built on first use.

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromParameter, ParseResult, Type};
use std::borrow::Cow;

macro_rules! pattern_param {
    ($(#[$doc:meta])* $name:ident = $pattern:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(pub String);

        impl $name {
            /// The pattern the value must match, as the API document states it.
            pub const PATTERN: &'static str = $pattern;

            fn matches(value: &str) -> bool {
                static REGEX: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
                    regex::Regex::new($pattern).expect("the pattern compiles")
                });
                REGEX.is_match(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            fn schema_ref() -> MetaSchemaRef {
                let mut schema = MetaSchema::new("string");
                schema.pattern = Some(Self::PATTERN.to_owned());
                MetaSchemaRef::Inline(Box::new(schema))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl ParseFromParameter for $name {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                if Self::matches(value) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(ParseError::custom(format!(
                        "{value:?} is not {} (pattern {})",
                        $what,
                        Self::PATTERN
                    )))
                }
            }
        }
    };
}

pattern_param!(
    /// A SKU: 3 to 32 upper-case letters, digits and `-`, not starting with `-`.
    Sku = r"^[A-Z0-9][A-Z0-9-]{2,31}$",
    "a SKU"
);

pattern_param!(
    /// A cart or order id.
    Id = r"^[A-Za-z0-9_-]{1,64}$",
    "an id"
);

pattern_param!(
    /// A stream name: `<category>-<id>`.
    Stream = r"^[A-Za-z0-9_.:@-]{1,200}$",
    "a stream name"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_path_values_when_parsed_then_only_those_matching_the_pattern_pass() {
        assert_eq!(Sku::parse_from_parameter("MUG-1").map(|s| s.0).ok(), Some("MUG-1".into()));
        assert!(Sku::parse_from_parameter("mug-1").is_err());
        assert!(Sku::parse_from_parameter("-MUG").is_err());
        assert!(Id::parse_from_parameter(&"a".repeat(65)).is_err());
        assert!(Stream::parse_from_parameter("order-01a2:b@c.d").is_ok());
        assert!(Stream::parse_from_parameter("$all").is_err());
    }
}
