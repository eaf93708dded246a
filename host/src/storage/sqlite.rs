//! The embedded default backend: one SQLite file in WAL mode with `synchronous=FULL`, so
//! a money posting that returned is on disk. Each handle has one connection behind an
//! async mutex, used from `spawn_blocking`; writes take `BEGIN IMMEDIATE`, so several
//! handles on one file (several host processes) still serialise their read-check-write
//! steps through SQLite's write lock.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::posting::{plan, touched_accounts};
use super::{
    new_id, AccountRow, DeliveryRequest, DeliveryRow, EntryKind, EntryRow, JobState, KvWrite, Lease, Minor, NewPaymentEvent,
    PaymentEventRow, Posting, PostingRefusal, Storage, StorageError, StorageResult, TimerRow,
};

/// How long a writer waits for another process holding the file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    balance INTEGER NOT NULL,
    overdraft INTEGER NOT NULL DEFAULT 0 CHECK (overdraft >= 0),
    created_at INTEGER NOT NULL
);

CREATE TABLE ledger_transactions (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    currency TEXT NOT NULL,
    reverses TEXT UNIQUE REFERENCES ledger_transactions (id),
    at INTEGER NOT NULL
);

CREATE TABLE ledger_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    line_no INTEGER NOT NULL,
    account TEXT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL,
    delta INTEGER NOT NULL,
    currency TEXT NOT NULL,
    balance_after INTEGER NOT NULL,
    reference TEXT NOT NULL,
    at INTEGER NOT NULL,
    UNIQUE (transaction_id, line_no)
);
CREATE INDEX ledger_entries_by_account ON ledger_entries (account, seq);

CREATE TABLE timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL,
    name TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_owner TEXT,
    lease_until INTEGER,
    UNIQUE (instance, name)
);
CREATE INDEX timers_due ON timers (due_at);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    max_attempts INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    last_status INTEGER,
    created_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    UNIQUE (instance, key)
);
CREATE INDEX deliveries_due ON deliveries (state, next_at);
CREATE INDEX deliveries_by_instance ON deliveries (instance, created_at);

CREATE TABLE checkouts (
    system TEXT NOT NULL,
    reference TEXT NOT NULL,
    provider TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (system, reference)
);

CREATE TABLE payment_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    system TEXT NOT NULL,
    reference TEXT NOT NULL,
    status TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    external_id TEXT NOT NULL,
    saved_method TEXT,
    message TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    UNIQUE (system, external_id, status)
);
CREATE INDEX payment_events_due ON payment_events (state, next_at);
CREATE INDEX payment_events_by_provider ON payment_events (provider, id);
"#];

pub struct SqliteStorage {
    conn: Arc<tokio::sync::Mutex<Connection>>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file. Call `migrate` before use.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path).map_err(|e| anyhow::anyhow!("opening SQLite database {}: {e}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching to WAL needs the file to itself, and SQLite answers "busy" at once
        // (without its busy handler) while another process is opening the same file:
        // wait and try again, as the busy timeout would.
        let started = std::time::Instant::now();
        let mode = loop {
            match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => std::thread::sleep(Duration::from_millis(10)),
                other => break other.map_err(|e| anyhow::anyhow!("setting WAL mode on {}: {e}", path.display()))?,
            }
        };
        anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "SQLite database {} refused WAL mode (got {mode})", path.display());
        Self::configure(conn)
    }

    /// A private database that lives as long as this handle: tests only.
    pub fn open_in_memory() -> anyhow::Result<Self> {
        Self::configure(Connection::open_in_memory()?)
    }

    fn configure(conn: Connection) -> anyhow::Result<Self> {
        // FULL: a commit syncs the WAL, so an acknowledged money movement survives power loss.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self { conn: Arc::new(tokio::sync::Mutex::new(conn)) })
    }

    /// Runs `f` on the connection off the async threads. The async lock queues callers
    /// without holding a blocking thread each.
    async fn run<T, F>(&self, f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let mut conn = self.conn.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || f(&mut conn))
            .await
            .map_err(|e| StorageError::Backend(format!("SQLite worker thread failed: {e}")))?
            .map_err(backend)
    }
}

