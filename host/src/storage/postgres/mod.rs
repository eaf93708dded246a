//! The shared backend: several hosts on one PostgreSQL database. Money postings lock
//! the touched account rows (`FOR UPDATE`, in id order, so concurrent postings cannot
//! deadlock); a key, account or reversal another host writes at the same time makes the
//! batch's insert wait and fail on the unique index, and the batch runs again; job claims use `FOR UPDATE SKIP LOCKED`, so two hosts polling at
//! once take disjoint rows. Migrations run under a per-schema advisory lock, so hosts
//! starting together do not race on `CREATE TABLE`.

mod audit;
mod batch;
mod control;
mod events;
mod jobs;
mod known_accounts;
mod kv;
mod ledger;
mod unsettled;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::{JobState, Lease, Storage, StorageError, StorageResult};
use super::group_commit::GroupCommit;
use known_accounts::KnownAccounts;

/// Connections per host; postings hold one for a few round trips only.
const POOL_SIZE: usize = 16;
/// A posting that lost a serialisation or deadlock race is run again this many times.
const POST_ATTEMPTS: usize = 8;

/// Schema versions, applied in order; `payhost_schema_version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE kv (
    ns TEXT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (ns, key)
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    balance BIGINT NOT NULL,
    overdraft BIGINT NOT NULL DEFAULT 0 CHECK (overdraft >= 0),
    created_at BIGINT NOT NULL
);

CREATE TABLE ledger_transactions (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    currency TEXT NOT NULL,
    reverses TEXT UNIQUE REFERENCES ledger_transactions (id),
    at BIGINT NOT NULL
);

CREATE TABLE ledger_entries (
    seq BIGSERIAL PRIMARY KEY,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    line_no INT NOT NULL,
    account TEXT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL,
    delta BIGINT NOT NULL,
    currency TEXT NOT NULL,
    balance_after BIGINT NOT NULL,
    reference TEXT NOT NULL,
    at BIGINT NOT NULL,
    UNIQUE (transaction_id, line_no)
);
CREATE INDEX ledger_entries_by_account ON ledger_entries (account, seq);

CREATE SEQUENCE payhost_timer_ids;
CREATE TABLE timers (
    id BIGINT PRIMARY KEY DEFAULT nextval('payhost_timer_ids'),
    instance TEXT NOT NULL,
    name TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT,
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
    body BYTEA NOT NULL,
    max_attempts BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    last_error TEXT,
    last_status BIGINT,
    created_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    UNIQUE (instance, key)
);
CREATE INDEX deliveries_due ON deliveries (state, next_at);
CREATE INDEX deliveries_by_instance ON deliveries (instance, created_at);

CREATE TABLE checkouts (
    system TEXT NOT NULL,
    reference TEXT NOT NULL,
    provider TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (system, reference)
);

CREATE TABLE payment_events (
    id BIGSERIAL PRIMARY KEY,
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
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    UNIQUE (system, external_id, status)
);
CREATE INDEX payment_events_due ON payment_events (state, next_at);
CREATE INDEX payment_events_by_provider ON payment_events (provider, id);
"#, r#"
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    request_id TEXT NOT NULL,
    target TEXT NOT NULL,
    request TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at, id);
CREATE INDEX audit_log_by_kind ON audit_log (kind, at, id);
CREATE FUNCTION payhost_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION payhost_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION payhost_audit_append_only();

ALTER TABLE checkouts
    ADD COLUMN kind TEXT,
    ADD COLUMN external_id TEXT,
    ADD COLUMN lookups BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_lookup_at BIGINT,
    ADD COLUMN next_lookup_at BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_error TEXT,
    ADD COLUMN settled_at BIGINT,
    ADD COLUMN settled_by TEXT;
CREATE INDEX checkouts_open ON checkouts (next_lookup_at) WHERE settled_at IS NULL;
CREATE INDEX payment_events_by_reference ON payment_events (system, reference);
"#, r#"
CREATE FUNCTION payhost_ledger_plan_stale() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'a ledger batch was planned on accounts or keys that have changed; it runs again'
        USING ERRCODE = 'serialization_failure';
