//! Payment-system webhooks: the payment system's plugin verifies and parses the call,
//! then each normalised event is stored for its provider instance *before* the payment
//! system gets its answer, so an acknowledged event is never lost. Delivery to the
//! provider happens in the job worker, retried until the provider accepts it.

use crate::capabilities::bindings::payments::PaymentStatus;
use crate::capabilities::bindings::payments::Error as PaymentError;
use crate::capabilities::bindings::types;
use crate::runtime::failure::CallFailure;
use crate::runtime::instance::LoadedInstance;
use crate::runtime::Runtime;
use crate::storage::NewPaymentEvent;

pub async fn handle(runtime: &Runtime, instance: &LoadedInstance, request: types::Request) -> Result<types::Response, CallFailure> {
    let system = instance.name().to_string();
    let request_id = request.id.clone();
    let parsed = runtime
        .call_processor(&system, &request_id, move |store, ps| {
            Box::pin(async move { ps.payhost_gateway_processor().call_parse_webhook(store, &request).await })
        })
        .await?;
    let webhook = match parsed {
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
    let storage = &runtime.services.storage;
    let now = runtime.services.clock.now_millis();
    for event in webhook.events {
        let provider = storage
            .checkout_provider(&system, &event.reference)
            .await
            .map_err(|e| CallFailure::Unavailable(format!("storage: {e}")))?;
        let Some(provider) = provider else {
            // Not ours (another integration on the same account): acknowledge and log.
            tracing::warn!(system = %system, request = %request_id, reference = %event.reference, "payment event for an unknown reference; ignored");
            continue;
        };
        let status = match event.status {
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Pending => "pending",
        };
        let row = NewPaymentEvent {
            system: system.clone(),
            reference: event.reference,
            status: status.into(),
            amount: event.amount,
            currency: event.currency,
            external_id: event.external_id,
            saved_method: event.saved_method,
            message: event.message,
        };
        let (id, new) = storage
            .event_ingest(&provider, &row, now)
            .await
            .map_err(|e| CallFailure::Unavailable(format!("storage: {e}")))?;
        tracing::info!(system = %system, request = %request_id, provider = %provider, event = id, new, status, "payment event stored");
    }
    runtime.services.wake_jobs();
    Ok(webhook.response)
}

fn json(status: u16, message: &str) -> types::Response {
    types::Response {
        status,
        headers: vec![("content-type".into(), "application/json; charset=utf-8".into())],
        body: serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default(),
    }
}
