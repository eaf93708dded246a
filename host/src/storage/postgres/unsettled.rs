//! Tracked payments on PostgreSQL: the `checkouts` rows with what the janitor found.
//! Claims lock the rows they lease (`FOR UPDATE SKIP LOCKED`), so two hosts' janitors
//! never look the same payment up at once.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{get, u32_col, Failure, PostgresStorage, Res};
use crate::storage::{LookupResult, PaymentKind, StorageResult, TrackedPayment, UnsettledStore};

fn tracked_row(row: &Row) -> Res<TrackedPayment> {
    let kind: Option<String> = get(row, "kind")?;
    let kind = match kind {
        None => None,
        Some(k) => Some(PaymentKind::parse(&k).ok_or_else(|| Failure::Data(format!("unknown payment kind {k}")))?),
    };
    Ok(TrackedPayment {
        system: get(row, "system")?,
        reference: get(row, "reference")?,
        provider: get(row, "provider")?,
        kind,
        external_id: get(row, "external_id")?,
        created_at: get(row, "created_at")?,
        lookups: u32_col(row, "lookups")?,
        last_lookup_at: get(row, "last_lookup_at")?,
        next_lookup_at: get(row, "next_lookup_at")?,
        last_error: get(row, "last_error")?,
        settled_at: get(row, "settled_at")?,
        settled_by: get(row, "settled_by")?,
    })
}

#[async_trait]
impl UnsettledStore for PostgresStorage {
    async fn payment_started(&self, system: &str, reference: &str, kind: PaymentKind, external_id: &str) -> StorageResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE checkouts SET kind = $3, external_id = $4 WHERE system = $1 AND reference = $2 AND settled_at IS NULL",
                &[&system, &reference, &kind.as_str(), &external_id],
            )
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    async fn payment_settled(&self, system: &str, reference: &str, by: &str, now: i64) -> StorageResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE checkouts SET settled_at = $4, settled_by = $3 WHERE system = $1 AND reference = $2 AND settled_at IS NULL",
                &[&system, &reference, &by, &now],
            )
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    async fn unsettled_claim(&self, created_before: i64, now: i64, lease_until: i64, limit: u32) -> StorageResult<Vec<TrackedPayment>> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            tx.execute(
                "UPDATE checkouts c SET settled_at = $1, settled_by = 'event' WHERE settled_at IS NULL AND EXISTS (
                    SELECT 1 FROM payment_events e WHERE e.system = c.system AND e.reference = c.reference
                    AND e.status IN ('succeeded', 'failed'))",
                &[&now],
            )
            .await?;
            let found = tx
                .query(
                    "UPDATE checkouts SET next_lookup_at = $4 WHERE (system, reference) IN (
                        SELECT system, reference FROM checkouts WHERE settled_at IS NULL AND external_id IS NOT NULL
                        AND created_at <= $1 AND next_lookup_at <= $2 ORDER BY next_lookup_at, created_at LIMIT $3
                        FOR UPDATE SKIP LOCKED)
                     RETURNING *",
                    &[&created_before, &now, &i64::from(limit), &lease_until],
                )
                .await?;
            tx.commit().await?;
            found.iter().map(tracked_row).collect::<Res<Vec<_>>>()
        };
        Ok(run.await?)
    }

    async fn unsettled_record(&self, system: &str, reference: &str, result: &LookupResult, now: i64) -> StorageResult<()> {
        let client = self.client().await?;
        let done = "lookups = lookups + 1, last_lookup_at = $3";
        let run = async {
            match result {
                LookupResult::Settled => {
                    client
                        .execute(
                            format!(
                                "UPDATE checkouts SET {done}, last_error = NULL, settled_at = $3, settled_by = 'lookup'
                                 WHERE system = $1 AND reference = $2 AND settled_at IS NULL"
                            )
                            .as_str(),
                            &[&system, &reference, &now],
                        )
                        .await?
                }
                LookupResult::Pending { next_at } => {
                    client
                        .execute(
                            format!("UPDATE checkouts SET {done}, last_error = NULL, next_lookup_at = $4 WHERE system = $1 AND reference = $2").as_str(),
                            &[&system, &reference, &now, next_at],
                        )
                        .await?
                }
                LookupResult::Failed { next_at, error } => {
                    client
                        .execute(
                            format!("UPDATE checkouts SET {done}, last_error = $5, next_lookup_at = $4 WHERE system = $1 AND reference = $2").as_str(),
                            &[&system, &reference, &now, next_at, error],
                        )
                        .await?
                }
            };
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn tracked_payments(&self, open_only: bool, limit: u32) -> StorageResult<Vec<TrackedPayment>> {
        let client = self.client().await?;
        let run = async {
            let found = client
                .query(
                    "SELECT * FROM checkouts WHERE (NOT $1 OR settled_at IS NULL)
                     ORDER BY (settled_at IS NOT NULL), created_at DESC, reference LIMIT $2",
                    &[&open_only, &i64::from(limit)],
                )
                .await?;
            found.iter().map(tracked_row).collect::<Res<Vec<_>>>()
        };
        Ok(run.await?)
    }
}
