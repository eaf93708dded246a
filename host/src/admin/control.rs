//! Job control: `POST /{deliveries|timers|events}/{id}/{retry|cancel}` with a reason.
//!
//! - retry: a pending job is due now; a delivery or payment event that was given up
//!   (`failed`) gets one more attempt (and is given up again if that fails);
//! - cancel: a pending or given-up delivery or payment event becomes `cancelled` and is
//!   never attempted again; a timer is removed.
//!
//! A job whose attempt is running (leased) answers 409 `busy`; one that ended (`done`,
//! `cancelled`) answers 409 `ended`. The reason is kept in the audit trail.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ok, AdminError, Answer};
use crate::services::Services;
use crate::storage::{ControlOutcome, JobAction, JobRef};

/// Longest reason kept.
const MAX_REASON: usize = 500;

/// Body of a retry or cancel.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// Why (kept in the audit trail); 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// What a retry or cancel did.
#[derive(Serialize, ToSchema)]
pub struct ControlAnswer {
    /// `delivery`, `timer` or `event`.
    pub kind: String,
    pub id: String,
    /// `retry` or `cancel`.
    pub action: String,
    /// The job's state now: `pending` (deliveries, events), `scheduled` (timers) or `cancelled`.
    pub state: String,
    pub reason: String,
}

/// The job a path names: `kind` is the list's name, `id` its still-encoded id.
fn job_ref(kind: &str, id: &str) -> Result<JobRef, AdminError> {
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
    match kind {
        "deliveries" => Ok(JobRef::Delivery(id)),
        "timers" | "events" => {
            let n: i64 = id.parse().map_err(|_| AdminError::not_found(&format!("no {kind} job {id}: ids of {kind} are numbers")))?;
            Ok(if kind == "timers" { JobRef::Timer(n) } else { JobRef::Event(n) })
        }
        _ => Err(AdminError::not_found(&format!("no job list /{kind}"))),
    }
}

fn reason(body: &[u8]) -> Result<String, AdminError> {
    let req: ControlRequest = serde_json::from_slice(body)
        .map_err(|e| AdminError::bad_request(&format!("body must be JSON like {{\"reason\": \"customer called, ticket 12\"}}: {e}")))?;
    let reason = req.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(AdminError::bad_request(&format!("reason must be 1 to {MAX_REASON} characters: say why, for the audit trail")));
    }
    Ok(reason)
}

/// Retries or cancels one job.
pub async fn control(services: &Services, kind: &str, id: &str, action: JobAction, body: &[u8]) -> Answer {
    let job = match job_ref(kind, id) {
        Ok(job) => job,
        Err(e) => return e.answer(),
    };
    let reason = match reason(body) {
        Ok(r) => r,
        Err(e) => return e.answer(),
    };
    let now = services.clock.now_millis();
    match services.storage.job_control(&job, action, now).await {
        Ok(ControlOutcome::Applied { state }) => {
            services.wake_jobs();
            tracing::info!(kind = job.kind(), job = %job.id(), action = action.as_str(), %state, %reason, "job control");
            ok(&ControlAnswer { kind: job.kind().into(), id: job.id(), action: action.as_str().into(), state, reason })
        }
        Ok(ControlOutcome::NotFound) => AdminError::not_found(&format!("no {} {}", job.kind(), job.id())).answer(),
        Ok(ControlOutcome::Busy { leased_until }) => AdminError::conflict(
            "busy",
            &format!("{} {} is being attempted now (leased until {leased_until} ms); try again when the attempt ends", job.kind(), job.id()),
        )
        .answer(),
        Ok(ControlOutcome::Ended { state }) => {
            AdminError::conflict("ended", &format!("{} {} has ended ({state}): nothing to {}", job.kind(), job.id(), action.as_str())).answer()
        }
        Err(e) => AdminError::backend(&e.to_string()).answer(),
    }
}

#[utoipa::path(post, path = "/deliveries/{id}/retry", tag = "jobs", request_body = ControlRequest,
    params(("id" = String, Path, description = "Delivery id (`dl_…`)")),
    responses(
        (status = 200, description = "Due now (a given-up delivery gets one more attempt)", body = ControlAnswer),
        (status = 400, description = "No reason given", body = AdminError),
        (status = 404, description = "No such delivery", body = AdminError),
        (status = 409, description = "Being attempted now (`busy`) or already ended (`ended`)", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_delivery_retry() {}

#[utoipa::path(post, path = "/deliveries/{id}/cancel", tag = "jobs", request_body = ControlRequest,
    params(("id" = String, Path, description = "Delivery id (`dl_…`)")),
    responses(
        (status = 200, description = "Cancelled: never sent", body = ControlAnswer),
        (status = 400, description = "No reason given", body = AdminError),
        (status = 404, description = "No such delivery", body = AdminError),
        (status = 409, description = "Being attempted now (`busy`) or already ended (`ended`)", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_delivery_cancel() {}

#[utoipa::path(post, path = "/events/{id}/retry", tag = "jobs", request_body = ControlRequest,
    params(("id" = i64, Path, description = "Payment event id")),
    responses(
        (status = 200, description = "Handed to the provider now (a given-up event gets one more attempt)", body = ControlAnswer),
        (status = 400, description = "No reason given", body = AdminError),
        (status = 404, description = "No such event", body = AdminError),
        (status = 409, description = "Being handed over now (`busy`) or already ended (`ended`)", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_event_retry() {}

#[utoipa::path(post, path = "/events/{id}/cancel", tag = "jobs", request_body = ControlRequest,
    params(("id" = i64, Path, description = "Payment event id")),
    responses(
        (status = 200, description = "Cancelled: the provider is not handed this event", body = ControlAnswer),
        (status = 400, description = "No reason given", body = AdminError),
        (status = 404, description = "No such event", body = AdminError),
        (status = 409, description = "Being handed over now (`busy`) or already ended (`ended`)", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_event_cancel() {}

#[utoipa::path(post, path = "/timers/{id}/retry", tag = "jobs", request_body = ControlRequest,
    params(("id" = i64, Path, description = "Timer id (changes when the timer is rescheduled)")),
    responses(
        (status = 200, description = "Fires now", body = ControlAnswer),
        (status = 400, description = "No reason given", body = AdminError),
        (status = 404, description = "No such timer", body = AdminError),
        (status = 409, description = "Firing now (`busy`)", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_timer_retry() {}

#[utoipa::path(post, path = "/timers/{id}/cancel", tag = "jobs", request_body = ControlRequest,
    params(("id" = i64, Path, description = "Timer id (changes when the timer is rescheduled)")),
    responses(
        (status = 200, description = "Removed: never fires", body = ControlAnswer),
        (status = 400, description = "No reason given", body = AdminError),
        (status = 404, description = "No such timer", body = AdminError),
        (status = 409, description = "Firing now (`busy`)", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_timer_cancel() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_jobs_by_kind() {
        assert_eq!(job_ref("deliveries", "dl_1").unwrap(), JobRef::Delivery("dl_1".into()));
        assert_eq!(job_ref("timers", "7").unwrap(), JobRef::Timer(7));
        assert_eq!(job_ref("events", "9").unwrap(), JobRef::Event(9));
        assert_eq!(job_ref("events", "x").unwrap_err().status, hyper::StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_reason_is_required() {
        assert_eq!(reason(br#"{"reason": " ticket 12 "}"#).unwrap(), "ticket 12");
        assert!(reason(br#"{"reason": "  "}"#).is_err());
        assert!(reason(br#"{}"#).is_err());
        assert!(reason(format!(r#"{{"reason": "{}"}}"#, "x".repeat(501)).as_bytes()).is_err());
    }
}
