//! Payment-system webhooks: the payment system's plugin verifies and parses the call,
//! then each normalised event is stored for its provider instance *before* the payment
//! system gets its answer, so an acknowledged event is never lost. Delivery to the
//! provider happens in the job worker, retried until the provider accepts it.

use std::sync::Arc;

use super::{event, ownership, PaymentSystems};
use crate::call_failure::CallFailure;
use crate::services::Services;
use crate::wit::payments::Error as PaymentError;
use crate::wit::types;

/// Handles a request to payment-system instance `system`'s mount.
pub async fn handle(
    systems: Arc<dyn PaymentSystems>,
    services: &Services,
    system: &str,
    request: types::Request,
) -> Result<types::Response, CallFailure> {
    let request_id = request.id.clone();
    let webhook = match systems.parse_webhook(system, request).await? {
        Ok(w) => w,
        Err(PaymentError::BadSignature(why)) => {
            tracing::warn!(system = %system, request = %request_id, reason = %why, "webhook refused: bad signature");
            return Ok(json(400, "webhook signature verification failed"));
        }
        Err(PaymentError::Unavailable(why)) => {
            // The payment system retries a 5xx: right when the plugin could not reach it.
            tracing::warn!(system = %system, request = %request_id, reason = %why, "webhook not processed: payment system unavailable");
            return Ok(json(503, "webhook could not be processed now; retry later"));
        }
        Err(other) => {
            tracing::warn!(system = %system, request = %request_id, error = ?other, "webhook refused");
            return Ok(json(400, "webhook could not be processed"));
        }
    };
    let storage = services.storage.as_ref();
    let now = services.clock.now_millis();
    for reported in webhook.events {
        let provider = ownership::owner(storage, system, &reported.reference)
            .await
            .map_err(|e| CallFailure::Unavailable(format!("storage: {e}")))?;
        let Some(provider) = provider else {
            // Not ours (another integration on the same account): acknowledge and log.
            tracing::warn!(system = %system, request = %request_id, reference = %reported.reference, "payment event for an unknown reference; ignored");
            continue;
        };
        let row = event::to_store(system, reported);
        let status = row.status.as_str();
        let (id, new) = storage
            .event_ingest(&provider, &row, now)
            .await
            .map_err(|e| CallFailure::Unavailable(format!("storage: {e}")))?;
        tracing::info!(system = %system, request = %request_id, provider = %provider, event = id, new, status, "payment event stored");
    }
    services.wake_jobs();
    Ok(webhook.response)
}

fn json(status: u16, message: &str) -> types::Response {
    types::Response {
        status,
        headers: vec![("content-type".into(), "application/json; charset=utf-8".into())],
        body: serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default(),
    }
}
