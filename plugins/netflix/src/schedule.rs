//! When to poll ReadCharge next.
//!
//! Netflix says when to call again (`Netflix-NextCallInSeconds`); we follow it within
//! operator bounds so a missing, absurd or zero value neither hammers Netflix nor stalls
//! billing. After failures the delay doubles up to a ceiling.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollBounds {
    /// Never poll sooner than this after a poll.
    pub min_seconds: u64,
    /// Never wait longer than this after a successful poll.
    pub max_seconds: u64,
    /// Used when Netflix sends no (usable) `Netflix-NextCallInSeconds`.
    pub default_seconds: u64,
    /// First delay after a failed iteration.
    pub backoff_base_seconds: u64,
    /// Ceiling of the doubling backoff.
    pub backoff_max_seconds: u64,
}

impl PollBounds {
    /// Delay after a successful poll, from the `Netflix-NextCallInSeconds` header value.
    pub fn after_success(&self, next_call_in_seconds: Option<&str>) -> u64 {
        let asked = next_call_in_seconds.and_then(parse_seconds).unwrap_or(self.default_seconds);
        asked.clamp(self.min_seconds, self.max_seconds.max(self.min_seconds))
    }

    /// Delay after the `failures`-th failed iteration in a row (1 for the first).
    pub fn after_failure(&self, failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1).min(32);
        let delay = self.backoff_base_seconds.saturating_mul(1u64 << doublings);
        delay.clamp(self.min_seconds, self.backoff_max_seconds.max(self.min_seconds))
    }
}

/// Whole seconds; a fractional value is rounded up so we never call early.
fn parse_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let round_up = fraction.chars().any(|c| c != '0');
    Some(whole.saturating_add(u64::from(round_up)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: PollBounds = PollBounds {
        min_seconds: 5,
        max_seconds: 3600,
        default_seconds: 60,
        backoff_base_seconds: 30,
        backoff_max_seconds: 1800,
    };

    #[test]
    fn follows_netflix_within_bounds() {
        assert_eq!(BOUNDS.after_success(Some("120")), 120);
        assert_eq!(BOUNDS.after_success(Some(" 0 ")), 5);
        assert_eq!(BOUNDS.after_success(Some("86400")), 3600);
        assert_eq!(BOUNDS.after_success(Some("7.2")), 8);
        assert_eq!(BOUNDS.after_success(Some("7.0")), 7);
    }

    #[test]
    fn falls_back_to_default_on_missing_or_bad_header() {
        assert_eq!(BOUNDS.after_success(None), 60);
        assert_eq!(BOUNDS.after_success(Some("-3")), 60);
        assert_eq!(BOUNDS.after_success(Some("soon")), 60);
        assert_eq!(BOUNDS.after_success(Some("")), 60);
    }

    #[test]
    fn backoff_doubles_to_its_ceiling() {
        let delays: Vec<u64> = (1..=8).map(|n| BOUNDS.after_failure(n)).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1800, 1800]);
        assert_eq!(BOUNDS.after_failure(u32::MAX), 1800);
        assert_eq!(BOUNDS.after_failure(0), 30);
    }

    #[test]
    fn inconsistent_bounds_still_respect_the_minimum() {
        let odd = PollBounds { min_seconds: 10, max_seconds: 2, default_seconds: 1, backoff_base_seconds: 1, backoff_max_seconds: 3 };
        assert_eq!(odd.after_success(None), 10);
        assert_eq!(odd.after_failure(5), 10);
    }
}
