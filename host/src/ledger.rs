//! The subscriber ledger as plugins and operators see it: the operations of
//! `wit/ledger.wit` over decimal strings, on top of the integer postings of `storage`.
//! Here amounts are validated against their currency, idempotency keys are scoped to
//! the caller (`instance:key`, `admin:key`), and each call's canonical arguments are
//! hashed so a reused key with other arguments is caught instead of replayed.
//!
//! Rules: credit and debit need an open account (`open_account` opens, as does the
//! operator's top-up through `credit_opening`); amounts are positive; a debit (and the
//! reversal of a credit, which takes money back) may take an account down to minus its
//! overdraft limit and no further, while credits (and reversals of debits) always pass;
//! a transaction can be reversed once, and a reversal is not itself reversible (repeat
//! the original operation instead).

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clock::HostClock;
use crate::identifiers::{self as ids, InvalidIdentifier};
use crate::money::{self, Currency, MoneyError};
use crate::storage::{AccountRow, EntryKind, EntryRow, Minor, Posting, PostingLine, PostingOutcome, PostingRefusal, Storage, StorageError};

/// Most entries one `history` call returns.
pub const MAX_HISTORY: u32 = 1000;

/// An account as the WIT `ledger.account` record carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub currency: String,
    pub balance: String,
    pub overdraft_limit: String,
}

/// A ledger entry as the WIT `ledger.entry` record carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub transaction_id: String,
    pub account: String,
    /// `credit`, `debit` or `reversal`.
    #[schema(value_type = String)]
    pub kind: EntryKind,
    /// Signed change of the balance.
    pub amount: String,
    pub currency: String,
    pub balance_after: String,
    pub reference: String,
    /// Unix seconds on the host clock.
    pub at: i64,
}

/// One line of `debit_many`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitLine {
    pub account: String,
    pub amount: String,
    pub reference: String,
}

/// Which way a posting of `post_batch` moves money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Credit,
    Debit,
}

/// One independent posting of `post_batch`, with its own idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPosting {
    pub key: String,
    pub kind: BatchKind,
    pub currency: String,
    pub lines: Vec<DebitLine>,
}

/// Most postings one `post_batch` call takes: what one group commit carries.
pub const MAX_BATCH: usize = crate::storage::group_commit::MAX_BATCH;

/// Mirrors the WIT `ledger.error` variant case for case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient funds on account {account}: balance {balance}, requested {requested}")]
    InsufficientFunds { account: String, balance: String, requested: String },
    #[error("unknown account {0}")]
    UnknownAccount(String),
    #[error("currency mismatch: {0}")]
    CurrencyMismatch(String),
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    #[error("unknown currency {0}")]
    UnknownCurrency(String),
    #[error("idempotency conflict: {0}")]
    IdempotencyConflict(String),
    #[error("not reversible: {0}")]
    NotReversible(String),
    /// An account id, key, reference or transaction id the host refuses (see
    /// `identifiers`); nothing was read or written.
    #[error("invalid {0}")]
    InvalidInput(InvalidIdentifier),
    #[error("ledger storage failed: {0}")]
    Backend(String),
}

impl LedgerError {
    /// The WIT case name, also the `code` of admin API errors.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::InsufficientFunds { .. } => "insufficient-funds",
            LedgerError::UnknownAccount(_) => "unknown-account",
            LedgerError::CurrencyMismatch(_) => "currency-mismatch",
            LedgerError::InvalidAmount(_) => "invalid-amount",
            LedgerError::UnknownCurrency(_) => "unknown-currency",
            LedgerError::IdempotencyConflict(_) => "idempotency-conflict",
            LedgerError::NotReversible(_) => "not-reversible",
            LedgerError::InvalidInput(_) => "invalid-input",
            LedgerError::Backend(_) => "backend",
        }
    }
}

impl From<StorageError> for LedgerError {
    fn from(e: StorageError) -> Self {
        LedgerError::Backend(e.to_string())
    }
}

impl From<InvalidIdentifier> for LedgerError {
    fn from(e: InvalidIdentifier) -> Self {
        LedgerError::InvalidInput(e)
    }
}

impl From<MoneyError> for LedgerError {
    fn from(e: MoneyError) -> Self {
        match e {
            MoneyError::UnknownCurrency(code) => LedgerError::UnknownCurrency(code),
            other => LedgerError::InvalidAmount(other.to_string()),
        }
    }
}

