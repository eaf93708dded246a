//! Firing due timers: call the instance's `on-timer` export, then delete the timer (unless
//! the handler rescheduled it) or put it back with backoff.

use std::sync::Arc;

use super::{clip, run_all, JobWorker};
use crate::storage::{Lease, TimerRow};

pub(super) async fn run(worker: &Arc<JobWorker>) -> usize {
    let now = worker.clock.now_millis();
    let lease = worker.lease(now);
    let due = match worker.storage.timer_claim_due(now, &lease, worker.cfg.batch).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "could not claim due timers");
            return 0;
        }
    };
    run_all(due, |timer| {
        let (worker, lease) = (worker.clone(), lease.clone());
        async move { fire(&worker, timer, &lease).await }
    })
    .await
}

async fn fire(worker: &JobWorker, timer: TimerRow, lease: &Lease) {
    let attempt = timer.attempts + 1;
    match worker.caller.on_timer(&timer.instance, &timer.name, timer.payload.clone()).await {
        Ok(()) => {
            tracing::info!(kind = "timer", instance = %timer.instance, job = timer.id, name = %timer.name, attempt, outcome = "done");
            if let Err(e) = worker.storage.timer_complete(&timer, lease).await {
                tracing::warn!(kind = "timer", instance = %timer.instance, job = timer.id, error = %e, "could not complete a fired timer; it may fire again");
            }
        }
        Err(error) => {
            let next_at = worker.retry_at(attempt);
            tracing::warn!(kind = "timer", instance = %timer.instance, job = timer.id, name = %timer.name, attempt, outcome = "retry", next_at, error = %error);
            if let Err(e) = worker.storage.timer_retry(&timer, lease, next_at, &clip(&error)).await {
                tracing::warn!(kind = "timer", instance = %timer.instance, job = timer.id, error = %e, "could not reschedule a failed timer");
            }
        }
    }
}
