//! PostgreSQL: accounts and postings, with the touched accounts locked in id order and
//! lost races retried. Postings are group-committed: a batch is one transaction, each
//! posting under its own savepoint.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Object, Pool, Transaction};
use futures::future::BoxFuture;
use tokio_postgres::Row;

use super::{client_of, get, rows, Failure, PostgresStorage, Res, POST_ATTEMPTS};
use crate::storage::group_commit::{BatchPoster, GroupCommit, PostingOutcome};
use crate::storage::posting::{plan, touched_accounts};
use crate::storage::{AccountRow, EntryKind, EntryRow, LedgerStore, Minor, Posting, PostingRefusal, StorageResult, new_id};

fn account_row(row: &Row) -> Res<AccountRow> {
    Ok(AccountRow {
        id: get(row, "id")?,
        currency: get(row, "currency")?,
        balance: get(row, "balance")?,
        overdraft: get(row, "overdraft")?,
        created_at: get(row, "created_at")?,
    })
}

fn entry_row(row: &Row) -> Res<EntryRow> {
    let kind: String = get(row, "kind")?;
    Ok(EntryRow {
        transaction_id: get(row, "transaction_id")?,
        account: get(row, "account")?,
        kind: EntryKind::parse(&kind).ok_or_else(|| Failure::Data(format!("unknown entry kind {kind}")))?,
        delta: get(row, "delta")?,
        currency: get(row, "currency")?,
        balance_after: get(row, "balance_after")?,
        reference: get(row, "reference")?,
        at: get(row, "at")?,
    })
}

async fn entries_of<C: GenericClient>(client: &C, transaction_id: &str) -> Res<Vec<EntryRow>> {
    let found = client
        .query("SELECT * FROM ledger_entries WHERE transaction_id = $1 ORDER BY line_no", &[&transaction_id])
        .await?;
    rows(found, entry_row)
}

/// Applies `postings` in one transaction, each under its own savepoint (a refusal rolls
/// back only itself), with one commit; a batch that lost a deadlock or serialisation
/// race to another host is run again whole.
async fn post_batch(pool: &Pool, postings: &[Posting]) -> StorageResult<Vec<PostingOutcome>> {
    let mut client = client_of(pool).await?;
    let mut attempt = 1;
    loop {
        match post_batch_once(&mut client, postings).await {
            Err(failure) if failure.is_lost_race() && attempt < POST_ATTEMPTS => attempt += 1,
            other => return Ok(other?),
        }
    }
}

async fn post_batch_once(client: &mut Object, postings: &[Posting]) -> Res<Vec<PostingOutcome>> {
    let mut tx = client.transaction().await?;
    let mut outcomes = Vec::with_capacity(postings.len());
    for posting in postings {
        let savepoint = tx.transaction().await?;
        let outcome = post_in(&savepoint, posting).await?;
        if outcome.is_ok() {
            savepoint.commit().await?;
        } else {
            // Releases the idempotency key: a refused call may be retried with it.
            savepoint.rollback().await?;
        }
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// The group-commit writer's side of the pool.
pub(super) struct BatchWriter(pub(super) Pool);

impl BatchPoster for BatchWriter {
    fn post_batch(&self, postings: Arc<[Posting]>) -> BoxFuture<'_, StorageResult<Vec<PostingOutcome>>> {
        Box::pin(async move { post_batch(&self.0, &postings).await })
    }
}

/// One posting inside the caller's transaction (a savepoint of the batch); the caller
/// rolls the savepoint back on a refusal, which also releases a claimed idempotency key.
async fn post_in(tx: &Transaction<'_>, posting: &Posting) -> Res<PostingOutcome> {
    if let Some(target) = &posting.reverses {
        // The key first, as on SQLite: a used key answers its replay or conflict before
        // anything is said about the target (both backends refuse the same way).
        if let Some(earlier) = earlier_with_key(tx, posting).await? {
            return Ok(earlier);
        }
        // Transactions never change once written, so this check needs no lock; the
        // unique `reverses` column settles two concurrent reversals below.
        let found = tx.query_opt("SELECT reverses FROM ledger_transactions WHERE id = $1", &[target]).await?;
        match found.map(|r| r.try_get::<_, Option<String>>(0)).transpose()? {
            None => return Ok(Err(PostingRefusal::NotReversible(format!("transaction {target} is unknown")))),
            Some(Some(_)) => {
                return Ok(Err(PostingRefusal::NotReversible(format!("transaction {target} is itself a reversal"))))
            }
            Some(None) => {}
        }
    }

    let transaction_id = new_id("tx");
    // Claims the key first: a concurrent posting with the same key waits here until
    // this one commits (then sees it) or rolls back (then takes the key itself).
    let insert = tx
        .prepare_cached(
            "INSERT INTO ledger_transactions (id, idempotency_key, request_hash, currency, reverses, at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
        )
        .await?;
    let claimed = tx
        .query_opt(
            &insert,
            &[&transaction_id, &posting.idempotency_key, &posting.request_hash, &posting.currency, &posting.reverses, &posting.at],
        )
        .await?;
    if claimed.is_none() {
        let outcome = match earlier_with_key(tx, posting).await? {
            Some(earlier) => earlier,
            // The key is free, so the conflict was on `reverses`.
            None => Err(PostingRefusal::NotReversible(format!(
                "transaction {} was already reversed",
                posting.reverses.as_deref().unwrap_or_default()
            ))),
        };
        return Ok(outcome);
    }

    let ids = touched_accounts(posting);
    if posting.opens {
        let open = tx
            .prepare_cached(
                "INSERT INTO accounts (id, currency, balance, overdraft, created_at) VALUES ($1, $2, 0, 0, $3) ON CONFLICT (id) DO NOTHING",
            )
            .await?;
        for id in &ids {
            tx.execute(&open, &[id, &posting.currency, &posting.at]).await?;
        }
    }
    let lock = tx.prepare_cached("SELECT * FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE").await?;
    let mut accounts = HashMap::new();
    for row in tx.query(&lock, &[&ids]).await? {
        let account = account_row(&row)?;
        accounts.insert(account.id.clone(), account);
    }
    let plan = match plan(posting, &transaction_id, &accounts) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(Err(refusal)),
    };

    let insert = tx
        .prepare_cached(
            "INSERT INTO ledger_entries (transaction_id, line_no, account, kind, delta, currency, balance_after, reference, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    for (line_no, e) in plan.entries.iter().enumerate() {
        let line_no = line_no as i32;
        tx.execute(
            &insert,
            &[&e.transaction_id, &line_no, &e.account, &e.kind.as_str(), &e.delta, &e.currency, &e.balance_after, &e.reference, &e.at],
        )
        .await?;
    }
    let update = tx.prepare_cached("UPDATE accounts SET balance = $2 WHERE id = $1").await?;
    for (id, balance) in &plan.balances {
        tx.execute(&update, &[id, balance]).await?;
    }
    Ok(Ok(plan.entries))
}

