//! Durable state, so the embedded SQLite file and a shared PostgreSQL
//! database are interchangeable: plugin key-value stores, the money ledger, timers,
//! outbound deliveries and payment events.
//!
//! Every method is one transaction. Methods that claim work (`claim_*`) take a lease so
//! that several hosts on one database never run the same job twice: a row is handed to
//! one claimant until its lease expires, and completing it checks the lease is still held.
//!
//! Every time here (`at`, `now`, `due_at`, `next_at`, lease ends) is milliseconds since
//! the Unix epoch on the host clock; callers convert to seconds at the WIT edge.
//!
//! The durable state splits by concern into traits, each backend implementing them in
//! one file apiece: `KeyValueStore` (kv.rs), `LedgerStore` (ledger.rs), `JobStore`
//! (timers and deliveries, jobs.rs), `PaymentEventStore` (checkouts and payment events,
//! events.rs), and for operators `AuditStore` (audit.rs), `JobControlStore` (retry,
//! cancel and job counts, control.rs) and `UnsettledStore` (what the janitor watches,
//! unsettled.rs). `Storage` is all of them plus migrations: what a backend is.

pub mod audit;
pub mod control;
mod error;
mod events;
pub mod group_commit;
mod jobs;
mod kv;
mod ledger;
mod posting;
pub mod postgres;
pub mod sqlite;
pub mod unsettled;

use std::sync::Arc;

use async_trait::async_trait;

pub use audit::{AuditEntry, AuditQuery, AuditStore, NewAuditEntry};
pub use control::{ControlOutcome, JobAction, JobControlStore, JobCount, JobRef};
pub use error::{Cause, StorageError, StorageResult};
pub use group_commit::PostingOutcome;
pub use unsettled::{LookupResult, PaymentKind, TrackedPayment, UnsettledStore};
pub use events::{NewPaymentEvent, PaymentEventRow, PaymentEventStore, PaymentStatus};
pub use jobs::{DeliveryRequest, DeliveryRow, JobState, JobStore, Lease, TimerRow};
pub use kv::{KeyValueStore, KvWrite, StoreUsage, ROW_OVERHEAD_BYTES};
pub use ledger::{AccountRow, EntryKind, EntryRow, LedgerStore, Minor, Posting, PostingLine, PostingRefusal};

/// Opens (and migrates) the storage a URL names: `postgres://…` / `postgresql://…`,
/// `sqlite://path`, `sqlite:path`, a bare file path, or `sqlite::memory:` /
/// `sqlite://:memory:` (one private in-memory database, for tests and config checks).
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Storage>> {
    let storage: Arc<dyn Storage> = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(postgres::PostgresStorage::connect(url).await?)
    } else if matches!(url, "sqlite::memory:" | "sqlite://:memory:" | ":memory:") {
        Arc::new(sqlite::SqliteStorage::open_in_memory()?)
    } else {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        anyhow::ensure!(!path.is_empty(), "storage URL `{url}` names no SQLite file");
        let path = std::path::PathBuf::from(path);
        // Opening may wait for another process that holds the file.
        Arc::new(tokio::task::spawn_blocking(move || sqlite::SqliteStorage::open(&path)).await??)
    };
    storage
        .migrate()
        .await
        .map_err(|e| anyhow::anyhow!("migrating {} storage: {e}", storage.backend_name()))?;
    Ok(storage)
}

/// A fresh random id such as `dl_3f…` (128 bits), for rows whose id leaves the host.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}

/// A fresh id of the same shape as `new_id` whose first 48 bits are the milliseconds
/// since the epoch and the other 80 random (as a UUIDv7 orders), for rows written in
/// bulk under a unique index on the id: ledger transactions. Random ids put each new row
/// on a leaf page of its own, so a batch of 64 postings dirtied some 64 pages of each
/// such index (and SQLite's WAL writes every dirty page whole, PostgreSQL logs a full
/// page image at the first change after a checkpoint); ids in creation order land on
/// the same rightmost pages.
pub(crate) fn new_ordered_id(prefix: &str) -> String {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    ordered_id(prefix, millis, rand::random())
}

fn ordered_id(prefix: &str, millis: u128, random: u128) -> String {
    format!("{prefix}_{:012x}{:020x}", millis & ((1 << 48) - 1), random & ((1 << 80) - 1))
}

/// A storage backend: every concern, and the schema they share.
#[async_trait]
pub trait Storage:
    KeyValueStore + LedgerStore + JobStore + PaymentEventStore + AuditStore + JobControlStore + UnsettledStore + Send + Sync + 'static
{
    /// Creates tables if missing. Safe to call from several hosts at once.
    async fn migrate(&self) -> StorageResult<()>;
    fn backend_name(&self) -> &'static str;
    /// One round trip to the database: does it answer?
    async fn ping(&self) -> StorageResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_ids_have_the_shape_of_random_ones_and_sort_by_creation() {
        let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        let before = now();
        let id = new_ordered_id("tx");
        let after = now();
        assert_eq!((id.len(), &id[..3]), (new_id("tx").len(), "tx_"));
        let millis = u128::from_str_radix(&id[3..15], 16).unwrap();
        assert!((before..=after).contains(&millis), "{id} carries the time it was made ({before}..={after})");
        assert!(id[3..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(new_ordered_id("tx"), new_ordered_id("tx"), "80 random bits within one millisecond");
        // A later millisecond sorts after whatever the random part of an earlier one.
        assert!(ordered_id("tx", 1_700_000_000_000, u128::MAX) < ordered_id("tx", 1_700_000_000_001, 0));
        assert_eq!(ordered_id("tx", 0x0123_4567_89ab, 0xff), "tx_0123456789ab000000000000000000ff");
    }
}