END
$$;
"#, r#"
-- A store's usage is the sum of its rows here: its keys and, as the plugin's data as much
-- as its store values are, its pending timers. Each connection adds to a row of its own
-- (its backend pid modulo 64), so two connections writing one store rarely wait on
-- each other's usage row until commit.
CREATE TABLE kv_usage (
    ns TEXT NOT NULL,
    shard INT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (ns, shard)
);
CREATE TABLE kv_quota (ns TEXT PRIMARY KEY, bytes BIGINT NOT NULL CHECK (bytes >= 0));
INSERT INTO kv_usage (ns, shard, bytes)
    SELECT ns, 0, SUM(bytes) FROM (
        SELECT ns, octet_length(key) + octet_length(value) + 64 AS bytes FROM kv
        UNION ALL SELECT instance, octet_length(name) + octet_length(payload) + 64 FROM timers
    ) AS t GROUP BY ns;
CREATE FUNCTION payhost_kv_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    space TEXT;
    delta BIGINT;
    quota BIGINT;
BEGIN
    -- A row costs its key (a timer's name), its value (payload) and 64 bytes. NEW is null
    -- on DELETE and OLD on INSERT, so the change is the new row's cost less the old one's.
    IF TG_TABLE_NAME = 'timers' THEN
        space := COALESCE(NEW.instance, OLD.instance);
        delta := COALESCE(octet_length(NEW.name) + octet_length(NEW.payload) + 64, 0)
            - COALESCE(octet_length(OLD.name) + octet_length(OLD.payload) + 64, 0);
    ELSE
        space := COALESCE(NEW.ns, OLD.ns);
        delta := COALESCE(octet_length(NEW.key) + octet_length(NEW.value) + 64, 0)
            - COALESCE(octet_length(OLD.key) + octet_length(OLD.value) + 64, 0);
    END IF;
    IF delta = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO kv_usage AS u (ns, shard, bytes) VALUES (space, pg_backend_pid() % 64, delta)
        ON CONFLICT (ns, shard) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes;
    IF delta > 0 THEN
        SELECT q.bytes INTO quota FROM kv_quota q WHERE q.ns = space;
        IF quota IS NOT NULL AND (SELECT SUM(u.bytes) FROM kv_usage u WHERE u.ns = space) > quota THEN
            RAISE EXCEPTION 'payhost: store quota used up' USING ERRCODE = 'PHQ01';
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER kv_usage AFTER INSERT OR UPDATE OR DELETE ON kv FOR EACH ROW EXECUTE FUNCTION payhost_kv_usage();
CREATE TRIGGER timers_usage AFTER INSERT OR UPDATE OR DELETE ON timers FOR EACH ROW EXECUTE FUNCTION payhost_kv_usage();
"#];

/// The SQLSTATE the trigger that keeps a store within its quota raises (see `from`).
const QUOTA_SQLSTATE: &str = "PHQ01";

pub struct PostgresStorage {
    pool: Connections,
    /// The group-commit writer of postings, started on the first one (on the runtime
    /// the storage was opened on).
    writer: OnceLock<GroupCommit>,
    /// The accounts as this host's batches left them, for batches planned before they
    /// reach the server.
    known: Arc<KnownAccounts>,
}

/// The connection pool, with the runtime the storage was opened on: a new connection's
/// driver task runs where the connection is made, so connections are made there, not on
/// the plugin threads whose call happened to need one (where they would run behind
/// plugin code, and end with the plugin runtime).
#[derive(Clone)]
pub(super) struct Connections {
    pool: Pool,
    home: Option<tokio::runtime::Handle>,
}

impl Connections {
    async fn get(&self) -> StorageResult<Object> {
        let unavailable = |e: deadpool_postgres::PoolError| StorageError::Unavailable { what: "PostgreSQL connection pool".into(), source: e.into() };
        match &self.home {
            // Only when no idle connection is there to take, that is when one may be made.
            Some(home) if self.pool.status().available == 0 => {
                let pool = self.pool.clone();
                home.spawn(async move { pool.get().await })
                    .await
                    .map_err(|e| StorageError::Unavailable { what: "PostgreSQL connection pool".into(), source: e.into() })?
                    .map_err(unavailable)
            }
            _ => self.pool.get().await.map_err(unavailable),
        }
    }
}

/// Why a statement failed: the database said so (kept whole so a posting can tell a
/// lost race from a real error), or a row held something this host cannot read.
#[derive(Debug)]
enum Failure {
    Pg(tokio_postgres::Error),
    Data(String),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl From<Failure> for StorageError {
    /// Sorts by SQLSTATE class: 40 (transaction rollback) and 55P03 are conflicts, 23
    /// constraint violations, 22 bad input data, 08/53/57 and errors without a state
    /// (the connection broke) an outage.
    fn from(f: Failure) -> Self {
        let what = "PostgreSQL".to_string();
        let e = match f {
            Failure::Data(detail) => return StorageError::Corrupt { what, detail },
            Failure::Pg(e) => e,
        };
        let Some(code) = e.code().map(|c| c.code().to_string()) else {
            return StorageError::Unavailable { what, source: e.into() };
        };
        match &code[..2] {
            _ if code == QUOTA_SQLSTATE => StorageError::QuotaExceeded { what, source: e.into() },
            "40" => StorageError::Conflict { what, source: e.into() },
            _ if code == SqlState::LOCK_NOT_AVAILABLE.code() => StorageError::Conflict { what, source: e.into() },
            "23" => StorageError::Constraint { what, source: e.into() },
            "22" => StorageError::InvalidInput { what, source: e.into() },
            "08" | "53" | "57" => StorageError::Unavailable { what, source: e.into() },
            _ => StorageError::Failed { what, source: e.into() },
        }
    }
}

impl Failure {
    fn is_lost_race(&self) -> bool {
        matches!(self, Failure::Pg(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
            || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED))
    }

    /// Another transaction committed a row this one also inserts (see `batch`).
    fn is_unique_violation(&self) -> bool {
        matches!(self, Failure::Pg(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION))
    }
}

type Res<T> = Result<T, Failure>;

impl PostgresStorage {
    /// Connects to a `postgres://` URL (libpq-style parameters such as `options` and
    /// `connect_timeout` are honoured). Plain TCP or Unix sockets only: no TLS. Call
    /// `migrate` before use.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| anyhow::anyhow!("PostgreSQL URL is not valid: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("payhost");
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| anyhow::anyhow!("PostgreSQL pool: {e}"))?;
        // Fail at start-up, with the reason, rather than at the first request.
        drop(pool.get().await.map_err(|e| anyhow::anyhow!("connecting to PostgreSQL: {e}"))?);
        Ok(Self { pool: Connections { pool, home: tokio::runtime::Handle::try_current().ok() }, writer: OnceLock::new(), known: Arc::default() })
    }

    async fn client(&self) -> StorageResult<Object> {
        self.pool.get().await
    }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, name: &str) -> Res<T> {
    Ok(row.try_get(name)?)
}

