//! The embedded default backend: one SQLite file in WAL mode with `synchronous=FULL`, so
//! a money posting that returned is on disk. Each handle has one connection behind an
//! async mutex, used from `spawn_blocking`; writes take `BEGIN IMMEDIATE`, so several
//! handles on one file (several host processes) still serialise their read-check-write
//! steps through SQLite's write lock. A file database is checkpointed by a thread of its
//! own (`checkpoint`), not inside the commits of postings.

mod audit;
mod checkpoint;
mod control;
mod events;
mod jobs;
mod kv;
mod ledger;
mod unsettled;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection, Row, TransactionBehavior};

use super::{JobState, Lease, Storage, StorageError, StorageResult};
use super::group_commit::GroupCommit;

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
"#, r#"
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    request_id TEXT NOT NULL,
    target TEXT NOT NULL,
    request TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at, id);
CREATE INDEX audit_log_by_kind ON audit_log (kind, at, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

ALTER TABLE checkouts ADD COLUMN kind TEXT;
ALTER TABLE checkouts ADD COLUMN external_id TEXT;
ALTER TABLE checkouts ADD COLUMN lookups INTEGER NOT NULL DEFAULT 0;
ALTER TABLE checkouts ADD COLUMN last_lookup_at INTEGER;
ALTER TABLE checkouts ADD COLUMN next_lookup_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE checkouts ADD COLUMN last_error TEXT;
ALTER TABLE checkouts ADD COLUMN settled_at INTEGER;
ALTER TABLE checkouts ADD COLUMN settled_by TEXT;
CREATE INDEX checkouts_open ON checkouts (next_lookup_at) WHERE settled_at IS NULL;
CREATE INDEX payment_events_by_reference ON payment_events (system, reference);
"#, r#"
-- A store's usage: its keys and, as the plugin's data as much as its store values are,
-- its pending timers.
CREATE TABLE kv_usage (ns TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE kv_quota (ns TEXT PRIMARY KEY, bytes INTEGER NOT NULL CHECK (bytes >= 0)) WITHOUT ROWID;
INSERT INTO kv_usage (ns, bytes)
    SELECT ns, SUM(bytes) FROM (
        SELECT ns, length(CAST(key AS BLOB)) + length(value) + 64 AS bytes FROM kv
        UNION ALL SELECT instance, length(CAST(name AS BLOB)) + length(payload) + 64 FROM timers
    ) GROUP BY ns;
CREATE TRIGGER kv_usage_after_insert AFTER INSERT ON kv BEGIN
    INSERT INTO kv_usage (ns, bytes) VALUES (NEW.ns, length(CAST(NEW.key AS BLOB)) + length(NEW.value) + 64)
        ON CONFLICT (ns) DO UPDATE SET bytes = bytes + excluded.bytes;
    SELECT RAISE(ABORT, 'payhost: store quota used up') FROM kv_usage u JOIN kv_quota q ON q.ns = u.ns
        WHERE u.ns = NEW.ns AND u.bytes > q.bytes;
END;
CREATE TRIGGER kv_usage_after_update AFTER UPDATE OF value ON kv BEGIN
    UPDATE kv_usage SET bytes = bytes + length(NEW.value) - length(OLD.value) WHERE ns = NEW.ns;
    SELECT RAISE(ABORT, 'payhost: store quota used up') FROM kv_usage u JOIN kv_quota q ON q.ns = u.ns
        WHERE u.ns = NEW.ns AND u.bytes > q.bytes AND length(NEW.value) > length(OLD.value);
END;
CREATE TRIGGER kv_usage_after_delete AFTER DELETE ON kv BEGIN
    UPDATE kv_usage SET bytes = bytes - length(CAST(OLD.key AS BLOB)) - length(OLD.value) - 64 WHERE ns = OLD.ns;
END;
CREATE TRIGGER timers_usage_after_insert AFTER INSERT ON timers BEGIN
    INSERT INTO kv_usage (ns, bytes) VALUES (NEW.instance, length(CAST(NEW.name AS BLOB)) + length(NEW.payload) + 64)
        ON CONFLICT (ns) DO UPDATE SET bytes = bytes + excluded.bytes;
    SELECT RAISE(ABORT, 'payhost: store quota used up') FROM kv_usage u JOIN kv_quota q ON q.ns = u.ns
        WHERE u.ns = NEW.instance AND u.bytes > q.bytes;
END;
CREATE TRIGGER timers_usage_after_update AFTER UPDATE OF payload ON timers BEGIN
    UPDATE kv_usage SET bytes = bytes + length(NEW.payload) - length(OLD.payload) WHERE ns = NEW.instance;
    SELECT RAISE(ABORT, 'payhost: store quota used up') FROM kv_usage u JOIN kv_quota q ON q.ns = u.ns
        WHERE u.ns = NEW.instance AND u.bytes > q.bytes AND length(NEW.payload) > length(OLD.payload);
END;
CREATE TRIGGER timers_usage_after_delete AFTER DELETE ON timers BEGIN
    UPDATE kv_usage SET bytes = bytes - length(CAST(OLD.name AS BLOB)) - length(OLD.payload) - 64 WHERE ns = OLD.instance;
END;
"#];

/// The message of the triggers that keep a store within its quota (see `backend`).
const QUOTA_MESSAGE: &str = "payhost: store quota used up";

type SharedConnection = Arc<tokio::sync::Mutex<Connection>>;

pub struct SqliteStorage {
    conn: SharedConnection,
    /// The group-commit writer of postings, started on the first one, on `home`.
    writer: OnceLock<GroupCommit>,
    /// The runtime the storage was opened on (none outside one): the writer runs there,
    /// not on the plugin threads whose posting happened to come first.
    home: Option<tokio::runtime::Handle>,
    /// Copies the WAL back into a file database (none in memory); held for its drop.
    _checkpointer: Option<checkpoint::Checkpointer>,
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
        // Checkpoints run on a thread of their own, not inside a posting's commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        checkpoint::watch(&conn);
        let storage = Self::configure(conn)?;
        let checkpointer = checkpoint::Checkpointer::start(path, BUSY_TIMEOUT, storage.conn.clone())?;
        Ok(Self { _checkpointer: Some(checkpointer), ..storage })
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
        Ok(Self {
            conn: Arc::new(tokio::sync::Mutex::new(conn)),
            writer: OnceLock::new(),
            home: tokio::runtime::Handle::try_current().ok(),
            _checkpointer: None,
        })
    }

    async fn run<T, F>(&self, f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        run_on(&self.conn, self.home.as_ref(), f).await
    }
}

/// Runs `f` on the connection off the async threads, on the blocking threads of `home`
/// when given: those of the plugin runtime inherit its workers' lower priority, and a
/// plugin's store call must not hold the connection at that priority while a host route
/// waits for it. The async lock queues callers without holding a blocking thread each.
async fn run_on<T, F>(conn: &SharedConnection, home: Option<&tokio::runtime::Handle>, f: F) -> StorageResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
{
    let mut conn = conn.clone().lock_owned().await;
    let work = move || f(&mut conn);
    match home {
        Some(home) => home.spawn_blocking(work),
        None => tokio::task::spawn_blocking(work),
    }
    .await
        .map_err(|e| StorageError::Failed { what: "SQLite worker thread".into(), source: e.into() })?
        .map_err(backend)
}

/// Sorts a SQLite error by what it means for the caller.
fn backend(e: rusqlite::Error) -> StorageError {
    use rusqlite::ErrorCode as C;
    let what = "SQLite".to_string();
    match &e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StorageError::Corrupt { what, detail: e.to_string() },
        rusqlite::Error::ToSqlConversionFailure(_) | rusqlite::Error::InvalidParameterName(_) => {
            StorageError::InvalidInput { what, source: e.into() }
        }
        _ => match e.sqlite_error_code() {
            Some(C::DatabaseBusy | C::DatabaseLocked) => StorageError::Conflict { what, source: e.into() },
            Some(C::ConstraintViolation) if e.to_string().contains(QUOTA_MESSAGE) => StorageError::QuotaExceeded { what, source: e.into() },
            Some(C::ConstraintViolation) => StorageError::Constraint { what, source: e.into() },
            Some(C::TooBig) => StorageError::InvalidInput { what, source: e.into() },
            Some(C::CannotOpen | C::SystemIoFailure | C::DiskFull | C::ReadOnly | C::PermissionDenied | C::OutOfMemory) => {
                StorageError::Unavailable { what, source: e.into() }
            }
            Some(C::DatabaseCorrupt | C::NotADatabase) => StorageError::Corrupt { what, detail: e.to_string() },
            _ => StorageError::Failed { what, source: e.into() },
        },
    }
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

    async fn ping(&self) -> StorageResult<()> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_errors_are_sorted_by_what_they_mean_and_keep_their_cause() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE); INSERT INTO t (v) VALUES ('a');").unwrap();
        let duplicate = backend(conn.execute("INSERT INTO t (v) VALUES ('a')", []).unwrap_err());
        assert!(matches!(duplicate, StorageError::Constraint { .. }), "{duplicate:?}");
        assert!(std::error::Error::source(&duplicate).is_some());
        assert!(!duplicate.is_transient());
        let unreadable = backend(conn.query_row("SELECT v FROM t", [], |r| r.get::<_, i64>(0)).unwrap_err());
        assert!(matches!(unreadable, StorageError::Corrupt { .. }), "{unreadable:?}");
        let busy = backend(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None));
        assert!(matches!(busy, StorageError::Conflict { .. }) && busy.is_transient(), "{busy:?}");
        let full = backend(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None));
        assert!(matches!(full, StorageError::Unavailable { .. }), "{full:?}");
    }
}