pub struct Ledger {
    pub storage: Arc<dyn Storage>,
    pub clock: HostClock,
    /// Postings and refusals are counted here.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Ledger {
    /// A ledger with a registry of its own (tools and tests; the host shares one).
    pub fn new(storage: Arc<dyn Storage>, clock: HostClock) -> Self {
        Self { storage, clock, metrics: Arc::default() }
    }

    /// Opens the account if it does not exist; an existing one must have this currency.
    pub async fn open_account(&self, id: &str, currency: &str) -> Result<Account, LedgerError> {
        ids::check(ids::ACCOUNT_ID, id)?;
        let currency = money::currency(currency)?;
        let row = self.storage.open_account(id, currency.code, 0, self.clock.now_millis()).await?;
        if row.currency != currency.code {
            return Err(LedgerError::CurrencyMismatch(format!("account {id} holds {}, not {}", row.currency, currency.code)));
        }
        Ok(account(&row))
    }

    pub async fn get_account(&self, id: &str) -> Result<Option<Account>, LedgerError> {
        ids::check(ids::ACCOUNT_ID, id)?;
        Ok(self.storage.get_account(id).await?.as_ref().map(account))
    }

    pub async fn credit(
        &self,
        scope: &str,
        key: &str,
        account: &str,
        amount: &str,
        currency: &str,
        reference: &str,
    ) -> Result<Entry, LedgerError> {
        self.single(scope, key, EntryKind::Credit, account, amount, currency, reference, false).await
    }

    /// The operator's top-up: opens the account in `currency` when it is new, then credits.
    pub async fn credit_opening(
        &self,
        scope: &str,
        key: &str,
        account: &str,
        amount: &str,
        currency: &str,
        reference: &str,
    ) -> Result<Entry, LedgerError> {
        // The account is opened inside the posting's own transaction, after its key was
        // checked: a refused or conflicting top-up leaves no account behind.
        self.single(scope, key, EntryKind::Credit, account, amount, currency, reference, true).await
    }

    pub async fn debit(
        &self,
        scope: &str,
        key: &str,
        account: &str,
        amount: &str,
        currency: &str,
        reference: &str,
    ) -> Result<Entry, LedgerError> {
        self.single(scope, key, EntryKind::Debit, account, amount, currency, reference, false).await
    }

    /// All lines or none, in one transaction (an account may appear in several lines).
    pub async fn debit_many(&self, scope: &str, key: &str, currency: &str, lines: &[DebitLine]) -> Result<Vec<Entry>, LedgerError> {
        ids::check(ids::IDEMPOTENCY_KEY, key)?;
        let currency = money::currency(currency)?;
        if lines.is_empty() {
            return Err(LedgerError::InvalidAmount("debit-many needs at least one line".into()));
        }
        for line in lines {
            ids::check(ids::ACCOUNT_ID, &line.account)?;
            ids::check(ids::REFERENCE, &line.reference)?;
        }
        let mut posting_lines = Vec::with_capacity(lines.len());
        let mut canonical = Vec::with_capacity(lines.len());
        for line in lines {
            let minor = positive(currency, &line.amount)?;
            canonical.push(serde_json::json!([line.account, minor, line.reference]));
            posting_lines.push(PostingLine {
                account: line.account.clone(),
                delta: -minor,
                kind: EntryKind::Debit,
                reference: line.reference.clone(),
            });
        }
        let hash = request_hash(&serde_json::json!(["debit-many", currency.code, canonical]));
        self.post(scope, key, hash, currency, posting_lines, None, false).await
    }

