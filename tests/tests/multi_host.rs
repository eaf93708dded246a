//! Issue "Money": two hosts on one PostgreSQL database never fire one timer twice, never
//! send one delivery twice and never hand one payment event over twice. Two real `payhost`
//! processes share a fresh schema of the test database (`PAYHOST_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`), chosen through the storage URL's `options`
//! and dropped afterwards. Without a reachable PostgreSQL each test prints
//! `SKIPPED postgres: <reason>` and passes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use payhost_tests::sim::http::{SimResponse, SimServer};
use payhost_tests::sim::stripe::{signature_header, Outcome, StripeSim};
use payhost_tests::postgres::Schema;
use payhost_tests::{plugin_wasm, HostBuilder, TestHost};
use serde_json::{json, Value};

const SECRET_KEY: &str = "sk_test_51SimulatedKeyForPayhostTests";
const WEBHOOK_SECRET: &str = "whsec_SimulatedSigningSecretForTests";
/// A liveness bound for background work, not a timing assertion.
const WAIT: Duration = Duration::from_secs(30);
const TIMERS: usize = 20;
const DELIVERIES: usize = 20;
/// Seconds between two timers' due times, and how far both clocks move per step: far
/// more than the test's real run time, so wall time passing never makes the next timer
/// due early (two timers firing at once would race on the plugin's `timer-fired` log).
const STEP: i64 = 600;
/// The body of the delivery whose first answer is slow.
const SLOW_DELIVERY: &str = "d00";

/// The same instances on both hosts: the template plugin as the provider `shop` (timers,
/// deliveries to `sink`, payments through `stripe`) and the stripe plugin against `stripe`.
fn config(sink: &SimServer, stripe: &StripeSim) -> String {
    format!(
        r#"
[[plugins]]
name = "shop"
component = {template:?}
mount = "/shop"
allowed_hosts = [{sink:?}]
payment_systems = ["stripe"]

{stripe_config}
"#,
        template = plugin_wasm("template").display().to_string(),
        stripe_config = stripe.instance_config(),
        sink = sink.host_port(),
    )
}

async fn start_host(url: &str, config: &str) -> TestHost {
    HostBuilder::new()
        .postgres(url)
        .env("STRIPE_SECRET_KEY", SECRET_KEY)
        .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        // No clock move in these tests may expire a lease while its job runs: a job
        // taken over after its lease ran out is meant to run again, which is not what
        // is under test here.
        .runtime_option("job_lease_seconds = 86400")
        .config(config)
        .start()
        .await
}

struct Pair {
    a: TestHost,
    b: TestHost,
}

impl Pair {
    async fn start(schema: &Schema, config: &str) -> Pair {
        let url = schema.url();
        let (a, b) = tokio::join!(start_host(&url, config), start_host(&url, config));
        // The URL's search path took effect: the hosts made their tables in the schema.
        let tables = schema.tables(&["deliveries", "payment_events", "timers"]).await;
        assert_eq!(tables, ["deliveries", "payment_events", "timers"], "tables are not in schema {}", schema.name);
        Pair { a, b }
    }

    /// Host A for even `i`, host B for odd.
    fn alternate(&self, i: usize) -> &TestHost {
        [&self.a, &self.b][i % 2]
    }

    /// Moves both clocks by the same amount at once, so both workers wake together and
    /// race for whatever became due (which host is asked first alternates with `turn`).
    async fn advance_both(&mut self, seconds: i64, turn: usize) {
        match turn % 2 {
            0 => tokio::join!(self.a.advance_clock(seconds), self.b.advance_clock(seconds)),
            _ => tokio::join!(self.b.advance_clock(seconds), self.a.advance_clock(seconds)),
        };
    }

    fn logs(&self) -> String {
        format!("--- host A ---\n{}\n--- host B ---\n{}", self.a.logs(), self.b.logs())
    }
}

