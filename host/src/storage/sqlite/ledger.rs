//! SQLite: accounts and postings. Postings are group-committed: a batch runs in one
//! `BEGIN IMMEDIATE` transaction, each posting under its own savepoint, so concurrent
//! postings from several processes still serialise on the write lock.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{conversion, immediate, run_on, SharedConnection, SqliteStorage};
use crate::storage::group_commit::{BatchPoster, GroupCommit, PostingOutcome};
use crate::storage::posting::{plan, touched_accounts};
use crate::storage::{AccountRow, EntryKind, EntryRow, LedgerStore, Minor, Posting, PostingRefusal, StorageResult, new_ordered_id};

fn account_row(row: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: row.get("id")?,
        currency: row.get("currency")?,
        balance: row.get("balance")?,
        overdraft: row.get("overdraft")?,
        created_at: row.get("created_at")?,
    })
}

fn entry_row(row: &Row<'_>) -> rusqlite::Result<EntryRow> {
    let kind: String = row.get("kind")?;
    Ok(EntryRow {
        transaction_id: row.get("transaction_id")?,
        account: row.get("account")?,
        kind: EntryKind::parse(&kind).ok_or_else(|| conversion(format!("unknown entry kind {kind}")))?,
        delta: row.get("delta")?,
        currency: row.get("currency")?,
        balance_after: row.get("balance_after")?,
        reference: row.get("reference")?,
        at: row.get("at")?,
    })
}

fn entries_of(conn: &Connection, transaction_id: &str) -> rusqlite::Result<Vec<EntryRow>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM ledger_entries WHERE transaction_id = ?1 ORDER BY line_no")?;
    let rows = stmt.query_map([transaction_id], entry_row)?;
    rows.collect()
}

