//! Durable state behind one trait, so the embedded SQLite file and a shared PostgreSQL
//! database are interchangeable: plugin key-value stores, the money ledger, timers,
//! outbound deliveries and payment events.
//!
//! Every method is one transaction. Methods that claim work (`claim_*`) take a lease so
//! that several hosts on one database never run the same job twice: a row is handed to
//! one claimant until its lease expires, and completing it checks the lease is still held.
//!
//! Every time here (`at`, `now`, `due_at`, `next_at`, lease ends) is milliseconds since
//! the Unix epoch on the host clock; callers convert to seconds at the WIT edge.

mod posting;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

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

/// Money in minor units (kopecks, cents). Decimal parsing and formatting live in
/// `crate::money`; storage only ever sees integers.
pub type Minor = i64;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage backend failed: {0}")]
    Backend(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A fresh random id such as `tx_3f…` (128 bits), for rows whose id leaves the host.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRow {
    pub id: String,
    pub currency: String,
    pub balance: Minor,
    /// How far below zero the balance may go (>= 0).
    pub overdraft: Minor,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Credit,
    Debit,
    Reversal,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Credit => "credit",
            EntryKind::Debit => "debit",
            EntryKind::Reversal => "reversal",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "credit" => Some(EntryKind::Credit),
            "debit" => Some(EntryKind::Debit),
            "reversal" => Some(EntryKind::Reversal),
            _ => None,
        }
    }
}

/// One line of a money movement: a signed change of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingLine {
    pub account: String,
    /// Positive credits, negative debits.
    pub delta: Minor,
    pub kind: EntryKind,
    pub reference: String,
}

/// A money movement: all lines apply or none do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// Scoped by the caller (`instance:key`, `admin:key`); unique across the ledger.
    pub idempotency_key: String,
    /// Hash of the call's arguments: a replay with another hash is a conflict.
    pub request_hash: String,
    pub currency: String,
    pub lines: Vec<PostingLine>,
    /// When set, this posting reverses that transaction (which can be reversed once, and
    /// is not itself a reversal). The caller builds the lines from its entries; storage
    /// enforces the once-only rule.
    pub reverses: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryRow {
    pub transaction_id: String,
    pub account: String,
    pub kind: EntryKind,
    pub delta: Minor,
    pub currency: String,
    pub balance_after: Minor,
    pub reference: String,
    pub at: i64,
}

/// Why a posting was refused; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostingRefusal {
    UnknownAccount(String),
    CurrencyMismatch { account: String, currency: String },
    InsufficientFunds { account: String, balance: Minor, requested: Minor },
    IdempotencyConflict(String),
    NotReversible(String),
    /// The account's balance would leave the range of `Minor`.
    BalanceOverflow(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerRow {
    /// Changes whenever the timer is (re)scheduled, so completing a fired timer never
    /// deletes the schedule its handler just set.
    pub id: i64,
    pub instance: String,
    pub name: String,
    pub due_at: i64,
    pub payload: Vec<u8>,
    /// Failed attempts so far at this schedule.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Set while a host holds the timer (it is firing or that host died mid-fire).
    pub leased_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(JobState::Pending),
            "done" => Some(JobState::Done),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    pub id: String,
    pub instance: String,
    pub key: String,
    pub request: DeliveryRequest,
    pub state: JobState,
    pub attempts: u32,
    pub next_at: i64,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    pub created_at: i64,
}

/// A normalised payment event waiting for (or delivered to) its provider instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentEventRow {
    pub id: i64,
    /// Provider instance that started the checkout.
    pub provider: String,
    pub system: String,
    pub reference: String,
    /// `succeeded` | `failed` | `pending`.
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub external_id: String,
    pub saved_method: Option<String>,
    pub message: Option<String>,
    pub state: JobState,
    pub attempts: u32,
    pub next_at: i64,
    pub last_error: Option<String>,
}

/// A new event as a payment system reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPaymentEvent {
    pub system: String,
    pub reference: String,
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub external_id: String,
    pub saved_method: Option<String>,
    pub message: Option<String>,
}

