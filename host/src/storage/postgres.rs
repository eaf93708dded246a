//! The shared backend: several hosts on one PostgreSQL database. Money postings lock
//! the touched account rows (`FOR UPDATE`, in id order, so concurrent postings cannot
//! deadlock) and claim their idempotency key with an insert that waits for any
//! concurrent holder; job claims use `FOR UPDATE SKIP LOCKED`, so two hosts polling at
//! once take disjoint rows. Migrations run under a per-schema advisory lock, so hosts
//! starting together do not race on `CREATE TABLE`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::posting::{plan, touched_accounts};
use super::{
    new_id, AccountRow, DeliveryRequest, DeliveryRow, EntryKind, EntryRow, JobState, KvWrite, Lease, Minor, NewPaymentEvent,
    PaymentEventRow, Posting, PostingRefusal, Storage, StorageError, StorageResult, TimerRow,
};

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
"#];

pub struct PostgresStorage {
    pool: Pool,
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
    fn from(f: Failure) -> Self {
        match f {
            Failure::Pg(e) => StorageError::Backend(format!("PostgreSQL: {e}")),
            Failure::Data(message) => StorageError::Backend(format!("PostgreSQL: {message}")),
        }
    }
}

impl Failure {
    fn is_lost_race(&self) -> bool {
        matches!(self, Failure::Pg(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
            || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED))
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
        Ok(Self { pool })
    }

    async fn client(&self) -> StorageResult<Object> {
        self.pool.get().await.map_err(|e| StorageError::Backend(format!("PostgreSQL connection: {e}")))
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

fn timer_row(row: &Row) -> Res<TimerRow> {
    Ok(TimerRow {
        id: get(row, "id")?,
        instance: get(row, "instance")?,
        name: get(row, "name")?,
        due_at: get(row, "due_at")?,
        payload: get(row, "payload")?,
        attempts: u32_col(row, "attempts")?,
        last_error: get(row, "last_error")?,
        leased_until: get(row, "lease_until")?,
    })
}

fn delivery_row(row: &Row) -> Res<DeliveryRow> {
    let headers: String = get(row, "headers")?;
    let status: Option<i64> = get(row, "last_status")?;
    Ok(DeliveryRow {
        id: get(row, "id")?,
        instance: get(row, "instance")?,
        key: get(row, "key")?,
        request: DeliveryRequest {
            method: get(row, "method")?,
            url: get(row, "url")?,
            headers: serde_json::from_str(&headers).map_err(|e| Failure::Data(format!("delivery headers: {e}")))?,
            body: get(row, "body")?,
            max_attempts: u32_col(row, "max_attempts")?,
        },
        state: state_col(row)?,
        attempts: u32_col(row, "attempts")?,
        next_at: get(row, "next_at")?,
        last_error: get(row, "last_error")?,
        last_status: status.and_then(|s| u16::try_from(s).ok()),
        created_at: get(row, "created_at")?,
    })
}

fn event_row(row: &Row) -> Res<PaymentEventRow> {
    Ok(PaymentEventRow {
        id: get(row, "id")?,
        provider: get(row, "provider")?,
        system: get(row, "system")?,
        reference: get(row, "reference")?,
        status: get(row, "status")?,
        amount: get(row, "amount")?,
        currency: get(row, "currency")?,
        external_id: get(row, "external_id")?,
        saved_method: get(row, "saved_method")?,
        message: get(row, "message")?,
        state: state_col(row)?,
        attempts: u32_col(row, "attempts")?,
        next_at: get(row, "next_at")?,
        last_error: get(row, "last_error")?,
    })
}

fn rows<T>(rows: Vec<Row>, map: fn(&Row) -> Res<T>) -> Res<Vec<T>> {
    rows.iter().map(map).collect()
}

async fn entries_of<C: GenericClient>(client: &C, transaction_id: &str) -> Res<Vec<EntryRow>> {
    let found = client
        .query("SELECT * FROM ledger_entries WHERE transaction_id = $1 ORDER BY line_no", &[&transaction_id])
        .await?;
    rows(found, entry_row)
}

async fn post_once(client: &mut Object, posting: &Posting) -> Res<Result<Vec<EntryRow>, PostingRefusal>> {
    if let Some(target) = &posting.reverses {
        // Transactions never change once written, so this check needs no lock; the
        // unique `reverses` column settles two concurrent reversals below.
        let found = client.query_opt("SELECT reverses FROM ledger_transactions WHERE id = $1", &[target]).await?;
        match found.map(|r| r.try_get::<_, Option<String>>(0)).transpose()? {
            None => return Ok(Err(PostingRefusal::NotReversible(format!("transaction {target} is unknown")))),
            Some(Some(_)) => {
                return Ok(Err(PostingRefusal::NotReversible(format!("transaction {target} is itself a reversal"))))
            }
            Some(None) => {}
        }
    }

    let tx = client.transaction().await?;
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
        let earlier = tx
            .query_opt("SELECT id, request_hash FROM ledger_transactions WHERE idempotency_key = $1", &[&posting.idempotency_key])
            .await?;
        let outcome = match earlier {
            Some(row) => {
                let (id, hash): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                if hash != posting.request_hash {
                    Err(PostingRefusal::IdempotencyConflict(posting.idempotency_key.clone()))
                } else {
                    Ok(entries_of(&tx, &id).await?)
                }
            }
            // The key is free, so the conflict was on `reverses`.
            None => Err(PostingRefusal::NotReversible(format!(
                "transaction {} was already reversed",
                posting.reverses.as_deref().unwrap_or_default()
            ))),
        };
        tx.rollback().await?;
        return Ok(outcome);
    }

    let ids = touched_accounts(posting);
    let lock = tx.prepare_cached("SELECT * FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE").await?;
    let mut accounts = HashMap::new();
    for row in tx.query(&lock, &[&ids]).await? {
        let account = account_row(&row)?;
        accounts.insert(account.id.clone(), account);
    }
    let plan = match plan(posting, &transaction_id, &accounts) {
        Ok(plan) => plan,
        Err(refusal) => {
            // Releases the idempotency key: a refused call may be retried with it.
            tx.rollback().await?;
            return Ok(Err(refusal));
        }
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
    tx.commit().await?;
    Ok(Ok(plan.entries))
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

    async fn kv_get(&self, ns: &str, key: &str) -> StorageResult<Option<Vec<u8>>> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached("SELECT value FROM kv WHERE ns = $1 AND key = $2").await?;
            let row = client.query_opt(&stmt, &[&ns, &key]).await?;
            Res::Ok(row.map(|r| r.try_get(0)).transpose()?)
        };
        Ok(run.await?)
    }

