//! Stripe objects and webhook events -> normalised payment events.
//!
//! Which Stripe event reports what:
//! - a hosted checkout ends in `checkout.session.completed` (paid now, or `unpaid` while an
//!   asynchronous method settles), then `checkout.session.async_payment_succeeded|failed`,
//!   or `checkout.session.expired` when the buyer never paid;
//! - an off-session charge ends in `payment_intent.succeeded` / `payment_intent.payment_failed`.
//!
//! Checkout's own PaymentIntent also emits `payment_intent.*` events; those are ignored
//! (the session events already report them), told apart by the `payhost_flow` metadata
//! this plugin sets on every object it creates. Objects without our reference are not
//! ours (another integration on the same account) and give no event.

use payhost_sdk::payments::{PaymentEvent, PaymentStatus};

use crate::amount;
use crate::objects::{expandable_id, Event, PaymentIntent, Session};

/// Metadata keys this plugin writes on Stripe objects.
pub const META_REFERENCE: &str = "reference";
pub const META_FLOW: &str = "payhost_flow";
pub const META_SAVE_CARD: &str = "save_card";
pub const META_CUSTOMER: &str = "customer";
pub const FLOW_CHECKOUT: &str = "checkout";
pub const FLOW_CHARGE: &str = "charge";

/// The name events carry in `system`; the host knows the instance's real name.
pub const SYSTEM: &str = "stripe";

/// A status with the reason a person would want for a failure.
pub type Outcome = (PaymentStatus, Option<String>);

/// What a verified webhook asks of us.
#[derive(Debug)]
pub enum Action {
    /// Not an event we act on (type or object not ours); acknowledge it.
    Ignore(String),
    /// A checkout session reached this outcome.
    Session(Box<Session>, Outcome),
    /// An off-session charge reached an outcome.
    Intent(Box<PaymentIntent>),
}

/// Decides what a webhook event means; an error is an event of ours we cannot read.
pub fn classify(event: &Event) -> Result<Action, String> {
    let read_session = || -> Result<Session, String> {
        serde_json::from_value(event.data.object.clone())
            .map_err(|e| format!("event {} ({}): unreadable checkout session: {e}", event.id, event.kind))
    };
    let session_action = |outcome: Option<Outcome>| -> Result<Action, String> {
        let session = read_session()?;
        if reference(&session.metadata, session.client_reference_id.as_deref()).is_none() {
            return Ok(Action::Ignore(format!("session {} has no payhost reference", session.id)));
        }
        let outcome = outcome.unwrap_or_else(|| session_outcome(&session));
        Ok(Action::Session(Box::new(session), outcome))
    };
    match event.kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => session_action(None),
        "checkout.session.async_payment_failed" => session_action(Some((
            PaymentStatus::Failed,
            Some("the payment failed after checkout".into()),
        ))),
        "checkout.session.expired" => session_action(Some((
            PaymentStatus::Failed,
            Some("the checkout session expired without payment".into()),
        ))),
        "payment_intent.succeeded" | "payment_intent.payment_failed" => {
            let intent: PaymentIntent = serde_json::from_value(event.data.object.clone())
                .map_err(|e| format!("event {} ({}): unreadable payment intent: {e}", event.id, event.kind))?;
            let ours = intent.metadata.get(META_FLOW).map(String::as_str) == Some(FLOW_CHARGE)
                && intent.metadata.contains_key(META_REFERENCE);
            if ours {
                Ok(Action::Intent(Box::new(intent)))
            } else {
                Ok(Action::Ignore(format!("payment intent {} is not an off-session charge of ours", intent.id)))
            }
        }
        other => Ok(Action::Ignore(format!("event type {other} is not used"))),
    }
}

/// Our reference: the metadata we set, else `client_reference_id` (also ours).
pub fn reference(metadata: &std::collections::BTreeMap<String, String>, client_reference_id: Option<&str>) -> Option<String> {
    metadata
        .get(META_REFERENCE)
        .map(String::as_str)
        .or(client_reference_id)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}

/// A session's state as it stands (used by `lookup` and `completed` events).
pub fn session_outcome(session: &Session) -> Outcome {
    match (session.status.as_deref(), session.payment_status.as_deref()) {
        (_, Some("paid" | "no_payment_required")) => (PaymentStatus::Succeeded, None),
        (Some("expired"), _) => (
            PaymentStatus::Failed,
            Some("the checkout session expired without payment".into()),
        ),
        _ => (PaymentStatus::Pending, None),
    }
}

