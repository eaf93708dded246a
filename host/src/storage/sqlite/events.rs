//! SQLite: payment checkouts and payment events.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

use super::{SqliteStorage, claim_ids, conversion, immediate, state_col, u32_col};
use crate::storage::{JobState, KvWrite, Lease, NewPaymentEvent, PaymentEventRow, PaymentEventStore, PaymentStatus, StorageResult};

fn payment_status_col(row: &Row<'_>) -> rusqlite::Result<PaymentStatus> {
    let text: String = row.get("status")?;
    PaymentStatus::parse(&text).ok_or_else(|| conversion(format!("unknown payment status {text}")))
}

fn event_row(row: &Row<'_>) -> rusqlite::Result<PaymentEventRow> {
    Ok(PaymentEventRow {
        id: row.get("id")?,
        provider: row.get("provider")?,
        event: NewPaymentEvent {
            system: row.get("system")?,
            reference: row.get("reference")?,
            status: payment_status_col(row)?,
            amount: row.get("amount")?,
            currency: row.get("currency")?,
            external_id: row.get("external_id")?,
            saved_method: row.get("saved_method")?,
            message: row.get("message")?,
        },
        state: state_col(row)?,
        attempts: u32_col(row, "attempts")?,
        next_at: row.get("next_at")?,
        last_error: row.get("last_error")?,
    })
}

#[async_trait]
impl PaymentEventStore for SqliteStorage {
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
                .execute(params![provider, e.system, e.reference, e.status.as_str(), e.amount, e.currency, e.external_id, e.saved_method, e.message, now])?;
            let id: i64 = tx
                .prepare_cached("SELECT id FROM payment_events WHERE system = ?1 AND external_id = ?2 AND status = ?3")?
                .query_row([e.system.as_str(), e.external_id.as_str(), e.status.as_str()], |r| r.get(0))?;
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
            if !super::kv::write_group(&tx, &ns, &writes)? {
                return Ok(false);
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
