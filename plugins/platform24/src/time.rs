//! ISO 8601 date-times as Platform24's API writes them (`start_at`, `end_at`), and the
//! host's millisecond clock.
//!
//! The API's exact form is not documented beyond "ISO"; the parser takes
//! `YYYY-MM-DDTHH:MM:SS` with optional fractions and `Z`, `±HH:MM` or `±HHMM` (no zone
//! means UTC), and we always send `YYYY-MM-DDTHH:MM:SSZ`.

use payhost_sdk::calendar::{civil_from_days, days_from_civil, days_in_month};

/// Host clock in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let t = payhost_sdk::clock::now();
    t.seconds * 1000 + i64::from(t.nanoseconds / 1_000_000)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds.
pub fn format(seconds: i64) -> String {
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

fn number(text: &str) -> Option<i64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// Unix seconds of an ISO 8601 date-time (a date alone is its midnight UTC).
pub fn parse(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    let mut parts = date.splitn(3, '-');
    let year = number(parts.next()?)?;
    let month = u32::try_from(number(parts.next()?)?).ok().filter(|m| (1..=12).contains(m))?;
    let day = u32::try_from(number(parts.next()?)?).ok()?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let (clock, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], zone_offset(&rest[i..])?),
        None => (rest, 0),
    };
    let clock = clock.split('.').next().unwrap_or("");
    let mut hms = [0i64; 3];
    if !clock.is_empty() {
        let fields: Vec<&str> = clock.split(':').collect();
        if fields.len() < 2 || fields.len() > 3 {
            return None;
        }
        for (slot, field) in hms.iter_mut().zip(&fields) {
            *slot = number(field)?;
        }
    }
    if hms[0] > 23 || hms[1] > 59 || hms[2] > 60 || !(0..=9999).contains(&year) {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2] - offset;
    // An offset can push the instant out of years 0..=9999, which `format` cannot write.
    (FIRST_SECOND..=LAST_SECOND).contains(&seconds).then_some(seconds)
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const FIRST_SECOND: i64 = -62_167_219_200;
const LAST_SECOND: i64 = 253_402_300_799;

/// Seconds east of UTC of `Z`, `+03:00`, `+0300` or `+03`.
fn zone_offset(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    // Checked before slicing: a multi-byte character would put `[..2]` inside itself.
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (number(&digits)?, 0),
        4 => (number(&digits[..2])?, number(&digits[2..])?),
        _ => return None,
    };
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_the_api_may_send() {
        // 2025-01-01T00:00:00Z = 1735689600 (Python: datetime(2025,1,1,tzinfo=utc).timestamp()).
        assert_eq!(parse("2025-01-01T00:00:00Z"), Some(1_735_689_600));
        assert_eq!(parse("2025-01-01T00:00:00"), Some(1_735_689_600));
        assert_eq!(parse("2025-01-01T03:00:00+03:00"), Some(1_735_689_600));
        assert_eq!(parse("2025-01-01T03:00:00.123456+0300"), Some(1_735_689_600));
        assert_eq!(parse("2024-12-31T21:00:00-03"), Some(1_735_689_600));
        assert_eq!(parse("2025-01-01"), Some(1_735_689_600));
        assert_eq!(parse("2025-01-01 00:00"), Some(1_735_689_600));
        for bad in ["", "2025-13-01T00:00:00Z", "2025-02-30", "yesterday", "2025-01-01T25:00:00Z", "2025-01-01T00:00:00+3"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    /// Found by the `platform24` fuzz target: a year of many digits overflowed the
    /// seconds (a trap in a debug build, a wrong date in the plugin); an offset past
    /// year 9999 or before year 0 gave an instant `format` cannot write.
    #[test]
    fn years_stay_within_what_is_written() {
        assert_eq!(parse("9223372036854775807-01-01"), None);
        assert_eq!(parse("10000-01-01"), None);
        assert_eq!(parse("0000-01-01T00:00:00+01:00"), None);
        assert_eq!(parse("9999-12-31T23:00:00-02:00"), None);
        assert_eq!(parse("0000-01-01T00:00:00Z"), Some(FIRST_SECOND));
        assert_eq!(parse("9999-12-31T23:59:59Z"), Some(LAST_SECOND));
        assert_eq!(format(FIRST_SECOND), "0000-01-01T00:00:00Z");
        assert_eq!(format(LAST_SECOND), "9999-12-31T23:59:59Z");
    }

    /// Found by the `platform24` fuzz target: a four-byte zone with a multi-byte
    /// character used to panic (a trap in the plugin) while slicing its hours.
    #[test]
    fn a_zone_with_a_multibyte_character_is_refused() {
        assert_eq!(parse("2024-12-31T21:00:00-\u{fffd}3"), None);
        assert_eq!(parse("2024-12-31T21:00:00+0\u{e9}0"), None);
    }

    #[test]
    fn formats_utc_and_round_trips() {
        assert_eq!(format(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(format(1_735_689_600 + 3661), "2025-01-01T01:01:01Z");
        for s in [0, 951_782_400, 1_735_689_599, 4_102_444_800] {
            assert_eq!(parse(&format(s)), Some(s));
        }
    }
}