    async fn kv_set(&self, ns: &str, key: &str, value: &[u8]) -> StorageResult<()> {
        let client = self.client().await?;
        let run = async {
            let stmt = client
                .prepare_cached("INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value")
                .await?;
            client.execute(&stmt, &[&ns, &key, &value]).await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn kv_delete(&self, ns: &str, key: &str) -> StorageResult<bool> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached("DELETE FROM kv WHERE ns = $1 AND key = $2").await?;
            Res::Ok(client.execute(&stmt, &[&ns, &key]).await? > 0)
        };
        Ok(run.await?)
    }

    async fn kv_cas(&self, ns: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> StorageResult<bool> {
        let client = self.client().await?;
        let run = async {
            let written = match expected {
                None => {
                    let stmt = client
                        .prepare_cached("INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO NOTHING")
                        .await?;
                    client.execute(&stmt, &[&ns, &key, &new]).await?
                }
                Some(old) => {
                    let stmt = client.prepare_cached("UPDATE kv SET value = $3 WHERE ns = $1 AND key = $2 AND value = $4").await?;
                    client.execute(&stmt, &[&ns, &key, &new, &old]).await?
                }
            };
            Res::Ok(written > 0)
        };
        Ok(run.await?)
    }

    async fn kv_list(&self, ns: &str, prefix: &str, start_after: Option<&str>, limit: u32) -> StorageResult<Vec<String>> {
        let client = self.client().await?;
        let run = async {
            // `key` has the "C" collation: comparisons and order are by bytes, as the WIT promises.
            let stmt = client
                .prepare_cached(
                    "SELECT key FROM kv WHERE ns = $1 AND key >= $2 AND starts_with(key, $2)
                     AND ($3::text IS NULL OR key > $3) ORDER BY key LIMIT $4",
                )
                .await?;
            let found = client.query(&stmt, &[&ns, &prefix, &start_after, &i64::from(limit)]).await?;
            found.iter().map(|r| Res::Ok(r.try_get::<_, String>(0)?)).collect::<Res<Vec<String>>>()
        };
        Ok(run.await?)
    }

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
        let mut client = self.client().await?;
        let mut attempt = 1;
        loop {
            match post_once(&mut client, posting).await {
                Err(failure) if failure.is_lost_race() && attempt < POST_ATTEMPTS => attempt += 1,
                other => return Ok(other?),
            }
        }
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

    async fn timer_upsert(&self, instance: &str, name: &str, due_at: i64, payload: &[u8]) -> StorageResult<()> {
        let client = self.client().await?;
        let run = async {
            // A reschedule takes a new id, which is how a firing host notices it.
            let stmt = client
                .prepare_cached(
                    "INSERT INTO timers (instance, name, due_at, payload) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (instance, name) DO UPDATE SET id = nextval('payhost_timer_ids'), due_at = EXCLUDED.due_at,
                     payload = EXCLUDED.payload, attempts = 0, last_error = NULL, lease_owner = NULL, lease_until = NULL",
                )
                .await?;
            client.execute(&stmt, &[&instance, &name, &due_at, &payload]).await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn timer_cancel(&self, instance: &str, name: &str) -> StorageResult<bool> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached("DELETE FROM timers WHERE instance = $1 AND name = $2").await?;
            Res::Ok(client.execute(&stmt, &[&instance, &name]).await? > 0)
        };
        Ok(run.await?)
    }

    async fn timer_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<TimerRow>> {
        let client = self.client().await?;
        let mut timers = rows(claim(&client, "timers", "due_at", "", now, lease, limit).await?, timer_row)?;
        timers.sort_by_key(|t| (t.due_at, t.id));
        Ok(timers)
    }

    async fn timer_complete(&self, timer: &TimerRow, lease: &Lease) -> StorageResult<()> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached("DELETE FROM timers WHERE id = $1 AND lease_owner = $2 AND lease_until = $3").await?;
            client.execute(&stmt, &[&timer.id, &lease.owner, &lease.until]).await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn timer_retry(&self, timer: &TimerRow, lease: &Lease, next_at: i64, error: &str) -> StorageResult<()> {
        let client = self.client().await?;
        let run = async {
            let stmt = client
                .prepare_cached(
                    "UPDATE timers SET due_at = $4, attempts = attempts + 1, last_error = $5, lease_owner = NULL, lease_until = NULL
                     WHERE id = $1 AND lease_owner = $2 AND lease_until = $3",
                )
                .await?;
            client.execute(&stmt, &[&timer.id, &lease.owner, &lease.until, &next_at, &error]).await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn timer_list(&self, instance: Option<&str>, limit: u32) -> StorageResult<Vec<TimerRow>> {
        let client = self.client().await?;
        let run = async {
            let found = client
                .query(
                    "SELECT * FROM timers WHERE ($1::text IS NULL OR instance = $1) ORDER BY due_at, id LIMIT $2",
                    &[&instance, &i64::from(limit)],
                )
                .await?;
            rows(found, timer_row)
        };
        Ok(run.await?)
    }

    async fn delivery_enqueue(&self, instance: &str, key: &str, req: &DeliveryRequest, now: i64) -> StorageResult<String> {
        let headers = serde_json::to_string(&req.headers).map_err(|e| StorageError::Backend(format!("encoding headers: {e}")))?;
        let client = self.client().await?;
        let run = async {
            let stmt = client
                .prepare_cached(
                    "INSERT INTO deliveries (id, instance, key, method, url, headers, body, max_attempts, state, next_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9) ON CONFLICT (instance, key) DO NOTHING",
                )
                .await?;
            let max_attempts = i64::from(req.max_attempts);
            client
                .execute(&stmt, &[&new_id("dl"), &instance, &key, &req.method, &req.url, &headers, &req.body, &max_attempts, &now])
                .await?;
            let row = client.query_one("SELECT id FROM deliveries WHERE instance = $1 AND key = $2", &[&instance, &key]).await?;
            let id: String = row.try_get(0)?;
            Res::Ok(id)
        };
        Ok(run.await?)
    }

    async fn delivery_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<DeliveryRow>> {
        let client = self.client().await?;
        let mut found = rows(claim(&client, "deliveries", "next_at", "AND state = 'pending'", now, lease, limit).await?, delivery_row)?;
        found.sort_by(|a, b| (a.next_at, &a.id).cmp(&(b.next_at, &b.id)));
        Ok(found)
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
        let client = self.client().await?;
        let run = async {
            let stmt = client
                .prepare_cached(
                    "UPDATE deliveries SET state = $4, attempts = attempts + 1, last_status = $5, last_error = $6, next_at = $7,
                     lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2 AND lease_until = $3",
                )
                .await?;
            let status = status.map(i64::from);
            client.execute(&stmt, &[&id, &lease.owner, &lease.until, &state.as_str(), &status, &error, &next_at]).await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn delivery_list(&self, instance: Option<&str>, limit: u32) -> StorageResult<Vec<DeliveryRow>> {
        let client = self.client().await?;
        let run = async {
            let found = client
                .query(
                    "SELECT * FROM deliveries WHERE ($1::text IS NULL OR instance = $1) ORDER BY created_at DESC, id DESC LIMIT $2",
                    &[&instance, &i64::from(limit)],
                )
                .await?;
            rows(found, delivery_row)
        };
        Ok(run.await?)
    }

    async fn checkout_register(&self, system: &str, reference: &str, provider: &str, at: i64) -> StorageResult<()> {
        let client = self.client().await?;
        let run = async {
            let stmt = client
                .prepare_cached(
                    "INSERT INTO checkouts (system, reference, provider, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (system, reference) DO NOTHING",
                )
                .await?;
            client.execute(&stmt, &[&system, &reference, &provider, &at]).await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn checkout_provider(&self, system: &str, reference: &str) -> StorageResult<Option<String>> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached("SELECT provider FROM checkouts WHERE system = $1 AND reference = $2").await?;
            Res::Ok(client.query_opt(&stmt, &[&system, &reference]).await?.map(|r| r.try_get(0)).transpose()?)
        };
        Ok(run.await?)
    }

    async fn event_ingest(&self, provider: &str, event: &NewPaymentEvent, now: i64) -> StorageResult<(i64, bool)> {
        let client = self.client().await?;
        let e = event;
        let run = async {
            let stmt = client
                .prepare_cached(
                    "INSERT INTO payment_events (provider, system, reference, status, amount, currency, external_id, saved_method, message,
                     state, next_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $10)
                     ON CONFLICT (system, external_id, status) DO NOTHING RETURNING id",
                )
                .await?;
            let inserted = client
                .query_opt(
                    &stmt,
                    &[&provider, &e.system, &e.reference, &e.status, &e.amount, &e.currency, &e.external_id, &e.saved_method, &e.message, &now],
                )
                .await?;
            if let Some(row) = inserted {
                return Res::Ok((row.try_get(0)?, true));
            }
            let row = client
                .query_one(
                    "SELECT id FROM payment_events WHERE system = $1 AND external_id = $2 AND status = $3",
                    &[&e.system, &e.external_id, &e.status],
                )
                .await?;
            Res::Ok((row.try_get(0)?, false))
        };
        Ok(run.await?)
    }

    async fn event_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<PaymentEventRow>> {
        let client = self.client().await?;
        let mut found = rows(claim(&client, "payment_events", "next_at", "AND state = 'pending'", now, lease, limit).await?, event_row)?;
        found.sort_by_key(|e| (e.next_at, e.id));
        Ok(found)
    }

    async fn event_record(&self, id: i64, lease: &Lease, state: JobState, error: Option<&str>, next_at: i64) -> StorageResult<()> {
        let client = self.client().await?;
        let run = async {
            let stmt = client
                .prepare_cached(
                    "UPDATE payment_events SET state = $4, attempts = attempts + 1, last_error = $5, next_at = $6,
                     lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2 AND lease_until = $3",
                )
                .await?;
            client.execute(&stmt, &[&id, &lease.owner, &lease.until, &state.as_str(), &error, &next_at]).await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn event_complete(&self, id: i64, lease: &Lease, ns: &str, writes: &[KvWrite]) -> StorageResult<bool> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            let held = tx
                .query_opt(
                    "SELECT id FROM payment_events WHERE id = $1 AND state = 'pending' AND lease_owner = $2 AND lease_until = $3 FOR UPDATE",
                    &[&id, &lease.owner, &lease.until],
                )
                .await?
                .is_some();
            if !held {
                return Res::Ok(false);
            }
            for write in writes {
                match write {
                    KvWrite::Expect { key, value } => {
                        // Locks the row (when it exists) so it cannot change before commit.
                        let current: Option<Vec<u8>> = tx
                            .query_opt("SELECT value FROM kv WHERE ns = $1 AND key = $2 FOR UPDATE", &[&ns, key])
                            .await?
                            .map(|r| r.try_get(0))
                            .transpose()?;
                        if current != *value {
                            return Res::Ok(false);
                        }
                    }
                    KvWrite::Put { key, value } => {
                        tx.execute(
                            "INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
                            &[&ns, key, value],
                        )
                        .await?;
                    }
                    KvWrite::Delete { key } => {
                        tx.execute("DELETE FROM kv WHERE ns = $1 AND key = $2", &[&ns, key]).await?;
                    }
                }
            }
            tx.execute(
                "UPDATE payment_events SET state = 'done', attempts = attempts + 1, last_error = NULL,
                 lease_owner = NULL, lease_until = NULL WHERE id = $1",
                &[&id],
            )
            .await?;
            tx.commit().await?;
            Res::Ok(true)
        };
        Ok(run.await?)
    }

    async fn event_list(&self, provider: Option<&str>, limit: u32) -> StorageResult<Vec<PaymentEventRow>> {
        let client = self.client().await?;
        let run = async {
            let found = client
                .query(
                    "SELECT * FROM payment_events WHERE ($1::text IS NULL OR provider = $1) ORDER BY id DESC LIMIT $2",
                    &[&provider, &i64::from(limit)],
                )
                .await?;
            rows(found, event_row)
        };
        Ok(run.await?)
    }
}
