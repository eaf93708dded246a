//! A batch of postings on PostgreSQL, whatever its size, in one round trip when this host
//! knows the accounts it touches and in two otherwise.
//!
//! Two round trips (the slow path): `BEGIN` and everything the batch needs are sent
//! together (the touched accounts locked in id order, then the idempotency keys and the
//! reversal targets), the postings are applied one after another in memory with the same
//! money rules as SQLite (`posting::plan`), and what the accepted ones write goes back
//! with the `COMMIT` in one pipelined round trip of set-based statements.
//!
//! One round trip (the fast path, for batches that reverse nothing and touch only
//! accounts in `KnownAccounts`): the postings are applied in memory to the rows this
//! host's last batches left, and `BEGIN`, a check, the writes and `COMMIT` go out
//! together. The check locks the accounts in id order and raises a serialisation failure
//! unless each is still exactly as the plan assumed and none of the batch's keys is used;
//! the failure aborts the transaction, so the writes behind it never commit, and the
//! batch runs again on the slow path. Whatever the plan decided (each acceptance and each
//! refusal) followed from those rows and those keys alone, so a batch whose check passes
//! is answered exactly as the slow path would answer it. (The money rules stay in Rust
//! only: checking the rows needs no rule of its own.) Batches planned one on another
//! reach the locks in the order they were planned (`known_accounts::Turn`).
//!
//! A refused posting writes nothing, exactly as if it had rolled back to its own
//! savepoint: its key stays free and the accounts it would have opened stay unopened.
//! What the reads could not see (another host claiming the same key, opening the same
//! account or reversing the same transaction before this batch commits) surfaces as a
//! unique violation; the caller then runs the batch again, and the rerun sees it.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

use super::known_accounts::{KnownAccounts, Turn};
use super::ledger::{account_row, entry_row};
use super::{rows, Res};
use crate::storage::group_commit::PostingOutcome;
use crate::storage::posting::{plan, touched_accounts};
use crate::storage::{new_ordered_id, AccountRow, EntryRow, Posting, PostingRefusal};

/// A transaction written before this batch or earlier in it, under one idempotency key.
struct Earlier {
    transaction_id: String,
    request_hash: String,
}

/// What the batch read, and what it has applied so far in memory.
#[derive(Default)]
struct Applied {
    /// Every touched account that exists, with its balance after the postings so far.
    accounts: HashMap<String, AccountRow>,
    /// Accounts the accepted postings open (not in the database yet).
    opened: Vec<String>,
    /// Used idempotency keys.
    keys: HashMap<String, Earlier>,
    /// Entries of the transactions accepted in this batch, and of those replayed.
    entries: HashMap<String, Vec<EntryRow>>,
    /// Reversal targets that exist, with whether each is itself a reversal.
    targets: HashMap<String, bool>,
    /// Targets already reversed.
    reversed: HashSet<String>,
    /// Rows to write: (transaction id, posting index).
    written: Vec<(String, usize)>,
    balances: HashMap<String, i64>,
}

/// The statements of one phase, prepared (once per connection, then cached) before any
/// of them runs: statements sent together then run in the order given, and a phase is
/// one round trip. (A plain `query` prepares first, and a mix of cached and uncached
/// statements would reach the server out of order.)
async fn prepare_all<const N: usize>(client: &Client, sql: [&str; N]) -> Res<[Statement; N]> {
    let prepared = futures::future::try_join_all(sql.iter().map(|s| client.prepare_cached(s))).await?;
    Ok(prepared.try_into().unwrap_or_else(|_| unreachable!("one statement per SQL text")))
}

/// Opens the batch's transaction. Every lookup of a batch has an index made for it, and
/// the lookups go by it even when the planner would rather scan: a statement's plan is
/// cached from its first executions, and on a young table (a few pages, not analysed yet)
/// that plan is a sequential scan comparing every row with every key of the batch. It
/// stays cached while the table grows, until autovacuum next analyses it; measured, a
/// batch of 64 keys then spent 10-20 ms in the key lookup of a table of 4,000 rows.
/// `SET LOCAL` ends with the transaction, so no other statement on the connection is
/// planned this way.
const BEGIN: &str = "BEGIN; SET LOCAL enable_seqscan = off";

