//! Job control on SQLite: each action is one guarded statement, so a job being worked
//! on (leased) or already ended is never touched; when nothing changed, a second read
//! says why.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use super::jobs::delivery_row;
use super::{immediate, SqliteStorage};
use crate::storage::{ControlOutcome, DeliveryRow, JobAction, JobControlStore, JobCount, JobRef, JobState, StorageResult};

fn control(conn: &mut Connection, job: &JobRef, action: JobAction, now: i64) -> rusqlite::Result<ControlOutcome> {
    let tx = immediate(conn)?;
    let (table, id): (&str, Value) = match job {
        JobRef::Delivery(id) => ("deliveries", Value::Text(id.clone())),
        JobRef::Event(id) => ("payment_events", Value::Integer(*id)),
        JobRef::Timer(id) => ("timers", Value::Integer(*id)),
    };
    let free = "(lease_until IS NULL OR lease_until <= ?2)";
    let (sql, applied) = match (job, action) {
        (JobRef::Timer(_), JobAction::RetryNow) => (format!("UPDATE timers SET due_at = ?2 WHERE id = ?1 AND {free}"), "scheduled"),
        (JobRef::Timer(_), JobAction::Cancel) => (format!("DELETE FROM timers WHERE id = ?1 AND {free}"), "cancelled"),
        (_, JobAction::RetryNow) => (
            format!("UPDATE {table} SET state = 'pending', next_at = ?2 WHERE id = ?1 AND state IN ('pending', 'failed') AND {free}"),
            "pending",
        ),
        (_, JobAction::Cancel) => (
            format!("UPDATE {table} SET state = 'cancelled', next_at = ?2 WHERE id = ?1 AND state IN ('pending', 'failed') AND {free}"),
            "cancelled",
        ),
    };
    let changed = tx.prepare_cached(&sql)?.execute(params![id, now])?;
    let outcome = if changed > 0 {
        ControlOutcome::Applied { state: applied.to_string() }
    } else {
        let state_column = if matches!(job, JobRef::Timer(_)) { "'scheduled'" } else { "state" };
        let found: Option<(String, Option<i64>)> = tx
            .prepare_cached(&format!("SELECT {state_column}, lease_until FROM {table} WHERE id = ?1"))?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            None => ControlOutcome::NotFound,
            Some((_, Some(until))) if until > now => ControlOutcome::Busy { leased_until: until },
            Some((state, _)) => ControlOutcome::Ended { state },
        }
    };
    tx.commit()?;
    Ok(outcome)
}

const COUNTS: &str = "
SELECT 'delivery' AS kind, state, count(*) AS n, min(CASE WHEN state = 'pending' AND next_at <= ?1 THEN next_at END) AS oldest
  FROM deliveries GROUP BY state
UNION ALL
SELECT 'event', state, count(*), min(CASE WHEN state = 'pending' AND next_at <= ?1 THEN next_at END)
  FROM payment_events GROUP BY state
UNION ALL
SELECT 'timer', CASE WHEN lease_until > ?1 THEN 'firing' ELSE 'scheduled' END AS st, count(*),
       min(CASE WHEN due_at <= ?1 THEN due_at END)
  FROM timers GROUP BY st";

fn kind_name(text: &str) -> &'static str {
    match text {
        "delivery" => "delivery",
        "event" => "event",
        _ => "timer",
    }
}

#[async_trait]
impl JobControlStore for SqliteStorage {
    async fn job_control(&self, job: &JobRef, action: JobAction, now: i64) -> StorageResult<ControlOutcome> {
        let job = job.clone();
        self.run(move |c| control(c, &job, action, now)).await
    }

    async fn delivery_list_in(&self, instance: Option<&str>, state: Option<JobState>, limit: u32) -> StorageResult<Vec<DeliveryRow>> {
        let (instance, state) = (instance.map(str::to_string), state.map(JobState::as_str));
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT * FROM deliveries WHERE (?1 IS NULL OR instance = ?1) AND (?2 IS NULL OR state = ?2)
                 ORDER BY created_at DESC, id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![instance, state, limit], delivery_row)?;
            rows.collect()
        })
        .await
    }

    async fn job_counts(&self, now: i64) -> StorageResult<Vec<JobCount>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(COUNTS)?;
            let rows = stmt.query_map([now], |r| {
                let kind: String = r.get(0)?;
                let count: i64 = r.get(2)?;
                Ok(JobCount { kind: kind_name(&kind), state: r.get(1)?, count: count.max(0) as u64, oldest_due_at: r.get(3)? })
            })?;
            rows.collect()
        })
        .await
    }
}
