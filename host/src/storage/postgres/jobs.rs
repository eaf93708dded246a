//! PostgreSQL: timers and outbound deliveries.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{Failure, PostgresStorage, Res, claim, get, rows, state_col, u32_col};
use crate::storage::{DeliveryRequest, DeliveryRow, JobState, JobStore, Lease, StorageError, StorageResult, TimerRow, new_id};

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

pub(super) fn delivery_row(row: &Row) -> Res<DeliveryRow> {
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

#[async_trait]
impl JobStore for PostgresStorage {
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
        let headers = serde_json::to_string(&req.headers)
            .map_err(|e| StorageError::InvalidInput { what: "delivery headers".into(), source: e.into() })?;
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
}
