//! Issue: money. The host is killed with SIGKILL in the middle of a burst of ledger debits
//! and payment webhooks; after a restart every acknowledged operation is there exactly
//! once, nothing is half-done, and replays finish the rest without doubles.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payhost_tests::sim::stripe::{signature_header, Outcome, StripeSim};
use payhost_tests::{HostBuilder, TestHost};
use serde_json::{json, Value};

const SECRET_KEY: &str = "sk_test_51CrashTestKey";
const WEBHOOK_SECRET: &str = "whsec_CrashTestSigningSecret";
const DEBITS: usize = 120;
const PAYMENTS: usize = 30;

async fn start() -> (TestHost, StripeSim) {
    let sim = StripeSim::start(SECRET_KEY, WEBHOOK_SECRET).await;
    let config = sim.shop_config();
    let host = sim.grant(HostBuilder::new())
        .config(&config)
        .start()
        .await;
    (host, sim)
}

async fn debit(client: &reqwest::Client, admin: &str, key: &str) -> Option<u16> {
    let resp = client
        .post(format!("{admin}/accounts/crash-acc/debit"))
        .bearer_auth(payhost_tests::host::ADMIN_TOKEN)
        .json(&json!({ "amount": "1.00", "currency": "USD", "reference": key, "idempotency_key": key }))
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

async fn post_webhook(client: &reqwest::Client, url: &str, payload: &[u8], signature: &str) -> Option<u16> {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(payload.to_vec())
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

async fn deliveries(host: &TestHost, reference: &str) -> u64 {
    let resp = host.get(&format!("/shop/payment?reference={reference}")).await;
    if resp.status().as_u16() != 200 {
        return 0;
    }
    resp.json::<Value>().await.unwrap()["deliveries"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_mid_burst_loses_and_doubles_nothing() {
    let (mut host, sim) = start().await;
    let (status, body) = host
        .admin("POST", "/accounts/crash-acc/credit", Some(json!({ "amount": "1000.00", "currency": "USD", "reference": "fund", "idempotency_key": "fund" })))
        .await;
    assert_eq!(status, 200, "{body}");

    // Open checkouts and prepare their signed webhooks before the burst.
    let now = host.now().await;
    let mut webhooks = Vec::new();
    for i in 0..PAYMENTS {
        let reference = format!("order-{i}");
        let resp = host
            .post_json(
                "/shop/checkout",
                &json!({ "system": "stripe", "amount": "5.00", "currency": "USD", "description": "crash test",
                         "reference": reference, "return_url": "https://shop.example/back", "customer": "c" }),
            )
            .await;
        let body: Value = resp.json().await.unwrap();
        let session = body["id"].as_str().expect("session id").to_string();
        let event = sim.finish_session(&session, Outcome::Paid, now);
        let payload = serde_json::to_vec(&event).unwrap();
        let signature = signature_header(WEBHOOK_SECRET, now, &payload);
        webhooks.push((reference, payload, signature));
    }

    // The burst: debits and webhooks from many tasks; the host dies part-way.
    let acked_debits = Arc::new(Mutex::new(HashSet::new()));
    let acked_hooks = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    let client = host.client().clone();
    let admin = host.admin_url("");
    for worker in 0..6 {
        let (client, admin, acked) = (client.clone(), admin.clone(), acked_debits.clone());
        tasks.push(tokio::spawn(async move {
            for i in (worker..DEBITS).step_by(6) {
                let key = format!("debit-{i}");
                if debit(&client, &admin, &key).await == Some(200) {
                    acked.lock().unwrap().insert(key);
                }
            }
        }));
    }
    let webhook_url = host.url("/stripe/webhook");
    for chunk in webhooks.chunks(10).map(|c| c.to_vec()) {
        let (client, url, acked) = (client.clone(), webhook_url.clone(), acked_hooks.clone());
        tasks.push(tokio::spawn(async move {
            for (reference, payload, signature) in chunk {
                if post_webhook(&client, &url, &payload, &signature).await == Some(200) {
                    acked.lock().unwrap().insert(reference);
                }
            }
        }));
    }
    // Let part of the burst through, then SIGKILL.
    let waited = host
        .wait_until(Duration::from_secs(30), || async { acked_debits.lock().unwrap().len() >= DEBITS / 4 })
        .await;
    assert!(waited, "burst did not get going");
    host.kill9().await;
    for t in tasks {
        t.await.unwrap();
    }
    let acked_debits = acked_debits.lock().unwrap().clone();
    let acked_hooks = acked_hooks.lock().unwrap().clone();
    assert!(acked_debits.len() < DEBITS, "the kill came after the whole burst; nothing was tested");

    host.start_again().await;
    // Jobs the killed host had claimed stay leased to it until the lease runs out
    // (`job_lease_seconds`, 60 s); then this host takes them over.
    host.advance_clock(61).await;

    // Every acknowledged debit is there exactly once, and the balance agrees with the
    // entries (nothing half-done).
    let (_, history) = host.admin("GET", "/accounts/crash-acc/transactions?limit=1000", None).await;
    let entries = history["entries"].as_array().or_else(|| history.as_array()).expect("history list").clone();
    let debits: Vec<String> = entries
        .iter()
        .filter(|e| e["kind"] == "debit")
        .map(|e| e["reference"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = debits.iter().collect();
    assert_eq!(unique.len(), debits.len(), "a debit was applied twice");
    for key in &acked_debits {
        assert!(debits.contains(key), "acknowledged {key} is missing after the crash");
    }
    let (_, account) = host.admin("GET", "/accounts/crash-acc", None).await;
    let expected = format!("{}.00", 1000 - debits.len());
    assert_eq!(account["balance"], expected.as_str(), "balance disagrees with the entries");

    // Acknowledged webhooks reach the provider exactly once after the restart.
    for reference in &acked_hooks {
        let delivered = host.wait_until(Duration::from_secs(20), || async { deliveries(&host, reference).await == 1 }).await;
        assert!(delivered, "acknowledged event {reference} not delivered:\n{}", host.logs());
    }

    // Clients retry what was not acknowledged (Stripe resends webhooks, operators repeat
    // calls with their keys): everything ends applied exactly once.
    for i in 0..DEBITS {
        assert_eq!(debit(host.client(), &host.admin_url(""), &format!("debit-{i}")).await, Some(200));
    }
    for (reference, payload, signature) in &webhooks {
        assert_eq!(post_webhook(host.client(), &host.url("/stripe/webhook"), payload, signature).await, Some(200), "{reference}");
    }
    let (_, account) = host.admin("GET", "/accounts/crash-acc", None).await;
    assert_eq!(account["balance"], format!("{}.00", 1000 - DEBITS).as_str());
    for (reference, _, _) in &webhooks {
        let delivered = host.wait_until(Duration::from_secs(20), || async { deliveries(&host, reference).await == 1 }).await;
        assert!(delivered, "event {reference} not delivered exactly once");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (reference, _, _) in &webhooks {
        assert_eq!(deliveries(&host, reference).await, 1, "event {reference} delivered twice");
    }
}