/// A claim on a job row: who holds it and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

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
pub trait Storage: Send + Sync + 'static {
    /// Creates tables if missing. Safe to call from several hosts at once.
    async fn migrate(&self) -> StorageResult<()>;
    fn backend_name(&self) -> &'static str;

    // ---- key-value, namespaced per plugin instance ----
    async fn kv_get(&self, ns: &str, key: &str) -> StorageResult<Option<Vec<u8>>>;
    async fn kv_set(&self, ns: &str, key: &str, value: &[u8]) -> StorageResult<()>;
    async fn kv_delete(&self, ns: &str, key: &str) -> StorageResult<bool>;
    /// Writes only when the current value equals `expected` (`None`: absent).
    async fn kv_cas(&self, ns: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> StorageResult<bool>;
    async fn kv_list(&self, ns: &str, prefix: &str, start_after: Option<&str>, limit: u32) -> StorageResult<Vec<String>>;

    // ---- ledger ----
    /// Opens the account if absent; returns the (possibly existing) row. An existing
    /// account with another currency is returned unchanged: the caller checks.
    async fn open_account(&self, id: &str, currency: &str, overdraft: Minor, at: i64) -> StorageResult<AccountRow>;
    async fn get_account(&self, id: &str) -> StorageResult<Option<AccountRow>>;
    async fn set_overdraft(&self, id: &str, overdraft: Minor) -> StorageResult<bool>;
    /// Applies a posting atomically: idempotency check (same key + same hash returns the
    /// first result's entries, other hash is a conflict), currency and balance checks for
    /// every account (an account whose net change in the posting is negative may not end
    /// below `-overdraft`; a net credit always passes, so a reversal of a credit is held
    /// to the overdraft like a debit), then writes entries and balances. Concurrent
    /// postings never overdraw.
    async fn post(&self, posting: &Posting) -> StorageResult<Result<Vec<EntryRow>, PostingRefusal>>;
    /// Entries of a transaction, in line order.
    async fn transaction_entries(&self, transaction_id: &str) -> StorageResult<Vec<EntryRow>>;
    /// Newest first.
    async fn history(&self, account: &str, limit: u32) -> StorageResult<Vec<EntryRow>>;

    // ---- timers ----
    /// Sets or replaces the instance's timer `name` (a pending one is rescheduled).
    async fn timer_upsert(&self, instance: &str, name: &str, due_at: i64, payload: &[u8]) -> StorageResult<()>;
    async fn timer_cancel(&self, instance: &str, name: &str) -> StorageResult<bool>;
    /// Up to `limit` timers due at `now`, leased to `lease.owner` until `lease.until`.
    async fn timer_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<TimerRow>>;
    /// Deletes the fired timer, unless it was rescheduled meanwhile (then it stays, with
    /// its new time) or the lease was lost.
    async fn timer_complete(&self, timer: &TimerRow, lease: &Lease) -> StorageResult<()>;
    /// Releases the lease, counts the failed attempt and sets the next attempt time.
    async fn timer_retry(&self, timer: &TimerRow, lease: &Lease, next_at: i64, error: &str) -> StorageResult<()>;
    /// Soonest first.
    async fn timer_list(&self, instance: Option<&str>, limit: u32) -> StorageResult<Vec<TimerRow>>;

    // ---- outbound deliveries ----
    /// Enqueues once per `(instance, key)`; returns the delivery id (the first one's
    /// when the key was used before).
    async fn delivery_enqueue(&self, instance: &str, key: &str, req: &DeliveryRequest, now: i64) -> StorageResult<String>;
    async fn delivery_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<DeliveryRow>>;
    /// Records an attempt (counting it) and releases the lease: `done` when delivered,
    /// `pending` with `next_at` for the next try, or `failed` when attempts reached the
    /// limit. Ignored when the lease was lost (another host owns the row now).
    async fn delivery_record(&self, id: &str, lease: &Lease, state: JobState, status: Option<u16>, error: Option<&str>, next_at: i64) -> StorageResult<()>;
    /// Newest first.
    async fn delivery_list(&self, instance: Option<&str>, limit: u32) -> StorageResult<Vec<DeliveryRow>>;

    // ---- payment checkouts and events ----
    /// Remembers which provider instance started the checkout `(system, reference)`.
    /// The first registration wins: a later one for the same pair never redirects the
    /// checkout's events to another instance.
    async fn checkout_register(&self, system: &str, reference: &str, provider: &str, at: i64) -> StorageResult<()>;
    async fn checkout_provider(&self, system: &str, reference: &str) -> StorageResult<Option<String>>;
    /// Stores the event for delivery to `provider`, once per
    /// `(system, external_id, status)`; returns its id and whether it was new.
    async fn event_ingest(&self, provider: &str, event: &NewPaymentEvent, now: i64) -> StorageResult<(i64, bool)>;
    async fn event_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<PaymentEventRow>>;
    /// Like `delivery_record`: counts the attempt, releases the lease, ignored when lost.
    async fn event_record(&self, id: i64, lease: &Lease, state: JobState, error: Option<&str>, next_at: i64) -> StorageResult<()>;
    /// In one transaction: checks the lease is still held and every `Expect` holds, applies
    /// the writes to namespace `ns`, and marks the event done. Returns false (nothing
    /// written) when the lease was lost or an expectation failed.
    async fn event_complete(&self, id: i64, lease: &Lease, ns: &str, writes: &[KvWrite]) -> StorageResult<bool>;
    /// Newest first.
    async fn event_list(&self, provider: Option<&str>, limit: u32) -> StorageResult<Vec<PaymentEventRow>>;
}
