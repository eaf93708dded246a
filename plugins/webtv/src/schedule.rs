//! When a recurring profile is charged: the first payment date, then every
//! `frequency x period`, computed like a calendar.
//!
//! Months and years keep the anchor day of the first date and clamp it to the month's
//! length: Jan 31 + 1 month is Feb 28 (29 in a leap year), + 2 months is Mar 31;
//! Feb 29 + 1 year is Feb 28, + 4 years Feb 29. Each date is computed from the first
//! one, never from the previous date, so a clamp never shortens later months.

use payhost_sdk::calendar::{civil_from_days, days_from_civil, days_in_month};
use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    /// WebTV's `DAY | WEEK | MONTH | YEAR` (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "DAY" => Some(Self::Day),
            "WEEK" => Some(Self::Week),
            "MONTH" => Some(Self::Month),
            "YEAR" => Some(Self::Year),
            _ => None,
        }
    }
}

/// The date of payment number `index` (0 = `first`), or `None` past the calendar's range.
pub fn due_at(first: i64, period: Period, frequency: u32, index: u32) -> Option<i64> {
    let steps = i64::from(frequency).checked_mul(i64::from(index))?;
    match period {
        Period::Day => first.checked_add(steps.checked_mul(DAY)?),
        Period::Week => first.checked_add(steps.checked_mul(7 * DAY)?),
        Period::Month => add_months(first, steps),
        Period::Year => add_months(first, steps.checked_mul(12)?),
    }
}

fn add_months(at: i64, months: i64) -> Option<i64> {
    let days = at.div_euclid(DAY);
    let time_of_day = at.rem_euclid(DAY);
    let (year, month, day) = civil_from_days(days);
    let month_index = (year.checked_mul(12)?).checked_add(i64::from(month) - 1)?.checked_add(months)?;
    let year = month_index.div_euclid(12);
    // Years past 9999 are not a schedule anyone means.
    if !(0..=9999).contains(&year) {
        return None;
    }
    let month = (month_index.rem_euclid(12) + 1) as u32;
    let day = day.min(days_in_month(year, month));
    Some(days_from_civil(year, month, day) * DAY + time_of_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date and time.
    fn at(year: i64, month: u32, day: u32, hour: i64) -> i64 {
        days_from_civil(year, month, day) * DAY + hour * 3600
    }

    #[test]
    fn civil_conversions_agree_with_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(at(2016, 2, 22, 0), 1_456_099_200);
        assert_eq!(at(2000, 3, 1, 0), 951_868_800);
        for days in [-800_000, -1, 0, 59, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn the_documented_example() {
        let first = at(2016, 2, 22, 10);
        assert_eq!(due_at(first, Period::Month, 1, 0), Some(first));
        assert_eq!(due_at(first, Period::Month, 1, 1), Some(at(2016, 3, 22, 10)));
        assert_eq!(due_at(first, Period::Month, 1, 2), Some(at(2016, 4, 22, 10)));
    }

    #[test]
    fn month_ends_keep_the_anchor_day() {
        let first = at(2023, 1, 31, 12);
        let dates: Vec<i64> = (0..4).map(|i| due_at(first, Period::Month, 1, i).unwrap()).collect();
        assert_eq!(dates, vec![first, at(2023, 2, 28, 12), at(2023, 3, 31, 12), at(2023, 4, 30, 12)]);
        assert_eq!(due_at(at(2024, 1, 31, 0), Period::Month, 1, 1), Some(at(2024, 2, 29, 0)));
        assert_eq!(due_at(at(2024, 1, 31, 0), Period::Month, 3, 1), Some(at(2024, 4, 30, 0)));
        assert_eq!(due_at(at(2024, 11, 30, 0), Period::Month, 2, 1), Some(at(2025, 1, 30, 0)));
    }

    #[test]
    fn years_handle_february_29() {
        let first = at(2024, 2, 29, 8);
        assert_eq!(due_at(first, Period::Year, 1, 1), Some(at(2025, 2, 28, 8)));
        assert_eq!(due_at(first, Period::Year, 1, 4), Some(at(2028, 2, 29, 8)));
        assert_eq!(due_at(first, Period::Year, 2, 2), Some(at(2028, 2, 29, 8)));
        assert_eq!(due_at(at(2100, 2, 28, 0), Period::Year, 1, 0), Some(at(2100, 2, 28, 0)));
        assert_eq!(due_at(at(2096, 2, 29, 0), Period::Year, 4, 1), Some(at(2100, 2, 28, 0)));
    }

    #[test]
    fn days_and_weeks_are_fixed_lengths() {
        let first = at(2024, 12, 30, 23);
        assert_eq!(due_at(first, Period::Day, 3, 2), Some(first + 6 * DAY));
        assert_eq!(due_at(first, Period::Week, 2, 3), Some(first + 42 * DAY));
    }

    #[test]
    fn out_of_range_is_none() {
        assert_eq!(due_at(at(2024, 1, 1, 0), Period::Year, 1, 9000), None);
        assert_eq!(due_at(0, Period::Day, u32::MAX, u32::MAX), None);
    }

    #[test]
    fn periods_parse_like_webtv_sends_them() {
        assert_eq!(Period::parse("MONTH"), Some(Period::Month));
        assert_eq!(Period::parse("week"), Some(Period::Week));
        assert_eq!(Period::parse("FORTNIGHT"), None);
        assert_eq!(Period::parse(""), None);
    }
}
