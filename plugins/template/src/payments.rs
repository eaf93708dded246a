//! Routes that take payments through payment-system instances (the `checkout` import),
//! and a record of the payment events the host hands back, so end-to-end tests can drive
//! a payment-system plugin through a real provider and count deliveries.
//!
//! | route | call |
//! |---|---|
//! | `POST /checkout` (JSON checkout request + `system`) | `checkout.start-checkout` |
//! | `POST /charge` (JSON charge request + `system`) | `checkout.charge` |
//! | `POST /refund` (`{system, external_id, amount?}`) | `checkout.refund` |
//! | `GET /lookup?system=&id=` | `checkout.lookup` |
//! | `GET /payment?reference=` | the last event delivered for a reference, and how many were |

use payhost_sdk::payments::{self, ChargeRequest, CheckoutRequest, PaymentEvent, PaymentStatus};
use payhost_sdk::{checkout, store, Request, Response};
use serde_json::{json, Value};

use crate::{failed, Refusal};

pub fn start_checkout(req: &Request) -> Result<Response, Refusal> {
    let body: Value = req.json()?;
    let checkout_req = CheckoutRequest {
        amount: text(&body, "amount")?,
        currency: text(&body, "currency")?,
        description: optional_text(&body, "description"),
        reference: text(&body, "reference")?,
        return_url: text(&body, "return_url")?,
        customer: optional_text(&body, "customer"),
        save_card: body.get("save_card").and_then(Value::as_bool).unwrap_or(false),
    };
    Ok(match checkout::start_checkout(&text(&body, "system")?, &checkout_req) {
        Ok(c) => Response::json(200, &json!({ "id": c.id, "redirect_url": c.redirect_url })),
        Err(e) => error_answer(e),
    })
}

pub fn charge(req: &Request) -> Result<Response, Refusal> {
    let body: Value = req.json()?;
    let charge_req = ChargeRequest {
        amount: text(&body, "amount")?,
        currency: text(&body, "currency")?,
        description: optional_text(&body, "description"),
        reference: text(&body, "reference")?,
        customer: optional_text(&body, "customer"),
        saved_method: body.get("saved_method").and_then(Value::as_str).map(str::to_owned),
    };
    Ok(match checkout::charge(&text(&body, "system")?, &charge_req) {
        Ok(event) => Response::json(200, &event_json(&event)),
        Err(e) => error_answer(e),
    })
}

pub fn refund(req: &Request) -> Result<Response, Refusal> {
    let body: Value = req.json()?;
    let amount = body.get("amount").and_then(Value::as_str);
    Ok(match checkout::refund(&text(&body, "system")?, &text(&body, "external_id")?, amount) {
        Ok(r) => Response::json(200, &json!({ "external_id": r.external_id, "amount": r.amount, "status": status_name(r.status) })),
        Err(e) => error_answer(e),
    })
}

pub fn lookup(req: &Request) -> Result<Response, Refusal> {
    let query = req.query_params();
    Ok(match checkout::lookup(query.require("system")?, query.require("id")?) {
        Ok(event) => Response::json(200, &event_json(&event)),
        Err(e) => error_answer(e),
    })
}

/// `on-payment-event`: keeps the last event and counts deliveries (a count is what lets a
/// test see that the host handed one event over exactly once).
pub fn record(event: &PaymentEvent) -> Result<(), String> {
    let reference = &event.reference;
    let summary = format!("{:?}:{}:{}", event.status, event.amount, event.external_id);
    store::set(&format!("payment/{reference}"), summary.as_bytes()).map_err(|e| format!("{e:?}"))?;
    let detail = serde_json::to_vec(&event_json(event)).map_err(|e| e.to_string())?;
    store::set(&format!("payment-event/{reference}"), &detail).map_err(|e| format!("{e:?}"))?;
    let count_key = format!("payment-count/{reference}");
    loop {
        let old = store::get(&count_key).map_err(|e| format!("{e:?}"))?;
        let count: u64 = old.as_deref().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok()).unwrap_or(0);
        let new = (count + 1).to_string();
        if store::compare_and_swap(&count_key, old.as_deref(), new.as_bytes()).map_err(|e| format!("{e:?}"))? {
            return Ok(());
        }
    }
}

pub fn show(req: &Request) -> Result<Response, Refusal> {
    let query = req.query_params();
    let reference = query.require("reference")?;
    let event = store::get(&format!("payment-event/{reference}"))?;
    let count = store::get(&format!("payment-count/{reference}"))?;
    Ok(match event {
        None => Response::error(404, "no payment event for this reference"),
        Some(event) => {
            let event: Value = serde_json::from_slice(&event).map_err(|e| failed("stored event", e))?;
            let count: u64 = count.as_deref().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok()).unwrap_or(0);
            Response::json(200, &json!({ "event": event, "deliveries": count }))
        }
    })
}

fn event_json(event: &PaymentEvent) -> Value {
    json!({
        "system": event.system,
        "reference": event.reference,
        "status": status_name(event.status),
        "amount": event.amount,
        "currency": event.currency,
        "external_id": event.external_id,
        "saved_method": event.saved_method,
        "message": event.message,
    })
}

fn status_name(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Pending => "pending",
    }
}

fn error_answer(error: payments::Error) -> Response {
    let (status, kind, detail) = match error {
        payments::Error::UnknownSystem(d) => (403, "unknown-system", d),
        payments::Error::Rejected(d) => (400, "rejected", d),
        payments::Error::Unavailable(d) => (502, "unavailable", d),
        payments::Error::NotFound(d) => (404, "not-found", d),
        payments::Error::BadSignature(d) => (400, "bad-signature", d),
        payments::Error::InsufficientFunds(d) => (402, "insufficient-funds", d),
        payments::Error::Other(d) => (500, "other", d),
    };
    Response::json(status, &json!({ "error": kind, "detail": detail }))
}

/// The text field `name` of a JSON body, or the client's mistake naming it.
pub fn text(body: &Value, name: &str) -> Result<String, String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("missing `{name}`"))
}

fn optional_text(body: &Value, name: &str) -> String {
    body.get(name).and_then(Value::as_str).unwrap_or_default().to_owned()
}
