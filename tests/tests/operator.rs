//! The operator surface through the real host: `/metrics` counts exactly what a
//! scripted workload did, every audited admin action appears once in the trail (and
//! nothing else does), and retry/cancel change jobs as documented.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use payhost_tests::host::ADMIN_TOKEN;
use payhost_tests::sim::http::{SimResponse, SimServer};
use payhost_tests::{faulty_config, plugin_wasm, HostBuilder, TestHost};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn template(name: &str, mount: &str, allowed: &str) -> String {
    format!(
        "\n[[plugins]]\nname = \"{name}\"\ncomponent = {:?}\nmount = \"{mount}\"\nallowed_hosts = [{allowed:?}]\n",
        plugin_wasm("template").display().to_string()
    )
}

fn faulty(name: &str, mount: &str) -> String {
    faulty_config(name, mount, "deadline_ms = 300")
}

/// Whether the first pending delivery has one attempt recorded: the worker writes the
/// attempt's count together with the release of its lease and the retry's time.
async fn first_pending_attempted_once(host: &TestHost) -> bool {
    host.admin("GET", "/deliveries?state=pending", None).await.1["deliveries"][0]["attempts"] == 1
}

/// A counterpart that answers 500 to the first `fail` requests on each path, 200 after.
async fn flaky_counterpart(fail: usize) -> (SimServer, Arc<std::sync::Mutex<HashMap<String, usize>>>) {
    let seen: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let counts = seen.clone();
    let sim = SimServer::start(move |req| {
        let n = {
            let mut counts = counts.lock().unwrap();
            let n = counts.entry(req.path.clone()).or_default();
            *n += 1;
            *n
        };
        if req.path.starts_with("/flaky") && n <= fail {
            SimResponse::json(500, &json!({ "error": "try later" }))
        } else if req.path.starts_with("/down") {
            SimResponse::json(500, &json!({ "error": "always down" }))
        } else {
            SimResponse::json(200, &json!({ "ok": true }))
        }
    })
    .await;
    (sim, seen)
}

/// Every sample of a Prometheus text scrape, by metric name and labels.
struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    async fn of(host: &TestHost) -> Scrape {
        let resp = host.client().get(host.admin_url("/metrics")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
        let text = resp.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).expect("the scrape parses as Prometheus text"))
    }

    /// The value of `name{labels}` (0 when absent: a counter not yet created).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let matching = self.0.samples.iter().filter(|s| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        });
        let mut total = 0.0;
        for sample in matching {
            total += match &sample.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
                prometheus_parse::Value::Summary(_) => 0.0,
            };
        }
        total
    }

    /// How many observations a histogram holds.
    fn observations(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let count = self.value(&format!("{name}_count"), labels);
        if count > 0.0 { count } else { self.value(name, labels) }
    }
}

async fn admin_ok(host: &TestHost, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, answer) = host.admin(method, path, body).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    answer
}

