//! Time on the wire: `YYYY-MM-DDThh:mm:ssZ`, always UTC (notes §7).

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

const WIRE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const WIRE_FRACTION: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]Z");

pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

pub fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats unix seconds for the wire.
pub fn format_ts(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(WIRE).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// Parses a wire timestamp (a fraction, which the Python SDK can read, is tolerated).
pub fn parse_ts(s: &str) -> Option<i64> {
    PrimitiveDateTime::parse(s, WIRE)
        .or_else(|_| PrimitiveDateTime::parse(s, WIRE_FRACTION))
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(parse_ts("2013-08-27T14:30:10Z"), Some(1377613810));
        assert_eq!(format_ts(1377613810), "2013-08-27T14:30:10Z");
        assert_eq!(parse_ts("2013-08-27T14:30:10.250Z"), Some(1377613810));
        assert_eq!(parse_ts("2013-08-27 14:30:10"), None);
        assert_eq!(parse_ts("2013-08-27T14:30:10+08:00"), None);
        assert_eq!(parse_ts(""), None);
    }
}
