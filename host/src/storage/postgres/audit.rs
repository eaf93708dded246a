//! The audit trail on PostgreSQL: one insert per entry, read back in append order.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{get, Failure, PostgresStorage, Res};
use crate::storage::{AuditEntry, AuditQuery, AuditStore, NewAuditEntry, StorageResult};

fn entry_row(row: &Row) -> Res<AuditEntry> {
    let json = |name: &str| -> Res<serde_json::Value> {
        let text: String = get(row, name)?;
        serde_json::from_str(&text).map_err(|e| Failure::Data(format!("audit {name}: {e}")))
    };
    let status: i32 = get(row, "status")?;
    Ok(AuditEntry {
        id: get(row, "id")?,
        entry: NewAuditEntry {
            at: get(row, "at")?,
            kind: get(row, "kind")?,
            source: get(row, "source")?,
            request_id: get(row, "request_id")?,
            target: get(row, "target")?,
            request: json("request")?,
            outcome: get(row, "outcome")?,
            status: u16::try_from(status).map_err(|_| Failure::Data(format!("audit status out of range: {status}")))?,
            result: json("result")?,
        },
    })
}

#[async_trait]
impl AuditStore for PostgresStorage {
    async fn audit_append(&self, entry: &NewAuditEntry) -> StorageResult<i64> {
        let client = self.client().await?;
        let run = async {
            let stmt = client
                .prepare_cached(
                    "INSERT INTO audit_log (at, kind, source, request_id, target, request, outcome, status, result)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                )
                .await?;
            let e = entry;
            let (request, result, status) = (e.request.to_string(), e.result.to_string(), i32::from(e.status));
            let row = client
                .query_one(&stmt, &[&e.at, &e.kind, &e.source, &e.request_id, &e.target, &request, &e.outcome, &status, &result])
                .await?;
            get::<i64>(&row, "id")
        };
        Ok(run.await?)
    }

    async fn audit_list(&self, query: &AuditQuery) -> StorageResult<Vec<AuditEntry>> {
        let client = self.client().await?;
        let run = async {
            let found = client
                .query(
                    "SELECT * FROM audit_log WHERE ($1::bigint IS NULL OR at >= $1) AND ($2::text IS NULL OR kind = $2)
                     ORDER BY id LIMIT $3",
                    &[&query.since, &query.kind, &i64::from(query.limit)],
                )
                .await?;
            found.iter().map(entry_row).collect::<Res<Vec<_>>>()
        };
        Ok(run.await?)
    }
}
