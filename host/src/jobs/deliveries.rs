//! Sending outbound deliveries: one HTTP attempt per claim, `done` on 2xx, otherwise
//! retried with backoff until the attempt limit. Bodies and headers are never logged
//! (they carry signatures); the URL is logged by host only.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{attempt_outcome, clip, JobKind, JobWorker};
use crate::storage::{DeliveryRequest, DeliveryRow, JobState, Lease, StorageResult};

/// How much of a refusing answer's body is kept as the attempt's error.
const ANSWER_SNIPPET: usize = 300;

pub(super) struct Deliveries;

impl JobKind for Deliveries {
    type Job = DeliveryRow;
    const NAME: &'static str = "deliveries";

    async fn claim(worker: &JobWorker, now: i64, lease: &Lease) -> StorageResult<Vec<DeliveryRow>> {
        worker.storage.delivery_claim_due(now, lease, worker.cfg.batch).await
    }

    async fn run(worker: &JobWorker, job: DeliveryRow, lease: &Lease) {
        deliver(worker, job, lease).await
    }
}

async fn deliver(worker: &JobWorker, delivery: DeliveryRow, lease: &Lease) {
    let max_attempts = match delivery.request.max_attempts {
        0 => worker.cfg.default_max_attempts,
        n => n,
    }
    .max(1);
    let attempt = delivery.attempts + 1;
    let outcome = send(&worker.http, &delivery.request, worker.cfg.delivery_timeout).await;
    let now = worker.clock.now_millis();
    let (state, status, error, next_at) = match outcome {
        Ok(status) => (JobState::Done, Some(status), None, now),
        Err(f) if f.permanent || attempt >= max_attempts => (JobState::Failed, f.status, Some(f.message), now),
        Err(f) => (JobState::Pending, f.status, Some(f.message), worker.retry_at(attempt)),
    };
    let host = reqwest::Url::parse(&delivery.request.url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    worker.cfg.metrics.job_attempt("delivery", attempt_outcome(state));
    match state {
        JobState::Done => tracing::info!(
            kind = "delivery", instance = %delivery.instance, job = %delivery.id, host = %host, attempt, status, outcome = "done"
        ),
        _ => tracing::warn!(
            kind = "delivery", instance = %delivery.instance, job = %delivery.id, host = %host, attempt, max_attempts, status,
            outcome = state.as_str(), next_at, "delivery attempt failed (the row's last_error says why)"
        ),
    }
    if let Err(e) = worker.storage.delivery_record(&delivery.id, lease, state, status, error.as_deref(), next_at).await {
        tracing::warn!(kind = "delivery", instance = %delivery.instance, job = %delivery.id, error = %e, "could not record a delivery attempt; it may be sent again");
    }
}

#[derive(Debug)]
struct SendFailure {
    status: Option<u16>,
    message: String,
    /// Retrying cannot help (the stored request itself is unusable).
    permanent: bool,
}

impl SendFailure {
    fn permanent(message: String) -> Self {
        Self { status: None, message, permanent: true }
    }
}

/// One attempt; `Ok` with the status on 2xx.
async fn send(http: &reqwest::Client, req: &DeliveryRequest, timeout: Duration) -> Result<u16, SendFailure> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| SendFailure::permanent(format!("`{}` is not an HTTP method", req.method)))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &req.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SendFailure::permanent(format!("`{name}` is not a valid header name")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| SendFailure::permanent(format!("the value of header `{name}` is not valid")))?;
        headers.append(name, value);
    }
    let sent = http.request(method, &req.url).headers(headers).body(req.body.clone()).timeout(timeout).send().await;
    let mut answer = match sent {
        Ok(answer) => answer,
        Err(e) if e.is_builder() => return Err(SendFailure::permanent(describe(e))),
        Err(e) => return Err(SendFailure { status: None, message: describe(e), permanent: false }),
    };
    let status = answer.status();
    if status.is_success() {
        return Ok(status.as_u16());
    }
    let mut snippet = Vec::new();
    while snippet.len() < ANSWER_SNIPPET {
        match answer.chunk().await {
            Ok(Some(chunk)) => snippet.extend_from_slice(&chunk),
            _ => break,
        }
    }
    snippet.truncate(ANSWER_SNIPPET);
    let snippet = String::from_utf8_lossy(&snippet);
    let message = if snippet.trim().is_empty() { format!("HTTP {}", status.as_u16()) } else { format!("HTTP {}: {}", status.as_u16(), snippet.trim()) };
    Err(SendFailure { status: Some(status.as_u16()), message: clip(&message), permanent: false })
}

/// The error and its causes, without the URL (its query may hold a token).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    clip(&text)
}
