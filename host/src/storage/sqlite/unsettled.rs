//! Tracked payments on SQLite: the `checkouts` rows with what the janitor found.

use async_trait::async_trait;
use rusqlite::{params, Row};

use super::{conversion, immediate, u32_col, SqliteStorage};
use crate::storage::{LookupResult, PaymentKind, StorageResult, TrackedPayment, UnsettledStore};

fn tracked_row(row: &Row<'_>) -> rusqlite::Result<TrackedPayment> {
    let kind: Option<String> = row.get("kind")?;
    let kind = match kind {
        None => None,
        Some(k) => Some(PaymentKind::parse(&k).ok_or_else(|| conversion(format!("unknown payment kind {k}")))?),
    };
    Ok(TrackedPayment {
        system: row.get("system")?,
        reference: row.get("reference")?,
        provider: row.get("provider")?,
        kind,
        external_id: row.get("external_id")?,
        created_at: row.get("created_at")?,
        lookups: u32_col(row, "lookups")?,
        last_lookup_at: row.get("last_lookup_at")?,
        next_lookup_at: row.get("next_lookup_at")?,
        last_error: row.get("last_error")?,
        settled_at: row.get("settled_at")?,
        settled_by: row.get("settled_by")?,
    })
}

#[async_trait]
impl UnsettledStore for SqliteStorage {
    async fn payment_started(&self, system: &str, reference: &str, kind: PaymentKind, external_id: &str) -> StorageResult<()> {
        let (system, reference, external_id) = (system.to_string(), reference.to_string(), external_id.to_string());
        self.run(move |c| {
            c.prepare_cached("UPDATE checkouts SET kind = ?3, external_id = ?4 WHERE system = ?1 AND reference = ?2 AND settled_at IS NULL")?
                .execute(params![system, reference, kind.as_str(), external_id])
                .map(|_| ())
        })
        .await
    }

    async fn payment_settled(&self, system: &str, reference: &str, by: &str, now: i64) -> StorageResult<()> {
        let (system, reference, by) = (system.to_string(), reference.to_string(), by.to_string());
        self.run(move |c| {
            c.prepare_cached("UPDATE checkouts SET settled_at = ?4, settled_by = ?3 WHERE system = ?1 AND reference = ?2 AND settled_at IS NULL")?
                .execute(params![system, reference, by, now])
                .map(|_| ())
        })
        .await
    }

    async fn unsettled_claim(&self, created_before: i64, now: i64, lease_until: i64, limit: u32) -> StorageResult<Vec<TrackedPayment>> {
        self.run(move |c| {
            let tx = immediate(c)?;
            tx.prepare_cached(
                "UPDATE checkouts SET settled_at = ?1, settled_by = 'event' WHERE settled_at IS NULL AND EXISTS (
                    SELECT 1 FROM payment_events e WHERE e.system = checkouts.system AND e.reference = checkouts.reference
                    AND e.status IN ('succeeded', 'failed'))",
            )?
            .execute([now])?;
            let due: Vec<TrackedPayment> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT * FROM checkouts WHERE settled_at IS NULL AND external_id IS NOT NULL AND created_at <= ?1
                     AND next_lookup_at <= ?2 ORDER BY next_lookup_at, created_at LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![created_before, now, limit], tracked_row)?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            {
                let mut lease = tx.prepare_cached("UPDATE checkouts SET next_lookup_at = ?3 WHERE system = ?1 AND reference = ?2")?;
                for p in &due {
                    lease.execute(params![p.system, p.reference, lease_until])?;
                }
            }
            tx.commit()?;
            Ok(due)
        })
        .await
    }

    async fn unsettled_record(&self, system: &str, reference: &str, result: &LookupResult, now: i64) -> StorageResult<()> {
        let (system, reference, result) = (system.to_string(), reference.to_string(), result.clone());
        self.run(move |c| {
            let done = "lookups = lookups + 1, last_lookup_at = ?3";
            match &result {
                LookupResult::Settled => c
                    .prepare_cached(&format!(
                        "UPDATE checkouts SET {done}, last_error = NULL, settled_at = ?3, settled_by = 'lookup'
                         WHERE system = ?1 AND reference = ?2 AND settled_at IS NULL"
                    ))?
                    .execute(params![system, reference, now]),
                LookupResult::Pending { next_at } => c
                    .prepare_cached(&format!(
                        "UPDATE checkouts SET {done}, last_error = NULL, next_lookup_at = ?4 WHERE system = ?1 AND reference = ?2"
                    ))?
                    .execute(params![system, reference, now, next_at]),
                LookupResult::Failed { next_at, error } => c
                    .prepare_cached(&format!(
                        "UPDATE checkouts SET {done}, last_error = ?5, next_lookup_at = ?4 WHERE system = ?1 AND reference = ?2"
                    ))?
                    .execute(params![system, reference, now, next_at, error]),
            }
            .map(|_| ())
        })
        .await
    }

    async fn tracked_payments(&self, open_only: bool, limit: u32) -> StorageResult<Vec<TrackedPayment>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT * FROM checkouts WHERE (?1 = 0 OR settled_at IS NULL)
                 ORDER BY (settled_at IS NOT NULL), created_at DESC, reference LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![open_only, limit], tracked_row)?;
            rows.collect()
        })
        .await
    }
}
