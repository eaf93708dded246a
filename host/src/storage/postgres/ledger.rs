//! PostgreSQL: accounts and postings, with the touched accounts locked in id order and
//! lost races retried. Postings are group-committed: a batch is one transaction in one
//! round trip, or two when this host does not know its accounts yet (`batch`).

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Object};
use futures::future::BoxFuture;
use tokio_postgres::Row;

use super::known_accounts::KnownAccounts;
use super::{batch, get, rows, Connections, Failure, PostgresStorage, Res, POST_ATTEMPTS};
use crate::storage::group_commit::{BatchPoster, GroupCommit, PostingOutcome};
use crate::storage::{AccountRow, EntryKind, EntryRow, LedgerStore, Minor, Posting, PostingRefusal, StorageResult};

pub(super) fn account_row(row: &Row) -> Res<AccountRow> {
    Ok(AccountRow {
        id: get(row, "id")?,
        currency: get(row, "currency")?,
        balance: get(row, "balance")?,
        overdraft: get(row, "overdraft")?,
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn entry_row(row: &Row) -> Res<EntryRow> {
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

/// Applies `postings` in one transaction with one commit (`batch`); a batch that lost a
/// race (a deadlock, a serialisation failure, a plan on rows that changed, or a key,
/// account or reversal it could not see yet) is run again whole, on the slow path, and
/// the rerun sees what the other transaction wrote.
async fn post_batch(pool: &Connections, known: &KnownAccounts, postings: &[Posting]) -> StorageResult<Vec<PostingOutcome>> {
    let mut guard = Unfinished(Some(pool.get().await?));
    let client = guard.0.as_ref().expect("set just above");
    let mut attempt = 1;
    loop {
        match batch::post_batch_once(client, postings, known).await {
            Ok(outcomes) => {
                guard.0 = None;
                return Ok(outcomes);
            }
            Err(failure) => {
                batch::roll_back(client).await;
                known.forget(&batch::batch_accounts(postings));
                if !(failure.is_lost_race() || failure.is_unique_violation()) || attempt >= POST_ATTEMPTS {
                    guard.0 = None;
                    return Err(failure.into());
                }
                attempt += 1;
            }
        }
    }
}

/// The connection of a batch that was dropped half way (its caller went away): its
/// transaction may still be open, so the connection is closed rather than handed back to
/// the pool, and the server rolls back what it left. A finished batch clears it, and the
/// connection goes back as usual.
struct Unfinished(Option<Object>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

/// Batches one host runs at once (see `BatchWriter::in_flight`).
const BATCHES_IN_FLIGHT: usize = 2;

/// The group-commit writer's side of the pool.
pub(super) struct BatchWriter {
    pub(super) pool: Connections,
    pub(super) known: Arc<KnownAccounts>,
}

impl BatchPoster for BatchWriter {
    fn post_batch(&self, postings: Arc<[Posting]>) -> BoxFuture<'_, StorageResult<Vec<PostingOutcome>>> {
        Box::pin(async move { post_batch(&self.pool, &self.known, &postings).await })
    }

    /// The next batch's `BEGIN` and reads go out while the one before commits; more than
    /// two would only queue on the same row locks.
    fn in_flight(&self) -> usize {
        BATCHES_IN_FLIGHT
    }
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
        let writer = self.writer.get_or_init(|| GroupCommit::start(self.pool.home.as_ref(), Arc::new(BatchWriter { pool: self.pool.clone(), known: self.known.clone() })));
        writer.post(posting.clone()).await
    }

    async fn post_batch(&self, postings: &[Posting]) -> StorageResult<Vec<PostingOutcome>> {
        post_batch(&self.pool, &self.known, postings).await
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
