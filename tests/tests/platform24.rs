//! Platform24 "48 hours" billing end to end: the real host runs the `platform24`
//! plugin, the tests play Platform24 calling the billing, and a Platform24 simulator
//! receives the confirm/fail callbacks and checks their SHA1 with its own formula, and
//! serves the provider API the billing connects packets through (its own suite is
//! `platform24_subscriptions.rs`). Card payments go through the real `stripe` plugin
//! against the Stripe simulator.

use std::time::Duration;

use futures::future::join_all;
use payhost_tests::sim::http::{SimResponse, SimServer};
use payhost_tests::sim::platform24::{self as p24, Callback, Platform24Sim};
use payhost_tests::sim::stripe::{Outcome, SentWebhook, StripeSim};
use payhost_tests::{plugin_wasm, HostBuilder, TestHost};
use serde_json::{json, Value};

const PRIVATE_KEY: &str = "p24-private-key-9f2c41";
const API_TOKEN: &str = "p24-api-token-7a11c0";
const PAYSYSTEM: &str = "payhost";
const PREFIX: &str = "p24-";
const STRIPE_KEY: &str = "sk_test_51Platform24CardPayments";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_Platform24CardPaymentsSecret";
const WAIT: Duration = Duration::from_secs(30);

/// The platform24 instance's config; `system` is its payment-system instance. These
/// tests are about money, not packet rules: add-ons need no base here.
fn platform24_config(sim: &Platform24Sim, system: &str) -> String {
    sim.billing_config(
        system,
        &format!("account_prefix = \"{PREFIX}\"\ndedup_window_seconds = 300\nreturn_url = \"https://tv.example/back\"\naddons_without_base = true"),
    )
}

async fn start_sim() -> Platform24Sim {
    Platform24Sim::start(PRIVATE_KEY, PAYSYSTEM, API_TOKEN).await
}

/// A host with the plugin and no card payment system (`balance` only).
async fn start_billing(sim: &Platform24Sim) -> TestHost {
    sim.grant(HostBuilder::new()).config(&platform24_config(sim, "balance")).start().await
}

async fn fund(host: &TestHost, uid: &str, amount: &str, key: &str) {
    let (status, body) = host
        .admin(
            "POST",
            &format!("/accounts/{PREFIX}{uid}/credit"),
            Some(json!({ "amount": amount, "currency": "RUB", "reference": "topup", "idempotency_key": key })),
        )
        .await;
    assert_eq!(status, 200, "credit: {body}");
}

async fn balance_of(host: &TestHost, uid: &str) -> String {
    let (status, body) = host.admin("GET", &format!("/accounts/{PREFIX}{uid}"), None).await;
    assert_eq!(status, 200, "account: {body}");
    body["balance"].as_str().unwrap_or_else(|| panic!("no balance in {body}")).to_string()
}

async fn entries_of(host: &TestHost, uid: &str) -> Vec<Value> {
    let (status, body) = host.admin("GET", &format!("/accounts/{PREFIX}{uid}/transactions"), None).await;
    assert_eq!(status, 200, "history: {body}");
    body["entries"].as_array().expect("entries").clone()
}

/// Calls the billing as Platform24 does; returns the HTTP status, the content type and
/// the JSON answer (the body must be UTF-8 JSON).
async fn call(host: &TestHost, (path, body): (String, Value)) -> (u16, String, Value) {
    let resp = host.post_json(&format!("/p24/{path}"), &body).await;
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = resp.bytes().await.expect("body");
    let text = String::from_utf8(bytes.to_vec()).expect("answer is UTF-8");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
    (status, ct, value)
}

