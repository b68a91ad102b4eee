//! Request bodies before any operation sees them: the size limit (413), JSON only (415), and
//! no duplicate keys (400).
//!
//! Why refuse duplicate keys: JSON parsers disagree on them (first wins, last wins, error), so a
//! body such as `{"quantity":1,"quantity":99}` can mean one thing to a gateway or audit log in
//! front of Ordo and another to Ordo. RFC 8259 says names SHOULD be unique; I-JSON (RFC 7493)
//! says MUST. Refusing is the one reading every party agrees on.

use super::problem::Problem;
use poem::IntoResponse;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Largest request body accepted; larger ones get 413 before any parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Bodies up to this size are read (and dropped) before a 413, so the client sees the answer.
const DRAIN_BODY_BYTES: usize = 1024 * 1024;

/// Refuses bodies over [`MAX_BODY_BYTES`] with 413, by declared length or while reading, so
/// no operation ever buffers more; then bodies that are not JSON (415) or repeat a key (400).
/// The request keeps its body, read, or the refusal to answer with comes back. (By
/// reference: a request moved in and out would be held twice in every request's future.)
pub async fn check_body(req: &mut poem::Request) -> Result<(), poem::Response> {
    let too_large = || {
        Problem::new(
            413,
            "payload-too-large",
            "The request body is too large",
            format!("bodies are limited to {MAX_BODY_BYTES} bytes"),
        )
        .into_response()
    };
    let declared = req.header("content-length").and_then(|l| l.parse::<u64>().ok()).unwrap_or(0);
    if declared > DRAIN_BODY_BYTES as u64 {
        // Far too large to read: answer now; the connection closes under the upload.
        return Err(too_large());
    }
    if req.method() != poem::http::Method::GET && req.method() != poem::http::Method::HEAD {
        // Bodies somewhat over the limit are read and dropped before answering, so that the
        // client, still sending, gets the 413 rather than a reset connection.
        // Boxed: the read's future is larger than the operation's, and a request waiting in
        // its operation should not carry it (see `middleware`).
        let read = Box::pin(req.take_body().into_bytes_limit(DRAIN_BODY_BYTES));
        let bytes = match read.await {
            Ok(bytes) if bytes.len() > MAX_BODY_BYTES => return Err(too_large()),
            Ok(bytes) => bytes,
            Err(poem::error::ReadBodyError::PayloadTooLarge) => return Err(too_large()),
            Err(e) => return Err(Problem::bad_request(e.to_string()).into_response()),
        };
        if !bytes.is_empty() {
            if !is_json(req.header("content-type")) {
                return Err(unsupported_media_type().into_response());
            }
            if let Err(e) = reject_duplicate_keys(&bytes) {
                return Err(Problem::bad_request(e).into_response());
            }
        }
        req.set_body(bytes);
    }
    Ok(())
}

/// `application/json`, or any `+json` type, with any parameters.
fn is_json(content_type: Option<&str>) -> bool {
    let Some(essence) = content_type.and_then(|t| t.split(';').next()) else { return false };
    let essence = essence.trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        415,
        "unsupported-media-type",
        "Unsupported Media Type",
        "request bodies must be JSON: send `Content-Type: application/json`",
    )
}

/// `Ok` if `body` is not JSON at all (the operation reports that itself) or has no object with
/// a repeated key; otherwise the first repeated key, for the problem's detail.
fn reject_duplicate_keys(body: &[u8]) -> Result<(), String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match UniqueKeys.deserialize(&mut deserializer) {
        Err(e) if e.is_data() => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// Walks any JSON value, failing on the first object that repeats a key.
#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?} in the body")));
            }
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_repeated_key_at_any_depth() {
        assert!(reject_duplicate_keys(br#"{"quantity":1,"quantity":99}"#).is_err());
        let nested = br#"{"shipping_address":{"name":"a","name":"b"},"payment_token":"t"}"#;
        let error = reject_duplicate_keys(nested).expect_err("refused");
        assert!(error.contains("\"name\""), "{error}");
        assert!(reject_duplicate_keys(br#"[{"a":1},{"a":1,"a":2}]"#).is_err());
    }

    #[test]
    fn accepts_distinct_keys_and_leaves_malformed_json_to_the_operation() {
        assert!(reject_duplicate_keys(br#"{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}"#).is_ok());
        assert!(
            reject_duplicate_keys(br#"{"a\u0062":1,"ab":2}"#).is_err(),
            "escapes are unescaped first"
        );
        assert!(reject_duplicate_keys(b"{not json").is_ok());
    }

    #[test]
    fn only_json_content_types_are_json() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/x-www-form-urlencoded")));
        assert!(!is_json(None));
    }
}