fn backend(e: rusqlite::Error) -> StorageError {
    StorageError::Backend(format!("SQLite: {e}"))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

fn immediate(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

fn conversion(message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, message.into())
}

fn u32_col(row: &Row<'_>, name: &str) -> rusqlite::Result<u32> {
    let value: i64 = row.get(name)?;
    u32::try_from(value).map_err(|_| conversion(format!("column {name} out of range: {value}")))
}

fn state_col(row: &Row<'_>) -> rusqlite::Result<JobState> {
    let text: String = row.get("state")?;
    JobState::parse(&text).ok_or_else(|| conversion(format!("unknown job state {text}")))
}

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

fn timer_row(row: &Row<'_>) -> rusqlite::Result<TimerRow> {
    Ok(TimerRow {
        id: row.get("id")?,
        instance: row.get("instance")?,
        name: row.get("name")?,
        due_at: row.get("due_at")?,
        payload: row.get("payload")?,
        attempts: u32_col(row, "attempts")?,
        last_error: row.get("last_error")?,
        leased_until: row.get("lease_until")?,
    })
}

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let headers: String = row.get("headers")?;
    let status: Option<i64> = row.get("last_status")?;
    Ok(DeliveryRow {
        id: row.get("id")?,
        instance: row.get("instance")?,
        key: row.get("key")?,
        request: DeliveryRequest {
            method: row.get("method")?,
            url: row.get("url")?,
            headers: serde_json::from_str(&headers).map_err(|e| conversion(format!("delivery headers: {e}")))?,
            body: row.get("body")?,
            max_attempts: u32_col(row, "max_attempts")?,
        },
        state: state_col(row)?,
        attempts: u32_col(row, "attempts")?,
        next_at: row.get("next_at")?,
        last_error: row.get("last_error")?,
        last_status: status.and_then(|s| u16::try_from(s).ok()),
        created_at: row.get("created_at")?,
    })
}

fn event_row(row: &Row<'_>) -> rusqlite::Result<PaymentEventRow> {
    Ok(PaymentEventRow {
        id: row.get("id")?,
        provider: row.get("provider")?,
        system: row.get("system")?,
        reference: row.get("reference")?,
        status: row.get("status")?,
        amount: row.get("amount")?,
        currency: row.get("currency")?,
        external_id: row.get("external_id")?,
        saved_method: row.get("saved_method")?,
        message: row.get("message")?,
        state: state_col(row)?,
        attempts: u32_col(row, "attempts")?,
        next_at: row.get("next_at")?,
        last_error: row.get("last_error")?,
    })
}

fn entries_of(conn: &Connection, transaction_id: &str) -> rusqlite::Result<Vec<EntryRow>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM ledger_entries WHERE transaction_id = ?1 ORDER BY line_no")?;
    let rows = stmt.query_map([transaction_id], entry_row)?;
    rows.collect()
}

fn post(conn: &mut Connection, posting: &Posting) -> rusqlite::Result<Result<Vec<EntryRow>, PostingRefusal>> {
    let tx = immediate(conn)?;
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

    let mut accounts = HashMap::new();
    {
        let mut stmt = tx.prepare_cached("SELECT * FROM accounts WHERE id = ?1")?;
        for id in touched_accounts(posting) {
            if let Some(row) = stmt.query_row([&id], account_row).optional()? {
                accounts.insert(id, row);
            }
        }
    }
    let transaction_id = new_id("tx");
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
    tx.commit()?;
    Ok(Ok(plan.entries))
}

