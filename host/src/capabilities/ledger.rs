//! `ledger`: the operator's subscriber ledger, with idempotency keys scoped by instance.

use crate::wit::ledger::{Account, BatchPosting, DebitLine, Entry, EntryKind, Error, Host, PostingKind, Shortfall};
use super::state::PluginState;
use crate::identifiers as ids;
use crate::ledger::{self as core, LedgerError};

impl Host for PluginState {
    async fn open_account(&mut self, id: String, currency: String) -> Result<Account, Error> {
        self.services().ledger.open_account(&id, &currency).await.map(account).map_err(|e| error(e, &self.request_id))
    }

    async fn get_account(&mut self, id: String) -> Result<Option<Account>, Error> {
        self.services().ledger.get_account(&id).await.map(|a| a.map(account)).map_err(|e| error(e, &self.request_id))
    }

    async fn credit(&mut self, key: String, account_id: String, amount: String, currency: String, reference: String) -> Result<Entry, Error> {
        let scope = self.ctx.name.clone();
        self.services()
            .ledger
            .credit(&scope, &key, &account_id, &amount, &currency, &reference)
            .await
            .map(entry)
            .map_err(|e| error(e, &self.request_id))
    }

    async fn debit(&mut self, key: String, account_id: String, amount: String, currency: String, reference: String) -> Result<Entry, Error> {
        let scope = self.ctx.name.clone();
        self.services()
            .ledger
            .debit(&scope, &key, &account_id, &amount, &currency, &reference)
            .await
            .map(entry)
            .map_err(|e| error(e, &self.request_id))
    }

    async fn debit_many(&mut self, key: String, currency: String, lines: Vec<DebitLine>) -> Result<Vec<Entry>, Error> {
        let scope = self.ctx.name.clone();
        let lines: Vec<core::DebitLine> = lines
            .into_iter()
            .map(|l| core::DebitLine { account: l.account, amount: l.amount, reference: l.reference })
            .collect();
        self.services()
            .ledger
            .debit_many(&scope, &key, &currency, &lines)
            .await
            .map(|v| v.into_iter().map(entry).collect())
            .map_err(|e| error(e, &self.request_id))
    }

    async fn post_batch(&mut self, postings: Vec<BatchPosting>) -> Vec<Result<Vec<Entry>, Error>> {
        let scope = self.ctx.name.clone();
        let postings: Vec<core::BatchPosting> = postings
            .into_iter()
            .map(|p| core::BatchPosting {
                key: p.idempotency_key,
                kind: match p.kind {
                    PostingKind::Credit => core::BatchKind::Credit,
                    PostingKind::Debit => core::BatchKind::Debit,
                },
                currency: p.currency,
                lines: p.lines.into_iter().map(|l| core::DebitLine { account: l.account, amount: l.amount, reference: l.reference }).collect(),
            })
            .collect();
        let results = self.services().ledger.post_batch(&scope, &postings).await;
        results
            .into_iter()
            .map(|r| r.map(|v| v.into_iter().map(entry).collect()).map_err(|e| error(e, &self.request_id)))
            .collect()
    }

    async fn reverse(&mut self, key: String, transaction_id: String, reference: String) -> Result<Vec<Entry>, Error> {
        let scope = self.ctx.name.clone();
        self.services()
            .ledger
            .reverse(&scope, &key, &transaction_id, &reference)
            .await
            .map(|v| v.into_iter().map(entry).collect())
            .map_err(|e| error(e, &self.request_id))
    }

    async fn history(&mut self, account_id: String, limit: u32) -> Result<Vec<Entry>, Error> {
        self.services()
            .ledger
            .history(&account_id, limit.min(1000))
            .await
            .map(|v| v.into_iter().map(entry).collect())
            .map_err(|e| error(e, &self.request_id))
    }
}

fn account(a: core::Account) -> Account {
    Account { id: a.id, currency: a.currency, balance: a.balance, overdraft_limit: a.overdraft_limit }
}

fn entry(e: core::Entry) -> Entry {
    let kind = match e.kind {
        crate::storage::EntryKind::Credit => EntryKind::Credit,
        crate::storage::EntryKind::Debit => EntryKind::Debit,
        crate::storage::EntryKind::Reversal => EntryKind::Reversal,
    };
    Entry {
        transaction_id: e.transaction_id,
        account: e.account,
        kind,
        amount: e.amount,
        currency: e.currency,
        balance_after: e.balance_after,
        reference: e.reference,
        at: e.at,
    }
}

/// A ledger error as the WIT gives it. The 0.2 contract has no case of its own for a
/// refused identifier, so a bad account id is an unknown account, a bad transaction id
/// not reversible, and a bad key or reference an invalid argument (`invalid-amount`),
/// each with the message that says what is wrong.
pub(crate) fn error(e: LedgerError, request_id: &str) -> Error {
    match e {
        LedgerError::InsufficientFunds { account, balance, requested } => {
            Error::InsufficientFunds(Shortfall { account, balance, requested })
        }
        LedgerError::UnknownAccount(a) => Error::UnknownAccount(a),
        LedgerError::CurrencyMismatch(m) => Error::CurrencyMismatch(m),
        LedgerError::InvalidAmount(m) => Error::InvalidAmount(m),
        LedgerError::UnknownCurrency(c) => Error::UnknownCurrency(c),
        LedgerError::IdempotencyConflict(k) => Error::IdempotencyConflict(k),
        LedgerError::NotReversible(t) => Error::NotReversible(t),
        LedgerError::InvalidInput(invalid) => match invalid.kind {
            ids::ACCOUNT_ID => Error::UnknownAccount(invalid.to_string()),
            ids::TRANSACTION_ID => Error::NotReversible(invalid.to_string()),
            _ => Error::InvalidAmount(invalid.to_string()),
        },
        LedgerError::Backend(b) => {
            tracing::error!(request = %request_id, error = %b, "ledger backend failed");
            Error::Backend(format!("the ledger's storage failed (request {request_id})"))
        }
    }
}
