//! The host's one clock. Plugins, the ledger, timers and retries all read time here,
//! so tests move time forward (through the admin API, when `manual_clock` is enabled)
//! instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Wall-clock UTC time plus an offset that only a manual clock can move.
#[derive(Debug, Clone)]
pub struct HostClock {
    offset_ms: Arc<AtomicI64>,
    manual: bool,
}

impl HostClock {
    /// The real clock; `advance` is refused.
    pub fn system() -> Self {
        Self { offset_ms: Arc::new(AtomicI64::new(0)), manual: false }
    }

    /// A clock tests may move forward.
    pub fn manual() -> Self {
        Self { offset_ms: Arc::new(AtomicI64::new(0)), manual: true }
    }

    pub fn is_manual(&self) -> bool {
        self.manual
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        wall + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Seconds since the Unix epoch.
    pub fn now_seconds(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Moves a manual clock forward; returns the new time in milliseconds.
    pub fn advance(&self, millis: i64) -> Result<i64, &'static str> {
        if !self.manual {
            return Err("the host clock is the system clock; set manual_clock = true to move it");
        }
        if millis < 0 {
            return Err("the clock only moves forward");
        }
        self.offset_ms.fetch_add(millis, Ordering::Relaxed);
        Ok(self.now_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_forward_only() {
        let clock = HostClock::manual();
        let before = clock.now_millis();
        let after = clock.advance(86_400_000).unwrap();
        assert!(after - before >= 86_400_000);
        assert!(clock.advance(-1).is_err());
        assert!(HostClock::system().advance(1).is_err());
    }
}