/// Leases up to `limit` due rows of `table` and returns their ids; `due` names its time
/// column and `extra` narrows the rows (job state). Runs inside the caller's write
/// transaction, so two hosts never lease the same row.
fn claim_ids(conn: &Connection, table: &str, due: &str, extra: &str, now: i64, lease: &Lease, limit: u32) -> rusqlite::Result<Vec<Value>> {
    let select = format!(
        "SELECT id FROM {table} WHERE {due} <= ?1 {extra} AND (lease_until IS NULL OR lease_until <= ?1) ORDER BY {due}, id LIMIT ?2"
    );
    let ids: Vec<Value> = {
        let mut stmt = conn.prepare_cached(&select)?;
        let rows = stmt.query_map(params![now, limit], |r| r.get::<_, Value>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut update = conn.prepare_cached(&format!("UPDATE {table} SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1"))?;
    for id in &ids {
        update.execute(params![id, lease.owner, lease.until])?;
    }
    Ok(ids)
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn migrate(&self) -> StorageResult<()> {
        self.run(|conn| {
            let tx = immediate(conn)?;
            let applied: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            for (version, sql) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", version as i64 + 1)?;
            }
            tx.commit()
        })
        .await
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    async fn kv_get(&self, ns: &str, key: &str) -> StorageResult<Option<Vec<u8>>> {
        let (ns, key) = (ns.to_string(), key.to_string());
        self.run(move |c| {
            c.prepare_cached("SELECT value FROM kv WHERE ns = ?1 AND key = ?2")?
                .query_row([&ns, &key], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn kv_set(&self, ns: &str, key: &str, value: &[u8]) -> StorageResult<()> {
        let (ns, key, value) = (ns.to_string(), key.to_string(), value.to_vec());
        self.run(move |c| {
            c.prepare_cached("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value")?
                .execute(params![ns, key, value])
                .map(|_| ())
        })
        .await
    }

    async fn kv_delete(&self, ns: &str, key: &str) -> StorageResult<bool> {
        let (ns, key) = (ns.to_string(), key.to_string());
        self.run(move |c| Ok(c.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?.execute([&ns, &key])? > 0))
            .await
    }

    async fn kv_cas(&self, ns: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> StorageResult<bool> {
        let (ns, key, expected, new) = (ns.to_string(), key.to_string(), expected.map(<[u8]>::to_vec), new.to_vec());
        self.run(move |c| {
            let written = match expected {
                None => c
                    .prepare_cached("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (ns, key) DO NOTHING")?
                    .execute(params![ns, key, new])?,
                Some(old) => c
                    .prepare_cached("UPDATE kv SET value = ?3 WHERE ns = ?1 AND key = ?2 AND value = ?4")?
                    .execute(params![ns, key, new, old])?,
            };
            Ok(written > 0)
        })
        .await
    }

    async fn kv_list(&self, ns: &str, prefix: &str, start_after: Option<&str>, limit: u32) -> StorageResult<Vec<String>> {
        let (ns, prefix, start_after) = (ns.to_string(), prefix.to_string(), start_after.map(str::to_string));
        self.run(move |c| {
            // BINARY collation compares UTF-8 bytes, which is the byte order the WIT promises.
            let mut stmt = c.prepare_cached(
                "SELECT key FROM kv WHERE ns = ?1 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2
                 AND (?3 IS NULL OR key > ?3) ORDER BY key LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![ns, prefix, start_after, limit], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

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
        let posting = posting.clone();
        self.run(move |c| post(c, &posting)).await
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

    async fn timer_upsert(&self, instance: &str, name: &str, due_at: i64, payload: &[u8]) -> StorageResult<()> {
        let (instance, name, payload) = (instance.to_string(), name.to_string(), payload.to_vec());
        self.run(move |c| {
            // Delete and insert rather than update: the new row gets a new id (AUTOINCREMENT
            // never reuses one), which is how a firing host notices the reschedule.
            let tx = immediate(c)?;
            tx.prepare_cached("DELETE FROM timers WHERE instance = ?1 AND name = ?2")?.execute([&instance, &name])?;
            tx.prepare_cached("INSERT INTO timers (instance, name, due_at, payload) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![instance, name, due_at, payload])?;
            tx.commit()
        })
        .await
    }

    async fn timer_cancel(&self, instance: &str, name: &str) -> StorageResult<bool> {
        let (instance, name) = (instance.to_string(), name.to_string());
        self.run(move |c| Ok(c.prepare_cached("DELETE FROM timers WHERE instance = ?1 AND name = ?2")?.execute([&instance, &name])? > 0))
            .await
    }

    async fn timer_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<TimerRow>> {
        let lease = lease.clone();
        self.run(move |c| {
            let tx = immediate(c)?;
            let ids = claim_ids(&tx, "timers", "due_at", "", now, &lease, limit)?;
            let mut rows = Vec::with_capacity(ids.len());
            {
                let mut stmt = tx.prepare_cached("SELECT * FROM timers WHERE id = ?1")?;
                for id in &ids {
                    rows.push(stmt.query_row([id], timer_row)?);
                }
            }
            tx.commit()?;
            Ok(rows)
        })
        .await
    }

    async fn timer_complete(&self, timer: &TimerRow, lease: &Lease) -> StorageResult<()> {
        let (id, lease) = (timer.id, lease.clone());
        self.run(move |c| {
            c.prepare_cached("DELETE FROM timers WHERE id = ?1 AND lease_owner = ?2 AND lease_until = ?3")?
                .execute(params![id, lease.owner, lease.until])
                .map(|_| ())
        })
        .await
    }

    async fn timer_retry(&self, timer: &TimerRow, lease: &Lease, next_at: i64, error: &str) -> StorageResult<()> {
        let (id, lease, error) = (timer.id, lease.clone(), error.to_string());
        self.run(move |c| {
            c.prepare_cached(
                "UPDATE timers SET due_at = ?4, attempts = attempts + 1, last_error = ?5, lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND lease_owner = ?2 AND lease_until = ?3",
            )?
            .execute(params![id, lease.owner, lease.until, next_at, error])
            .map(|_| ())
        })
        .await
    }

    async fn timer_list(&self, instance: Option<&str>, limit: u32) -> StorageResult<Vec<TimerRow>> {
        let instance = instance.map(str::to_string);
        self.run(move |c| {
            let mut stmt = c.prepare_cached("SELECT * FROM timers WHERE (?1 IS NULL OR instance = ?1) ORDER BY due_at, id LIMIT ?2")?;
            let rows = stmt.query_map(params![instance, limit], timer_row)?;
            rows.collect()
        })
        .await
    }

    async fn delivery_enqueue(&self, instance: &str, key: &str, req: &DeliveryRequest, now: i64) -> StorageResult<String> {
        let headers = serde_json::to_string(&req.headers).map_err(|e| StorageError::Backend(format!("encoding headers: {e}")))?;
        let (instance, key, req) = (instance.to_string(), key.to_string(), req.clone());
        self.run(move |c| {
            let tx = immediate(c)?;
            tx.prepare_cached(
                "INSERT INTO deliveries (id, instance, key, method, url, headers, body, max_attempts, state, next_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?9) ON CONFLICT (instance, key) DO NOTHING",
            )?
            .execute(params![new_id("dl"), instance, key, req.method, req.url, headers, req.body, req.max_attempts, now])?;
            let id: String =
                tx.prepare_cached("SELECT id FROM deliveries WHERE instance = ?1 AND key = ?2")?.query_row([&instance, &key], |r| r.get(0))?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    async fn delivery_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<DeliveryRow>> {
        let lease = lease.clone();
        self.run(move |c| {
            let tx = immediate(c)?;
            let ids = claim_ids(&tx, "deliveries", "next_at", "AND state = 'pending'", now, &lease, limit)?;
            let mut rows = Vec::with_capacity(ids.len());
            {
                let mut stmt = tx.prepare_cached("SELECT * FROM deliveries WHERE id = ?1")?;
                for id in &ids {
                    rows.push(stmt.query_row([id], delivery_row)?);
                }
            }
            tx.commit()?;
            Ok(rows)
        })
        .await
    }

    async fn delivery_record(
        &self,
        id: &str,
        lease: &Lease,
        state: JobState,
        status: Option<u16>,
        error: Option<&str>,
        next_at: i64,
    ) -> StorageResult<()> {
        let (id, lease, error) = (id.to_string(), lease.clone(), error.map(str::to_string));
        self.run(move |c| {
            c.prepare_cached(
                "UPDATE deliveries SET state = ?4, attempts = attempts + 1, last_status = ?5, last_error = ?6, next_at = ?7,
                 lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND lease_owner = ?2 AND lease_until = ?3",
            )?
            .execute(params![id, lease.owner, lease.until, state.as_str(), status, error, next_at])
            .map(|_| ())
        })
        .await
    }

    async fn delivery_list(&self, instance: Option<&str>, limit: u32) -> StorageResult<Vec<DeliveryRow>> {
        let instance = instance.map(str::to_string);
        self.run(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT * FROM deliveries WHERE (?1 IS NULL OR instance = ?1) ORDER BY created_at DESC, id DESC LIMIT ?2")?;
            let rows = stmt.query_map(params![instance, limit], delivery_row)?;
            rows.collect()
        })
        .await
    }

    async fn checkout_register(&self, system: &str, reference: &str, provider: &str, at: i64) -> StorageResult<()> {
        let (system, reference, provider) = (system.to_string(), reference.to_string(), provider.to_string());
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO checkouts (system, reference, provider, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (system, reference) DO NOTHING",
            )?
            .execute(params![system, reference, provider, at])
            .map(|_| ())
        })
        .await
    }

    async fn checkout_provider(&self, system: &str, reference: &str) -> StorageResult<Option<String>> {
        let (system, reference) = (system.to_string(), reference.to_string());
        self.run(move |c| {
            c.prepare_cached("SELECT provider FROM checkouts WHERE system = ?1 AND reference = ?2")?
                .query_row([&system, &reference], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn event_ingest(&self, provider: &str, event: &NewPaymentEvent, now: i64) -> StorageResult<(i64, bool)> {
        let (provider, e) = (provider.to_string(), event.clone());
        self.run(move |c| {
            let tx = immediate(c)?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO payment_events (provider, system, reference, status, amount, currency, external_id, saved_method, message,
                     state, next_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10)
                     ON CONFLICT (system, external_id, status) DO NOTHING",
                )?
                .execute(params![provider, e.system, e.reference, e.status, e.amount, e.currency, e.external_id, e.saved_method, e.message, now])?;
            let id: i64 = tx
                .prepare_cached("SELECT id FROM payment_events WHERE system = ?1 AND external_id = ?2 AND status = ?3")?
                .query_row([&e.system, &e.external_id, &e.status], |r| r.get(0))?;
            tx.commit()?;
            Ok((id, inserted > 0))
        })
        .await
    }

    async fn event_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<PaymentEventRow>> {
        let lease = lease.clone();
        self.run(move |c| {
            let tx = immediate(c)?;
            let ids = claim_ids(&tx, "payment_events", "next_at", "AND state = 'pending'", now, &lease, limit)?;
            let mut rows = Vec::with_capacity(ids.len());
            {
                let mut stmt = tx.prepare_cached("SELECT * FROM payment_events WHERE id = ?1")?;
                for id in &ids {
                    rows.push(stmt.query_row([id], event_row)?);
                }
            }
            tx.commit()?;
            Ok(rows)
        })
        .await
    }

    async fn event_record(&self, id: i64, lease: &Lease, state: JobState, error: Option<&str>, next_at: i64) -> StorageResult<()> {
        let (lease, error) = (lease.clone(), error.map(str::to_string));
        self.run(move |c| {
            c.prepare_cached(
                "UPDATE payment_events SET state = ?4, attempts = attempts + 1, last_error = ?5, next_at = ?6,
                 lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND lease_owner = ?2 AND lease_until = ?3",
            )?
            .execute(params![id, lease.owner, lease.until, state.as_str(), error, next_at])
            .map(|_| ())
        })
        .await
    }

    async fn event_complete(&self, id: i64, lease: &Lease, ns: &str, writes: &[KvWrite]) -> StorageResult<bool> {
        let (lease, ns, writes) = (lease.clone(), ns.to_string(), writes.to_vec());
        self.run(move |c| {
            let tx = immediate(c)?;
            let held: bool = tx
                .prepare_cached("SELECT count(*) FROM payment_events WHERE id = ?1 AND state = 'pending' AND lease_owner = ?2 AND lease_until = ?3")?
                .query_row(params![id, lease.owner, lease.until], |r| r.get::<_, i64>(0))?
                > 0;
            if !held {
                return Ok(false);
            }
            for write in &writes {
                match write {
                    KvWrite::Expect { key, value } => {
                        let current: Option<Vec<u8>> = tx
                            .prepare_cached("SELECT value FROM kv WHERE ns = ?1 AND key = ?2")?
                            .query_row(params![ns, key], |r| r.get(0))
                            .optional()?;
                        if current != *value {
                            return Ok(false);
                        }
                    }
                    KvWrite::Put { key, value } => {
                        tx.prepare_cached("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value")?
                            .execute(params![ns, key, value])?;
                    }
                    KvWrite::Delete { key } => {
                        tx.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?.execute(params![ns, key])?;
                    }
                }
            }
            tx.prepare_cached(
                "UPDATE payment_events SET state = 'done', attempts = attempts + 1, last_error = NULL,
                 lease_owner = NULL, lease_until = NULL WHERE id = ?1",
            )?
            .execute([id])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn event_list(&self, provider: Option<&str>, limit: u32) -> StorageResult<Vec<PaymentEventRow>> {
        let provider = provider.map(str::to_string);
        self.run(move |c| {
            let mut stmt = c.prepare_cached("SELECT * FROM payment_events WHERE (?1 IS NULL OR provider = ?1) ORDER BY id DESC LIMIT ?2")?;
            let rows = stmt.query_map(params![provider, limit], event_row)?;
            rows.collect()
        })
        .await
    }
}