fn u32_col(row: &Row, name: &str) -> Res<u32> {
    let value: i64 = get(row, name)?;
    u32::try_from(value).map_err(|_| Failure::Data(format!("column {name} out of range: {value}")))
}

fn state_col(row: &Row) -> Res<JobState> {
    let text: String = get(row, "state")?;
    JobState::parse(&text).ok_or_else(|| Failure::Data(format!("unknown job state {text}")))
}

fn rows<T>(rows: Vec<Row>, map: fn(&Row) -> Res<T>) -> Res<Vec<T>> {
    rows.iter().map(map).collect()
}

/// Leases due rows of `table` with `FOR UPDATE SKIP LOCKED`, so concurrent claimers
/// (other hosts) skip rows being claimed instead of waiting for or doubling them.
async fn claim(client: &Object, table: &str, due: &str, extra: &str, now: i64, lease: &Lease, limit: u32) -> Res<Vec<Row>> {
    let sql = format!(
        "UPDATE {table} SET lease_owner = $1, lease_until = $2 WHERE id IN (
            SELECT id FROM {table} WHERE {due} <= $3 {extra} AND (lease_until IS NULL OR lease_until <= $3)
            ORDER BY {due}, id LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING *"
    );
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client.query(&stmt, &[&lease.owner, &lease.until, &now, &i64::from(limit)]).await?)
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn migrate(&self) -> StorageResult<()> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext('payhost-migrate:' || current_schema()))", &[]).await?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS payhost_schema_version (version INT NOT NULL)").await?;
            let applied: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM payhost_schema_version", &[]).await?.try_get(0)?;
            for (version, sql) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
                tx.batch_execute(sql).await?;
                tx.execute("INSERT INTO payhost_schema_version (version) VALUES ($1)", &[&(version as i32 + 1)]).await?;
            }
            tx.commit().await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StorageResult<()> {
        let client = self.client().await?;
        client.execute("SELECT 1", &[]).await.map_err(Failure::from)?;
        Ok(())
    }
}
