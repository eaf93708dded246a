//! The instance's durable state in the host store, and the key layout that holds it:
//!
//! | key | value |
//! |---|---|
//! | `charge/{id}` | a [`ChargeRecord`] (JSON) |
//! | `pending/{id}` | empty: the record still needs a SendCharge answer or a reversal |
//! | `customer/{customer}/{id}` | empty: index for the per-customer history |
//! | `cancelled/{customer}` | the operator's cancellation mark (JSON) |
//! | `loop` | the charge loop's [`LoopState`] (JSON) |
//!
//! `{id}` is the percent-encoded NetflixTransactionID, or `=` and a digest of the raw
//! event for an event without one (`=` never appears in an encoded id).

use crate::record::ChargeRecord;
use payhost_sdk::records::{self, HostStore};
use payhost_sdk::{pct, store};
use serde::{Deserialize, Serialize};

/// The store segment naming one charge record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordId(String);

impl RecordId {
    pub fn for_transaction(netflix_transaction_id: &str) -> Self {
        Self(pct::encode(netflix_transaction_id))
    }

    /// For an event that has no NetflixTransactionID: a hex digest of its raw JSON.
    pub fn for_raw_event(digest_hex: &str) -> Self {
        Self(format!("={digest_hex}"))
    }

    fn from_segment(segment: &str) -> Self {
        Self(segment.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn store_error(e: store::Error) -> String {
    match e {
        store::Error::TooLarge(m) => format!("store refused a value: {m}"),
        store::Error::Backend(m) => format!("store unavailable: {m}"),
    }
}

fn charge_key(id: &RecordId) -> String {
    format!("charge/{}", id.0)
}

fn pending_key(id: &RecordId) -> String {
    format!("pending/{}", id.0)
}

fn customer_prefix(customer: &str) -> String {
    format!("customer/{}/", pct::encode(customer))
}

fn cancelled_key(customer: &str) -> String {
    format!("cancelled/{}", pct::encode(customer))
}

const LOOP_KEY: &str = "loop";
/// Most writes one `store.set-many` takes (the host's limit).
const MAX_WRITES: usize = 512;
const PAGE: u32 = 500;

pub fn load(id: &RecordId) -> Result<Option<ChargeRecord>, String> {
    match store::get(&charge_key(id)).map_err(store_error)? {
        Some(bytes) => ChargeRecord::from_bytes(&bytes).map(Some),
        None => Ok(None),
    }
}

/// Stores a new record unless one exists; returns the record that is stored afterwards
/// (ours, or the one a concurrent poll stored first). `track_many` then marks it.
pub fn create(id: &RecordId, record: &ChargeRecord) -> Result<ChargeRecord, String> {
    records::create_or_load(&HostStore, &charge_key(id), record)
}

/// Makes sure records that still need work are in the pending set and the index, in one
/// store transaction. A record created but not yet tracked (a crash in between) is
/// tracked when Netflix serves its event again.
pub fn track_many(tracked: &[(RecordId, ChargeRecord)]) -> Result<(), String> {
    let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(tracked.len() * 2);
    for (id, record) in tracked {
        if !record.partner_customer_id.is_empty() {
            writes.push((format!("{}{}", customer_prefix(&record.partner_customer_id), id.0), Some(Vec::new())));
        }
        if record.delivery == crate::record::Delivery::Pending || record.needs_reversal() {
            writes.push((pending_key(id), Some(Vec::new())));
        }
    }
    for chunk in writes.chunks(MAX_WRITES) {
        store::set_many(chunk).map_err(store_error)?;
    }
    Ok(())
}

/// Overwrites a record with its new delivery state; drops it from the pending set once
/// nothing is left to do.
pub fn save(id: &RecordId, record: &ChargeRecord) -> Result<(), String> {
    store::set(&charge_key(id), &record.to_bytes()).map_err(store_error)?;
    if record.delivery == crate::record::Delivery::Pending || record.needs_reversal() {
        store::set(&pending_key(id), b"").map_err(store_error)?;
    } else {
        store::delete(&pending_key(id)).map_err(store_error)?;
    }
    Ok(())
}

/// `save` for many records in one store transaction (all or none).
pub fn save_many(records: &[(RecordId, ChargeRecord)]) -> Result<(), String> {
    let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(records.len() * 2);
    for (id, record) in records {
        writes.push((charge_key(id), Some(record.to_bytes())));
        let pending = record.delivery == crate::record::Delivery::Pending || record.needs_reversal();
        writes.push((pending_key(id), pending.then(Vec::new)));
    }
    for chunk in writes.chunks(MAX_WRITES) {
        store::set_many(chunk).map_err(store_error)?;
    }
    Ok(())
}

pub fn forget_pending(id: &RecordId) -> Result<(), String> {
    store::delete(&pending_key(id)).map(|_| ()).map_err(store_error)
}

fn keys_under(prefix: &str) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store::list_keys(prefix, after.as_deref(), PAGE).map_err(store_error)?;
        let full = page.len() == PAGE as usize;
        after = page.last().cloned();
        keys.extend(page);
        if !full {
            return Ok(keys);
        }
    }
}

/// Ids in the pending set, oldest key order first.
pub fn pending() -> Result<Vec<RecordId>, String> {
    Ok(keys_under("pending/")?
        .iter()
        .filter_map(|k| k.strip_prefix("pending/"))
        .map(RecordId::from_segment)
        .collect())
}

/// Every stored result for a customer.
pub fn customer_records(customer: &str) -> Result<Vec<ChargeRecord>, String> {
    let prefix = customer_prefix(customer);
    let mut records = Vec::new();
    for key in keys_under(&prefix)? {
        let id = RecordId::from_segment(&key[prefix.len()..]);
        if let Some(record) = load(&id)? {
            records.push(record);
        }
    }
    records.sort_by(|a, b| (a.decided_at, &a.netflix_transaction_id).cmp(&(b.decided_at, &b.netflix_transaction_id)));
    Ok(records)
}

/// The operator's cancellation mark of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub since: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub fn cancellation(customer: &str) -> Result<Option<Cancellation>, String> {
    match store::get(&cancelled_key(customer)).map_err(store_error)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("stored cancellation is unreadable: {e}")),
        None => Ok(None),
    }
}

pub fn set_cancellation(customer: &str, mark: &Cancellation) -> Result<(), String> {
    let bytes = serde_json::to_vec(mark).map_err(|e| e.to_string())?;
    store::set(&cancelled_key(customer), &bytes).map_err(store_error)
}

/// True when a mark existed.
pub fn clear_cancellation(customer: &str) -> Result<bool, String> {
    store::delete(&cancelled_key(customer)).map_err(store_error)
}

/// What the charge loop remembers between iterations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopState {
    /// When the poll timer is due (host clock, Unix seconds).
    pub next_at: i64,
    /// Failed iterations in a row (drives the backoff).
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_events: u32,
    #[serde(default)]
    pub last_results_sent: u32,
}

pub fn loop_state() -> Result<Option<LoopState>, String> {
    match store::get(LOOP_KEY).map_err(store_error)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("stored loop state is unreadable: {e}")),
        None => Ok(None),
    }
}

pub fn save_loop_state(state: &LoopState) -> Result<(), String> {
    let bytes = serde_json::to_vec(state).map_err(|e| e.to_string())?;
    store::set(LOOP_KEY, &bytes).map_err(store_error)
}
