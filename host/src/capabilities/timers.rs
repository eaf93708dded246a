//! `timers`: durable timers that fire the instance's `on-timer` export. A timer's name
//! and payload count towards the instance's store quota, as its store's keys do.

use crate::wit::clock::Instant;
use crate::wit::timers::{Error, Host};
use super::state::PluginState;
use crate::storage::StorageError;

impl Host for PluginState {
    async fn schedule(&mut self, name: String, at: Instant, payload: Vec<u8>) -> Result<(), Error> {
        crate::identifiers::check(crate::identifiers::TIMER_NAME, &name).map_err(|e| Error::Invalid(e.to_string()))?;
        if payload.len() > 64 * 1024 {
            return Err(Error::Invalid("timer payload must be at most 64 KiB".into()));
        }
        let due_ms = at.seconds.saturating_mul(1000) + (at.nanoseconds / 1_000_000) as i64;
        self.services()
            .storage
            .timer_upsert(self.instance(), &name, due_ms, &payload)
            .await
            .map_err(|e| match e {
                StorageError::QuotaExceeded { .. } => Error::Invalid(super::store::quota_refusal("timer")),
                other => Error::Backend(other.to_string()),
            })?;
        self.services().wake_jobs();
        Ok(())
    }

    async fn cancel(&mut self, name: String) -> Result<bool, Error> {
        crate::identifiers::check(crate::identifiers::TIMER_NAME, &name).map_err(|e| Error::Invalid(e.to_string()))?;
        self.services()
            .storage
            .timer_cancel(self.instance(), &name)
            .await
            .map_err(|e| Error::Backend(e.to_string()))
    }
}
