//! Retry spacing for every durable job: exponential in the number of failed attempts,
//! capped, and computed on the host clock so a test can fast-forward through it.

use std::time::Duration;

/// Delay after the `failures`-th failed attempt (1 for the first): `base * 2^(failures-1)`,
/// at most `max`.
pub fn delay(failures: u32, base: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    base.checked_mul(1u32 << doublings).map_or(max, |d| d.min(max))
}

/// `now_ms` plus the delay, in host-clock milliseconds.
pub fn next_at(now_ms: i64, failures: u32, base: Duration, max: Duration) -> i64 {
    let delay = i64::try_from(delay(failures, base, max).as_millis()).unwrap_or(i64::MAX);
    now_ms.saturating_add(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(5);
    const MAX: Duration = Duration::from_secs(3600);

    #[test]
    fn doubles_from_the_base_then_caps() {
        let delays: Vec<u64> = (1..=12).map(|n| delay(n, BASE, MAX).as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
        assert_eq!(delay(0, BASE, MAX), BASE);
        assert_eq!(delay(u32::MAX, BASE, MAX), MAX);
    }

    #[test]
    fn next_attempt_time_is_on_the_given_clock() {
        assert_eq!(next_at(1_000, 2, BASE, MAX), 11_000);
        assert_eq!(next_at(i64::MAX - 1, 40, BASE, MAX), i64::MAX);
    }
}