async fn status_of(host: &TestHost, request: (String, Value)) -> Value {
    let (http, ct, v) = call(host, request).await;
    assert_eq!(http, 200, "{v}");
    assert_eq!(ct, "application/json; charset=utf-8");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn balance_is_the_ledger_balance_as_a_json_number() {
    let sim = start_sim().await;
    let host = start_billing(&sim).await;
    fund(&host, "abon-1", "1234.56", "b1").await;

    let resp = host.post_json("/p24/balance?user_id=abon-1", &p24::balance_request("abon-1").1).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), r#"{"balance":1234.56}"#);

    // Body only (no query), and a balance with trailing zeros keeps its digits.
    fund(&host, "abon-2", "10.50", "b2").await;
    let resp = host.post_json("/p24/balance", &p24::balance_request("abon-2").1).await;
    assert_eq!(resp.text().await.unwrap(), r#"{"balance":10.50}"#);

    let v = status_of(&host, p24::balance_request("nobody")).await;
    assert!(v["status"].as_i64().unwrap() < -1, "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("не найден"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn packets_debit_all_at_once_and_refuse_when_short_by_a_kopeck() {
    let sim = start_sim().await;
    let host = start_billing(&sim).await;

    // Enough money: both packets in one ledger transaction.
    fund(&host, "rich", "500.00", "r1").await;
    let v = status_of(&host, p24::packets_request("rich", &[(11, "300.00", "Базовый"), (12, "150.00", "Кино")])).await;
    assert_eq!(v, json!({ "status": 1 }));
    assert_eq!(balance_of(&host, "rich").await, "50.00");
    let mut connected: Vec<u64> = sim.api().live(p24::platform_id("rich")).iter().map(|s| s.packet_id).collect();
    connected.sort_unstable();
    assert_eq!(connected, vec![11, 12], "both packets connected on the platform");
    let debits: Vec<Value> = entries_of(&host, "rich").await.into_iter().filter(|e| e["kind"] == "debit").collect();
    assert_eq!(debits.len(), 2, "{debits:?}");
    assert_eq!(debits[0]["transaction_id"], debits[1]["transaction_id"], "one atomic transaction");

    // Short by one kopeck: status -1, the document's text, nothing debited.
    fund(&host, "poor", "449.99", "p1").await;
    let v = status_of(&host, p24::packets_request("poor", &[(11, "300.00", "Базовый"), (12, "150.00", "Кино")])).await;
    assert_eq!(v, json!({ "status": -1, "errmsg": "На вашем балансе не хватает денежных средств" }));
    assert_eq!(balance_of(&host, "poor").await, "449.99");
    assert_eq!(entries_of(&host, "poor").await.len(), 1, "only the top-up");
    assert!(sim.api().live(p24::platform_id("poor")).is_empty(), "nothing connected without money");

    // After a top-up the same request goes through.
    fund(&host, "poor", "0.01", "p2").await;
    let v = status_of(&host, p24::packets_request("poor", &[(11, "300.00", "Базовый"), (12, "150.00", "Кино")])).await;
    assert_eq!(v, json!({ "status": 1 }));
    assert_eq!(balance_of(&host, "poor").await, "0.00");

    // Unknown subscriber: status below -1 with a Russian explanation.
    let v = status_of(&host, p24::packets_request("ghost", &[(11, "300.00", "Базовый")])).await;
    assert_eq!(v["status"], -2, "{v}");
    assert_eq!(v["errmsg"], "Абонент «ghost» не найден в биллинге провайдера");

    // Malformed: a comma price, and ids in the URL that are not the body's packets.
    let (path, mut body) = p24::packets_request("rich", &[(11, "300.00", "Базовый")]);
    body["packets"][0]["price"] = json!("300,00");
    let v = status_of(&host, (path, body)).await;
    assert_eq!(v["status"], -3, "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("с точкой"), "{v}");
    let (_, body) = p24::packets_request("rich", &[(11, "1.00", "Базовый")]);
    let v = status_of(&host, ("packets?user_id=rich&trf_ids=11,99".into(), body)).await;
    assert_eq!(v["status"], -3, "{v}");
    assert_eq!(balance_of(&host, "rich").await, "50.00");

    // An account kept in another currency than the platform's RUB.
    let (status, body) = host
        .admin(
            "POST",
            &format!("/accounts/{PREFIX}dollar/credit"),
            Some(json!({ "amount": "500.00", "currency": "USD", "reference": "topup", "idempotency_key": "u1" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v = status_of(&host, p24::packets_request("dollar", &[(11, "300.00", "Базовый")])).await;
    assert_eq!(v["status"], -4, "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("USD"), "{v}");
    assert_eq!(balance_of(&host, "dollar").await, "500.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn packet_and_delete_subscription() {
    let sim = start_sim().await;
    let host = start_billing(&sim).await;
    fund(&host, "abon-7", "100.00", "t1").await;

    let v = status_of(&host, p24::packet_request("abon-7", 21, "99.90", "Спорт")).await;
    assert_eq!(v, json!({ "status": 1 }));
    assert_eq!(balance_of(&host, "abon-7").await, "0.10");

    let v = status_of(&host, p24::packet_request("abon-7", 22, "0.11", "Детям")).await;
    assert_eq!(v["status"], -1, "{v}");

    let v = status_of(&host, p24::delete_subscription_request("abon-7", 501, 21)).await;
    assert_eq!(v, json!({ "status": 1 }));
    assert_eq!(balance_of(&host, "abon-7").await, "0.10", "a cancellation moves no money");
    let v = status_of(&host, p24::delete_subscription_request("ghost", 502, 21)).await;
    assert_eq!(v["status"], -2, "{v}");

    // AUTH: a known provider uid matches, an unknown one is a clear error.
    let resp = host.post("/p24/auth?ip=10.0.0.1&phone=%2B79990001122&provider_uid=abon-7", "application/json", "").await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({ "result": "success", "provider_uid": "abon-7" }));
    let resp = host.post("/p24/auth?ip=10.0.0.1&provider_uid=ghost", "application/json", "").await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["result"], "error", "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("ghost"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_purchase_debits_once_even_across_a_bucket_edge() {
    let sim = start_sim().await;
    let mut host = start_billing(&sim).await;
    fund(&host, "abon-3", "1000.00", "d1").await;
    let request = || p24::packets_request("abon-3", &[(31, "100.00", "Кино"), (32, "50.00", "Спорт")]);

    // One second before a 300 s bucket boundary.
    let now = host.now().await;
    let boundary = (now.div_euclid(300) + 1) * 300;
    host.advance_clock(boundary - 1 - now).await;
    assert_eq!(status_of(&host, request()).await, json!({ "status": 1 }));
    host.advance_clock(2).await;
    // Same packets in another order: the same purchase.
    let again = p24::packets_request("abon-3", &[(32, "50.00", "Спорт"), (31, "100.00", "Кино")]);
    assert_eq!(status_of(&host, again).await, json!({ "status": 1 }));
    assert_eq!(balance_of(&host, "abon-3").await, "850.00", "the repeat across the boundary did not debit");

    // Past the window it is a new purchase (the first one's subscriptions ended).
    sim.api().end_all(p24::platform_id("abon-3"));
    host.advance_clock(300).await;
    assert_eq!(status_of(&host, request()).await, json!({ "status": 1 }));
    assert_eq!(balance_of(&host, "abon-3").await, "700.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_purchases_never_overdraw() {
    let sim = start_sim().await;
    let host = start_billing(&sim).await;
    fund(&host, "busy", "1000.00", "c1").await;

    // 50 different packets at 30.00 each: exactly 33 fit in 1000.00.
    let answers = join_all((0..50u64).map(|i| status_of(&host, p24::packets_request("busy", &[(1000 + i, "30.00", "Пакет")])))).await;
    let paid = answers.iter().filter(|v| v["status"] == 1).count();
    let short = answers.iter().filter(|v| v["status"] == -1).count();
    assert_eq!(paid + short, 50, "only success or not-enough-money: {answers:?}");
    assert_eq!(paid, 33, "{answers:?}");
    assert_eq!(balance_of(&host, "busy").await, "10.00");

    // Every paid packet is connected on the platform, once.
    let busy = p24::platform_id("busy");
    assert_eq!(sim.api().live(busy).len(), 33);

    // 50 identical requests at once: one purchase, one debit, one connect. Each answer
    // is success, or (while the first one is still connecting) "in progress".
    fund(&host, "twin", "100.00", "c2").await;
    let answers = join_all((0..50).map(|_| status_of(&host, p24::packets_request("twin", &[(7, "60.00", "Кино")])))).await;
    assert!(answers.iter().all(|v| v["status"] == 1 || v["status"] == -6), "{answers:?}");
    assert!(answers.iter().any(|v| v["status"] == 1), "{answers:?}");
    assert_eq!(balance_of(&host, "twin").await, "40.00");
    assert_eq!(sim.api().live(p24::platform_id("twin")).len(), 1, "connected once");
    // Once it is done, a repeat is answered from the finished purchase.
    assert_eq!(status_of(&host, p24::packets_request("twin", &[(7, "60.00", "Кино")])).await, json!({ "status": 1 }));
    assert_eq!(balance_of(&host, "twin").await, "40.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn payment_form_with_a_bad_security_key_is_refused() {
    let sim = start_sim().await;
    let host = start_billing(&sim).await;
    fund(&host, "abon-9", "1.00", "f1").await;

    let mut params = p24::payment_form_params("wrong-key", "abon-9", "tx-bad-1", "Пакет «Кино»", "150.00");
    let resp = host.post("/p24/payment_form", "application/x-www-form-urlencoded", p24::form_encode(&params)).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["content-type"], "application/json; charset=utf-8");
    let v: Value = resp.json().await.unwrap();
    assert!(v.get("redirect_url").is_none(), "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("SecurityKey"), "{v}");

    // A correct key over other values (the amount was changed) is refused too.
    params = p24::payment_form_params(PRIVATE_KEY, "abon-9", "tx-bad-2", "Пакет", "150.00");
    params.iter_mut().find(|(k, _)| k == "Amount").unwrap().1 = "1500.00".into();
    let resp = host.get(&format!("/p24/payment_form?{}", p24::form_encode(&params))).await;
    assert_eq!(resp.status(), 403);

    let logs = host.logs();
    assert!(!logs.contains(PRIVATE_KEY), "the private key must never be logged");
    let key = &params.iter().find(|(k, _)| k == "SecurityKey").unwrap().1;
    assert!(!logs.contains(key.as_str()), "SecurityKey values must not be logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_after_a_host_restart_is_still_the_same_purchase() {
    // The store and ledger are durable: a purchase repeated after a restart, inside the
    // window, is still the same purchase.
    let sim = start_sim().await;
    let mut host = start_billing(&sim).await;
    fund(&host, "abon-r", "100.00", "rr1").await;
    let request = || p24::packets_request("abon-r", &[(41, "70.00", "Кино")]);
    assert_eq!(status_of(&host, request()).await, json!({ "status": 1 }));
    host.restart().await;
    assert_eq!(status_of(&host, request()).await, json!({ "status": 1 }));
    assert_eq!(balance_of(&host, "abon-r").await, "30.00");
}

// ---- card payments through the stripe plugin ----

/// The stripe instance (API at `api_base`, calls cut off after `http_timeout_ms`) and
/// the platform24 instance taking card payments through it.
fn card_config(sim: &Platform24Sim, api_base: &str, api_host: &str, http_timeout_ms: u64) -> String {
    format!(
        r#"
[[plugins]]
name = "stripe"
component = {component:?}
mount = "/stripe"
allowed_hosts = ["{api_host}"]
[plugins.secrets]
stripe_secret_key = {{ env = "STRIPE_SECRET_KEY" }}
stripe_webhook_secret = {{ env = "STRIPE_WEBHOOK_SECRET" }}
[plugins.settings]
api_base_url = "{api_base}"
[plugins.limits]
http_timeout_ms = {http_timeout_ms}
{platform24}"#,
        component = plugin_wasm("stripe").display().to_string(),
        platform24 = platform24_config(sim, "stripe"),
    )
}

struct Cards {
    host: TestHost,
    p24: Platform24Sim,
    stripe: StripeSim,
}

async fn start_cards() -> Cards {
    let p24 = start_sim().await;
    let stripe = StripeSim::start(STRIPE_KEY, STRIPE_WEBHOOK_SECRET).await;
    let host = p24
        .grant(HostBuilder::new())
        .env("STRIPE_SECRET_KEY", STRIPE_KEY)
        .env("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET)
        .config(&card_config(&p24, &stripe.base_url(), &stripe.host_port(), 6000))
        .start()
        .await;
    Cards { host, p24, stripe }
}

/// Platform24's payment-form request as a form POST; (HTTP status, JSON answer).
async fn payment_form(host: &TestHost, params: &[(String, String)]) -> (u16, Value) {
    let resp = host.post("/p24/payment_form", "application/x-www-form-urlencoded", p24::form_encode(params)).await;
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/json; charset=utf-8");
    (status, resp.json().await.expect("JSON answer"))
}

impl Cards {
    /// Asks for a payment form; returns the Stripe session id behind the redirect URL.
    async fn checkout(&self, uid: &str, transaction_id: &str, amount: &str) -> String {
        let params = p24::payment_form_params(PRIVATE_KEY, uid, transaction_id, "Пакет «Кино» на 30 дней", amount);
        let (status, v) = payment_form(&self.host, &params).await;
        assert_eq!(status, 200, "{v}");
        let url = v["redirect_url"].as_str().unwrap_or_else(|| panic!("no redirect_url: {v}"));
        assert!(url.starts_with(&format!("{}/c/pay/", self.stripe.base_url())), "{url}");
        url.rsplit('/').next().unwrap().to_string()
    }

    /// The buyer finishes the hosted page; Stripe's signed webhook reaches the host.
    async fn pay(&self, session: &str, outcome: Outcome) -> SentWebhook {
        let now = self.host.now().await;
        let sent = self.stripe.complete_session(session, outcome, &self.host.url("/stripe/webhook"), now).await;
        assert_eq!(sent.status, 200, "webhook refused");
        sent
    }

    async fn wait_callbacks(&self, n: usize) -> Vec<Callback> {
        let arrived = self.host.wait_until(WAIT, || async { self.p24.callbacks().len() >= n }).await;
        assert!(arrived, "expected {n} callback(s), got {:?}:\n{}", self.p24.callbacks(), self.host.logs());
        self.p24.callbacks()
    }

    async fn deliveries(&self) -> Vec<Value> {
        let (status, body) = self.host.admin("GET", "/deliveries?instance=p24", None).await;
        assert_eq!(status, 200, "{body}");
        body["deliveries"].as_array().expect("deliveries").clone()
    }

    /// Waits until every delivery of the instance is done.
    async fn wait_deliveries_done(&self) -> Vec<Value> {
        let done = self
            .host
            .wait_until(WAIT, || async {
                let d = self.deliveries().await;
                !d.is_empty() && d.iter().all(|d| d["state"] == "done")
            })
            .await;
        assert!(done, "deliveries not done: {:?}", self.deliveries().await);
        self.deliveries().await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_card_payment_credits_the_account_and_confirms_to_platform24() {
    let c = start_cards().await;
    fund(&c.host, "card-1", "10.00", "k1").await;

    let session = c.checkout("card-1", "tx-1001", "150.50").await;
    let stored = c.stripe.session(&session).expect("session at stripe");
    assert_eq!(stored["amount_total"], 15050, "{stored}");
    assert_eq!(stored["currency"], "rub", "{stored}");
    assert_eq!(stored["client_reference_id"], "tx-1001", "{stored}");

    // Platform24 asking again (JSON this time) gets the same page, no second checkout.
    let params = p24::payment_form_params(PRIVATE_KEY, "card-1", "tx-1001", "Пакет «Кино» на 30 дней", "150.50");
    let object: serde_json::Map<String, Value> = params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let resp = c.host.post_json("/p24/payment_form", &Value::Object(object)).await;
    assert_eq!(resp.status(), 200);
    let again: Value = resp.json().await.unwrap();
    assert!(again["redirect_url"].as_str().unwrap().ends_with(&session), "{again}");
    assert_eq!(c.stripe.sessions().len(), 1);

    let sent = c.pay(&session, Outcome::Paid).await;
    let callbacks = c.wait_callbacks(1).await;
    let cb = &callbacks[0];
    assert_eq!(cb.outcome, "confirm");
    assert!(cb.signature_ok, "the simulator's SHA1 does not match: {cb:?}");
    assert_eq!((cb.transaction_id.as_str(), cb.amount.as_str(), cb.currency.as_str()), ("tx-1001", "150.50", "RUB"));
    assert!(!cb.external_transaction_id.is_empty(), "{cb:?}");
    assert_eq!(balance_of(&c.host, "card-1").await, "160.50");

    // Stripe resending the webhook credits nothing more and sends no second confirm.
    let webhook = c.host.url("/stripe/webhook");
    assert_eq!(c.stripe.post_webhook(&webhook, &sent.payload, &sent.signature).await, 200);
    let (_, events) = c.host.admin("GET", "/events?provider=p24", None).await;
    let events: Vec<&Value> = events["events"].as_array().unwrap().iter().filter(|e| e["reference"] == "tx-1001").collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let deliveries = c.wait_deliveries_done().await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["key"], "confirm/tx-1001");
    assert_eq!(c.p24.callbacks().len(), 1);
    assert_eq!(balance_of(&c.host, "card-1").await, "160.50");

    let logs = c.host.logs();
    assert!(logs.contains("platform24 payment form issued") && logs.contains("platform24 card payment credited"), "{logs}");
    assert!(!logs.contains(PRIVATE_KEY), "the private key reached the log");
    assert!(!logs.contains(&cb.security_key), "a callback SecurityKey reached the log");
    let form_key = &params.iter().find(|(k, _)| k == "SecurityKey").unwrap().1;
    assert!(!logs.contains(form_key.as_str()), "a payment-form SecurityKey reached the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_card_payment_reports_fail() {
    let c = start_cards().await;
    fund(&c.host, "card-2", "5.00", "k2").await;
    let session = c.checkout("card-2", "tx-2002", "300.00").await;
    c.pay(&session, Outcome::Expired).await;

    let callbacks = c.wait_callbacks(1).await;
    let cb = &callbacks[0];
    assert_eq!(cb.outcome, "fail");
    assert!(cb.signature_ok, "the simulator's SHA1 does not match: {cb:?}");
    assert_eq!((cb.transaction_id.as_str(), cb.amount.as_str(), cb.currency.as_str()), ("tx-2002", "300.00", "RUB"));
    assert_eq!(balance_of(&c.host, "card-2").await, "5.00", "nothing credited");
    let deliveries = c.wait_deliveries_done().await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["key"], "fail/tx-2002");

    // A paid transaction cannot be asked for again as another payment.
    let params = p24::payment_form_params(PRIVATE_KEY, "card-2", "tx-2002", "Пакет", "999.00");
    let (status, v) = payment_form(&c.host, &params).await;
    assert_eq!(status, 409, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_confirm_survives_a_platform24_outage_and_a_host_crash_and_arrives_once() {
    let mut c = start_cards().await;
    fund(&c.host, "card-3", "0.50", "k3").await;
    let session = c.checkout("card-3", "tx-3003", "200.00").await;

    c.p24.set_down(true);
    c.pay(&session, Outcome::Paid).await;
    // The money is credited at once; the confirm is refused while Platform24 is down.
    let credited = c.host.wait_until(WAIT, || async { balance_of(&c.host, "card-3").await == "200.50" }).await;
    assert!(credited, "balance {}", balance_of(&c.host, "card-3").await);
    let tried = c
        .host
        .wait_until(WAIT, || async { c.deliveries().await.first().is_some_and(|d| d["attempts"].as_u64() >= Some(1)) })
        .await;
    assert!(tried, "{:?}", c.deliveries().await);
    assert!(c.p24.callbacks().is_empty());

    // The host dies and comes back: the queued confirm is still there.
    c.host.kill9().await;
    c.host.start_again().await;
    c.host.advance_clock(3600).await;
    let retried = c
        .host
        .wait_until(WAIT, || async { c.deliveries().await.first().is_some_and(|d| d["attempts"].as_u64() >= Some(2)) })
        .await;
    assert!(retried, "{:?}", c.deliveries().await);
    assert_eq!(c.deliveries().await[0]["state"], "pending");

    // Platform24 is back: the next retry (driven by the host clock) delivers it.
    c.p24.set_down(false);
    c.host.advance_clock(3600).await;
    let callbacks = c.wait_callbacks(1).await;
    assert_eq!(callbacks[0].outcome, "confirm");
    assert!(callbacks[0].signature_ok, "{:?}", callbacks[0]);
    let deliveries = c.wait_deliveries_done().await;
    assert_eq!(deliveries.len(), 1);
    c.host.advance_clock(7200).await;
    let (_, events) = c.host.admin("GET", "/events?provider=p24", None).await;
    assert!(events["events"].as_array().unwrap().iter().all(|e| e["state"] == "done"), "{events}");
    assert_eq!(c.p24.callbacks().len(), 1, "the confirm arrived once");
    assert_eq!(balance_of(&c.host, "card-3").await, "200.50", "credited once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_down_or_slow_payment_system_gives_a_clear_error() {
    // Stripe answering 503.
    let c = start_cards().await;
    fund(&c.host, "card-4", "1.00", "k4").await;
    c.stripe.server().set_down(true);
    let params = p24::payment_form_params(PRIVATE_KEY, "card-4", "tx-4004", "Пакет", "100.00");
    let (status, v) = payment_form(&c.host, &params).await;
    assert_eq!(status, 503, "{v}");
    assert!(v.get("redirect_url").is_none(), "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("Платёжная система"), "{v}");
    // Once it is back, the same transaction gets its page.
    c.stripe.server().set_down(false);
    c.checkout("card-4", "tx-4004", "100.00").await;

    // A payment system that never answers in time: its plugin's outbound deadline
    // (limits.http_timeout_ms) turns into the same clear answer.
    let p24 = start_sim().await;
    let slow = SimServer::start(|_| {
        std::thread::sleep(Duration::from_secs(3));
        SimResponse::empty(500)
    })
    .await;
    let host = p24
        .grant(HostBuilder::new())
        .env("STRIPE_SECRET_KEY", STRIPE_KEY)
        .env("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET)
        .config(&card_config(&p24, &slow.base_url(), &slow.host_port(), 500))
        .start()
        .await;
    fund(&host, "card-5", "1.00", "k5").await;
    let params = p24::payment_form_params(PRIVATE_KEY, "card-5", "tx-5005", "Пакет", "100.00");
    let (status, v) = payment_form(&host, &params).await;
    assert_eq!(status, 503, "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("не ответила"), "{v}");
    assert!(host.logs().contains("did not answer in time"), "the log says why");
}
