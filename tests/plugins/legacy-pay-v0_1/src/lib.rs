//! A payment system as a third party built it against `payhost:gateway@0.1.0`, with
//! bindings generated from the frozen `wit/since_v0.1.0/`, so the contract-versions
//! suite drives every 0.1 `processor` export through the host's adapter.
//!
//! It has no counterpart: `start-checkout` answers a made-up page, `charge` succeeds at
//! once, and a webhook is trusted JSON `{"reference", "status", "amount", "currency",
//! "id"}` (a test tool; real payment systems verify signatures).
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

wit_bindgen::generate!({
    world: "payment-system",
    path: "../../../wit/since_v0.1.0",
    generate_all,
});

use exports::payhost::gateway::processor::{Guest, Webhook};
use payhost::gateway::payments::{ChargeRequest, Checkout, CheckoutRequest, Error, PaymentEvent, PaymentStatus, RefundResult};
use payhost::gateway::types::{PluginInfo, Request, Response};

struct LegacyPay;

impl Guest for LegacyPay {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-pay".into(),
            version: "0.1.0".into(),
            description: "Payment system built against payhost:gateway@0.1.0".into(),
            secrets: vec![],
            hosts: vec![],
            settings: vec![],
        }
    }

    fn start_checkout(req: CheckoutRequest) -> Result<Checkout, Error> {
        Ok(Checkout { id: format!("co-{}", req.reference), redirect_url: format!("https://pay.example/co-{}", req.reference) })
    }

    fn parse_webhook(req: Request) -> Result<Webhook, Error> {
        let body: serde_json::Value = serde_json::from_slice(&req.body).map_err(|e| Error::Rejected(e.to_string()))?;
        let text = |name: &str| body[name].as_str().map(str::to_owned).ok_or_else(|| Error::Rejected(format!("no `{name}`")));
        let status = if text("status")? == "succeeded" { PaymentStatus::Succeeded } else { PaymentStatus::Failed };
        let event = PaymentEvent {
            system: "legacy-pay".into(),
            reference: text("reference")?,
            status,
            amount: text("amount")?,
            currency: text("currency")?,
            external_id: text("id")?,
            saved_method: None,
            message: None,
        };
        let ok = Response { status: 200, headers: vec![], body: b"ok".to_vec() };
        Ok(Webhook { response: ok, events: vec![event] })
    }

    fn lookup_payment(external_id: String) -> Result<PaymentEvent, Error> {
        Err(Error::NotFound(external_id))
    }

    fn charge(req: ChargeRequest) -> Result<PaymentEvent, Error> {
        Ok(PaymentEvent {
            system: "legacy-pay".into(),
            reference: req.reference.clone(),
            status: PaymentStatus::Succeeded,
            amount: req.amount,
            currency: req.currency,
            external_id: format!("ch-{}", req.reference),
            saved_method: req.saved_method,
            message: None,
        })
    }

    fn refund(external_id: String, amount: Option<String>) -> Result<RefundResult, Error> {
        Ok(RefundResult { external_id, amount: amount.unwrap_or_else(|| "0".into()), status: PaymentStatus::Succeeded })
    }
}

#[cfg(target_arch = "wasm32")]
export!(LegacyPay);