/// Whether the buyer asked to keep the card and the session paid: then the saved method
/// must be read from the session's PaymentIntent (the session does not carry it).
pub fn wants_saved_method(session: &Session, outcome: &Outcome) -> Option<String> {
    let asked = session.metadata.get(META_SAVE_CARD).map(String::as_str) == Some("true");
    if asked && outcome.0 == PaymentStatus::Succeeded {
        expandable_id(&session.payment_intent)
    } else {
        None
    }
}

/// The event for a session; `None` when it carries no reference of ours.
pub fn session_event(session: &Session, outcome: Outcome, saved_method: Option<String>) -> Result<Option<PaymentEvent>, String> {
    let Some(reference) = reference(&session.metadata, session.client_reference_id.as_deref()) else {
        return Ok(None);
    };
    let (Some(total), Some(currency)) = (session.amount_total, session.currency.as_deref()) else {
        return Err(format!("checkout session {} has no amount_total/currency", session.id));
    };
    let (status, message) = outcome;
    Ok(Some(PaymentEvent {
        system: SYSTEM.into(),
        reference,
        status,
        amount: amount::from_minor(total, currency),
        currency: amount::lowercase_code(currency).to_ascii_uppercase(),
        // The payment's id once Stripe made one; refunds and lookups accept either.
        external_id: expandable_id(&session.payment_intent).unwrap_or_else(|| session.id.clone()),
        saved_method,
        message,
    }))
}

/// A PaymentIntent's state as it stands.
pub fn intent_outcome(intent: &PaymentIntent) -> Outcome {
    match intent.status.as_str() {
        "succeeded" => (PaymentStatus::Succeeded, None),
        "processing" | "requires_capture" => (PaymentStatus::Pending, None),
        "canceled" => {
            let reason = intent.cancellation_reason.as_deref().unwrap_or("canceled");
            (PaymentStatus::Failed, Some(format!("the payment was canceled ({reason})")))
        }
        _ => match &intent.last_payment_error {
            Some(error) => (PaymentStatus::Failed, Some(error.describe())),
            None => (PaymentStatus::Pending, None),
        },
    }
}

/// The event for a PaymentIntent; `None` when it carries no reference of ours.
pub fn intent_event(intent: &PaymentIntent, outcome: Outcome) -> Option<PaymentEvent> {
    let reference = reference(&intent.metadata, None)?;
    let (status, message) = outcome;
    Some(PaymentEvent {
        system: SYSTEM.into(),
        reference,
        status,
        amount: amount::from_minor(intent.amount, &intent.currency),
        currency: amount::lowercase_code(&intent.currency).to_ascii_uppercase(),
        external_id: intent.id.clone(),
        saved_method: intent_saved_method(intent, None),
        message,
    })
}

/// `cus_...:pm_...` when the intent's card is kept for off-session use (saved at checkout,
/// or the saved card an off-session charge used). `customer` overrides the intent's own.
pub fn intent_saved_method(intent: &PaymentIntent, customer: Option<String>) -> Option<String> {
    let kept = intent.setup_future_usage.as_deref() == Some("off_session")
        || intent.metadata.get(META_FLOW).map(String::as_str) == Some(FLOW_CHARGE);
    if !kept {
        return None;
    }
    let customer = customer.or_else(|| expandable_id(&intent.customer))?;
    let method = expandable_id(&intent.payment_method)?;
    Some(format_saved_method(&customer, &method))
}

pub fn format_saved_method(customer: &str, payment_method: &str) -> String {
    format!("{customer}:{payment_method}")
}