/// Runs the batch as one transaction on `client`, planned on `known` when it can be,
/// and leaves in `known` the rows the batch plans. On an error the transaction may still
/// be open (or aborted) on the connection: the caller rolls it back (`roll_back`) and
/// forgets the batch's accounts (`KnownAccounts::forget`) before running it again.
pub(super) async fn post_batch_once(client: &Client, postings: &[Posting], known: &KnownAccounts) -> Res<Vec<PostingOutcome>> {
    if let Some((applied, mut assumed, outcomes)) = planned_on(postings, known) {
        assumed.turn.wait().await;
        write(client, postings, &applied, Some(&assumed)).await?;
        return Ok(outcomes);
    }
    let mut applied = read(client, postings).await?;
    let outcomes = apply_all(&mut applied, postings);
    known.remember(applied.accounts.values());
    write(client, postings, &applied, None).await?;
    Ok(outcomes)
}

fn apply_all(applied: &mut Applied, postings: &[Posting]) -> Vec<PostingOutcome> {
    postings.iter().enumerate().map(|(index, posting)| applied.apply(index, posting)).collect()
}

/// Every account the batch touches, once each, in id order (the order they are locked in).
pub(super) fn batch_accounts(postings: &[Posting]) -> Vec<String> {
    let mut ids: Vec<String> = postings.iter().flat_map(touched_accounts).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// What a batch planned on `KnownAccounts` assumed: the touched rows before it, in id
/// order, and that none of its keys is used; with its place in line.
struct Assumed {
    ids: Vec<String>,
    currencies: Vec<String>,
    balances: Vec<i64>,
    overdrafts: Vec<i64>,
    keys: Vec<String>,
    turn: Turn,
}

/// A fast-path batch planned (and what it leaves remembered), or `None` when it needs
/// the slow path's reads: it reverses a transaction (the targets are only read on the
/// server) or touches an account this host does not know.
fn planned_on(postings: &[Posting], known: &KnownAccounts) -> Option<(Applied, Assumed, Vec<PostingOutcome>)> {
    if postings.iter().any(|p| p.reverses.is_some()) {
        return None;
    }
    let ids = batch_accounts(postings);
    let mut known = known.hold();
    let accounts = known.rows_of(&ids)?;
    let rows = ids.iter().map(|id| &accounts[id]);
    let assumed = Assumed {
        currencies: rows.clone().map(|a| a.currency.clone()).collect(),
        balances: rows.clone().map(|a| a.balance).collect(),
        overdrafts: rows.map(|a| a.overdraft).collect(),
        ids,
        keys: postings.iter().map(|p| p.idempotency_key.clone()).collect(),
        turn: known.take_turn(),
    };
    let mut applied = Applied { accounts, ..Applied::default() };
    let outcomes = apply_all(&mut applied, postings);
    known.remember(applied.accounts.values());
    Some((applied, assumed, outcomes))
}

impl Assumed {
    /// `BEGIN` and the check, sent together with the writes that follow them; the next
    /// batch in line may send once the rows' reply is in (the locks are held, or the
    /// check failed).
    async fn check(&self, client: &Client, [rows_sql, keys_sql]: &[Statement; 2]) -> Res<()> {
        let rows: [&(dyn ToSql + Sync); 4] = [&self.ids, &self.currencies, &self.balances, &self.overdrafts];
        let keys: [&(dyn ToSql + Sync); 1] = [&self.keys];
        let locked = async {
            let locked = client.query(rows_sql, &rows).await;
            self.turn.locked();
            locked
        };
        let (begun, rows, keys) = tokio::join!(client.batch_execute(BEGIN), locked, client.query(keys_sql, &keys));
        begun?;
        rows?;
        keys?;
        Ok(())
    }
}

/// The check of a fast-path batch, as two statements: each statement of a READ COMMITTED
/// transaction sees what was committed when it started, so the keys are looked up after
/// the locks are taken and see whatever the locks waited for. The rows are compared only
/// once locked: the lock hands over the row as the transaction it waited for left it,
/// while a condition on the values next to `FOR UPDATE` would be tested first on the
/// statement's snapshot, and a batch planned on what the batch before will leave (which
/// is still committing when this one starts) would never match. `payhost_ledger_plan_stale()`
/// raises the serialisation failure; `CASE` calls it only when a check fails.
const CHECK_SQL: [&str; 2] = [
    "SELECT CASE WHEN count(*) = cardinality($1::text[]) THEN true ELSE payhost_ledger_plan_stale() END
     FROM (SELECT id, currency, balance, overdraft FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE) AS locked
     JOIN UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[]) AS planned(id, currency, balance, overdraft)
         USING (id, currency, balance, overdraft)",
    "SELECT CASE WHEN count(*) = 0 THEN true ELSE payhost_ledger_plan_stale() END
     FROM ledger_transactions WHERE idempotency_key = ANY($1)",
];

