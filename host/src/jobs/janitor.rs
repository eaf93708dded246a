//! The janitor for unknown outcomes: a hosted checkout or off-session charge that the
//! payment system has an id for, but whose final event never arrived (a lost webhook,
//! a charge left pending), is looked up through the payment system's `lookup-payment`
//! once it is older than the configured age. A final answer is stored as an ordinary
//! payment event, so the provider receives it through the same exactly-once path as a
//! webhook's (events are unique per system, payment id and status: a webhook arriving
//! later adds nothing). A payment still pending is asked about again with backoff.

use std::time::Duration;

use super::{backoff, clip, JobKind, JobWorker};
use crate::call_failure::CallFailure;
use crate::storage::{Lease, LookupResult, PaymentStatus, StorageResult, TrackedPayment};

/// When and how often the janitor looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JanitorConfig {
    /// A payment with no final outcome this long after it started is looked up.
    pub after: Duration,
    /// How often (host clock) the janitor looks for such payments.
    pub scan_interval: Duration,
    /// Wait before asking again about a payment still pending (doubling, up to `recheck_max`).
    pub recheck: Duration,
    pub recheck_max: Duration,
}

impl Default for JanitorConfig {
    fn default() -> Self {
        Self {
            after: Duration::from_secs(900),
            scan_interval: Duration::from_secs(30),
            recheck: Duration::from_secs(300),
            recheck_max: Duration::from_secs(6 * 3600),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Why a lookup gave no answer.
#[derive(Debug)]
pub enum LookupFailure {
    /// The call into the payment system failed (no such instance, trap, deadline).
    Call(CallFailure),
    /// The payment system answered with an error (unknown payment, unavailable, ...).
    Refused(String),
}

impl std::fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupFailure::Call(failure) => write!(f, "{}", failure.detail()),
            LookupFailure::Refused(why) => f.write_str(why),
        }
    }
}

pub(super) struct Janitor;

impl JobKind for Janitor {
    type Job = TrackedPayment;
    const NAME: &'static str = "unsettled payments";

    /// At most one scan per scan interval of host time; each leases the payments due.
    async fn claim(worker: &JobWorker, now: i64, lease: &Lease) -> StorageResult<Vec<TrackedPayment>> {
        let Some(cfg) = &worker.cfg.janitor else { return Ok(vec![]) };
        {
            let mut next = worker.janitor_next_scan.lock().unwrap_or_else(|p| p.into_inner());
            if now < *next {
                return Ok(vec![]);
            }
            *next = now.saturating_add(ms(cfg.scan_interval));
        }
        worker.storage.unsettled_claim(now.saturating_sub(ms(cfg.after)), now, lease.until, worker.cfg.batch).await
    }

    async fn run(worker: &JobWorker, job: TrackedPayment, _lease: &Lease) {
        if let Some(cfg) = &worker.cfg.janitor {
            look_up(worker, cfg, job).await
        }
    }
}

async fn look_up(worker: &JobWorker, cfg: &JanitorConfig, payment: TrackedPayment) {
    let external_id = payment.external_id.clone().unwrap_or_default();
    let again = |now: i64| backoff::next_at(now, payment.lookups + 1, cfg.recheck, cfg.recheck_max);
    let answer = worker.caller.lookup_payment(&payment.system, &external_id).await;
    let now = worker.clock.now_millis();
    let (result, outcome) = match answer {
        Ok(event) if event.status == PaymentStatus::Pending => (LookupResult::Pending { next_at: again(now) }, "pending"),
        Ok(event) if event.reference != payment.reference => {
            let error = format!("the payment system answered for reference `{}`, not `{}`", event.reference, payment.reference);
            (LookupResult::Failed { next_at: again(now), error }, "error")
        }
        Ok(event) => match worker.storage.event_ingest(&payment.provider, &event, now).await {
            Ok((id, new)) => {
                tracing::info!(
                    kind = "janitor", system = %payment.system, provider = %payment.provider, event = id, new,
                    status = event.status.as_str(), "unsettled payment settled by lookup"
                );
                (LookupResult::Settled, "settled")
            }
            Err(e) => (LookupResult::Failed { next_at: again(now), error: format!("storing the looked-up event: {e}") }, "error"),
        },
        Err(failure) => (LookupResult::Failed { next_at: again(now), error: clip(&failure.to_string()) }, "error"),
    };
    worker.cfg.metrics.lookup(&payment.system, outcome);
    if let LookupResult::Failed { error, .. } = &result {
        tracing::warn!(kind = "janitor", system = %payment.system, provider = %payment.provider, %error, "payment lookup failed");
    }
    if let Err(e) = worker.storage.unsettled_record(&payment.system, &payment.reference, &result, now).await {
        tracing::warn!(kind = "janitor", system = %payment.system, error = %e, "could not record a payment lookup");
    }
}
