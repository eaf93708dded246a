//! Plugin key-value stores, one namespace per instance.
//!
//! Each namespace has a usage count kept by the database itself (triggers on the `kv`
//! and `timers` tables, in the same transaction as the write: an instance's pending
//! timers count as its keys do), and may have a quota the host sets from
//! `limits.store_mb`: a write that would take the namespace over it fails as a whole with
//! `StorageError::QuotaExceeded`, so one plugin cannot fill the disk every instance's
//! ledger and jobs live on.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::StorageResult;

/// A provider's key-value change made while it handled a payment event; applied in the
/// same transaction that marks the event done, so a crash never leaves an event handled
/// but not marked (or marked but not handled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvWrite {
    /// The key must still hold this value (`None`: be absent) at commit time.
    Expect { key: String, value: Option<Vec<u8>> },
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// What every key of a namespace costs: its bytes, its value's bytes and
/// `ROW_OVERHEAD_BYTES` for the row, so a plugin writing many empty values is counted too
/// (a pending timer likewise: its name, its payload and the same overhead).
pub const ROW_OVERHEAD_BYTES: u64 = 64;

/// A namespace's usage and quota, both in bytes as `ROW_OVERHEAD_BYTES` counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreUsage {
    pub bytes: u64,
    /// `None`: no quota.
    pub quota: Option<u64>,
}

impl StoreUsage {
    /// From the database's signed columns (a usage row summed while deletes of one
    /// connection outrun its inserts can be negative).
    pub(crate) fn from_columns(bytes: i64, quota: Option<i64>) -> Self {
        Self { bytes: bytes.max(0) as u64, quota: quota.map(|q| q.max(0) as u64) }
    }
}

#[async_trait]
pub trait KeyValueStore: Send + Sync {
    async fn kv_get(&self, ns: &str, key: &str) -> StorageResult<Option<Vec<u8>>>;
    async fn kv_set(&self, ns: &str, key: &str, value: &[u8]) -> StorageResult<()>;
    async fn kv_delete(&self, ns: &str, key: &str) -> StorageResult<bool>;
    /// Writes only when the current value equals `expected` (`None`: absent).
    async fn kv_cas(&self, ns: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> StorageResult<bool>;
    /// Writes every pair (`None`: deletes the key) in one transaction: all or none.
    /// Pairs apply in order, so a key written twice keeps its last value.
    async fn kv_set_many(&self, ns: &str, writes: &[(String, Option<Vec<u8>>)]) -> StorageResult<()>;
    /// Groups of writes in one transaction. A group's `Expect`s are all checked first
    /// (against what earlier groups wrote); when each holds, its puts and deletes apply in
    /// order, otherwise none of them do. One answer per group: whether it was written.
    async fn kv_write_groups(&self, ns: &str, groups: &[Vec<KvWrite>]) -> StorageResult<Vec<bool>>;
    async fn kv_list(&self, ns: &str, prefix: &str, start_after: Option<&str>, limit: u32) -> StorageResult<Vec<String>>;
    /// Sets each namespace's quota (`None`: none), in one transaction. A namespace
    /// already over its new quota keeps its keys; only writes that grow it are refused.
    async fn kv_set_quotas(&self, quotas: &[(String, Option<u64>)]) -> StorageResult<()>;
    /// Every namespace that holds keys or has a quota, with its usage and quota.
    async fn kv_usages(&self) -> StorageResult<BTreeMap<String, StoreUsage>>;
}
