//! The `X-Netflix-AuthorizationTime` value.
//!
//! Netflix's sample formats the request time with PHP's `Ymd\THisO` in a fixed zone, e.g.
//! `20261122T153012+0530`: local date and time in that offset, then the offset itself
//! without a colon. The printed sample line is garbled, so the format is rebuilt here
//! from the PHP format characters rather than copied.

use payhost_sdk::calendar::civil_from_days;

/// A fixed UTC offset, in minutes east of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcOffset {
    minutes: i32,
}

impl UtcOffset {
    pub const UTC: UtcOffset = UtcOffset { minutes: 0 };

    /// Parses `+0530`, `-0800`, `+05:30`, `+05`, `Z` or `UTC`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
            return Ok(Self::UTC);
        }
        let invalid = || format!("`{text}` is not a UTC offset like +0530 or -0800");
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1, &text[1..]),
            Some(b'-') => (-1, &text[1..]),
            _ => return Err(invalid()),
        };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
            return Err(invalid());
        }
        let hours: i32 = digits[..2].parse().map_err(|_| invalid())?;
        let minutes: i32 = if digits.len() == 4 { digits[2..].parse().map_err(|_| invalid())? } else { 0 };
        // Real zones span -12:00 to +14:00.
        if hours > 14 || minutes > 59 || (hours == 14 && minutes > 0) {
            return Err(invalid());
        }
        Ok(Self { minutes: sign * (hours * 60 + minutes) })
    }

    pub fn seconds(self) -> i64 {
        i64::from(self.minutes) * 60
    }

    /// PHP's `O`: `+0530`, `-0800`, `+0000`.
    pub fn to_php_o(self) -> String {
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let abs = self.minutes.abs();
        format!("{sign}{:02}{:02}", abs / 60, abs % 60)
    }
}

/// `Ymd\THisO` of a Unix time seen in `offset`.
pub fn authorization_time(unix_seconds: i64, offset: UtcOffset) -> String {
    let local = unix_seconds + offset.seconds();
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}{}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60,
        offset.to_php_o()
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time, for people reading our own answers.
pub fn rfc3339_utc(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Unix times below come from Python's calendar.timegm, not from this code.
    const NOV_22_2026_100012_UTC: i64 = 1_795_341_612;
    const JAN_1_2027_020000_UTC: i64 = 1_798_768_800;
    const FEB_29_2028_235959_UTC: i64 = 1_835_481_599;

    #[test]
    fn formats_like_php_ymd_t_his_o() {
        let ist = UtcOffset::parse("+0530").unwrap();
        assert_eq!(authorization_time(NOV_22_2026_100012_UTC, ist), "20261122T153012+0530");
        assert_eq!(authorization_time(NOV_22_2026_100012_UTC, UtcOffset::UTC), "20261122T100012+0000");
    }

    #[test]
    fn negative_offset_moves_to_the_previous_day_and_year() {
        let est = UtcOffset::parse("-0500").unwrap();
        assert_eq!(authorization_time(JAN_1_2027_020000_UTC, est), "20261231T210000-0500");
    }

    #[test]
    fn positive_offset_crosses_a_leap_day() {
        let plus_one = UtcOffset::parse("+01:00").unwrap();
        assert_eq!(authorization_time(FEB_29_2028_235959_UTC, plus_one), "20280301T005959+0100");
        assert_eq!(authorization_time(FEB_29_2028_235959_UTC, UtcOffset::UTC), "20280229T235959+0000");
    }

    #[test]
    fn epoch_and_odd_offsets() {
        assert_eq!(authorization_time(0, UtcOffset::UTC), "19700101T000000+0000");
        let nepal = UtcOffset::parse("+0545").unwrap();
        assert_eq!(authorization_time(0, nepal), "19700101T054500+0545");
        let marquesas = UtcOffset::parse("-0930").unwrap();
        assert_eq!(authorization_time(0, marquesas), "19691231T143000-0930");
    }

    #[test]
    fn parses_offset_spellings() {
        assert_eq!(UtcOffset::parse("Z").unwrap(), UtcOffset::UTC);
        assert_eq!(UtcOffset::parse("+00").unwrap().to_php_o(), "+0000");
        assert_eq!(UtcOffset::parse("+05:30").unwrap().to_php_o(), "+0530");
        assert_eq!(UtcOffset::parse("-08").unwrap().to_php_o(), "-0800");
        for bad in ["0530", "+5", "+15:00", "+0560", "GMT+0530", "", "+05x0"] {
            assert!(UtcOffset::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn rfc3339_for_people() {
        assert_eq!(rfc3339_utc(NOV_22_2026_100012_UTC), "2026-11-22T10:00:12Z");
    }
}
