//! Typed access to a Redis hash read back as strings.

use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// A view's hash fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(pub HashMap<String, String>);

impl Fields {
    /// A text field.
    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// An integer field.
    pub fn int<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.0.get(name)?.parse().ok()
    }

    /// An optional integer field: empty means `None`.
    pub fn opt_int<T: std::str::FromStr>(&self, name: &str) -> Option<Option<T>> {
        match self.0.get(name)?.as_str() {
            "" => Some(None),
            s => s.parse().ok().map(Some),
        }
    }

    /// A JSON-encoded field.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        serde_json::from_str(self.0.get(name)?).ok()
    }
}

/// Formats an optional integer as a field (empty for `None`).
pub fn opt(value: Option<i64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Formats a value as a JSON field.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
