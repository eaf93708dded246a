//! Refunds of a payment, whole or partial, through `POST /v1/refunds`.
//!
//! The idempotency key is the payment and the amount, so a retried refund call cannot
//! refund twice; the cost is that two separate partial refunds of the same amount on one
//! payment need a different amount (or the Stripe dashboard), since `refund` carries no
//! reference of its own.

use payhost_sdk::payments::{Error, PaymentStatus, RefundResult};

use crate::amount;
use crate::api::{self, Form};
use crate::config::Config;
use crate::events::META_FLOW;
use crate::objects::{expandable_id, Refund};
use crate::retrieve;

/// A refund's `status` as a payment status.
pub fn refund_status(status: Option<&str>) -> PaymentStatus {
    match status {
        Some("succeeded") => PaymentStatus::Succeeded,
        Some("failed" | "canceled") => PaymentStatus::Failed,
        _ => PaymentStatus::Pending,
    }
}

/// The refund body and its idempotency suffix; `minor` is `None` for the whole payment.
pub fn refund_form(intent_id: &str, minor: Option<i64>) -> (Form, String) {
    let mut form = Form::new();
    form.add("payment_intent", intent_id).add(format!("metadata[{META_FLOW}]"), "refund");
    let suffix = match minor {
        Some(minor) => {
            form.add("amount", minor.to_string());
            format!("{intent_id}-{minor}")
        }
        None => format!("{intent_id}-full"),
    };
    (form, suffix)
}

pub fn refund(external_id: &str, amount: Option<String>) -> Result<RefundResult, Error> {
    if !api::is_id(external_id) {
        return Err(Error::NotFound(format!("`{external_id}` is not a Stripe id")));
    }
    let config = Config::load()?;
    let intent_id = if external_id.starts_with("pi_") {
        external_id.to_string()
    } else if external_id.starts_with("cs_") {
        let session = retrieve::session(&config, external_id)?;
        expandable_id(&session.payment_intent)
            .filter(|id| api::is_id(id))
            .ok_or_else(|| Error::Rejected(format!("checkout session {external_id} has no payment to refund")))?
    } else {
        return Err(Error::NotFound(format!(
            "`{external_id}` is neither a checkout session (cs_) nor a payment intent (pi_)"
        )));
    };
    let minor = match amount {
        None => None,
        Some(text) => {
            // The amount is in the payment's currency, which only Stripe knows here.
            let intent = retrieve::intent(&config, &intent_id)?;
            Some(amount::to_minor(&text, &intent.currency).map_err(Error::Rejected)?)
        }
    };
    let (form, suffix) = refund_form(&intent_id, minor);
    let key = api::idempotency_key("refund", &suffix)?;
    let body = api::post(&config, "/v1/refunds", &form, &key)?.map_err(|f| f.into_error())?;
    let refund: Refund = api::parse(&body, "refund")?;
    payhost_sdk::info(
        "stripe refund",
        &[("payment_intent", &intent_id), ("refund", &refund.id), ("status", refund.status.as_deref().unwrap_or("?"))],
    );
    Ok(RefundResult {
        external_id: refund.id,
        amount: amount::from_minor(refund.amount, &refund.currency),
        status: refund_status(refund.status.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_statuses() {
        assert_eq!(refund_status(Some("succeeded")), PaymentStatus::Succeeded);
        assert_eq!(refund_status(Some("pending")), PaymentStatus::Pending);
        assert_eq!(refund_status(Some("requires_action")), PaymentStatus::Pending);
        assert_eq!(refund_status(Some("failed")), PaymentStatus::Failed);
        assert_eq!(refund_status(Some("canceled")), PaymentStatus::Failed);
        assert_eq!(refund_status(None), PaymentStatus::Pending);
    }

    #[test]
    fn refund_forms_and_keys() {
        let (form, suffix) = refund_form("pi_1", None);
        assert_eq!(form.get("payment_intent"), Some("pi_1"));
        assert_eq!(form.get("amount"), None);
        assert_eq!(suffix, "pi_1-full");
        let (form, suffix) = refund_form("pi_1", Some(500));
        assert_eq!(form.get("amount"), Some("500"));
        assert_eq!(suffix, "pi_1-500");
    }
}
