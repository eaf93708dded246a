//! `log`: plugin log lines into the host's tracing, tagged with instance and request.
//!
//! A plugin's lines share the host's stderr with every other instance and with the host's
//! own lines, and a write to it blocks the thread while the reader is slow. So each
//! instance may log `limits.log_lines_per_second` lines (with a burst of ten seconds'
//! worth), each cut to a bounded size; the lines over the rate are dropped, counted in
//! `payhost_plugin_log_lines_dropped_total`, and said to be dropped by the next line let
//! through.

use std::sync::Mutex;
use std::time::Instant;

use crate::text::cut;
use crate::wit::log::{Host, Level};
use super::state::PluginState;

/// Longest message kept, and longest field value; the rest is cut with a note.
const MAX_MESSAGE_BYTES: usize = 8 * 1024;
const MAX_FIELD_BYTES: usize = 1024;
/// Fields kept of one line.
const MAX_FIELDS: usize = 32;

impl Host for PluginState {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let instance = self.instance();
        let request = self.request_id.as_str();
        let dropped = match self.ctx.log_budget.take(Instant::now()) {
            Some(dropped) => dropped,
            None => {
                self.services().metrics.plugin_log_dropped(instance);
                return;
            }
        };
        if dropped > 0 {
            tracing::warn!(target: "plugin", instance, dropped, "plugin log lines dropped: the instance logged faster than limits.log_lines_per_second");
        }
        // Plugins promise not to log secrets; the host still refuses to echo one.
        let redacted = self.ctx.secrets.any_in(message.as_bytes())
            || fields.iter().any(|(_, v)| self.ctx.secrets.any_in(v.as_bytes()));
        let (message, fields) = if redacted {
            ("<plugin log line withheld: it contained a secret>".to_string(), String::new())
        } else {
            let mut shown: Vec<String> =
                fields.iter().take(MAX_FIELDS).map(|(k, v)| format!("{}={:?}", cut(k, MAX_FIELD_BYTES), cut(v, MAX_FIELD_BYTES))).collect();
            if fields.len() > MAX_FIELDS {
                shown.push(format!("[{} more fields cut]", fields.len() - MAX_FIELDS));
            }
            (cut(&message, MAX_MESSAGE_BYTES), shown.join(" "))
        };
        match level {
            Level::Trace => tracing::trace!(target: "plugin", instance, request, %fields, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", instance, request, %fields, "{message}"),
            Level::Info => tracing::info!(target: "plugin", instance, request, %fields, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", instance, request, %fields, "{message}"),
            Level::Error => tracing::error!(target: "plugin", instance, request, %fields, "{message}"),
        }
    }
}

/// The lines one instance version may still log: a token bucket that refills at `rate`
/// lines a second up to ten seconds' worth, shared by all the version's calls.
pub struct LogBudget {
    rate: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Option<Instant>,
    dropped: u64,
}

impl LogBudget {
    pub fn new(lines_per_second: u32) -> Self {
        let rate = f64::from(lines_per_second.max(1));
        Self { rate, burst: rate * 10.0, state: Mutex::new(Bucket { tokens: rate * 10.0, at: None, dropped: 0 }) }
    }

    /// Takes one line at `now`: `None` when the budget is spent (the line is dropped and
    /// counted), else how many lines were dropped since the last one let through.
    pub fn take(&self, now: Instant) -> Option<u64> {
        let mut bucket = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(at) = bucket.at {
            let refill = now.saturating_duration_since(at).as_secs_f64() * self.rate;
            bucket.tokens = (bucket.tokens + refill).min(self.burst);
        }
        bucket.at = Some(now);
        if bucket.tokens < 1.0 {
            bucket.dropped += 1;
            return None;
        }
        bucket.tokens -= 1.0;
        Some(std::mem::take(&mut bucket.dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_of_ten_seconds_then_the_rate_and_the_next_line_says_what_was_dropped() {
        let budget = LogBudget::new(2);
        let start = Instant::now();
        for i in 0..20 {
            assert_eq!(budget.take(start), Some(0), "line {i} of the burst");
        }
        assert_eq!(budget.take(start), None);
        assert_eq!(budget.take(start + Duration::from_millis(100)), None, "a fifth of a line refilled");
        // Half a second later one line has refilled; it reports the two dropped.
        assert_eq!(budget.take(start + Duration::from_millis(500)), Some(2));
        assert_eq!(budget.take(start + Duration::from_millis(500)), None);
        // A long quiet fills the bucket up to the burst, no more.
        let later = start + Duration::from_secs(3_600);
        assert_eq!(budget.take(later), Some(1));
        for _ in 0..19 {
            assert!(budget.take(later).is_some());
        }
        assert_eq!(budget.take(later), None);
    }
}
