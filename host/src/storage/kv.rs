//! Plugin key-value stores, one namespace per instance.

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
}
