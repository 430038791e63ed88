//! Time on the wire: `YYYY-MM-DDThh:mm:ssZ`, always UTC (notes §7).

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

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
    let Ok(t) = OffsetDateTime::from_unix_timestamp(unix) else {
        return "1970-01-01T00:00:00Z".to_string();
    };
    let (year, month, day) = t.to_calendar_date();
    let Ok(year) = u32::try_from(year) else {
        return t.format(WIRE).unwrap_or_default();
    };
    // Laid out by hand: `format(WIRE)` interprets the description item by
    // item (~1.7k instructions, twice per job read from SQLite).
    let (hour, minute, second) = t.to_hms();
    let mut s = String::with_capacity(20);
    for (value, width, sep) in [
        (year, 4, '-'),
        (u32::from(u8::from(month)), 2, '-'),
        (u32::from(day), 2, 'T'),
        (u32::from(hour), 2, ':'),
        (u32::from(minute), 2, ':'),
        (u32::from(second), 2, 'Z'),
    ] {
        for place in (0..width).rev() {
            s.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
        s.push(sep);
    }
    s
}

/// Parses a wire timestamp (a fraction, which the Python SDK can read, is tolerated).
pub fn parse_ts(s: &str) -> Option<i64> {
    // Every request carries one: the exact layout is read by hand (the
    // descriptions are interpreted item by item), anything else by `time`.
    if let Some(t) = parse_plain(s.as_bytes()) {
        return Some(t.assume_utc().unix_timestamp());
    }
    PrimitiveDateTime::parse(s, WIRE)
        .or_else(|_| PrimitiveDateTime::parse(s, WIRE_FRACTION))
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// `YYYY-MM-DDThh:mm:ssZ` exactly, when it names a valid time.
fn parse_plain(s: &[u8]) -> Option<PrimitiveDateTime> {
    let digits = |from: usize, n: usize| {
        s.get(from..from + n)?.iter().try_fold(0u16, |v, b| {
            b.is_ascii_digit().then(|| v * 10 + u16::from(b - b'0'))
        })
    };
    let layout = s.len() == 20
        && [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'Z'),
        ]
        .iter()
        .all(|(i, c)| s[*i] == *c);
    if !layout {
        return None;
    }
    let month = Month::try_from(u8::try_from(digits(5, 2)?).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::from(digits(0, 4)?), month, digits(8, 2)? as u8);
    let time = Time::from_hms(
        digits(11, 2)? as u8,
        digits(14, 2)? as u8,
        digits(17, 2)? as u8,
    );
    Some(PrimitiveDateTime::new(date.ok()?, time.ok()?))
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

    #[test]
    fn the_wire_layout_matches_the_format_description() {
        let by_description = |unix| {
            OffsetDateTime::from_unix_timestamp(unix)
                .ok()
                .and_then(|t| t.format(WIRE).ok())
        };
        // Both ends of each field, leap days and the end of the range.
        let mut samples = vec![
            0,
            1,
            59,
            60,
            3599,
            86_399,
            951_782_400,
            1_709_164_800,
            253_402_300_799,
        ];
        samples.extend((0..2000).map(|i| i * 1_234_567_891 % 253_402_300_800));
        for unix in samples {
            assert_eq!(Some(format_ts(unix)), by_description(unix), "{unix}");
        }
        assert_eq!(format_ts(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_ts(i64::MAX), "1970-01-01T00:00:00Z");
    }

    /// What `time` reads with the wire's description.
    fn by_description(s: &str) -> Option<i64> {
        PrimitiveDateTime::parse(s, WIRE)
            .ok()
            .map(|t| t.assume_utc().unix_timestamp())
    }

    #[test]
    fn the_hand_read_layout_agrees_with_the_format_description() {
        // Each field at and past its ends, leap days, and bytes out of place.
        let fields: [&[&str]; 6] = [
            &[
                "0000", "1970", "2000", "2023", "2024", "2100", "9999", "20x4", "+202",
            ],
            &["00", "01", "02", "12", "13", "1a"],
            &["00", "01", "28", "29", "30", "31", "32"],
            &["00", "23", "24", "-1"],
            &["00", "59", "60"],
            &["00", "59", "60", "61", " 1"],
        ];
        let (mut checked, mut valid) = (0, 0);
        for y in fields[0] {
            for mo in fields[1] {
                for d in fields[2] {
                    for h in fields[3] {
                        for mi in fields[4] {
                            for sec in fields[5] {
                                let s = format!("{y}-{mo}-{d}T{h}:{mi}:{sec}Z");
                                let expected = by_description(&s);
                                assert_eq!(parse_ts(&s), expected, "{s}");
                                let plain = parse_plain(s.as_bytes());
                                assert_eq!(
                                    plain.map(|t| t.assume_utc().unix_timestamp()),
                                    expected,
                                    "{s}"
                                );
                                checked += 1;
                                valid += usize::from(expected.is_some());
                            }
                        }
                    }
                }
            }
        }
        assert!(valid > 500 && checked > 2 * valid, "{valid} of {checked}");
        for s in [
            "2013-08-27T14:30:10z",
            "2013-08-27t14:30:10Z",
            "2013-08-27T14:30:10ZZ",
        ] {
            assert_eq!(parse_plain(s.as_bytes()), None, "{s}");
        }
    }
}
