//! Typed JSON records in the instance store, changed only by compare-and-swap so that
//! two requests (a replayed redirect, a payment event racing the buyer's return) never
//! overwrite each other's work.

use crate::host::Host;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Tries before giving up on a key that keeps changing under us.
const MAX_TRIES: usize = 16;

/// What an [`update`] step decided.
pub enum Change<T> {
    Keep,
    Write(T),
}

/// The record and the exact bytes it was read from (the CAS expectation).
pub fn load<T: DeserializeOwned>(host: &dyn Host, key: &str) -> Result<Option<(T, Vec<u8>)>, String> {
    match host.store_get(key)? {
        None => Ok(None),
        Some(bytes) => {
            let value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("stored record `{key}` is unreadable: {e}"))?;
            Ok(Some((value, bytes)))
        }
    }
}

/// Writes `value` only if `key` does not exist yet; true when it wrote.
pub fn create<T: Serialize>(host: &dyn Host, key: &str, value: &T) -> Result<bool, String> {
    host.store_cas(key, None, &encode(key, value)?)
}

/// Reads the record, lets `step` decide, and writes with CAS; when another writer got
/// there first, `step` runs again on the fresh record. Returns the result of the step
/// whose decision stuck.
pub fn update<T, R>(
    host: &dyn Host,
    key: &str,
    mut step: impl FnMut(Option<T>) -> Result<(Change<T>, R), String>,
) -> Result<R, String>
where
    T: Serialize + DeserializeOwned,
{
    for _ in 0..MAX_TRIES {
        let current = load::<T>(host, key)?;
        let (value, expected) = match current {
            Some((value, bytes)) => (Some(value), Some(bytes)),
            None => (None, None),
        };
        let (change, result) = step(value)?;
        match change {
            Change::Keep => return Ok(result),
            Change::Write(new) => {
                if host.store_cas(key, expected.as_deref(), &encode(key, &new)?)? {
                    return Ok(result);
                }
            }
        }
    }
    Err(format!("record `{key}` kept changing; gave up after {MAX_TRIES} tries"))
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("record `{key}` cannot be encoded: {e}"))
}