/// Ends whatever a failed `post_batch_once` left open; harmless when nothing is (the
/// server only warns). A connection that cannot even do this is broken, and the pool
/// drops it.
pub(super) async fn roll_back(client: &Client) {
    if let Err(e) = client.batch_execute("ROLLBACK").await {
        tracing::debug!(error = %e, "rolling back a failed ledger batch");
    }
}

/// `BEGIN` and the reads in one pipelined round trip (plus one for the entries of
/// replayed keys, only when there are some).
async fn read(client: &Client, postings: &[Posting]) -> Res<Applied> {
    let keys: Vec<&str> = postings.iter().map(|p| p.idempotency_key.as_str()).collect();
    let targets: Vec<&str> = postings.iter().filter_map(|p| p.reverses.as_deref()).collect();
    let ids = batch_accounts(postings);
    type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;
    let (by_key, by_target, by_id): (Params, Params, Params) = (vec![&keys], vec![&targets], vec![&ids]);
    let [by_id_sql, by_key_sql, by_target_sql] = prepare_all(
        client,
        [
            "SELECT * FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            "SELECT id, idempotency_key, request_hash FROM ledger_transactions WHERE idempotency_key = ANY($1)",
            "SELECT id, reverses, EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.reverses = t.id) AS reversed
             FROM ledger_transactions t WHERE id = ANY($1)",
        ],
    )
    .await?;
    // Each request goes out when `join!` first polls it, in this order, so `BEGIN`
    // reaches the server first and the reads run inside the transaction. Every reply is
    // awaited and the first failure in statement order is the one reported (see `write`).
    // The accounts are locked before the keys and targets are read: each statement of a
    // READ COMMITTED transaction sees what was committed when it started, so keys read
    // after the lock include whatever the lock waited for (a retry queued behind its own
    // first attempt then finds that attempt's key and is answered as a replay, not
    // planned afresh). A batch without reversals (most of them) does not ask for targets.
    let (begun, account_rows, earlier, target_rows) = tokio::join!(
        client.batch_execute(BEGIN),
        client.query(&by_id_sql, &by_id),
        client.query(&by_key_sql, &by_key),
        async {
            if targets.is_empty() {
                return Ok(Vec::new());
            }
            client.query(&by_target_sql, &by_target).await
        }
    );
    begun?;
    let (account_rows, earlier, target_rows) = (account_rows?, earlier?, target_rows?);
    let mut applied = Applied::default();
    for row in &account_rows {
        let account = account_row(row)?;
        applied.accounts.insert(account.id.clone(), account);
    }
    for row in &target_rows {
        let id: String = row.try_get(0)?;
        let reverses: Option<String> = row.try_get(1)?;
        if row.try_get::<_, bool>(2)? {
            applied.reversed.insert(id.clone());
        }
        applied.targets.insert(id, reverses.is_some());
    }
    let mut replayed = Vec::new();
    for row in &earlier {
        let (transaction_id, key, request_hash): (String, String, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if postings.iter().any(|p| p.idempotency_key == key && p.request_hash == request_hash) {
            replayed.push(transaction_id.clone());
        }
        applied.keys.insert(key, Earlier { transaction_id, request_hash });
    }
    if !replayed.is_empty() {
        let statement =
            client.prepare_cached("SELECT * FROM ledger_entries WHERE transaction_id = ANY($1) ORDER BY transaction_id, line_no").await?;
        let found = client.query(&statement, &[&replayed]).await?;
        for entry in rows(found, entry_row)? {
            applied.entries.entry(entry.transaction_id.clone()).or_default().push(entry);
        }
    }
    Ok(applied)
}

impl Applied {
    /// Applies one posting in memory, in the order of checks both backends share: the key
    /// first (a replay or a conflict answers before anything else is looked at), then the
    /// reversal's target, then the money rules.
    fn apply(&mut self, index: usize, posting: &Posting) -> PostingOutcome {
        if let Some(earlier) = self.keys.get(&posting.idempotency_key) {
            if earlier.request_hash != posting.request_hash {
                return Err(PostingRefusal::IdempotencyConflict(posting.idempotency_key.clone()));
            }
            return Ok(self.entries.get(&earlier.transaction_id).cloned().unwrap_or_default());
        }
        if let Some(target) = &posting.reverses {
            match self.targets.get(target) {
                None => return Err(PostingRefusal::NotReversible(format!("transaction {target} is unknown"))),
                Some(true) => return Err(PostingRefusal::NotReversible(format!("transaction {target} is itself a reversal"))),
                Some(false) if self.reversed.contains(target) => {
                    return Err(PostingRefusal::NotReversible(format!("transaction {target} was already reversed")))
                }
                Some(false) => {}
            }
        }
        let ids = touched_accounts(posting);
        let mut scope: HashMap<String, AccountRow> = HashMap::with_capacity(ids.len());
        let mut opens = Vec::new();
        for id in &ids {
            match self.accounts.get(id) {
                Some(account) => {
                    scope.insert(id.clone(), account.clone());
                }
                None if posting.opens => {
                    let account = AccountRow { id: id.clone(), currency: posting.currency.clone(), balance: 0, overdraft: 0, created_at: posting.at };
                    scope.insert(id.clone(), account);
                    opens.push(id.clone());
                }
                None => {}
            }
        }
        let transaction_id = new_ordered_id("tx");
        let plan = plan(posting, &transaction_id, &scope)?;
        for id in opens {
            self.accounts.insert(id.clone(), scope.remove(&id).expect("opened account is in scope"));
            self.opened.push(id);
        }
        for (id, balance) in &plan.balances {
            self.accounts.get_mut(id).expect("planned account exists").balance = *balance;
            self.balances.insert(id.clone(), *balance);
        }
        if let Some(target) = &posting.reverses {
            self.reversed.insert(target.clone());
        }
        self.keys.insert(
            posting.idempotency_key.clone(),
            Earlier { transaction_id: transaction_id.clone(), request_hash: posting.request_hash.clone() },
        );
        self.entries.insert(transaction_id.clone(), plan.entries.clone());
        self.written.push((transaction_id, index));
        Ok(plan.entries)
    }
}

/// Everything the accepted postings write, as four set-based statements sent together
/// with the `COMMIT`, headed by `BEGIN` and the check when the batch was planned on what
/// this host knew (`assumed`).
async fn write(client: &Client, postings: &[Posting], applied: &Applied, assumed: Option<&Assumed>) -> Res<()> {
    let check = match assumed {
        Some(assumed) => Some((assumed, prepare_all(client, CHECK_SQL).await?)),
        None => None,
    };
    let checked = async {
        match &check {
            Some((assumed, sql)) => assumed.check(client, sql).await,
            None => Ok(()),
        }
    };
    if applied.written.is_empty() {
        // Nothing to write, but the reads or the check locked the accounts.
        let (checked, committed) = tokio::join!(checked, client.batch_execute("COMMIT"));
        checked?;
        committed?;
        return Ok(());
    }
    // In id order, as the reads lock: two batches opening the same accounts wait on each
    // other in one order, never in a cycle.
    let mut opened: Vec<&AccountRow> = applied.opened.iter().map(|id| &applied.accounts[id]).collect();
    opened.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let open_ids: Vec<&str> = opened.iter().map(|a| a.id.as_str()).collect();
    let open_currencies: Vec<&str> = opened.iter().map(|a| a.currency.as_str()).collect();
    let open_at: Vec<i64> = opened.iter().map(|a| a.created_at).collect();

    let tx_ids: Vec<&str> = applied.written.iter().map(|(id, _)| id.as_str()).collect();
    let of = |i: &usize| &postings[*i];
    let tx_keys: Vec<&str> = applied.written.iter().map(|(_, i)| of(i).idempotency_key.as_str()).collect();
    let tx_hashes: Vec<&str> = applied.written.iter().map(|(_, i)| of(i).request_hash.as_str()).collect();
    let tx_currencies: Vec<&str> = applied.written.iter().map(|(_, i)| of(i).currency.as_str()).collect();
    let tx_reverses: Vec<Option<&str>> = applied.written.iter().map(|(_, i)| of(i).reverses.as_deref()).collect();
    let tx_at: Vec<i64> = applied.written.iter().map(|(_, i)| of(i).at).collect();

    let entries: Vec<(i32, &EntryRow)> = applied
        .written
        .iter()
        .flat_map(|(id, _)| applied.entries[id].iter().enumerate().map(|(line, e)| (line as i32, e)))
        .collect();
    let e_tx: Vec<&str> = entries.iter().map(|(_, e)| e.transaction_id.as_str()).collect();
    let e_line: Vec<i32> = entries.iter().map(|(line, _)| *line).collect();
    let e_account: Vec<&str> = entries.iter().map(|(_, e)| e.account.as_str()).collect();
    let e_kind: Vec<&str> = entries.iter().map(|(_, e)| e.kind.as_str()).collect();
    let e_delta: Vec<i64> = entries.iter().map(|(_, e)| e.delta).collect();
    let e_currency: Vec<&str> = entries.iter().map(|(_, e)| e.currency.as_str()).collect();
    let e_after: Vec<i64> = entries.iter().map(|(_, e)| e.balance_after).collect();
    let e_reference: Vec<&str> = entries.iter().map(|(_, e)| e.reference.as_str()).collect();
    let e_at: Vec<i64> = entries.iter().map(|(_, e)| e.at).collect();

    let mut balance_ids: Vec<&str> = applied.balances.keys().map(String::as_str).collect();
    balance_ids.sort_unstable();
    let balance_values: Vec<i64> = balance_ids.iter().map(|id| applied.balances[*id]).collect();

    let opens: [&(dyn ToSql + Sync); 3] = [&open_ids, &open_currencies, &open_at];
    let transactions: [&(dyn ToSql + Sync); 6] = [&tx_ids, &tx_keys, &tx_hashes, &tx_currencies, &tx_reverses, &tx_at];
    let entry_columns: [&(dyn ToSql + Sync); 9] = [&e_tx, &e_line, &e_account, &e_kind, &e_delta, &e_currency, &e_after, &e_reference, &e_at];
    let balances: [&(dyn ToSql + Sync); 2] = [&balance_ids, &balance_values];
    let [open_sql, transactions_sql, entries_sql, balances_sql] = prepare_all(
        client,
        [
            "INSERT INTO accounts (id, currency, balance, overdraft, created_at)
             SELECT id, currency, 0, 0, at FROM UNNEST($1::text[], $2::text[], $3::int8[]) AS a(id, currency, at)",
            "INSERT INTO ledger_transactions (id, idempotency_key, request_hash, currency, reverses, at)
             SELECT id, k, h, c, r, at FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])
                 WITH ORDINALITY AS t(id, k, h, c, r, at, ord) ORDER BY ord",
            "INSERT INTO ledger_entries (transaction_id, line_no, account, kind, delta, currency, balance_after, reference, at)
             SELECT t, l, a, k, d, c, b, r, at
             FROM UNNEST($1::text[], $2::int4[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::int8[], $8::text[], $9::int8[])
                 WITH ORDINALITY AS e(t, l, a, k, d, c, b, r, at, ord) ORDER BY ord",
            "UPDATE accounts SET balance = v.balance FROM UNNEST($1::text[], $2::int8[]) AS v(id, balance) WHERE accounts.id = v.id",
        ],
    )
    .await?;
    // Sent together; the server runs them in this order (accounts and transactions before
    // the entries that reference them). `WITH ORDINALITY ... ORDER BY` keeps the entries'
    // sequence numbers in posting and line order. A statement that fails aborts the
    // transaction, and the server then turns the `COMMIT` into a rollback: its own reply
    // is not an error, so success is every reply succeeding. A batch that opens no
    // account sends no insert of accounts.
    //
    // The cause is the first failure in statement order: every statement after it fails
    // only with "transaction aborted" (25P02). `try_join!` would return whichever failed
    // reply it polled first, and it rotates the branch it polls first, so a lost race (a
    // unique violation, which the caller reruns) could surface as that generic failure.
    let (checked, opened, transactions, entries, balances, committed) = tokio::join!(
        checked,
        async {
            if open_ids.is_empty() {
                return Ok(0);
            }
            client.execute(&open_sql, &opens).await
        },
        client.execute(&transactions_sql, &transactions),
        client.execute(&entries_sql, &entry_columns),
        client.execute(&balances_sql, &balances),
        client.batch_execute("COMMIT"),
    );
    checked?;
    opened?;
    transactions?;
    entries?;
    balances?;
    committed?;
    Ok(())
}
