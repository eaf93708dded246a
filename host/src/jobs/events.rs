//! Handing payment events to the provider instance that started the checkout, until its
//! `on-payment-event` returns ok or the attempts run out.

use super::{attempt_outcome, clip, JobKind, JobWorker};
use crate::storage::{JobState, Lease, PaymentEventRow, StorageResult};

pub(super) struct PaymentEvents;

impl JobKind for PaymentEvents {
    type Job = PaymentEventRow;
    const NAME: &'static str = "payment events";

    async fn claim(worker: &JobWorker, now: i64, lease: &Lease) -> StorageResult<Vec<PaymentEventRow>> {
        worker.storage.event_claim_due(now, lease, worker.cfg.batch).await
    }

    async fn run(worker: &JobWorker, job: PaymentEventRow, lease: &Lease) {
        hand_over(worker, job, lease).await
    }
}

async fn hand_over(worker: &JobWorker, event: PaymentEventRow, lease: &Lease) {
    let attempt = event.attempts + 1;
    let max_attempts = worker.cfg.default_max_attempts.max(1);
    let error = match worker.caller.on_payment_event(&event).await {
        // The provider's store writes and the event's `done` commit together: a crash
        // before the commit leaves both undone, and the event is handed over again.
        Ok(writes) => match worker.storage.event_complete(event.id, lease, &event.provider, &writes).await {
            Ok(true) => {
                worker.cfg.metrics.job_attempt("event", "done");
                tracing::info!(kind = "event", instance = %event.provider, job = event.id, attempt, outcome = "done");
                return;
            }
            Ok(false) => "the lease was lost or the provider's store changed meanwhile; handing it over again".to_string(),
            Err(e) => format!("could not commit the provider's result: {e}"),
        },
        Err(failure) => {
            tracing::debug!(kind = "event", instance = %event.provider, job = event.id, failure = failure.kind(), "the provider did not take the event");
            failure.detail()
        }
    };
    let (state, next_at) = if attempt >= max_attempts {
        (JobState::Failed, worker.clock.now_millis())
    } else {
        (JobState::Pending, worker.retry_at(attempt))
    };
    let error = clip(&error);
    worker.cfg.metrics.job_attempt("event", attempt_outcome(state));
    tracing::warn!(kind = "event", instance = %event.provider, job = event.id, attempt, max_attempts, outcome = state.as_str(), next_at, %error);
    if let Err(e) = worker.storage.event_record(event.id, lease, state, Some(&error), next_at).await {
        tracing::warn!(kind = "event", instance = %event.provider, job = event.id, error = %e, "could not record a payment event attempt; it may be handed over again");
    }
}
