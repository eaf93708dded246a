//! The audit trail on SQLite: one insert per entry, read back in append order.

use async_trait::async_trait;
use rusqlite::{params, Row};

use super::{conversion, SqliteStorage};
use crate::storage::{AuditEntry, AuditQuery, AuditStore, NewAuditEntry, StorageResult};

fn entry_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let json = |name: &str| -> rusqlite::Result<serde_json::Value> {
        let text: String = row.get(name)?;
        serde_json::from_str(&text).map_err(|e| conversion(format!("audit {name}: {e}")))
    };
    let status: i64 = row.get("status")?;
    Ok(AuditEntry {
        id: row.get("id")?,
        entry: NewAuditEntry {
            at: row.get("at")?,
            kind: row.get("kind")?,
            source: row.get("source")?,
            request_id: row.get("request_id")?,
            target: row.get("target")?,
            request: json("request")?,
            outcome: row.get("outcome")?,
            status: u16::try_from(status).map_err(|_| conversion(format!("audit status out of range: {status}")))?,
            result: json("result")?,
        },
    })
}

#[async_trait]
impl AuditStore for SqliteStorage {
    async fn audit_append(&self, entry: &NewAuditEntry) -> StorageResult<i64> {
        let e = entry.clone();
        let (request, result) = (e.request.to_string(), e.result.to_string());
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO audit_log (at, kind, source, request_id, target, request, outcome, status, result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![e.at, e.kind, e.source, e.request_id, e.target, request, e.outcome, e.status, result])?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn audit_list(&self, query: &AuditQuery) -> StorageResult<Vec<AuditEntry>> {
        let q = query.clone();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT * FROM audit_log WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR kind = ?2) ORDER BY id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![q.since, q.kind, q.limit], entry_row)?;
            rows.collect()
        })
        .await
    }
}
