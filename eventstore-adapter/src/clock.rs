//! The one wall clock: everything that needs "now" or prints a time asks here.
//!
//! The domain never reads a clock (time arrives in commands); the layers around it do, and a
//! single home keeps them from disagreeing on units or on what a clock before 1970 means.

use ordo_domain::Timestamp;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is set before it).
pub fn now_millis() -> i64 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Now, as the domain's timestamp.
pub fn now() -> Timestamp {
    Timestamp(now_millis())
}

/// A duration in whole milliseconds, saturating.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-11-22T05:49:30.848Z`), the form
/// every time takes in the API, exports and logs.
pub fn rfc3339(millis: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

/// The Unix milliseconds an RFC 3339 time names, the inverse of [`rfc3339`]: times from
/// clients (`2026-11-22T10:00:00Z`, with or without fractions) and the ones the API wrote.
/// `None` if it is not one, or is before 1970 (which `humantime` refuses to parse).
pub fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    Some(millis(time.duration_since(UNIX_EPOCH).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_millis_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_767_225_607_123), "2026-01-01T00:00:07.123Z");
    }

    #[test]
    fn reads_back_the_millis_it_formatted() {
        for millis in [0, 1, 999, 1_767_225_607_123, 1_796_609_608_459] {
            assert_eq!(parse_rfc3339_millis(&rfc3339(millis)), Some(millis));
        }
        assert_eq!(parse_rfc3339_millis("2026-01-01T00:00:07Z"), Some(1_767_225_607_000));
        assert_eq!(parse_rfc3339_millis("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_rfc3339_millis("yesterday"), None);
    }
}
