//! Firing due timers: call the instance's `on-timer` export, then delete the timer (unless
//! the handler rescheduled it) or put it back with backoff.

use super::{clip, JobKind, JobWorker};
use crate::storage::{Lease, StorageResult, TimerRow};

pub(super) struct Timers;

impl JobKind for Timers {
    type Job = TimerRow;
    const NAME: &'static str = "timers";

    async fn claim(worker: &JobWorker, now: i64, lease: &Lease) -> StorageResult<Vec<TimerRow>> {
        worker.storage.timer_claim_due(now, lease, worker.cfg.batch).await
    }

    async fn run(worker: &JobWorker, job: TimerRow, lease: &Lease) {
        fire(worker, job, lease).await
    }
}

async fn fire(worker: &JobWorker, timer: TimerRow, lease: &Lease) {
    let attempt = timer.attempts + 1;
    match worker.caller.on_timer(&timer.instance, &timer.name, timer.payload.clone()).await {
        Ok(()) => {
            worker.cfg.metrics.job_attempt("timer", "done");
            tracing::info!(kind = "timer", instance = %timer.instance, job = timer.id, name = %timer.name, attempt, outcome = "done");
            if let Err(e) = worker.storage.timer_complete(&timer, lease).await {
                tracing::warn!(kind = "timer", instance = %timer.instance, job = timer.id, error = %e, "could not complete a fired timer; it may fire again");
            }
        }
        Err(failure) => {
            let next_at = worker.retry_at(attempt);
            worker.cfg.metrics.job_attempt("timer", "failed");
            tracing::warn!(
                kind = "timer", instance = %timer.instance, job = timer.id, name = %timer.name, attempt, outcome = "retry", next_at,
                failure = failure.kind(), error = %failure
            );
            if let Err(e) = worker.storage.timer_retry(&timer, lease, next_at, &clip(&failure.detail())).await {
                tracing::warn!(kind = "timer", instance = %timer.instance, job = timer.id, error = %e, "could not reschedule a failed timer");
            }
        }
    }
}