/// Applies `postings` in one write transaction, each under its own savepoint: a refused
/// posting is rolled back alone, and the batch is durable at the one commit.
fn post_batch(conn: &mut Connection, postings: &[Posting]) -> rusqlite::Result<Vec<PostingOutcome>> {
    let mut tx = immediate(conn)?;
    let mut outcomes = Vec::with_capacity(postings.len());
    for posting in postings {
        let savepoint = tx.savepoint()?;
        let outcome = post_in(&savepoint, posting)?;
        if outcome.is_ok() {
            savepoint.commit()?;
        }
        // Dropping a savepoint that was not committed rolls it back.
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// The group-commit writer's side of the connection.
pub(super) struct BatchWriter(pub(super) SharedConnection);

impl BatchPoster for BatchWriter {
    fn post_batch(&self, postings: Arc<[Posting]>) -> BoxFuture<'_, StorageResult<Vec<PostingOutcome>>> {
        // The writer task runs on the storage's own runtime already.
        Box::pin(run_on(&self.0, None, move |c| post_batch(c, &postings)))
    }
}

/// One posting inside the caller's transaction; a refusal writes nothing.
fn post_in(tx: &Connection, posting: &Posting) -> rusqlite::Result<PostingOutcome> {
    let earlier: Option<(String, String)> = tx
        .prepare_cached("SELECT id, request_hash FROM ledger_transactions WHERE idempotency_key = ?1")?
        .query_row([&posting.idempotency_key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((id, hash)) = earlier {
        if hash != posting.request_hash {
            return Ok(Err(PostingRefusal::IdempotencyConflict(posting.idempotency_key.clone())));
        }
        return Ok(Ok(entries_of(&tx, &id)?));
    }
    if let Some(target) = &posting.reverses {
        let target_reverses: Option<Option<String>> = tx
            .prepare_cached("SELECT reverses FROM ledger_transactions WHERE id = ?1")?
            .query_row([target], |r| r.get(0))
            .optional()?;
        match target_reverses {
            None => return Ok(Err(PostingRefusal::NotReversible(format!("transaction {target} is unknown")))),
            Some(Some(_)) => {
                return Ok(Err(PostingRefusal::NotReversible(format!("transaction {target} is itself a reversal"))))
            }
            Some(None) => {}
        }
        let already: Option<String> = tx
            .prepare_cached("SELECT id FROM ledger_transactions WHERE reverses = ?1")?
            .query_row([target], |r| r.get(0))
            .optional()?;
        if let Some(by) = already {
            return Ok(Err(PostingRefusal::NotReversible(format!("transaction {target} was already reversed by {by}"))));
        }
    }

    if posting.opens {
        let mut open = tx.prepare_cached(
            "INSERT INTO accounts (id, currency, balance, overdraft, created_at) VALUES (?1, ?2, 0, 0, ?3) ON CONFLICT (id) DO NOTHING",
        )?;
        for id in touched_accounts(posting) {
            open.execute(params![id, posting.currency, posting.at])?;
        }
    }
    let mut accounts = HashMap::new();
    {
        let mut stmt = tx.prepare_cached("SELECT * FROM accounts WHERE id = ?1")?;
        for id in touched_accounts(posting) {
            if let Some(row) = stmt.query_row([&id], account_row).optional()? {
                accounts.insert(id, row);
            }
        }
    }
    let transaction_id = new_ordered_id("tx");
    let plan = match plan(posting, &transaction_id, &accounts) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(Err(refusal)),
    };

    tx.prepare_cached(
        "INSERT INTO ledger_transactions (id, idempotency_key, request_hash, currency, reverses, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        transaction_id,
        posting.idempotency_key,
        posting.request_hash,
        posting.currency,
        posting.reverses,
        posting.at
    ])?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO ledger_entries (transaction_id, line_no, account, kind, delta, currency, balance_after, reference, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (line_no, e) in plan.entries.iter().enumerate() {
            insert.execute(params![
                e.transaction_id,
                line_no as i64,
                e.account,
                e.kind.as_str(),
                e.delta,
                e.currency,
                e.balance_after,
                e.reference,
                e.at
            ])?;
        }
        let mut update = tx.prepare_cached("UPDATE accounts SET balance = ?2 WHERE id = ?1")?;
        for (id, balance) in &plan.balances {
            update.execute(params![id, balance])?;
        }
    }
    Ok(Ok(plan.entries))
}

#[async_trait]
impl LedgerStore for SqliteStorage {
    async fn open_account(&self, id: &str, currency: &str, overdraft: Minor, at: i64) -> StorageResult<AccountRow> {
        let (id, currency) = (id.to_string(), currency.to_string());
        self.run(move |c| {
            let tx = immediate(c)?;
            tx.prepare_cached(
                "INSERT INTO accounts (id, currency, balance, overdraft, created_at) VALUES (?1, ?2, 0, ?3, ?4) ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![id, currency, overdraft, at])?;
            let row = tx.prepare_cached("SELECT * FROM accounts WHERE id = ?1")?.query_row([&id], account_row)?;
            tx.commit()?;
            Ok(row)
        })
        .await
    }

    async fn get_account(&self, id: &str) -> StorageResult<Option<AccountRow>> {
        let id = id.to_string();
        self.run(move |c| c.prepare_cached("SELECT * FROM accounts WHERE id = ?1")?.query_row([&id], account_row).optional())
            .await
    }

    async fn set_overdraft(&self, id: &str, overdraft: Minor) -> StorageResult<bool> {
        let id = id.to_string();
        self.run(move |c| Ok(c.prepare_cached("UPDATE accounts SET overdraft = ?2 WHERE id = ?1")?.execute(params![id, overdraft])? > 0))
            .await
    }

    async fn post(&self, posting: &Posting) -> StorageResult<Result<Vec<EntryRow>, PostingRefusal>> {
        let writer = self.writer.get_or_init(|| GroupCommit::start(self.home.as_ref(), Arc::new(BatchWriter(self.conn.clone()))));
        writer.post(posting.clone()).await
    }

    async fn post_batch(&self, postings: &[Posting]) -> StorageResult<Vec<PostingOutcome>> {
        let postings = postings.to_vec();
        self.run(move |c| post_batch(c, &postings)).await
    }

    async fn transaction_entries(&self, transaction_id: &str) -> StorageResult<Vec<EntryRow>> {
        let id = transaction_id.to_string();
        self.run(move |c| entries_of(c, &id)).await
    }

    async fn history(&self, account: &str, limit: u32) -> StorageResult<Vec<EntryRow>> {
        let account = account.to_string();
        self.run(move |c| {
            let mut stmt = c.prepare_cached("SELECT * FROM ledger_entries WHERE account = ?1 ORDER BY seq DESC LIMIT ?2")?;
            let rows = stmt.query_map(params![account, limit], entry_row)?;
            rows.collect()
        })
        .await
    }
}