/// Splits `cus_...:pm_...` back into the customer and payment method ids.
pub fn parse_saved_method(token: &str) -> Result<(String, String), String> {
    let (customer, method) = token
        .split_once(':')
        .ok_or_else(|| "a Stripe saved method looks like `cus_...:pm_...`".to_string())?;
    if crate::api::is_id(customer) && crate::api::is_id(method) {
        Ok((customer.into(), method.into()))
    } else {
        Err("a Stripe saved method looks like `cus_...:pm_...`".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn event(kind: &str, object: Value) -> Event {
        serde_json::from_value(json!({
            "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
            "object": "event",
            "api_version": "2024-06-20",
            "created": 1686089970,
            "livemode": false,
            "pending_webhooks": 1,
            "type": kind,
            "data": { "object": object }
        }))
        .unwrap()
    }

    fn completed_session(payment_status: &str, save_card: bool) -> Value {
        let mut metadata = json!({ "reference": "order-42", "payhost_flow": "checkout", "customer": "sub-7" });
        if save_card {
            metadata["save_card"] = json!("true");
        }
        json!({
            "id": "cs_test_a1b2",
            "object": "checkout.session",
            "amount_subtotal": 30000,
            "amount_total": 30000,
            "client_reference_id": "order-42",
            "currency": "usd",
            "customer": if save_card { json!("cus_9s6XKzkNRiz8i3") } else { Value::Null },
            "livemode": false,
            "metadata": metadata,
            "mode": "payment",
            "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "payment_status": payment_status,
            "status": "complete",
            "success_url": "https://example.com/return",
            "url": null
        })
    }

    fn intent(status: &str, flow: &str, error: Option<Value>) -> Value {
        json!({
            "id": "pi_3Off",
            "object": "payment_intent",
            "amount": 1999,
            "amount_received": if status == "succeeded" { 1999 } else { 0 },
            "currency": "eur",
            "customer": "cus_A",
            "payment_method": "pm_B",
            "metadata": { "reference": "renewal-3", "payhost_flow": flow },
            "status": status,
            "setup_future_usage": null,
            "last_payment_error": error,
        })
    }

    fn session_of(action: Action) -> (Session, Outcome) {
        match action {
            Action::Session(s, o) => (*s, o),
            other => panic!("expected a session, got {other:?}"),
        }
    }

    #[test]
    fn completed_and_paid_is_succeeded() {
        let (session, outcome) = session_of(classify(&event("checkout.session.completed", completed_session("paid", false))).unwrap());
        assert_eq!(outcome.0, PaymentStatus::Succeeded);
        assert_eq!(wants_saved_method(&session, &outcome), None);
        let e = session_event(&session, outcome, None).unwrap().unwrap();
        assert_eq!(e.reference, "order-42");
        assert_eq!(e.status, PaymentStatus::Succeeded);
        assert_eq!(e.amount, "300.00");
        assert_eq!(e.currency, "USD");
        assert_eq!(e.external_id, "pi_3MtwBwLkdIwHu7ix28a3tqPa");
        assert_eq!(e.saved_method, None);
        assert_eq!(e.message, None);
    }

    #[test]
    fn completed_with_saved_card_needs_the_intent() {
        let (session, outcome) = session_of(classify(&event("checkout.session.completed", completed_session("paid", true))).unwrap());
        assert_eq!(wants_saved_method(&session, &outcome), Some("pi_3MtwBwLkdIwHu7ix28a3tqPa".into()));
        let pi: PaymentIntent = serde_json::from_value(json!({
            "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "object": "payment_intent", "amount": 30000,
            "currency": "usd", "status": "succeeded", "customer": "cus_9s6XKzkNRiz8i3",
            "payment_method": {"id": "pm_1Q0PsIJvEtkwdCNYMSaVuRz6", "object": "payment_method"},
            "setup_future_usage": "off_session",
            "metadata": {"reference": "order-42", "payhost_flow": "checkout"}
        }))
        .unwrap();
        let saved = intent_saved_method(&pi, expandable_id(&session.customer));
        assert_eq!(saved.as_deref(), Some("cus_9s6XKzkNRiz8i3:pm_1Q0PsIJvEtkwdCNYMSaVuRz6"));
        let e = session_event(&session, outcome, saved).unwrap().unwrap();
        assert_eq!(e.saved_method.as_deref(), Some("cus_9s6XKzkNRiz8i3:pm_1Q0PsIJvEtkwdCNYMSaVuRz6"));
    }

    #[test]
    fn completed_but_unpaid_is_pending() {
        let (session, outcome) = session_of(classify(&event("checkout.session.completed", completed_session("unpaid", true))).unwrap());
        assert_eq!(outcome.0, PaymentStatus::Pending);
        assert_eq!(wants_saved_method(&session, &outcome), None);
    }

    #[test]
    fn async_failure_and_expiry_are_failed() {
        let (_, outcome) = session_of(classify(&event("checkout.session.async_payment_failed", completed_session("unpaid", false))).unwrap());
        assert_eq!(outcome.0, PaymentStatus::Failed);
        assert!(outcome.1.unwrap().contains("failed"));
        let mut expired = completed_session("unpaid", false);
        expired["status"] = json!("expired");
        expired["payment_intent"] = Value::Null;
        let (session, outcome) = session_of(classify(&event("checkout.session.expired", expired)).unwrap());
        assert_eq!(outcome.0, PaymentStatus::Failed);
        let e = session_event(&session, outcome, None).unwrap().unwrap();
        assert_eq!(e.external_id, "cs_test_a1b2", "no payment intent: the session id stands in");
        assert!(e.message.unwrap().contains("expired"));
        assert_eq!(session_outcome(&session).0, PaymentStatus::Failed);
    }

    #[test]
    fn sessions_without_our_reference_are_ignored() {
        let mut foreign = completed_session("paid", false);
        foreign["metadata"] = json!({});
        foreign["client_reference_id"] = Value::Null;
        assert!(matches!(classify(&event("checkout.session.completed", foreign)).unwrap(), Action::Ignore(_)));
        // client_reference_id alone is enough.
        let mut only_client_ref = completed_session("paid", false);
        only_client_ref["metadata"] = json!({});
        let (session, outcome) = session_of(classify(&event("checkout.session.completed", only_client_ref)).unwrap());
        assert_eq!(session_event(&session, outcome, None).unwrap().unwrap().reference, "order-42");
    }

    #[test]
    fn unrelated_types_are_ignored() {
        for kind in ["customer.created", "charge.succeeded", "invoice.paid"] {
            assert!(matches!(classify(&event(kind, json!({"id": "x"}))).unwrap(), Action::Ignore(_)));
        }
    }

    #[test]
    fn off_session_intents_map_success_and_decline() {
        let Action::Intent(pi) = classify(&event("payment_intent.succeeded", intent("succeeded", "charge", None))).unwrap() else {
            panic!("expected an intent");
        };
        let e = intent_event(&pi, intent_outcome(&pi)).unwrap();
        assert_eq!((e.status, e.amount.as_str(), e.currency.as_str()), (PaymentStatus::Succeeded, "19.99", "EUR"));
        assert_eq!(e.reference, "renewal-3");
        assert_eq!(e.saved_method.as_deref(), Some("cus_A:pm_B"));

        let decline = json!({"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined."});
        let Action::Intent(pi) = classify(&event("payment_intent.payment_failed", intent("requires_payment_method", "charge", Some(decline)))).unwrap() else {
            panic!("expected an intent");
        };
        let e = intent_event(&pi, intent_outcome(&pi)).unwrap();
        assert_eq!(e.status, PaymentStatus::Failed);
        assert_eq!(e.message.as_deref(), Some("card_declined (generic_decline): Your card was declined."));
    }

    #[test]
    fn checkout_intents_are_left_to_session_events() {
        let action = classify(&event("payment_intent.succeeded", intent("succeeded", "checkout", None))).unwrap();
        assert!(matches!(action, Action::Ignore(_)));
    }

    #[test]
    fn unreadable_objects_of_ours_are_errors() {
        assert!(classify(&event("checkout.session.completed", json!({"no": "id"}))).is_err());
        assert!(classify(&event("payment_intent.succeeded", json!({"id": "pi_1"}))).is_err());
    }

    #[test]
    fn intent_outcomes() {
        let of = |status: &str| {
            let pi: PaymentIntent = serde_json::from_value(intent(status, "charge", None)).unwrap();
            intent_outcome(&pi).0
        };
        assert_eq!(of("succeeded"), PaymentStatus::Succeeded);
        assert_eq!(of("processing"), PaymentStatus::Pending);
        assert_eq!(of("requires_payment_method"), PaymentStatus::Pending);
        assert_eq!(of("canceled"), PaymentStatus::Failed);
    }

    #[test]
    fn saved_method_tokens() {
        assert_eq!(parse_saved_method("cus_A:pm_B"), Ok(("cus_A".into(), "pm_B".into())));
        assert!(parse_saved_method("pm_B").is_err());
        assert!(parse_saved_method("cus_A:pm/../x").is_err());
        assert!(parse_saved_method(":pm_B").is_err());
        assert_eq!(parse_saved_method(&format_saved_method("cus_1", "pm_2")), Ok(("cus_1".into(), "pm_2".into())));
    }
}
