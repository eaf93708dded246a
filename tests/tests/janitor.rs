//! The janitor through the real host and the stripe plugin: a checkout whose webhook is
//! never sent is looked up at the payment system once it is old enough, settled, and
//! handed to the provider exactly once; the webhook arriving later changes nothing.

use std::time::Duration;

use payhost_tests::host::ADMIN_TOKEN;
use payhost_tests::sim::stripe::{Outcome, StripeSim};
use payhost_tests::HostBuilder;
use serde_json::{json, Value};

const SECRET_KEY: &str = "sk_test_51SimulatedKeyForPayhostTests";
const WEBHOOK_SECRET: &str = "whsec_SimulatedSigningSecretForTests";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_checkout_whose_webhook_never_came_is_settled_by_lookup_exactly_once() {
    let sim = StripeSim::start(SECRET_KEY, WEBHOOK_SECRET).await;
    let mut host = sim
        .grant(HostBuilder::new())
        .config(&sim.shop_config())
        .config("\n[janitor]\nafter_seconds = 600\nscan_seconds = 5\n")
        .start()
        .await;

    let checkout = host
        .post_json(
            "/shop/checkout",
            &json!({
                "system": "stripe", "amount": "300.00", "currency": "USD", "description": "Premium",
                "reference": "order-lost", "return_url": "https://shop.example/return", "customer": "sub-7",
            }),
        )
        .await;
    assert_eq!(checkout.status().as_u16(), 200);
    let session: Value = checkout.json().await.unwrap();
    let session_id = session["id"].as_str().unwrap().to_string();

    // The buyer pays; Stripe's webhook is lost on the way.
    let now = host.now().await;
    let lost_webhook = sim.finish_session(&session_id, Outcome::Paid, now);
    let (_, state) = host.admin("GET", "/janitor?open=true", None).await;
    assert_eq!(state["payments"][0]["external_id"], session_id.as_str(), "{state}");
    assert_eq!(state["payments"][0]["kind"], "checkout");

    // Younger than the configured age: nobody asks Stripe.
    host.advance_clock(300).await;
    // A timer fired after the clock moved means a worker round (janitor included) ran then.
    host.post("/shop/timer?name=probe&in=1", "application/octet-stream", "p").await;
    host.advance_clock(2).await;
    let round = host.wait_until(WAIT, || async { host.get("/shop/timer-fired").await.text().await.unwrap().contains("probe:p;") }).await;
    assert!(round);
    let lookups = |sim: &StripeSim| sim.requests().iter().filter(|r| r.method == "GET" && r.path.contains(&session_id)).count();
    assert_eq!(lookups(&sim), 0);

    host.advance_clock(300).await;
    let payment = |host: &payhost_tests::TestHost| {
        let url = host.url("/shop/payment?reference=order-lost");
        let client = host.client().clone();
        async move {
            let resp = client.get(url).send().await.unwrap();
            if resp.status().as_u16() == 200 { Some(resp.json::<Value>().await.unwrap()) } else { None }
        }
    };
    let delivered = host.wait_until(WAIT, || async { payment(&host).await.is_some() }).await;
    assert!(delivered, "the provider never heard of the payment:\n{}", host.logs());
    let handed = payment(&host).await.unwrap();
    assert_eq!(handed["event"]["status"], "succeeded");
    assert_eq!(handed["event"]["amount"], "300.00");
    assert_eq!(handed["deliveries"], 1);
    assert_eq!(lookups(&sim), 1, "looked up once");

    let (_, state) = host.admin("GET", "/janitor", None).await;
    let row = state["payments"].as_array().unwrap().iter().find(|p| p["reference"] == "order-lost").unwrap().clone();
    assert_eq!((row["state"].as_str(), row["settled_by"].as_str(), row["lookups"].as_u64()), (Some("settled"), Some("lookup"), Some(1)), "{row}");

    // The lost webhook arrives at last: the same event, stored once, handed over once.
    let payload = serde_json::to_vec(&lost_webhook).unwrap();
    let late = sim.send_webhook(&host.url("/stripe/webhook"), &payload, host.now().await).await;
    assert_eq!(late.status, 200);
    let (_, events) = host.admin("GET", "/events?provider=shop", None).await;
    let stored: Vec<&Value> = events["events"].as_array().unwrap().iter().filter(|e| e["reference"] == "order-lost").collect();
    assert_eq!(stored.len(), 1, "{events}");
    let done = host
        .wait_until(WAIT, || async {
            let (_, events) = host.admin("GET", "/events?provider=shop", None).await;
            events["events"][0]["state"] == "done"
        })
        .await;
    assert!(done);
    host.advance_clock(3600).await;
    // A probe checkout settled by its webhook shows the worker kept running meanwhile.
    let probe = host
        .post_json(
            "/shop/checkout",
            &json!({"system": "stripe", "amount": "5.00", "currency": "USD", "reference": "probe", "return_url": "https://shop.example/r"}),
        )
        .await;
    let probe: Value = probe.json().await.unwrap();
    let sent = sim.complete_session(probe["id"].as_str().unwrap(), Outcome::Paid, &host.url("/stripe/webhook"), host.now().await).await;
    assert_eq!(sent.status, 200);
    let probed = host.wait_until(WAIT, || async {
        let resp = host.get("/shop/payment?reference=probe").await;
        resp.status().as_u16() == 200
    }).await;
    assert!(probed);
    assert_eq!(payment(&host).await.unwrap()["deliveries"], 1, "a later webhook changes nothing");
    assert_eq!(lookups(&sim), 1, "a settled payment is not looked up again");

    let metrics = host.client().get(host.admin_url("/metrics")).bearer_auth(ADMIN_TOKEN).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"payhost_janitor_lookups_total{system="stripe",outcome="settled"} 1"#), "{metrics}");
}