async fn start_timers_fired(host: &TestHost) {
    let fired = host
        .wait_until(WAIT, || async { host.admin("GET", "/timers", None).await.1["count"] == 0 })
        .await;
    assert!(fired, "the start timers never fired:\n{}", host.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_exactly_what_a_scripted_workload_did() {
    let (sim, _) = flaky_counterpart(2).await;
    let mut host = HostBuilder::new()
        .env("PROBE_KEY", "probe")
        .config(&template("tpl", "/tpl", &sim.host_port()))
        .config(&faulty("faulty", "/faulty"))
        .start()
        .await;
    start_timers_fired(&host).await;
    let before = Scrape::of(&host).await;
    assert_eq!(before.value("payhost_build_info", &[]), 1.0);

    // Plugin calls: three plain ones and an outbound fetch.
    for _ in 0..3 {
        assert_eq!(host.get("/tpl/").await.status().as_u16(), 200);
    }
    let fetched = host.get(&format!("/tpl/fetch?url={}/ok", sim.base_url())).await;
    assert_eq!(fetched.status().as_u16(), 200);
    // A trap and a deadline.
    assert_eq!(host.get("/faulty/trap").await.status().as_u16(), 500);
    assert_eq!(host.get("/faulty/loop").await.status().as_u16(), 503);
    // A ledger credit, a debit and a refused debit.
    let credit = json!({"amount": "100.00", "currency": "RUB", "reference": "top-up", "idempotency_key": "m-1"});
    admin_ok(&host, "POST", "/accounts/sub-1/credit", Some(credit)).await;
    admin_ok(&host, "POST", "/accounts/sub-1/debit", Some(json!({"amount": "30.00", "idempotency_key": "m-2"}))).await;
    let (status, refused) = host.admin("POST", "/accounts/sub-1/debit", Some(json!({"amount": "500.00", "idempotency_key": "m-3"}))).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("insufficient-funds")));
    // A delivery that fails twice, then succeeds (the clock moves through the backoff).
    let queued = host.post(&format!("/tpl/deliver?url={}/flaky/cb", sim.base_url()), "text/plain", "paid").await;
    assert_eq!(queued.status().as_u16(), 202);
    for _ in 0..3 {
        let moved = host
            .wait_until(WAIT, || async {
                let (_, list) = host.admin("GET", "/deliveries", None).await;
                list["deliveries"][0]["state"] == "done" || list["deliveries"][0]["attempts"].as_u64().unwrap_or(0) > 0
            })
            .await;
        assert!(moved);
        let (_, list) = host.admin("GET", "/deliveries", None).await;
        if list["deliveries"][0]["state"] == "done" {
            break;
        }
        let attempts = list["deliveries"][0]["attempts"].as_u64().unwrap();
        host.advance_clock(3600).await;
        let next = host
            .wait_until(WAIT, || async {
                let (_, list) = host.admin("GET", "/deliveries", None).await;
                list["deliveries"][0]["attempts"].as_u64().unwrap_or(0) > attempts
            })
            .await;
        assert!(next, "{}", host.logs());
    }
    let (_, list) = host.admin("GET", "/deliveries", None).await;
    assert_eq!((list["deliveries"][0]["state"].as_str(), list["deliveries"][0]["attempts"].as_u64()), (Some("done"), Some(3)), "{list}");
    // A swap.
    admin_ok(&host, "POST", "/plugins/tpl/reload", Some(json!({}))).await;

    let after = Scrape::of(&host).await;
    let moved = |name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.value(name, labels);
    let tpl = ("instance", "tpl");
    let faulty = ("instance", "faulty");
    assert_eq!(moved("payhost_requests_total", &[tpl, ("status", "2xx")]), 5.0, "3 plain calls, a fetch and the delivery request");
    assert_eq!(moved("payhost_requests_total", &[tpl, ("status", "5xx")]), 0.0);
    assert_eq!(moved("payhost_requests_total", &[faulty, ("status", "5xx")]), 2.0);
    assert_eq!(after.observations("payhost_request_duration_seconds", &[tpl]) - before.observations("payhost_request_duration_seconds", &[tpl]), 5.0);
    assert_eq!(moved("payhost_call_failures_total", &[faulty, ("cause", "trap")]), 1.0);
    assert_eq!(moved("payhost_call_failures_total", &[faulty, ("cause", "deadline")]), 1.0);
    assert_eq!(moved("payhost_call_failures_total", &[tpl]), 0.0);
    assert_eq!(
        after.observations("payhost_instantiation_duration_seconds", &[tpl]) - before.observations("payhost_instantiation_duration_seconds", &[tpl]),
        5.0
    );
    let sim_host = ("host", "127.0.0.1");
    assert_eq!(moved("payhost_outbound_requests_total", &[tpl, sim_host, ("status", "2xx")]), 1.0);
    assert_eq!(moved("payhost_ledger_postings_total", &[("kind", "credit")]), 1.0);
    assert_eq!(moved("payhost_ledger_postings_total", &[("kind", "debit")]), 1.0);
    assert_eq!(moved("payhost_ledger_refusals_total", &[("kind", "debit"), ("reason", "insufficient-funds")]), 1.0);
    assert_eq!(moved("payhost_job_attempts_total", &[("kind", "delivery"), ("outcome", "failed")]), 2.0);
    assert_eq!(moved("payhost_job_attempts_total", &[("kind", "delivery"), ("outcome", "done")]), 1.0);
    assert_eq!(moved("payhost_job_attempts_total", &[("kind", "delivery"), ("outcome", "given-up")]), 0.0);
    assert_eq!(moved("payhost_swaps_total", &[tpl]), 1.0);
    assert_eq!(moved("payhost_rollbacks_total", &[]), 0.0);
    assert_eq!(after.value("payhost_jobs", &[("kind", "delivery"), ("state", "done")]), 1.0);
    assert_eq!(after.value("payhost_jobs", &[("kind", "delivery"), ("state", "pending")]), 0.0);
    // No account id, reference or request id is a label value.
    let text = host.client().get(host.admin_url("/metrics")).bearer_auth(ADMIN_TOKEN).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("sub-1") && !text.contains("m-2") && !text.contains("top-up"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_audited_action_appears_once_with_its_fields() {
    let (sim, _) = flaky_counterpart(1).await;
    let mut host = HostBuilder::new().config(&template("tpl", "/tpl", &sim.host_port())).start().await;
    start_timers_fired(&host).await;
    let (status, empty) = host.admin("GET", "/audit", None).await;
    assert_eq!((status, empty["count"].as_u64()), (200, Some(0)), "start-up writes no audit entry: {empty}");

    let call = |method: &str, path: &str, body: Value, id: &str| {
        let req = host
            .client()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), host.admin_url(path))
            .bearer_auth(ADMIN_TOKEN)
            .header("x-request-id", id)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            let echoed = resp.headers()["x-request-id"].to_str().unwrap().to_string();
            let status = resp.status().as_u16();
            (status, echoed, resp.json::<Value>().await.unwrap())
        }
    };
    let (s, echoed, _) = call("POST", "/accounts/sub%2F1/credit", json!({"amount": "100.00", "currency": "RUB", "reference": "r", "idempotency_key": "a1"}), "op-credit").await;
    assert_eq!((s, echoed.as_str()), (200, "op-credit"));
    let (s, _, debit) = call("POST", "/accounts/sub%2F1/debit", json!({"amount": "40.00", "idempotency_key": "a2"}), "op-debit").await;
    assert_eq!(s, 200);
    let (s, _, _) = call("POST", "/accounts/sub%2F1/debit", json!({"amount": "400.00", "idempotency_key": "a3"}), "op-refused").await;
    assert_eq!(s, 422);
    let (s, _, _) = call("PUT", "/accounts/sub%2F1/overdraft", json!({"limit": "10.00"}), "op-overdraft").await;
    assert_eq!(s, 200);
    let tx = debit["entry"]["transaction_id"].as_str().unwrap().to_string();
    let (s, _, _) = call("POST", &format!("/accounts/sub%2F1/transactions/{tx}/reverse"), json!({"reference": "mistake", "idempotency_key": "a4"}), "op-reverse").await;
    assert_eq!(s, 200);
    let (s, _, _) = call("POST", "/plugins/tpl/reload", json!({}), "op-reload").await;
    assert_eq!(s, 200);
    let (s, _, _) = call("POST", "/plugins/tpl/rollback", json!({}), "op-rollback").await;
    assert_eq!(s, 200);
    let (s, _, _) = call("POST", "/config/reload", json!({}), "op-config").await;
    assert_eq!(s, 200);
    // A delivery that failed once waits for its retry: run it now, then cancel another.
    host.post(&format!("/tpl/deliver?url={}/flaky/1&key=one", sim.base_url()), "text/plain", "x").await;
    host.post(&format!("/tpl/deliver?url={}/down/2&key=two", sim.base_url()), "text/plain", "x").await;
    let tried = host
        .wait_until(WAIT, || async {
            let (_, list) = host.admin("GET", "/deliveries", None).await;
            list["deliveries"].as_array().unwrap().iter().all(|d| d["attempts"] == 1)
        })
        .await;
    assert!(tried);
    let (_, list) = host.admin("GET", "/deliveries", None).await;
    let id_of = |key: &str| list["deliveries"].as_array().unwrap().iter().find(|d| d["key"] == key).unwrap()["id"].as_str().unwrap().to_string();
    let (s, _, retried) = call("POST", &format!("/deliveries/{}/retry", id_of("one")), json!({"reason": "customer called"}), "op-retry").await;
    assert_eq!((s, retried["state"].as_str()), (200, Some("pending")), "{retried}");
    let (s, _, cancelled) = call("POST", &format!("/deliveries/{}/cancel", id_of("two")), json!({"reason": "endpoint retired"}), "op-cancel").await;
    assert_eq!((s, cancelled["state"].as_str()), (200, Some("cancelled")), "{cancelled}");

    // Things that are not admin actions write nothing.
    host.admin("GET", "/accounts/sub%2F1", None).await;
    host.admin("GET", "/plugins", None).await;
    host.admin("GET", "/deliveries/given-up", None).await;
    host.advance_clock(1).await;
    let unauthorized = host.client().post(host.admin_url("/accounts/sub%2F1/credit")).json(&json!({"amount": "1.00"})).send().await.unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    let plugin_debit = host
        .post_json("/tpl/debit", &json!({"key": "p1", "account": "sub/1", "amount": "1.00", "currency": "RUB"}))
        .await;
    assert_eq!(plugin_debit.status().as_u16(), 200);

    let (_, trail) = host.admin("GET", "/audit?limit=1000", None).await;
    let entries = trail["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["credit", "debit", "debit", "overdraft", "reversal", "reload", "rollback", "config-reload", "retry", "cancel"],
        "{trail}"
    );
    let ids: Vec<&str> = entries.iter().map(|e| e["request_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["op-credit", "op-debit", "op-refused", "op-overdraft", "op-reverse", "op-reload", "op-rollback", "op-config", "op-retry", "op-cancel"]);
    for e in entries {
        assert!(e["id"].as_i64().is_some() && e["at_ms"].as_i64().unwrap() > 0, "{e}");
        assert!(e["source"].as_str().unwrap().starts_with("127.0.0.1:"), "{e}");
        assert!(e["request"]["method"].is_string() && e["request"]["path"].as_str().unwrap().starts_with('/'), "{e}");
        assert!(e["result"].is_object(), "{e}");
    }
    let entry = |request_id: &str| entries.iter().find(|e| e["request_id"] == request_id).unwrap().clone();
    let credit = entry("op-credit");
    assert_eq!((credit["target"].as_str(), credit["outcome"].as_str(), credit["status"].as_u64()), (Some("sub/1"), Some("ok"), Some(200)));
    assert_eq!(credit["request"]["body"]["amount"], "100.00");
    assert_eq!(credit["result"]["account"]["balance"], "100.00");
    let refused = entry("op-refused");
    assert_eq!((refused["outcome"].as_str(), refused["status"].as_u64()), (Some("refused"), Some(422)));
    assert_eq!(refused["result"]["code"], "insufficient-funds");
    assert_eq!(entry("op-reverse")["target"], format!("sub/1/{tx}"));
    assert_eq!(entry("op-reload")["target"], "tpl");
    assert_eq!(entry("op-config")["target"], "config");
    let cancel = entry("op-cancel");
    assert_eq!(cancel["target"], format!("deliveries/{}", id_of("two")));
    assert_eq!(cancel["request"]["body"]["reason"], "endpoint retired", "the reason is in the trail");
    assert_eq!(entry("op-retry")["request"]["body"]["reason"], "customer called");

    // Filters: by kind, and from a time on.
    let (_, debits) = host.admin("GET", "/audit?kind=debit", None).await;
    assert_eq!(debits["count"], 2);
    let since = entry("op-config")["at_ms"].as_i64().unwrap();
    let (_, later) = host.admin("GET", &format!("/audit?since={since}"), None).await;
    assert!(later["entries"].as_array().unwrap().iter().all(|e| e["at_ms"].as_i64().unwrap() >= since));
    assert_eq!(host.admin("GET", "/audit?kind=nonsense", None).await.0, 400);

    // SIGHUP is an operator's config reload too.
    let pid = host.pid().unwrap();
    std::process::Command::new("kill").arg("-HUP").arg(pid.to_string()).status().unwrap();
    let signalled = host
        .wait_until(WAIT, || async { host.admin("GET", "/audit?kind=config-reload", None).await.1["count"] == 2 })
        .await;
    assert!(signalled, "{}", host.logs());
    let (_, reloads) = host.admin("GET", "/audit?kind=config-reload", None).await;
    assert_eq!(reloads["entries"][1]["source"], "signal");
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_and_cancel_change_job_state_and_a_cancelled_delivery_is_never_sent_again() {
    let (sim, counts) = flaky_counterpart(1).await;
    let mut host = HostBuilder::new()
        .runtime_option("delivery_max_attempts = 2")
        .config(&template("tpl", "/tpl", &sim.host_port()))
        .start()
        .await;
    start_timers_fired(&host).await;
    let hits_on = |path: &str| counts.lock().unwrap().get(path).copied().unwrap_or(0);

    // Given up after two failed attempts, listed apart; a retry gives it one more.
    host.post(&format!("/tpl/deliver?url={}/down/a&key=a", sim.base_url()), "text/plain", "x").await;
    let first = host.wait_until(WAIT, || async { hits_on("/down/a") == 1 }).await;
    assert!(first);
    // The counterpart answers before the worker records the attempt; the clock moves only
    // once the retry is scheduled from it.
    assert!(host.wait_until(WAIT, || first_pending_attempted_once(&host)).await, "{}", host.logs());
    host.advance_clock(3600).await;
    let given_up = host
        .wait_until(WAIT, || async { host.admin("GET", "/deliveries/given-up", None).await.1["count"] == 1 })
        .await;
    assert!(given_up, "{}", host.logs());
    let (_, listed) = host.admin("GET", "/deliveries/given-up", None).await;
    let id = listed["deliveries"][0]["id"].as_str().unwrap().to_string();
    assert_eq!((listed["state"].as_str(), listed["deliveries"][0]["attempts"].as_u64()), (Some("failed"), Some(2)));
    let (_, pending) = host.admin("GET", "/deliveries?state=pending", None).await;
    assert_eq!(pending["count"], 0);
    let (status, body) = host.admin("POST", &format!("/deliveries/{id}/retry"), Some(json!({}))).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad-request")), "a reason is required: {body}");
    let (status, body) = host.admin("POST", &format!("/deliveries/{id}/retry"), Some(json!({"reason": "endpoint fixed"}))).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("pending")), "{body}");
    let third = host.wait_until(WAIT, || async { hits_on("/down/a") == 3 }).await;
    assert!(third, "the retry sent it once more");
    let failed_again = host
        .wait_until(WAIT, || async { host.admin("GET", "/deliveries/given-up", None).await.1["deliveries"][0]["attempts"] == 3 })
        .await;
    assert!(failed_again, "one more attempt, then given up again");

    // Cancelled while waiting for its retry: never sent again.
    host.post(&format!("/tpl/deliver?url={}/flaky/b&key=b", sim.base_url()), "text/plain", "x").await;
    let tried = host.wait_until(WAIT, || async { hits_on("/flaky/b") == 1 }).await;
    assert!(tried);
    // Until the attempt is recorded the delivery is leased, and a cancel is refused as
    // busy: the attempt's count and the lease's release are one write.
    assert!(host.wait_until(WAIT, || first_pending_attempted_once(&host)).await, "{}", host.logs());
    let (_, list) = host.admin("GET", "/deliveries?state=pending", None).await;
    let b = list["deliveries"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = host.admin("POST", &format!("/deliveries/{b}/cancel"), Some(json!({"reason": "duplicate order"}))).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("cancelled")), "{body}");
    let (status, body) = host.admin("POST", &format!("/deliveries/{b}/retry"), Some(json!({"reason": "oops"}))).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("ended")), "{body}");
    for _ in 0..3 {
        host.advance_clock(3600).await;
    }
    // The worker ran rounds after every move (a timer set now fires, proving it).
    host.post("/tpl/timer?name=probe&in=1", "application/octet-stream", "p").await;
    host.advance_clock(2).await;
    let probed = host
        .wait_until(WAIT, || async { host.get("/tpl/timer-fired").await.text().await.unwrap().contains("probe:p;") })
        .await;
    assert!(probed);
    assert_eq!(hits_on("/flaky/b"), 1, "a cancelled delivery is never sent again");
    let (_, cancelled) = host.admin("GET", "/deliveries?state=cancelled", None).await;
    assert_eq!((cancelled["count"].as_u64(), cancelled["deliveries"][0]["attempts"].as_u64()), (Some(1), Some(1)));

    // Timers: retry fires one now; cancel removes one.
    host.post("/tpl/timer?name=later&in=86400", "application/octet-stream", "L").await;
    host.post("/tpl/timer?name=never&in=86400", "application/octet-stream", "N").await;
    let (_, timers) = host.admin("GET", "/timers", None).await;
    let timer_id = |name: &str| timers["timers"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["id"].as_i64().unwrap();
    let (status, body) = host.admin("POST", &format!("/timers/{}/retry", timer_id("later")), Some(json!({"reason": "run the renewal now"}))).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("scheduled")), "{body}");
    let (status, body) = host.admin("POST", &format!("/timers/{}/cancel", timer_id("never")), Some(json!({"reason": "subscription ended"}))).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("cancelled")), "{body}");
    let fired = host
        .wait_until(WAIT, || async { host.get("/tpl/timer-fired").await.text().await.unwrap().contains("later:L;") })
        .await;
    assert!(fired, "retry now fired the timer without waiting a day");
    host.advance_clock(2 * 86400).await;
    host.post("/tpl/timer?name=probe2&in=1", "application/octet-stream", "q").await;
    host.advance_clock(2).await;
    let probed = host
        .wait_until(WAIT, || async { host.get("/tpl/timer-fired").await.text().await.unwrap().contains("probe2:q;") })
        .await;
    assert!(probed);
    assert!(!host.get("/tpl/timer-fired").await.text().await.unwrap().contains("never:"), "a cancelled timer never fires");
    let (status, _) = host.admin("POST", &format!("/timers/{}/cancel", timer_id("never")), Some(json!({"reason": "again"}))).await;
    assert_eq!(status, 404);
    let (status, _) = host.admin("POST", "/events/424242/retry", Some(json!({"reason": "no such event"}))).await;
    assert_eq!(status, 404);
}
