//! SQLite: timers and outbound deliveries.

use async_trait::async_trait;
use rusqlite::{params, Row};

use super::{SqliteStorage, claim_ids, conversion, immediate, state_col, u32_col};
use crate::storage::{DeliveryRequest, DeliveryRow, JobState, JobStore, Lease, StorageError, StorageResult, TimerRow, new_id};

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

pub(super) fn delivery_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
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

#[async_trait]
impl JobStore for SqliteStorage {
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
        let headers = serde_json::to_string(&req.headers)
            .map_err(|e| StorageError::InvalidInput { what: "delivery headers".into(), source: e.into() })?;
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
}