/// What an earlier posting under the same key answers this one: its entries (a replay)
/// or a conflict (other arguments); `None` when the key is unused.
async fn earlier_with_key(tx: &Transaction<'_>, posting: &Posting) -> Res<Option<PostingOutcome>> {
    let earlier = tx
        .query_opt("SELECT id, request_hash FROM ledger_transactions WHERE idempotency_key = $1", &[&posting.idempotency_key])
        .await?;
    let Some(row) = earlier else { return Ok(None) };
    let (id, hash): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    if hash != posting.request_hash {
        return Ok(Some(Err(PostingRefusal::IdempotencyConflict(posting.idempotency_key.clone()))));
    }
    Ok(Some(Ok(entries_of(tx, &id).await?)))
}

#[async_trait]
impl LedgerStore for PostgresStorage {
    async fn open_account(&self, id: &str, currency: &str, overdraft: Minor, at: i64) -> StorageResult<AccountRow> {
        let client = self.client().await?;
        let run = async {
            let stmt = client
                .prepare_cached(
                    "INSERT INTO accounts (id, currency, balance, overdraft, created_at) VALUES ($1, $2, 0, $3, $4) ON CONFLICT (id) DO NOTHING",
                )
                .await?;
            client.execute(&stmt, &[&id, &currency, &overdraft, &at]).await?;
            let row = client.query_one("SELECT * FROM accounts WHERE id = $1", &[&id]).await?;
            account_row(&row)
        };
        Ok(run.await?)
    }

    async fn get_account(&self, id: &str) -> StorageResult<Option<AccountRow>> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached("SELECT * FROM accounts WHERE id = $1").await?;
            client.query_opt(&stmt, &[&id]).await?.as_ref().map(account_row).transpose()
        };
        Ok(run.await?)
    }

    async fn set_overdraft(&self, id: &str, overdraft: Minor) -> StorageResult<bool> {
        let client = self.client().await?;
        let run = async { Res::Ok(client.execute("UPDATE accounts SET overdraft = $2 WHERE id = $1", &[&id, &overdraft]).await? > 0) };
        Ok(run.await?)
    }

    async fn post(&self, posting: &Posting) -> StorageResult<Result<Vec<EntryRow>, PostingRefusal>> {
        let writer = self.writer.get_or_init(|| GroupCommit::start(Arc::new(BatchWriter(self.pool.clone()))));
        writer.post(posting.clone()).await
    }

    async fn post_batch(&self, postings: &[Posting]) -> StorageResult<Vec<PostingOutcome>> {
        post_batch(&self.pool, postings).await
    }

    async fn transaction_entries(&self, transaction_id: &str) -> StorageResult<Vec<EntryRow>> {
        let client = self.client().await?;
        Ok(entries_of(&client, transaction_id).await?)
    }

    async fn history(&self, account: &str, limit: u32) -> StorageResult<Vec<EntryRow>> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached("SELECT * FROM ledger_entries WHERE account = $1 ORDER BY seq DESC LIMIT $2").await?;
            rows(client.query(&stmt, &[&account, &i64::from(limit)]).await?, entry_row)
        };
        Ok(run.await?)
    }
}
