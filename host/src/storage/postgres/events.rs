//! PostgreSQL: payment checkouts and payment events.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{Failure, PostgresStorage, Res, claim, get, rows, state_col, u32_col};
use crate::storage::{JobState, KvWrite, Lease, NewPaymentEvent, PaymentEventRow, PaymentEventStore, PaymentStatus, StorageResult};

fn payment_status_col(row: &Row) -> Res<PaymentStatus> {
    let text: String = get(row, "status")?;
    PaymentStatus::parse(&text).ok_or_else(|| Failure::Data(format!("unknown payment status {text}")))
}

fn event_row(row: &Row) -> Res<PaymentEventRow> {
    Ok(PaymentEventRow {
        id: get(row, "id")?,
        provider: get(row, "provider")?,
        event: NewPaymentEvent {
            system: get(row, "system")?,
            reference: get(row, "reference")?,
            status: payment_status_col(row)?,
            amount: get(row, "amount")?,
            currency: get(row, "currency")?,
            external_id: get(row, "external_id")?,
            saved_method: get(row, "saved_method")?,
            message: get(row, "message")?,
        },
        state: state_col(row)?,
        attempts: u32_col(row, "attempts")?,
        next_at: get(row, "next_at")?,
        last_error: get(row, "last_error")?,
    })
}

#[async_trait]
impl PaymentEventStore for PostgresStorage {
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
        let status = e.status.as_str();
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
                    &[&provider, &e.system, &e.reference, &status, &e.amount, &e.currency, &e.external_id, &e.saved_method, &e.message, &now],
                )
                .await?;
            if let Some(row) = inserted {
                return Res::Ok((row.try_get(0)?, true));
            }
            let row = client
                .query_one(
                    "SELECT id FROM payment_events WHERE system = $1 AND external_id = $2 AND status = $3",
                    &[&e.system, &e.external_id, &status],
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
            if !super::kv::write_group(&tx, ns, writes).await? {
                return Res::Ok(false);
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
