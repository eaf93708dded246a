//! Job control on PostgreSQL: each action is one guarded statement, so a job being
//! worked on (leased) or already ended is never touched; when nothing changed, a second
//! read says why.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::jobs::delivery_row;
use super::{get, rows, PostgresStorage, Res};
use crate::storage::{ControlOutcome, DeliveryRow, JobAction, JobControlStore, JobCount, JobRef, JobState, StorageResult};

const COUNTS: &str = "
SELECT 'delivery' AS kind, state, count(*) AS n, min(CASE WHEN state = 'pending' AND next_at <= $1 THEN next_at END) AS oldest
  FROM deliveries GROUP BY state
UNION ALL
SELECT 'event', state, count(*), min(CASE WHEN state = 'pending' AND next_at <= $1 THEN next_at END)
  FROM payment_events GROUP BY state
UNION ALL
SELECT 'timer', st, count(*), min(CASE WHEN due_at <= $1 THEN due_at END)
  FROM (SELECT CASE WHEN lease_until > $1 THEN 'firing' ELSE 'scheduled' END AS st, due_at FROM timers) t GROUP BY st";

fn kind_name(text: &str) -> &'static str {
    match text {
        "delivery" => "delivery",
        "event" => "event",
        _ => "timer",
    }
}

#[async_trait]
impl JobControlStore for PostgresStorage {
    async fn job_control(&self, job: &JobRef, action: JobAction, now: i64) -> StorageResult<ControlOutcome> {
        let client = self.client().await?;
        let run = async {
            let (table, text_id, int_id) = match job {
                JobRef::Delivery(id) => ("deliveries", Some(id.clone()), 0i64),
                JobRef::Event(id) => ("payment_events", None, *id),
                JobRef::Timer(id) => ("timers", None, *id),
            };
            let id: &(dyn ToSql + Sync) = match &text_id {
                Some(text) => text,
                None => &int_id,
            };
            let free = "(lease_until IS NULL OR lease_until <= $2)";
            let (sql, applied) = match (job, action) {
                (JobRef::Timer(_), JobAction::RetryNow) => (format!("UPDATE timers SET due_at = $2 WHERE id = $1 AND {free}"), "scheduled"),
                (JobRef::Timer(_), JobAction::Cancel) => (format!("DELETE FROM timers WHERE id = $1 AND {free}"), "cancelled"),
                (_, JobAction::RetryNow) => (
                    format!("UPDATE {table} SET state = 'pending', next_at = $2 WHERE id = $1 AND state IN ('pending', 'failed') AND {free}"),
                    "pending",
                ),
                (_, JobAction::Cancel) => (
                    format!("UPDATE {table} SET state = 'cancelled', next_at = $2 WHERE id = $1 AND state IN ('pending', 'failed') AND {free}"),
                    "cancelled",
                ),
            };
            if client.execute(sql.as_str(), &[id, &now]).await? > 0 {
                return Res::Ok(ControlOutcome::Applied { state: applied.to_string() });
            }
            let state_column = if matches!(job, JobRef::Timer(_)) { "'scheduled'::text" } else { "state" };
            let found = client.query_opt(format!("SELECT {state_column} AS state, lease_until FROM {table} WHERE id = $1").as_str(), &[id]).await?;
            Ok(match found {
                None => ControlOutcome::NotFound,
                Some(row) => match get::<Option<i64>>(&row, "lease_until")? {
                    Some(until) if until > now => ControlOutcome::Busy { leased_until: until },
                    _ => ControlOutcome::Ended { state: get(&row, "state")? },
                },
            })
        };
        Ok(run.await?)
    }

    async fn delivery_list_in(&self, instance: Option<&str>, state: Option<JobState>, limit: u32) -> StorageResult<Vec<DeliveryRow>> {
        let client = self.client().await?;
        let run = async {
            let state = state.map(JobState::as_str);
            let found = client
                .query(
                    "SELECT * FROM deliveries WHERE ($1::text IS NULL OR instance = $1) AND ($2::text IS NULL OR state = $2)
                     ORDER BY created_at DESC, id DESC LIMIT $3",
                    &[&instance, &state, &i64::from(limit)],
                )
                .await?;
            rows(found, delivery_row)
        };
        Ok(run.await?)
    }

    async fn job_counts(&self, now: i64) -> StorageResult<Vec<JobCount>> {
        let client = self.client().await?;
        let run = async {
            let found = client.query(COUNTS, &[&now]).await?;
            found
                .iter()
                .map(|r| {
                    let kind: String = r.try_get(0)?;
                    let count: i64 = r.try_get(2)?;
                    Ok(JobCount { kind: kind_name(&kind), state: r.try_get(1)?, count: count.max(0) as u64, oldest_due_at: r.try_get(3)? })
                })
                .collect::<Res<Vec<_>>>()
        };
        Ok(run.await?)
    }
}