    /// Independent postings in one durable commit, each checked and applied as its own
    /// call would be: a refused posting writes nothing and the others still apply. One
    /// result per posting, in order; a storage failure of the commit fails every posting
    /// that reached it (none of them was written).
    pub async fn post_batch(&self, scope: &str, postings: &[BatchPosting]) -> Vec<Result<Vec<Entry>, LedgerError>> {
        if postings.len() > MAX_BATCH {
            let refusal = LedgerError::InvalidAmount(format!("a batch takes at most {MAX_BATCH} postings, not {}", postings.len()));
            return postings.iter().map(|_| Err(refusal.clone())).collect();
        }
        let at = self.clock.now_millis();
        let mut results: Vec<Option<Result<Vec<Entry>, LedgerError>>> = postings.iter().map(|_| None).collect();
        let mut planned = Vec::with_capacity(postings.len());
        let mut accepted = Vec::with_capacity(postings.len());
        for (index, batch_posting) in postings.iter().enumerate() {
            match batch_plan(scope, batch_posting, at) {
                Ok((posting, currency)) => {
                    planned.push((index, currency));
                    accepted.push(posting);
                }
                Err(e) => results[index] = Some(Err(e)),
            }
        }
        if !accepted.is_empty() {
            let outcomes = match self.storage.post_batch(&accepted).await {
                Ok(outcomes) if outcomes.len() == accepted.len() => Ok(outcomes),
                Ok(outcomes) => Err(LedgerError::Backend(format!(
                    "the ledger batch returned {} outcomes for {} postings",
                    outcomes.len(),
                    accepted.len()
                ))),
                Err(e) => Err(LedgerError::from(e)),
            };
            match outcomes {
                Ok(outcomes) => {
                    for (((index, currency), posting), outcome) in planned.into_iter().zip(&accepted).zip(outcomes) {
                        let key = &postings[index].key;
                        results[index] = Some(self.outcome(posting, currency, key, outcome));
                    }
                }
                Err(e) => {
                    for (index, _) in planned {
                        results[index] = Some(Err(e.clone()));
                    }
                }
            }
        }
        results.into_iter().map(|r| r.expect("every posting of the batch has a result")).collect()
    }

    /// Puts back every line of an earlier transaction.
    pub async fn reverse(&self, scope: &str, key: &str, transaction_id: &str, reference: &str) -> Result<Vec<Entry>, LedgerError> {
        ids::check(ids::IDEMPOTENCY_KEY, key)?;
        ids::check(ids::TRANSACTION_ID, transaction_id)?;
        ids::check(ids::REFERENCE, reference)?;
        let original = self.storage.transaction_entries(transaction_id).await?;
        let Some(first) = original.first() else {
            return Err(LedgerError::NotReversible(format!("transaction {transaction_id} is unknown")));
        };
        let currency = money::currency(&first.currency)?;
        let mut lines = Vec::with_capacity(original.len());
        for entry in &original {
            let delta = entry
                .delta
                .checked_neg()
                .ok_or_else(|| LedgerError::NotReversible(format!("transaction {transaction_id} cannot be negated")))?;
            lines.push(PostingLine { account: entry.account.clone(), delta, kind: EntryKind::Reversal, reference: reference.to_string() });
        }
        let hash = request_hash(&serde_json::json!(["reverse", transaction_id, reference]));
        self.post(scope, key, hash, currency, lines, Some(transaction_id.to_string()), false).await
    }

    /// Newest first, at most `MAX_HISTORY`.
    pub async fn history(&self, account: &str, limit: u32) -> Result<Vec<Entry>, LedgerError> {
        ids::check(ids::ACCOUNT_ID, account)?;
        if self.storage.get_account(account).await?.is_none() {
            return Err(LedgerError::UnknownAccount(account.to_string()));
        }
        let rows = self.storage.history(account, limit.min(MAX_HISTORY)).await?;
        Ok(rows.iter().map(entry).collect())
    }

    /// Sets how far below zero the account may go (an operator decision).
    pub async fn set_overdraft(&self, id: &str, limit: &str) -> Result<Account, LedgerError> {
        ids::check(ids::ACCOUNT_ID, id)?;
        let row = self.storage.get_account(id).await?.ok_or_else(|| LedgerError::UnknownAccount(id.to_string()))?;
        let limit = money::currency(&row.currency)?.parse(limit)?;
        if !self.storage.set_overdraft(id, limit).await? {
            return Err(LedgerError::UnknownAccount(id.to_string()));
        }
        Ok(Account { overdraft_limit: money::format_amount(limit, &row.currency), ..account(&row) })
    }

