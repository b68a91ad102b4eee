//! Path parameters and body fields held to a pattern, with the pattern compiled once.
//!
//! poem-openapi's `#[oai(validator(pattern = ...))]` compiles its regular expression again on
//! every value it checks. A profile of `GET /v1/products/{sku}` under load put that compile at
//! several per cent of the server's CPU (the SKU pattern's `{2,31}` unrolls into many NFA
//! states), and one of the HTTP mix put it near a tenth: a checkout's address alone checked six
//! patterns. These types publish the same `{"type": "string", "pattern": ...}` schema in the API
//! document and check the value against a regex built on first use. Other validators (such as
//! `max_length`) still go on the field.

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
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

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
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

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
                match value {
                    Some(serde_json::Value::String(s)) if Self::matches(&s) => Ok(Self(s)),
                    Some(serde_json::Value::String(s)) => Err(ParseError::custom(format!(
                        "{s:?} is not {} (pattern {})",
                        $what,
                        Self::PATTERN
                    ))),
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<serde_json::Value> {
                Some(serde_json::Value::String(self.0.clone()))
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

pattern_param!(
    /// Text with at least one character that is not white space (a name, a city).
    NonBlank = r"\S",
    "text with a visible character"
);

pattern_param!(
    /// An ISO 3166-1 alpha-2 country code, e.g. `DE`.
    Country = "^[A-Z]{2}$",
    "a two-letter country code"
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

    #[test]
    fn given_body_fields_when_parsed_then_only_strings_matching_the_pattern_pass() {
        let parse = |v: serde_json::Value| NonBlank::parse_from_json(Some(v)).map(|s| s.0).ok();
        assert_eq!(parse(serde_json::json!(" a ")), Some(" a ".into()));
        assert_eq!(parse(serde_json::json!(" \t\n")), None);
        assert_eq!(parse(serde_json::json!("")), None);
        assert_eq!(parse(serde_json::json!(7)), None);
        assert!(Country::parse_from_json(Some(serde_json::json!("DE"))).is_ok());
        assert!(Country::parse_from_json(Some(serde_json::json!("de"))).is_err());
        assert!(Country::parse_from_json(None).is_err());
        assert_eq!(Country("DE".into()).to_json(), Some(serde_json::json!("DE")));
    }
}
