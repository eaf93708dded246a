//! The stripe payment-system plugin through the real host, against the Stripe fake:
//! a provider (the template plugin) starts a hosted checkout, the buyer pays, Stripe's
//! signed webhook reaches the host, and the outcome is handed to the provider once;
//! then off-session charges of the saved card and refunds.

use std::time::Duration;

use payhost_tests::sim::stripe::{signature_header, Outcome, StripeSim};
use payhost_tests::{HostBuilder, TestHost};
use serde_json::{json, Value};

const SECRET_KEY: &str = "sk_test_51SimulatedKeyForPayhostTests";
const WEBHOOK_SECRET: &str = "whsec_SimulatedSigningSecretForTests";
const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    host: TestHost,
    sim: StripeSim,
}

async fn setup() -> Setup {
    let sim = StripeSim::start(SECRET_KEY, WEBHOOK_SECRET).await;
    let config = sim.shop_config();
    let host = sim.grant(HostBuilder::new())
        .config(&config)
        .start()
        .await;
    Setup { host, sim }
}

impl Setup {
    fn webhook_url(&self) -> String {
        self.host.url("/stripe/webhook")
    }

    /// Starts a checkout through the provider; returns (session id, redirect url).
    async fn checkout(&self, reference: &str, amount: &str, currency: &str, save_card: bool) -> (String, String) {
        let (status, body) = self.checkout_answer(reference, amount, currency, save_card).await;
        assert_eq!(status, 200, "checkout: {body}");
        (body["id"].as_str().unwrap().to_string(), body["redirect_url"].as_str().unwrap().to_string())
    }