    #[allow(clippy::too_many_arguments)]
    async fn single(
        &self,
        scope: &str,
        key: &str,
        kind: EntryKind,
        account: &str,
        amount: &str,
        currency: &str,
        reference: &str,
        opens: bool,
    ) -> Result<Entry, LedgerError> {
        ids::check(ids::IDEMPOTENCY_KEY, key)?;
        ids::check(ids::ACCOUNT_ID, account)?;
        ids::check(ids::REFERENCE, reference)?;
        let currency = money::currency(currency)?;
        let minor = positive(currency, amount)?;
        let delta = if kind == EntryKind::Debit { -minor } else { minor };
        let hash = request_hash(&serde_json::json!([kind.as_str(), account, minor, currency.code, reference]));
        let line = PostingLine { account: account.to_string(), delta, kind, reference: reference.to_string() };
        let mut entries = self.post(scope, key, hash, currency, vec![line], None, opens).await?;
        entries.pop().ok_or_else(|| LedgerError::Backend("the posting returned no entry".into()))
    }

    async fn post(
        &self,
        scope: &str,
        key: &str,
        request_hash: String,
        currency: Currency,
        lines: Vec<PostingLine>,
        reverses: Option<String>,
        opens: bool,
    ) -> Result<Vec<Entry>, LedgerError> {
        let posting = Posting {
            idempotency_key: format!("{scope}:{key}"),
            request_hash,
            currency: currency.code.to_string(),
            lines,
            reverses,
            opens,
            at: self.clock.now_millis(),
        };
        let outcome = self.storage.post(&posting).await?;
        self.outcome(&posting, currency, key, outcome)
    }

    /// A posting's answer from storage as the caller gets it, counted.
    fn outcome(&self, posting: &Posting, currency: Currency, key: &str, outcome: PostingOutcome) -> Result<Vec<Entry>, LedgerError> {
        let kind = posting.lines.first().map_or("debit", |l| l.kind.as_str());
        match outcome {
            Ok(rows) => {
                self.metrics.posted(kind);
                Ok(rows.iter().map(entry).collect())
            }
            Err(refusal) => {
                let error = refused(refusal, currency, key);
                self.metrics.refused(kind, error.code());
                Err(error)
            }
        }
    }
}

/// The storage posting of one batch posting, with the checks and the request hash its
/// own call would have: one line hashes as `credit` or `debit`, several debit lines as
/// `debit-many`, so a key first used by one of those replays (or conflicts) here.
fn batch_plan(scope: &str, batch: &BatchPosting, at: i64) -> Result<(Posting, Currency), LedgerError> {
    ids::check(ids::IDEMPOTENCY_KEY, &batch.key)?;
    for line in &batch.lines {
        ids::check(ids::ACCOUNT_ID, &line.account)?;
        ids::check(ids::REFERENCE, &line.reference)?;
    }
    let currency = money::currency(&batch.currency)?;
    if batch.lines.is_empty() {
        return Err(LedgerError::InvalidAmount("a batch posting needs at least one line".into()));
    }
    let kind = match batch.kind {
        BatchKind::Credit => EntryKind::Credit,
        BatchKind::Debit => EntryKind::Debit,
    };
    let mut lines = Vec::with_capacity(batch.lines.len());
    let mut canonical = Vec::with_capacity(batch.lines.len());
    for line in &batch.lines {
        let minor = positive(currency, &line.amount)?;
        canonical.push(serde_json::json!([line.account, minor, line.reference]));
        let delta = if kind == EntryKind::Debit { -minor } else { minor };
        lines.push(PostingLine { account: line.account.clone(), delta, kind, reference: line.reference.clone() });
    }
    let hash = match (&lines[..], batch.kind) {
        ([line], _) => request_hash(&serde_json::json!([kind.as_str(), line.account, line.delta.abs(), currency.code, line.reference])),
        (_, BatchKind::Debit) => request_hash(&serde_json::json!(["debit-many", currency.code, canonical])),
        (_, BatchKind::Credit) => request_hash(&serde_json::json!(["credit-many", currency.code, canonical])),
    };
    let posting = Posting {
        idempotency_key: format!("{scope}:{}", batch.key),
        request_hash: hash,
        currency: currency.code.to_string(),
        lines,
        reverses: None,
        opens: false,
        at,
    };
    Ok((posting, currency))
}

