//! Off-session charges of a saved card: one confirmed PaymentIntent per reference.
//!
//! A decline is an outcome, not an error: Stripe answers HTTP 402 with the card error
//! (and the intent as it now stands), which becomes a `failed` event with the reason.

use payhost_sdk::payments::{ChargeRequest, Error, PaymentEvent, PaymentStatus};

use crate::amount;
use crate::api::{self, Failure, Form};
use crate::config::Config;
use crate::events::{self, FLOW_CHARGE, META_CUSTOMER, META_FLOW, META_REFERENCE};
use crate::objects::PaymentIntent;

/// The `POST /v1/payment_intents` body; errors are bad input.
pub fn intent_form(req: &ChargeRequest) -> Result<Form, String> {
    let token = req
        .saved_method
        .as_deref()
        .ok_or_else(|| "stripe charges need a saved card (saved_method from a checkout)".to_string())?;
    let (customer, method) = events::parse_saved_method(token)?;
    let currency = amount::stripe_currency(&req.currency)?;
    let minor = amount::to_minor(&req.amount, &req.currency)?;
    if req.reference.is_empty() {
        return Err("a charge needs a reference".into());
    }
    let mut form = Form::new();
    form.add("amount", minor.to_string())
        .add("currency", currency)
        .add("customer", customer)
        .add("payment_method", method)
        .add("off_session", "true")
        .add("confirm", "true")
        .add(format!("metadata[{META_REFERENCE}]"), req.reference.clone())
        .add(format!("metadata[{META_FLOW}]"), FLOW_CHARGE);
    if !req.description.trim().is_empty() {
        form.add("description", req.description.clone());
    }
    if !req.customer.is_empty() {
        form.add(format!("metadata[{META_CUSTOMER}]"), req.customer.clone());
    }
    Ok(form)
}

/// The event for a 402 card error; any other failure is not an outcome.
pub fn decline_event(req: &ChargeRequest, failure: Failure) -> Result<PaymentEvent, Error> {
    if failure.status != 402 {
        return Err(failure.into_error());
    }
    let message = failure.error.describe();
    let external_id = failure.error.payment_intent.as_ref().map(|pi| pi.id.clone()).unwrap_or_default();
    let currency = amount::stripe_currency(&req.currency).map_err(Error::Rejected)?;
    let minor = amount::to_minor(&req.amount, &currency).map_err(Error::Rejected)?;
    Ok(PaymentEvent {
        system: events::SYSTEM.into(),
        reference: req.reference.clone(),
        status: PaymentStatus::Failed,
        amount: amount::from_minor(minor, &currency),
        currency: currency.to_ascii_uppercase(),
        external_id,
        // The card stays saved; a later charge may go through.
        saved_method: req.saved_method.clone(),
        message: Some(message),
    })
}

pub fn charge(req: ChargeRequest) -> Result<PaymentEvent, Error> {
    let config = Config::load()?;
    let form = intent_form(&req).map_err(Error::Rejected)?;
    let key = api::idempotency_key("charge", &req.reference)?;
    let event = match api::post(&config, "/v1/payment_intents", &form, &key)? {
        Ok(body) => {
            let intent: PaymentIntent = api::parse(&body, "payment intent")?;
            events::intent_event(&intent, events::intent_outcome(&intent))
                .ok_or_else(|| Error::Other(format!("payment intent {} came back without our reference", intent.id)))?
        }
        Err(failure) => decline_event(&req, failure)?,
    };
    let status = format!("{:?}", event.status);
    payhost_sdk::info(
        "stripe off-session charge",
        &[("reference", &req.reference), ("payment_intent", &event.external_id), ("status", &status)],
    );
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::read_answer;

    fn request(saved: Option<&str>) -> ChargeRequest {
        ChargeRequest {
            amount: "19.99".into(),
            currency: "EUR".into(),
            description: "Renewal".into(),
            reference: "renewal-3".into(),
            customer: "sub-7".into(),
            saved_method: saved.map(str::to_owned),
        }
    }

    #[test]
    fn intent_form_confirms_off_session() {
        let form = intent_form(&request(Some("cus_A:pm_B"))).unwrap();
        assert_eq!(form.get("amount"), Some("1999"));
        assert_eq!(form.get("currency"), Some("eur"));
        assert_eq!(form.get("customer"), Some("cus_A"));
        assert_eq!(form.get("payment_method"), Some("pm_B"));
        assert_eq!(form.get("off_session"), Some("true"));
        assert_eq!(form.get("confirm"), Some("true"));
        assert_eq!(form.get("metadata[reference]"), Some("renewal-3"));
        assert_eq!(form.get("metadata[payhost_flow]"), Some("charge"));
        assert_eq!(form.get("description"), Some("Renewal"));
    }

    #[test]
    fn a_saved_card_is_required() {
        assert!(intent_form(&request(None)).unwrap_err().contains("saved card"));
        assert!(intent_form(&request(Some("pm_B"))).is_err());
    }

    #[test]
    fn a_402_card_decline_is_a_failed_event() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds",
            "message":"Your card has insufficient funds.",
            "payment_intent":{"id":"pi_declined","object":"payment_intent","amount":1999,"currency":"eur",
              "status":"requires_payment_method","metadata":{"reference":"renewal-3","payhost_flow":"charge"}}}}"#;
        let failure = read_answer(402, body.to_vec()).unwrap_err();
        let e = decline_event(&request(Some("cus_A:pm_B")), failure).unwrap();
        assert_eq!(e.status, PaymentStatus::Failed);
        assert_eq!(e.reference, "renewal-3");
        assert_eq!(e.amount, "19.99");
        assert_eq!(e.currency, "EUR");
        assert_eq!(e.external_id, "pi_declined");
        assert_eq!(e.message.as_deref(), Some("card_declined (insufficient_funds): Your card has insufficient funds."));
        assert_eq!(e.saved_method.as_deref(), Some("cus_A:pm_B"));
    }

    #[test]
    fn other_failures_stay_errors() {
        let failure = read_answer(400, br#"{"error":{"type":"invalid_request_error","message":"No such customer"}}"#.to_vec()).unwrap_err();
        assert!(matches!(decline_event(&request(Some("cus_A:pm_B")), failure), Err(Error::Rejected(m)) if m.contains("No such customer")));
        let failure = read_answer(503, Vec::new()).unwrap_err();
        assert!(matches!(decline_event(&request(Some("cus_A:pm_B")), failure), Err(Error::Unavailable(_))));
    }
}
