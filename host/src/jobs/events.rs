//! Handing payment events to the provider instance that started the checkout, until its
//! `on-payment-event` returns ok or the attempts run out.

use std::sync::Arc;

use super::{clip, run_all, JobWorker};
use crate::storage::{JobState, Lease, PaymentEventRow};

pub(super) async fn run(worker: &Arc<JobWorker>) -> usize {
    let now = worker.clock.now_millis();
    let lease = worker.lease(now);
    let due = match worker.storage.event_claim_due(now, &lease, worker.cfg.batch).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "could not claim due payment events");
            return 0;
        }
    };
    run_all(due, |event| {
        let (worker, lease) = (worker.clone(), lease.clone());
        async move { hand_over(&worker, event, &lease).await }
    })
    .await
}

async fn hand_over(worker: &JobWorker, event: PaymentEventRow, lease: &Lease) {
    let attempt = event.attempts + 1;
    let max_attempts = worker.cfg.default_max_attempts.max(1);
    let (state, error, next_at) = match worker.caller.on_payment_event(&event).await {
        Ok(()) => (JobState::Done, None, worker.clock.now_millis()),
        Err(error) if attempt >= max_attempts => (JobState::Failed, Some(clip(&error)), worker.clock.now_millis()),
        Err(error) => (JobState::Pending, Some(clip(&error)), worker.retry_at(attempt)),
    };
    match (&state, &error) {
        (JobState::Done, _) => tracing::info!(kind = "event", instance = %event.provider, job = event.id, attempt, outcome = "done"),
        (_, error) => tracing::warn!(
            kind = "event", instance = %event.provider, job = event.id, attempt, max_attempts,
            outcome = state.as_str(), next_at, error = error.as_deref().unwrap_or_default()
        ),
    }
    if let Err(e) = worker.storage.event_record(event.id, lease, state, error.as_deref(), next_at).await {
        tracing::warn!(kind = "event", instance = %event.provider, job = event.id, error = %e, "could not record a payment event attempt; it may be handed over again");
    }
}