    async fn checkout_answer(&self, reference: &str, amount: &str, currency: &str, save_card: bool) -> (u16, Value) {
        let resp = self
            .host
            .post_json(
                "/shop/checkout",
                &json!({
                    "system": "stripe",
                    "amount": amount,
                    "currency": currency,
                    "description": "Premium package",
                    "reference": reference,
                    "return_url": "https://shop.example/return?order=1",
                    "customer": "subscriber-7",
                    "save_card": save_card,
                }),
            )
            .await;
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self.host.post_json(path, &body).await;
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// What the provider was handed for `reference`: `{event, deliveries}`.
    async fn payment(&self, reference: &str) -> Option<Value> {
        let resp = self.host.get(&format!("/shop/payment?reference={reference}")).await;
        if resp.status().as_u16() == 200 {
            Some(resp.json().await.unwrap())
        } else {
            None
        }
    }

    async fn wait_payment(&self, reference: &str) -> Value {
        let delivered = self.host.wait_until(WAIT, || async { self.payment(reference).await.is_some() }).await;
        assert!(delivered, "no payment event for {reference} reached the provider:\n{}", self.host.logs());
        self.payment(reference).await.unwrap()
    }

    /// The host's stored payment events for `reference` (admin view).
    async fn stored_events(&self, reference: &str) -> Vec<Value> {
        let (status, body) = self.host.admin("GET", "/events?provider=shop", None).await;
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().unwrap().iter().filter(|e| e["reference"] == reference).cloned().collect()
    }

    /// Form fields of the last API request to `path`, with its idempotency key.
    fn last_form(&self, path: &str) -> (Vec<(String, String)>, Option<String>) {
        let req = self.sim.requests().into_iter().rev().find(|r| r.method == "POST" && r.path == path).expect("request sent");
        (req.form_pairs(), req.header("idempotency-key").map(str::to_owned))
    }

    async fn paid_checkout(&self, reference: &str, outcome: Outcome, save_card: bool) -> Value {
        let (id, _) = self.checkout(reference, "300.00", "USD", save_card).await;
        let now = self.host.now().await;
        let sent = self.sim.complete_session(&id, outcome, &self.webhook_url(), now).await;
        assert_eq!(sent.status, 200);
        self.wait_payment(reference).await["event"].clone()
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn checkout_and_a_repeated_webhook_reach_the_provider_once() {
    let s = setup().await;
    let (id, redirect) = s.checkout("order-1", "300.00", "USD", false).await;
    assert!(id.starts_with("cs_"), "{id}");
    assert_eq!(redirect, format!("{}/c/pay/{id}", s.sim.base_url()));
    let page = s.host.client().get(&redirect).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);

    let (form, key) = s.last_form("/v1/checkout/sessions");
    assert_eq!(key.as_deref(), Some("payhost-checkout-order-1"));
    assert_eq!(field(&form, "mode"), Some("payment"));
    assert_eq!(field(&form, "line_items[0][price_data][unit_amount]"), Some("30000"));
    assert_eq!(field(&form, "line_items[0][price_data][currency]"), Some("usd"));
    assert_eq!(field(&form, "client_reference_id"), Some("order-1"));
    assert_eq!(field(&form, "metadata[reference]"), Some("order-1"));
    assert_eq!(field(&form, "customer_creation"), None);

    // The same checkout again is Stripe's idempotent replay: one session, same id.
    let (again, _) = s.checkout("order-1", "300.00", "USD", false).await;
    assert_eq!(again, id);
    assert_eq!(s.sim.sessions().len(), 1);

    let now = s.host.now().await;
    let sent = s.sim.complete_session(&id, Outcome::Paid, &s.webhook_url(), now).await;
    assert_eq!(sent.status, 200);
    let delivered = s.wait_payment("order-1").await;
    for _ in 0..2 {
        assert_eq!(s.sim.post_webhook(&s.webhook_url(), &sent.payload, &sent.signature).await, 200);
    }

    let event = &delivered["event"];
    assert_eq!(event["status"], "succeeded");
    assert_eq!(event["amount"], "300.00");
    assert_eq!(event["currency"], "USD");
    assert!(event["external_id"].as_str().unwrap().starts_with("pi_"), "{event}");
    assert_eq!(event["saved_method"], Value::Null);
    // Three webhooks, one stored event, one hand-over.
    let stored = s.stored_events("order-1").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let done = s.host.wait_until(WAIT, || async { s.stored_events("order-1").await[0]["state"] == "done" }).await;
    assert!(done, "{:?}", s.stored_events("order-1").await);
    assert_eq!(s.payment("order-1").await.unwrap()["deliveries"], 1);

    assert_eq!(s.sim.unauthorized(), 0, "every API call carried the secret key");
    let logs = s.host.logs();
    assert!(!logs.contains(SECRET_KEY) && !logs.contains(WEBHOOK_SECRET), "a secret reached the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_and_expired_signatures_are_refused_and_nothing_is_delivered() {
    let mut s = setup().await;
    let (id, _) = s.checkout("order-2", "300.00", "USD", false).await;
    let now = s.host.now().await;
    let payload = serde_json::to_vec(&s.sim.finish_session(&id, Outcome::Paid, now)).unwrap();
    let url = s.webhook_url();

    let wrong_secret = signature_header("whsec_not_the_endpoint_secret", now, &payload);
    assert_eq!(s.sim.post_webhook(&url, &payload, &wrong_secret).await, 400);
    let good = signature_header(WEBHOOK_SECRET, now, &payload);
    let tampered = String::from_utf8(payload.clone()).unwrap().replace("30000", "1");
    assert_ne!(tampered.as_bytes(), payload.as_slice());
    assert_eq!(s.sim.post_webhook(&url, tampered.as_bytes(), &good).await, 400);
    assert_eq!(s.sim.post_webhook(&url, &payload, "t=soon,v1=00").await, 400);
    assert_eq!(s.sim.post_webhook(&url, &payload, "").await, 400);

    // Correctly signed, but replayed after the 300 s tolerance.
    s.host.advance_clock(301).await;
    assert_eq!(s.sim.post_webhook(&url, &payload, &good).await, 400);
    assert!(s.stored_events("order-2").await.is_empty());
    assert!(s.payment("order-2").await.is_none());

    // The same event signed now goes through: the refusals were the signatures.
    let fresh = s.sim.send_webhook(&url, &payload, s.host.now().await).await;
    assert_eq!(fresh.status, 200);
    assert_eq!(s.wait_payment("order-2").await["event"]["status"], "succeeded");
    assert_eq!(s.stored_events("order-2").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_checkout_is_a_failed_payment() {
    let s = setup().await;
    let (id, _) = s.checkout("order-3", "1500", "JPY", false).await;
    let (form, _) = s.last_form("/v1/checkout/sessions");
    assert_eq!(field(&form, "line_items[0][price_data][unit_amount]"), Some("1500"), "JPY has no minor unit");
    let now = s.host.now().await;
    assert_eq!(s.sim.complete_session(&id, Outcome::Expired, &s.webhook_url(), now).await.status, 200);
    let event = s.wait_payment("order-3").await["event"].clone();
    assert_eq!(event["status"], "failed");
    assert_eq!(event["amount"], "1500");
    assert_eq!(event["currency"], "JPY");
    assert!(event["message"].as_str().unwrap().contains("expired"), "{event}");

    // An amount Stripe cannot express is refused before reaching it.
    let (status, body) = s.checkout_answer("order-3b", "10.5", "JPY", false).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("rejected")), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn off_session_charges_of_a_saved_card_succeed_or_decline() {
    let s = setup().await;
    let paid = s.paid_checkout("sub-1", Outcome::Paid, true).await;
    let (form, _) = s.last_form("/v1/checkout/sessions");
    assert_eq!(field(&form, "customer_creation"), Some("always"));
    assert_eq!(field(&form, "payment_intent_data[setup_future_usage]"), Some("off_session"));
    let saved = paid["saved_method"].as_str().expect("a saved card").to_string();
    let (customer, method) = saved.split_once(':').expect("cus:pm");
    assert!(customer.starts_with("cus_") && method.starts_with("pm_"), "{saved}");

    let charge = json!({
        "system": "stripe", "amount": "19.99", "currency": "USD", "description": "Monthly renewal",
        "reference": "renewal-1", "customer": "subscriber-7", "saved_method": saved,
    });
    let (status, first) = s.call("/shop/charge", charge.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount"], "19.99");
    assert!(first["external_id"].as_str().unwrap().starts_with("pi_"));
    let (form, key) = s.last_form("/v1/payment_intents");
    assert_eq!(key.as_deref(), Some("payhost-charge-renewal-1"));
    assert_eq!(field(&form, "amount"), Some("1999"));
    assert_eq!(field(&form, "currency"), Some("usd"));
    assert_eq!(field(&form, "customer"), Some(customer));
    assert_eq!(field(&form, "payment_method"), Some(method));
    assert_eq!(field(&form, "off_session"), Some("true"));
    assert_eq!(field(&form, "confirm"), Some("true"));

    // A retried charge is the same payment, not a second one.
    let (_, again) = s.call("/shop/charge", charge).await;
    assert_eq!(again["external_id"], first["external_id"]);
    let renewals = s.sim.intents().into_iter().filter(|pi| pi["metadata"]["reference"] == "renewal-1").count();
    assert_eq!(renewals, 1);

    let declining = s.paid_checkout("sub-2", Outcome::PaidWithDecliningCard, true).await;
    let (status, declined) = s
        .call(
            "/shop/charge",
            json!({
                "system": "stripe", "amount": "19.99", "currency": "USD", "description": "Monthly renewal",
                "reference": "renewal-2", "customer": "subscriber-8", "saved_method": declining["saved_method"],
            }),
        )
        .await;
    assert_eq!(status, 200, "a decline is an outcome, not an error: {declined}");
    assert_eq!(declined["status"], "failed");
    let message = declined["message"].as_str().unwrap();
    assert!(message.contains("card_declined") && message.contains("insufficient_funds"), "{message}");

    let (status, unknown) = s
        .call(
            "/shop/charge",
            json!({
                "system": "stripe", "amount": "1.00", "currency": "USD", "reference": "renewal-3",
                "customer": "subscriber-9", "saved_method": "cus_nobody:pm_nothing",
            }),
        )
        .await;
    assert_eq!((status, unknown["error"].as_str()), (400, Some("rejected")), "{unknown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_partial_then_whole_and_lookup() {
    let s = setup().await;
    let paid = s.paid_checkout("order-4", Outcome::Paid, false).await;
    let payment = paid["external_id"].as_str().unwrap().to_string();
    let session = s.sim.sessions().into_iter().find(|x| x["client_reference_id"] == "order-4").unwrap();

    let resp = s.host.get(&format!("/shop/lookup?system=stripe&id={}", session["id"].as_str().unwrap())).await;
    assert_eq!(resp.status().as_u16(), 200);
    let looked: Value = resp.json().await.unwrap();
    assert_eq!((looked["status"].as_str(), looked["external_id"].as_str()), (Some("succeeded"), Some(payment.as_str())));

    let partial = json!({ "system": "stripe", "external_id": payment, "amount": "100.00" });
    let (status, first) = s.call("/shop/refund", partial.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!((first["status"].as_str(), first["amount"].as_str()), (Some("succeeded"), Some("100.00")));
    assert!(first["external_id"].as_str().unwrap().starts_with("re_"));
    let (form, key) = s.last_form("/v1/refunds");
    assert_eq!(field(&form, "payment_intent"), Some(payment.as_str()));
    assert_eq!(field(&form, "amount"), Some("10000"));
    assert!(key.is_some());

    let (_, retried) = s.call("/shop/refund", partial).await;
    assert_eq!(retried["external_id"], first["external_id"], "a retried refund refunds once");
    assert_eq!(s.sim.refunds().len(), 1);

    let (status, rest) = s.call("/shop/refund", json!({ "system": "stripe", "external_id": payment })).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["amount"], "200.00");
    assert_eq!(s.sim.refunds().len(), 2);

    let (status, missing) = s.call("/shop/refund", json!({ "system": "stripe", "external_id": "pi_does_not_exist" })).await;
    assert_eq!((status, missing["error"].as_str()), (404, Some("not-found")), "{missing}");
}
