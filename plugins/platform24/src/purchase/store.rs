//! Where purchase records live: `purchase/{key}` (the record), `open/{key}` (an index
//! of the unresolved ones, for the start hook), and a timer `purchase/{key}` due when
//! the request that wrote it can no longer be working on it.

use super::record::PurchaseRecord;
use crate::records;
use payhost_sdk::{clock, timers};

pub const TIMER_PREFIX: &str = "purchase/";
const OPEN_PREFIX: &str = "open/";

fn record_key(key: &str) -> String {
    format!("purchase/{key}")
}

/// The record and its exact stored bytes (for compare-and-swap).
pub fn load(key: &str) -> Result<Option<(Vec<u8>, PurchaseRecord)>, String> {
    records::get(&record_key(key))
}

/// Creates the record unless one exists; whether this call created it. A created
/// record is indexed and has its timer before the money moves.
pub fn create(record: &PurchaseRecord) -> Result<bool, String> {
    if !records::create(&record_key(&record.key), record)? {
        return Ok(false);
    }
    records::set(&format!("{OPEN_PREFIX}{}", record.key), &())?;
    schedule(&record.key, record.owner_until)?;
    Ok(true)
}

/// Replaces the record if it is still `old` (as read); whether it did.
pub fn replace(old: &[u8], new: &PurchaseRecord) -> Result<bool, String> {
    records::replace(&record_key(&new.key), old, new)
}

/// Overwrites the record (the caller owns it), and drops it from the index once closed.
pub fn save(record: &PurchaseRecord) -> Result<(), String> {
    records::set(&record_key(&record.key), record)?;
    if !record.is_open() {
        close(&record.key)?;
    }
    Ok(())
}

/// Forgets a record whose debit was refused: no money moved, nothing was connected.
pub fn discard(key: &str) -> Result<(), String> {
    records::delete(&record_key(key))?;
    close(key)
}

fn close(key: &str) -> Result<(), String> {
    records::delete(&format!("{OPEN_PREFIX}{key}"))?;
    timers::cancel(&format!("{TIMER_PREFIX}{key}")).map(|_| ()).map_err(|e| format!("timer cancel failed: {e:?}"))
}

/// (Re)sets the resolver's timer.
pub fn schedule(key: &str, at: i64) -> Result<(), String> {
    let at = clock::Instant { seconds: at, nanoseconds: 0 };
    timers::schedule(&format!("{TIMER_PREFIX}{key}"), at, key.as_bytes()).map_err(|e| format!("timer schedule failed: {e:?}"))
}

/// Keys of the records still open.
pub fn open_keys() -> Result<Vec<String>, String> {
    Ok(records::keys_under(OPEN_PREFIX)?.into_iter().map(|k| k[OPEN_PREFIX.len()..].to_owned()).collect())
}