fn refused(refusal: PostingRefusal, currency: Currency, key: &str) -> LedgerError {
    match refusal {
        PostingRefusal::UnknownAccount(id) => LedgerError::UnknownAccount(id),
        PostingRefusal::CurrencyMismatch { account, currency } => {
            LedgerError::CurrencyMismatch(format!("account {account} is not held in {currency}"))
        }
        PostingRefusal::InsufficientFunds { account, balance, requested } => LedgerError::InsufficientFunds {
            account,
            balance: currency.format(balance),
            requested: currency.format(requested),
        },
        PostingRefusal::IdempotencyConflict(_) => {
            LedgerError::IdempotencyConflict(format!("idempotency key `{key}` was used before with other arguments"))
        }
        PostingRefusal::NotReversible(why) => LedgerError::NotReversible(why),
        PostingRefusal::BalanceOverflow(account) => {
            LedgerError::InvalidAmount(format!("the balance of account {account} would leave the supported range"))
        }
    }
}

/// A strictly positive amount of `currency`.
fn positive(currency: Currency, amount: &str) -> Result<Minor, LedgerError> {
    let minor = currency.parse(amount)?;
    if minor == 0 {
        return Err(LedgerError::InvalidAmount(format!("amount `{amount}` must be greater than zero")));
    }
    Ok(minor)
}

/// Hex SHA-256 of the canonical arguments: amounts in minor units and the canonical
/// currency code, so `"300"` and `"300.00"` are the same request.
fn request_hash(canonical: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

fn account(row: &AccountRow) -> Account {
    Account {
        id: row.id.clone(),
        currency: row.currency.clone(),
        balance: money::format_amount(row.balance, &row.currency),
        overdraft_limit: money::format_amount(row.overdraft, &row.currency),
    }
}

fn entry(row: &EntryRow) -> Entry {
    Entry {
        transaction_id: row.transaction_id.clone(),
        account: row.account.clone(),
        kind: row.kind,
        amount: money::format_amount(row.delta, &row.currency),
        currency: row.currency.clone(),
        balance_after: money::format_amount(row.balance_after, &row.currency),
        reference: row.reference.clone(),
        at: row.at.div_euclid(1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_hash_is_canonical_in_amount_spelling() {
        let rub = money::currency("rub").unwrap();
        let a = positive(rub, "300").unwrap();
        let b = positive(rub, "300.00").unwrap();
        assert_eq!(
            request_hash(&serde_json::json!(["debit", "acc", a, rub.code, "r"])),
            request_hash(&serde_json::json!(["debit", "acc", b, rub.code, "r"]))
        );
        assert_ne!(
            request_hash(&serde_json::json!(["debit", "acc", a, rub.code, "r"])),
            request_hash(&serde_json::json!(["credit", "acc", a, rub.code, "r"]))
        );
    }

    #[test]
    fn zero_and_malformed_amounts_are_invalid() {
        let rub = money::currency("RUB").unwrap();
        assert!(matches!(positive(rub, "0.00"), Err(LedgerError::InvalidAmount(_))));
        assert!(matches!(positive(rub, "-1"), Err(LedgerError::InvalidAmount(_))));
        assert!(matches!(positive(rub, "1.001"), Err(LedgerError::InvalidAmount(_))));
    }

    #[test]
    fn refusals_keep_their_wit_case() {
        let rub = money::currency("RUB").unwrap();
        let e = refused(PostingRefusal::InsufficientFunds { account: "a".into(), balance: 5, requested: 1000 }, rub, "k");
        assert_eq!(e, LedgerError::InsufficientFunds { account: "a".into(), balance: "0.05".into(), requested: "10.00".into() });
        assert_eq!(e.code(), "insufficient-funds");
        assert_eq!(refused(PostingRefusal::IdempotencyConflict("s:k".into()), rub, "k").code(), "idempotency-conflict");
        assert_eq!(LedgerError::from(MoneyError::UnknownCurrency("XYZ".into())), LedgerError::UnknownCurrency("XYZ".into()));
    }

    #[test]
    fn entries_carry_seconds_and_signed_decimals() {
        let e = entry(&EntryRow {
            transaction_id: "tx".into(),
            account: "a".into(),
            kind: EntryKind::Debit,
            delta: -510,
            currency: "RUB".into(),
            balance_after: 90,
            reference: "r".into(),
            at: 1_700_000_000_999,
        });
        assert_eq!((e.amount.as_str(), e.balance_after.as_str(), e.at), ("-5.10", "0.90", 1_700_000_000));
    }
}
