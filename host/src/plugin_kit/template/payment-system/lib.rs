//! `{{name}}`: a payhost payment system (`payhost:gateway@{{wit}}`, world
//! `payment-system`), the card processor behind providers' `checkout` calls.
//!
//! This starting point sends the buyer to the hosted page at setting `checkout_url`
//! and accepts webhooks signed `x-signature: hex(HMAC-SHA256(webhook_secret, body))`
//! with a JSON body `{"reference", "id", "status", "amount", "currency"}`. Replace both
//! with your payment system's API. The logic is written against `payhost_sdk::Host`,
//! so `cargo test` runs it natively with `payhost_sdk::testing::FakeHost`.
// Native builds (unit tests) do not export the component, so its entry points look unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

use payhost_sdk::host::{HmacAlgorithm, Part};
use payhost_sdk::payments::{ChargeRequest, Checkout, CheckoutRequest, Error, PaymentEvent, PaymentStatus, RefundResult};
use payhost_sdk::types::{PluginInfo, SettingSpec};
use payhost_sdk::{Host, Request, Response, WasmHost, Webhook};

pub const WEBHOOK_SECRET: &str = "webhook_secret";

struct Plugin;

impl payhost_sdk::Processor for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A payhost payment system".into(),
            secrets: vec![WEBHOOK_SECRET.into()],
            hosts: vec![],
            host_settings: vec![],
            settings: vec![SettingSpec { name: "checkout_url".into(), required: true, description: "Hosted payment page".into() }],
        }
    }

    fn start_checkout(req: CheckoutRequest) -> Result<Checkout, Error> {
        start_checkout(&WasmHost, &req)
    }

    fn parse_webhook(req: Request) -> Result<Webhook, Error> {
        parse_webhook(&WasmHost, &req)
    }

    fn lookup_payment(external_id: String) -> Result<PaymentEvent, Error> {
        Err(Error::NotFound(format!("{external_id}: this payment system answers by webhook only")))
    }

    fn charge(_req: ChargeRequest) -> Result<PaymentEvent, Error> {
        Err(Error::Rejected("this payment system keeps no cards for off-session charges".into()))
    }

    fn refund(_external_id: String, _amount: Option<String>) -> Result<RefundResult, Error> {
        Err(Error::Rejected("this payment system takes refunds in its own dashboard".into()))
    }
}

pub fn start_checkout(host: &impl Host, req: &CheckoutRequest) -> Result<Checkout, Error> {
    let page = host.setting("checkout_url").ok_or_else(|| Error::Other("setting `checkout_url` is not configured".into()))?;
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("reference", &req.reference)
        .append_pair("amount", &req.amount)
        .append_pair("currency", &req.currency)
        .append_pair("return_url", &req.return_url)
        .finish();
    Ok(Checkout { id: req.reference.clone(), redirect_url: format!("{page}?{query}") })
}

pub fn parse_webhook(host: &impl Host, req: &Request) -> Result<Webhook, Error> {
    let signature = req.header("x-signature").ok_or_else(|| Error::BadSignature("no x-signature header".into()))?;
    let expected = unhex(signature).ok_or_else(|| Error::BadSignature("x-signature is not hex".into()))?;
    let valid = host
        .verify_hmac(HmacAlgorithm::Sha256, WEBHOOK_SECRET, &[Part::Bytes(req.body.clone())], &expected)
        .map_err(|e| Error::Other(format!("signing: {e:?}")))?;
    if !valid {
        return Err(Error::BadSignature("signature does not match".into()));
    }
    let body: serde_json::Value = serde_json::from_slice(&req.body).map_err(|e| Error::Rejected(format!("body: {e}")))?;
    let text = |name: &str| body[name].as_str().map(str::to_owned).ok_or_else(|| Error::Rejected(format!("body lacks `{name}`")));
    let status = match text("status")?.as_str() {
        "succeeded" => PaymentStatus::Succeeded,
        "failed" => PaymentStatus::Failed,
        _ => PaymentStatus::Pending,
    };
    let event = PaymentEvent {
        system: String::new(),
        reference: text("reference")?,
        status,
        amount: text("amount")?,
        currency: text("currency")?,
        external_id: text("id")?,
        saved_method: None,
        message: None,
    };
    Ok(Webhook { response: Response::text(200, "ok"), events: vec![event] })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

#[cfg(target_arch = "wasm32")]
payhost_sdk::export_payment_system!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use payhost_sdk::testing::FakeHost;

    #[test]
    fn webhooks_are_verified_then_parsed() {
        let host = FakeHost::new().with_secret(WEBHOOK_SECRET, b"whsec").with_setting("checkout_url", "https://pay.example/page");
        let body = br#"{"reference":"r1","id":"p1","status":"succeeded","amount":"5.00","currency":"EUR"}"#.to_vec();
        let mac = host.hmac(HmacAlgorithm::Sha256, WEBHOOK_SECRET, &[Part::Bytes(body.clone())]).unwrap();
        let signed = |signature: String| Request {
            id: "t".into(),
            method: "POST".into(),
            path: "/webhook".into(),
            query: String::new(),
            headers: vec![("x-signature".into(), signature)],
            body: body.clone(),
            remote_addr: "127.0.0.1".into(),
        };
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        let webhook = parse_webhook(&host, &signed(hex)).unwrap();
        assert_eq!(webhook.events[0].reference, "r1");
        assert!(matches!(parse_webhook(&host, &signed("00".repeat(32))), Err(Error::BadSignature(_))));
        let checkout = start_checkout(&host, &CheckoutRequest {
            amount: "5.00".into(),
            currency: "EUR".into(),
            description: "d".into(),
            reference: "r1".into(),
            return_url: "https://shop/back".into(),
            customer: "c".into(),
            save_card: false,
        })
        .unwrap();
        assert!(checkout.redirect_url.starts_with("https://pay.example/page?reference=r1&"));
    }
}
