//! The money ledger's rows and the trait its backends implement: accounts, postings
//! applied atomically, entries. The money rules of a posting are in `posting.rs`.

use async_trait::async_trait;
use serde::Serialize;

use super::StorageResult;

/// Money in minor units (kopecks, cents). Decimal parsing and formatting live in
/// `crate::money`; storage only ever sees integers.
pub type Minor = i64;

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
    /// Opens any account of the lines that does not exist yet, in the posting's currency
    /// with no overdraft (an operator's top-up), inside the posting: a refused posting
    /// opens nothing.
    pub opens: bool,
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

#[async_trait]
pub trait LedgerStore: Send + Sync {
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
    /// Postings from concurrent callers are group-committed (see `group_commit`): one
    /// durable transaction carries every posting waiting at the time, each as under its own
    /// savepoint, and a lone posting commits at once.
    async fn post(&self, posting: &Posting) -> StorageResult<Result<Vec<EntryRow>, PostingRefusal>>;
    /// Applies independent postings in one durable transaction, each with the rules of
    /// `post` as under its own savepoint: a refused posting writes nothing and the others
    /// still apply; a later posting sees the earlier ones (a repeated idempotency key is
    /// a replay or a conflict). One outcome per posting, in order. `Err` means the
    /// transaction failed as a whole and nothing of the batch was written.
    async fn post_batch(&self, postings: &[Posting]) -> StorageResult<Vec<super::PostingOutcome>>;
    /// Entries of a transaction, in line order.
    async fn transaction_entries(&self, transaction_id: &str) -> StorageResult<Vec<EntryRow>>;
    /// Newest first.
    async fn history(&self, account: &str, limit: u32) -> StorageResult<Vec<EntryRow>>;
}
