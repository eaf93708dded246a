//! The audit trail: one append-only row per admin action that moves money or changes
//! what runs, so an operator can answer "who did what, when, from where, and what
//! happened" long after the fact. Both backends refuse `UPDATE` and `DELETE` on the
//! table itself (triggers), so not even a bug in the host can rewrite history.

use async_trait::async_trait;
use serde::Serialize;

use super::StorageResult;

/// What the admin API records for one action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAuditEntry {
    /// Host clock, milliseconds since the Unix epoch.
    pub at: i64,
    /// `credit`, `debit`, `reversal`, `overdraft`, `reload`, `rollback`, `config-reload`,
    /// `retry`, `cancel`.
    pub kind: String,
    /// Remote address of the admin client (`signal` for SIGHUP).
    pub source: String,
    pub request_id: String,
    /// What the action was about: an account id, instance name or job id.
    pub target: String,
    /// What was asked: method, path and body.
    pub request: serde_json::Value,
    /// `ok` when the action was carried out, `refused` when it was not.
    pub outcome: String,
    /// The HTTP status answered.
    pub status: u16,
    /// What the admin API answered.
    pub result: serde_json::Value,
}

/// A stored entry: the record and its position in the trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(flatten)]
    pub entry: NewAuditEntry,
}

/// Which entries to read: oldest first, from `since` (host-clock ms, inclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub since: Option<i64>,
    pub kind: Option<String>,
    pub limit: u32,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one entry durably; returns its id (increasing).
    async fn audit_append(&self, entry: &NewAuditEntry) -> StorageResult<i64>;
    /// Entries in the order they were appended.
    async fn audit_list(&self, query: &AuditQuery) -> StorageResult<Vec<AuditEntry>>;
}