async fn admin_list(host: &TestHost, path: &str, field: &str) -> Vec<Value> {
    let (status, body) = host.admin("GET", path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body[field].as_array().unwrap_or_else(|| panic!("{path}: {body}")).clone()
}

/// Values of `field` on the log lines where this host reports a job of `kind` done.
fn done_jobs(logs: &str, kind: &str, field: &str) -> Vec<String> {
    let (kind, prefix) = (format!("kind=\"{kind}\""), format!("{field}="));
    logs.lines()
        .filter(|line| line.contains(&kind) && line.contains("outcome=\"done\""))
        .filter_map(|line| line.split_whitespace().find_map(|token| token.strip_prefix(&prefix)).map(str::to_string))
        .collect()
}

fn tally(items: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
}

/// Lets both workers run a few more polling rounds, so a second run of anything (the
/// failure under test) would have happened before the counts are read.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_fire_each_timer_and_send_each_delivery_exactly_once() {
    let Some(schema) = Schema::create().await else { return };
    let slowed = AtomicBool::new(false);
    let sink = SimServer::start(move |req| {
        // One slow answer keeps the host that sent it busy while the other host's worker
        // is idle and polling, so a claim that took rows still leased (in flight) would
        // send that delivery twice.
        if req.body == SLOW_DELIVERY.as_bytes() && !slowed.swap(true, Ordering::SeqCst) {
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(1500)));
        }
        SimResponse::empty(204)
    })
    .await;
    let stripe = StripeSim::start(SECRET_KEY, WEBHOOK_SECRET).await;
    let mut hosts = Pair::start(&schema, &config(&sink, &stripe)).await;

    // Timers, scheduled through A and B alternately; timer i is due after i + 1 steps.
    let timer_name = |i: usize| format!("mh-{i:02}");
    for i in 0..TIMERS {
        let path = format!("/shop/timer?name={}&in={}", timer_name(i), STEP * (i as i64 + 1));
        let resp = hosts.alternate(i).post(&path, "text/plain", format!("p{i}")).await;
        assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().await.unwrap_or_default());
    }
    let ours = |timers: Vec<Value>| -> Vec<Value> {
        timers.into_iter().filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with("mh-"))).collect()
    };
    // One table: either host lists what both scheduled.
    for host in [&hosts.a, &hosts.b] {
        let listed = ours(admin_list(host, "/timers?instance=shop", "timers").await);
        assert_eq!(listed.len(), TIMERS, "{listed:?}");
    }

    // Each step makes one timer due on both hosts at once; both workers race for it.
    for i in 0..TIMERS {
        hosts.advance_both(STEP, i).await;
        let name = timer_name(i);
        let fired = hosts
            .a
            .wait_until(WAIT, || async {
                let log = hosts.b.get("/shop/timer-fired").await.text().await.unwrap_or_default();
                let pending = ours(admin_list(&hosts.a, "/timers?instance=shop", "timers").await);
                log.contains(&format!("{name}:")) && !pending.iter().any(|t| t["name"] == name.as_str())
            })
            .await;
        assert!(fired, "timer {name} did not fire and complete:\n{}", hosts.logs());
    }
    settle().await;

    let expected: Vec<String> = (0..TIMERS).map(|i| format!("{}:p{i}", timer_name(i))).collect();
    for host in [&hosts.a, &hosts.b] {
        let log = host.get("/shop/timer-fired").await.text().await.unwrap();
        let firings: Vec<String> = log.split(';').filter(|s| !s.is_empty()).map(str::to_string).collect();
        assert_eq!(firings, expected, "each timer fires exactly once, in due order:\n{}", hosts.logs());
    }
    let timers_a = done_jobs(&hosts.a.logs(), "timer", "name").into_iter().filter(|n| n.starts_with("mh-")).collect::<Vec<_>>();
    let timers_b = done_jobs(&hosts.b.logs(), "timer", "name").into_iter().filter(|n| n.starts_with("mh-")).collect::<Vec<_>>();
    let fired = tally(timers_a.iter().chain(&timers_b).cloned());
    let once: BTreeMap<String, usize> = (0..TIMERS).map(|i| (timer_name(i), 1)).collect();
    assert_eq!(fired, once, "the hosts' logs show a timer fired other than once:\n{}", hosts.logs());
    assert!(ours(admin_list(&hosts.b, "/timers?instance=shop", "timers").await).is_empty());

    // Deliveries, enqueued through A and B alternately while the sink is down, so each
    // fails its first attempt and waits out its backoff on the host clocks.
    sink.set_down(true);
    for i in 0..DELIVERIES {
        let path = format!("/shop/deliver?url={}/receive&key=mh-d{i:02}", sink.base_url());
        let resp = hosts.alternate(i).post(&path, "text/plain", format!("d{i:02}")).await;
        assert_eq!(resp.status().as_u16(), 202, "{}", resp.text().await.unwrap_or_default());
    }
    let all_tried = hosts
        .a
        .wait_until(WAIT, || async {
            let rows = admin_list(&hosts.b, "/deliveries?instance=shop", "deliveries").await;
            rows.len() == DELIVERIES && rows.iter().all(|d| d["attempts"].as_i64() >= Some(1) && d["state"] == "pending")
        })
        .await;
    assert!(all_tried, "deliveries were not all tried once:\n{}", hosts.logs());

    // Every retry comes due on both hosts at once: both workers claim from one burst.
    sink.set_down(false);
    hosts.advance_both(STEP, 0).await;
    let all_done = hosts
        .a
        .wait_until(WAIT, || async {
            let rows = admin_list(&hosts.a, "/deliveries?instance=shop", "deliveries").await;
            rows.len() == DELIVERIES && rows.iter().all(|d| d["state"] == "done")
        })
        .await;
    assert!(all_done, "deliveries did not all complete:\n{}", hosts.logs());
    settle().await;

    let received = tally(sink.requests().into_iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()));
    let once: BTreeMap<String, usize> = (0..DELIVERIES).map(|i| (format!("d{i:02}"), 1)).collect();
    assert_eq!(received, once, "each delivery reaches the sink exactly once:\n{}", hosts.logs());
    let rows = admin_list(&hosts.b, "/deliveries?instance=shop", "deliveries").await;
    assert_eq!(rows.len(), DELIVERIES);
    assert!(rows.iter().all(|d| d["state"] == "done" && d["last_status"] == 204), "{rows:?}");
    let ids: Vec<String> = rows.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    let sent_a: Vec<String> = done_jobs(&hosts.a.logs(), "delivery", "job").into_iter().filter(|id| ids.contains(id)).collect();
    let sent_b: Vec<String> = done_jobs(&hosts.b.logs(), "delivery", "job").into_iter().filter(|id| ids.contains(id)).collect();
    let sent = tally(sent_a.iter().chain(&sent_b).cloned());
    assert!(sent.len() == DELIVERIES && sent.values().all(|&n| n == 1), "{sent:?}\n{}", hosts.logs());

    // Both hosts took part: every timer and the delivery burst were open to both workers
    // at the same moment (and a burst is larger than one claim batch).
    let (work_a, work_b) = (timers_a.len() + sent_a.len(), timers_b.len() + sent_b.len());
    println!("host A ran {} timers and {} deliveries; host B {} and {}", timers_a.len(), sent_a.len(), timers_b.len(), sent_b.len());
    assert!(work_a > 0 && work_b > 0, "one host did all the work (A {work_a}, B {work_b}):\n{}", hosts.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_event_reaches_the_provider_once_whichever_host_gets_the_webhook() {
    let Some(schema) = Schema::create().await else { return };
    let sink = SimServer::start(|_| SimResponse::empty(204)).await;
    let stripe = StripeSim::start(SECRET_KEY, WEBHOOK_SECRET).await;
    let hosts = Pair::start(&schema, &config(&sink, &stripe)).await;

    let references: Vec<String> = (1..=3).map(|i| format!("mh-order-{i}")).collect();
    for reference in &references {
        // The checkout starts on host A...
        let resp = hosts
            .a
            .post_json(
                "/shop/checkout",
                &json!({
                    "system": "stripe", "amount": "300.00", "currency": "USD", "description": "Premium package",
                    "reference": reference, "return_url": "https://shop.example/return", "customer": "subscriber-7",
                }),
            )
            .await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "checkout: {body}");
        let session = body["id"].as_str().expect("session id").to_string();

        // ...and Stripe's webhook reaches host B and host A at the same time.
        let now = hosts.a.now().await;
        let payload = serde_json::to_vec(&stripe.finish_session(&session, Outcome::Paid, now)).unwrap();
        let signature = signature_header(WEBHOOK_SECRET, now, &payload);
        let (webhook_a, webhook_b) = (hosts.a.url("/stripe/webhook"), hosts.b.url("/stripe/webhook"));
        let (to_b, to_a) = tokio::join!(
            stripe.post_webhook(&webhook_b, &payload, &signature),
            stripe.post_webhook(&webhook_a, &payload, &signature),
        );
        assert_eq!((to_b, to_a), (200, 200));

        let handed_over = hosts
            .b
            .wait_until(WAIT, || async {
                let events = admin_list(&hosts.b, "/events?provider=shop", "events").await;
                events.iter().any(|e| e["reference"] == reference.as_str() && e["state"] == "done")
            })
            .await;
        assert!(handed_over, "the event for {reference} was not handed over:\n{}", hosts.logs());
        // Stripe retries: the same webhook again, to A.
        assert_eq!(stripe.post_webhook(&webhook_a, &payload, &signature).await, 200);
    }
    settle().await;

    for reference in &references {
        for host in [&hosts.a, &hosts.b] {
            let resp = host.get(&format!("/shop/payment?reference={reference}")).await;
            assert_eq!(resp.status().as_u16(), 200);
            let seen: Value = resp.json().await.unwrap();
            assert_eq!(seen["event"]["status"], "succeeded", "{seen}");
            assert_eq!(seen["event"]["amount"], "300.00", "{seen}");
            assert_eq!(seen["deliveries"], 1, "the provider saw {reference} other than once:\n{}", hosts.logs());
        }
        let stored: Vec<Value> = admin_list(&hosts.a, "/events?provider=shop", "events")
            .await
            .into_iter()
            .filter(|e| e["reference"] == reference.as_str())
            .collect();
        assert_eq!(stored.len(), 1, "three webhooks, one stored event: {stored:?}");
        assert_eq!((stored[0]["state"].as_str(), stored[0]["attempts"].as_i64()), (Some("done"), Some(1)), "{stored:?}");
    }
    let logs = hosts.logs();
    assert!(!logs.contains(SECRET_KEY) && !logs.contains(WEBHOOK_SECRET), "a secret reached the log");
}
