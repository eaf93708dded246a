//! Netflix partner payments end to end: the real host runs the `netflix` plugin against
//! the Netflix API fake, which checks the time stamp and both signatures of every call.
//! Time moves only when a test advances the host clock, which is what drives the charge
//! loop's timers.

use std::time::Duration;

use base64::Engine;
use payhost_tests::sim::netflix::{header_string, nflx_signature, NetflixSim, Resolution};
use payhost_tests::{plugin_wasm, HostBuilder, TestHost};
use serde_json::{json, Value};

const PARTNER_KEY: &[u8] = b"e2e-netflix-partner-key-0123456789";
const ADMIN_TOKEN: &str = "netflix-plugin-admin-token-e2e";
const CREDENTIAL: &str = "partner-e2e";
const OFFSET: &str = "+0530";
const VALIDITY_SECONDS: i64 = 86_400;
const CHARGE_PATH: &str = "/mvpdapi/v5/event/charge";
const WAIT: Duration = Duration::from_secs(30);

struct Rig {
    host: TestHost,
    sim: NetflixSim,
}

fn partner_key_base64() -> String {
    base64::engine::general_purpose::STANDARD.encode(PARTNER_KEY)
}

impl Rig {
    async fn start() -> Rig {
        Rig::start_with(&plugin_wasm("netflix"), 2).await
    }

    /// The rig with another build of the plugin and results sent `send_batch_size` a call.
    async fn start_with(component: &std::path::Path, send_batch_size: usize) -> Rig {
        let sim = NetflixSim::start(PARTNER_KEY, CREDENTIAL, OFFSET).await;
        let config = format!(
            r#"
[[plugins]]
name = "netflix"
component = {component:?}
mount = "/netflix"
allowed_hosts = ["{host_port}"]

[plugins.secrets]
netflix_partner_key = {{ env = "NETFLIX_PARTNER_KEY", encoding = "base64" }}
admin_token = {{ env = "NETFLIX_ADMIN_TOKEN" }}

[plugins.settings]
api_base_url = "{base_url}"
credential = "{CREDENTIAL}"
utc_offset = "{OFFSET}"
activation_url_template = "https://www.netflix.example/activate?token={{token}}"
token_error_url = "https://operator.example/netflix-error"
token_validity_seconds = {VALIDITY_SECONDS}
account_prefix = "sub-"
poll_min_seconds = 5
poll_max_seconds = 3600
poll_default_seconds = 60
error_backoff_seconds = 30
error_backoff_max_seconds = 300
send_batch_size = {send_batch_size}
"#,
            component = component.display().to_string(),
            host_port = sim.host_port(),
            base_url = sim.base_url(),
        );
        let host = HostBuilder::new()
            .env("NETFLIX_PARTNER_KEY", &partner_key_base64())
            .env("NETFLIX_ADMIN_TOKEN", ADMIN_TOKEN)
            .config(&config)
            .start()
            .await;
        let rig = Rig { host, sim };
        rig.sync_clock().await;
        rig
    }

    async fn sync_clock(&self) {
        self.sim.set_now(self.host.now().await);
    }

    async fn advance(&mut self, seconds: i64) {
        self.host.advance_clock(seconds).await;
        self.sync_clock().await;
    }

    /// A request to the plugin's mount; `(status, JSON body)`.
    async fn call(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.host.client().request(method, self.host.url(&format!("/netflix{path}")));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("plugin call");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }

    async fn plugin_admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, &format!("/admin{path}"), body, Some(ADMIN_TOKEN)).await
    }

    async fn loop_state(&self) -> Value {
        let (status, body) = self.plugin_admin("GET", "/charge-loop", None).await;
        assert_eq!(status, 200, "charge-loop view: {body}");
        body
    }

    async fn charges(&self, customer: &str) -> Vec<Value> {
        let (status, body) = self.plugin_admin("GET", &format!("/customers/{customer}/charges"), None).await;
        assert_eq!(status, 200, "charges of {customer}: {body}");
        body["charges"].as_array().cloned().unwrap_or_default()
    }

    async fn fund(&self, customer: &str, amount: &str) {
        let body = json!({ "amount": amount, "currency": "USD", "reference": "topup", "idempotency_key": format!("topup-{customer}") });
        let (status, answer) = self.host.admin("POST", &format!("/accounts/sub-{customer}/credit"), Some(body)).await;
        assert_eq!(status, 200, "credit {customer}: {answer}");
    }

    async fn balance(&self, customer: &str) -> String {
        let (status, body) = self.host.admin("GET", &format!("/accounts/sub-{customer}"), None).await;
        assert_eq!(status, 200, "account of {customer}: {body}");
        // The account itself (older hosts wrapped it in `{"account": ...}`).
        let account = if body["account"].is_object() { &body["account"] } else { &body };
        account["balance"].as_str().unwrap_or_else(|| panic!("no balance in {body}")).to_string()
    }

    async fn entries(&self, customer: &str, kind: &str) -> Vec<Value> {
        let (status, body) = self.host.admin("GET", &format!("/accounts/sub-{customer}/transactions"), None).await;
        assert_eq!(status, 200, "history of {customer}: {body}");
        body["entries"].as_array().expect("entries").iter().filter(|e| e["kind"] == kind).cloned().collect()
    }

    /// Makes the plugin's first request (which starts the loop) and waits for the first poll.
    async fn start_loop(&self) {
        let (status, body) = self.call("GET", "/", None, None).await;
        assert_eq!(status, 200, "plugin root: {body}");
        let rig = self;
        let ran = self
            .host
            .wait_until(WAIT, || async move { rig.loop_state().await["state"]["last_run_at"].is_i64() })
            .await;
        assert!(ran, "the charge loop did not start by itself:\n{}", self.host.logs());
    }

    /// Moves the clock to the loop's next poll and waits for that iteration to finish;
    /// returns the loop state after it.
    async fn poll(&mut self) -> Value {
        let state = self.loop_state().await["state"].clone();
        let before = state["last_run_at"].as_i64().expect("the loop has run before");
        let next_at = state["next_at"].as_i64().expect("a poll is scheduled");
        let now = self.host.now().await;
        self.advance((next_at - now).max(0) + 1).await;
        let rig = &*self;
        let ran = self
            .host
            .wait_until(WAIT, || async move {
                rig.loop_state().await["state"]["last_run_at"].as_i64().is_some_and(|t| t > before)
            })
            .await;
        assert!(ran, "no charge-loop iteration after the clock moved:\n{}", self.host.logs());
        self.loop_state().await["state"].clone()
    }

    fn accepted(&self, ntid: &str) -> Value {
        match self.sim.resolution(ntid) {
            Some(Resolution::Accepted(result)) => result,
            other => panic!("{ntid} was not accepted: {other:?}; violations {:?}", self.sim.violations()),
        }
    }

    /// No failed Netflix check, and no secret or signature in the host's log.
    fn assert_clean(&self) {
        assert_eq!(self.sim.violations(), Vec::<String>::new(), "Netflix checks failed");
        let logs = self.host.logs();
        for secret in [partner_key_base64().as_str(), std::str::from_utf8(PARTNER_KEY).unwrap(), ADMIN_TOKEN, "Signature="] {
            assert!(!logs.contains(secret), "the host log shows `{secret}`");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn activation_and_status_are_signed_and_normalised() {
    let rig = Rig::start().await;
    rig.sim.add_promotion("PROMO-6M");
    rig.sim.set_subscription(
        "c-active",
        json!({
            "ServiceInfo": {"PlanType": "Premium", "PaidThroughDate": "2026-12-22", "PlanPriceAmount": 22.99, "PlanPriceCurrency": "USD"},
            "Promotions": [{"PromotionID": "PROMO-6M"}],
        }),
    );
    let now = rig.host.now().await;

    let (status, body) = rig
        .call("POST", "/activations", Some(json!({"customer_id": "c-new", "type": "IntPay", "channel": "Web", "country": "us"})), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let tokens = rig.sim.tokens();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].customer, "c-new");
    assert_eq!(
        tokens[0].body,
        json!({"Type": "IntPay", "Channel": "Web", "PartnerChargeCountry": "US", "TokenErrorURL": "https://operator.example/netflix-error", "ValidityDurationInSeconds": VALIDITY_SECONDS})
    );
    assert_eq!(tokens[0].token, "tok1+/=");
    assert_eq!(body["activation_url"], "https://www.netflix.example/activate?token=tok1%2B%2F%3D");
    let expires = body["expires_at_unix"].as_i64().expect("expiry");
    assert!((expires - (now + VALIDITY_SECONDS)).abs() <= 60, "expiry {expires} vs now {now}");

    let (status, body) = rig
        .call(
            "POST",
            "/activations",
            Some(json!({"customer_id": "c-promo", "type": "Promo", "promotion_id": "PROMO-6M", "channel": "Store", "country": "IN"})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(rig.sim.tokens()[1].body["PromotionID"], "PROMO-6M");

    // Netflix's refusal reaches the caller with Netflix's status and words, not as a 200.
    let (status, body) = rig
        .call(
            "POST",
            "/activations",
            Some(json!({"customer_id": "c-promo", "type": "Promo", "promotion_id": "NOPE", "channel": "Web", "country": "IN"})),
            None,
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["netflix_status"], 400);
    assert_eq!(body["netflix_message"], "Unknown PromotionID `NOPE`");

    // A bad request is refused before Netflix sees it. The charge loop starts by itself
    // and polls Netflix once: wait for that poll, so it is not counted against the request.
    let polled = {
        let rig = &rig;
        rig.host.wait_until(WAIT, || async move { rig.loop_state().await["state"]["last_run_at"].is_i64() }).await
    };
    assert!(polled, "the charge loop did not start by itself:\n{}", rig.host.logs());
    let calls_before = rig.sim.requests().len();
    let (status, body) = rig
        .call("POST", "/activations", Some(json!({"customer_id": "c\r\nX: y", "type": "IntPay", "channel": "Web", "country": "US"})), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(rig.sim.requests().len(), calls_before);

    let (status, body) = rig.call("GET", "/customers/c-active/subscription", None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "customer_id": "c-active",
            "active": true,
            "plan": "Premium",
            "paid_through": "2026-12-22",
            "price": {"amount": "22.99", "currency": "USD"},
            "promotions": [{"PromotionID": "PROMO-6M"}],
        })
    );
    let (status, body) = rig.call("GET", "/customers/c-gone/subscription", None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    assert_eq!(body["plan"], Value::Null);

    // Every customer call carried the customer header; GETs carried no payload signature.
    for req in rig.sim.requests().iter().filter(|r| !r.path.starts_with(CHARGE_PATH)) {
        assert!(req.header("X-Netflix-PartnerCustomerIdentifier").is_some(), "{} {}", req.method, req.path);
        assert_eq!(req.method == "GET", req.header("X-Netflix-Payload-Authorization").is_none());
    }
    rig.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_of_charge_events_gets_one_result_each() {
    let mut rig = Rig::start().await;
    rig.start_loop().await;
    rig.fund("funded", "100.00").await;
    rig.fund("poor", "5.00").await;
    rig.fund("leaving", "100.00").await;

    // Admin routes need the plugin's admin token.
    let (status, _) = rig.call("PUT", "/admin/customers/leaving/cancelled", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = rig.call("PUT", "/admin/customers/leaving/cancelled", None, Some("wrong-token")).await;
    assert_eq!(status, 401);
    let (status, body) = rig.plugin_admin("PUT", "/customers/leaving/cancelled", Some(json!({"note": "asked by phone"}))).await;
    assert_eq!(status, 200, "{body}");

    let mut funded = NetflixSim::charge_event("m1-funded", "funded", "15.49", "USD");
    funded["Amount"] = json!(15.49); // a JSON number, as some Netflix answers carry it
    rig.sim.push_event(funded);
    rig.sim.push_event(NetflixSim::charge_event("m1-poor", "poor", "15.49", "USD"));
    rig.sim.push_event(NetflixSim::charge_event("m1-ghost", "ghost", "15.49", "USD"));
    rig.sim.push_event(NetflixSim::charge_event("m1-leaving", "leaving", "15.49", "USD"));
    rig.sim.push_event(NetflixSim::charge_event("m1-trial", "trial", "0.00", "USD"));
    rig.sim.push_event(NetflixSim::charge_event("m1-garbled", "funded", "lots", "USD"));
    let sends_before = rig.sim.requests().iter().filter(|r| r.method == "POST").count();

    let state = rig.poll().await;
    assert_eq!(state["failures"], 0, "{state}");
    assert_eq!(rig.sim.unresolved(), Vec::<String>::new());
    let sends = rig.sim.requests().iter().filter(|r| r.method == "POST").count() - sends_before;
    assert_eq!(sends, 3, "six results in batches of two");

    let approved = rig.accepted("m1-funded");
    assert_eq!(approved["ChargeStatus"], "Approved");
    assert_eq!(rig.balance("funded").await, "84.51");
    let debits = rig.entries("funded", "debit").await;
    assert_eq!(debits.len(), 1);
    assert_eq!(approved["PartnerReferenceID"], debits[0]["transaction_id"], "the reference is our ledger transaction");

    let declined = |ntid: &str, reason: &str| {
        let result = rig.accepted(ntid);
        assert_eq!((result["ChargeStatus"].as_str(), result["DeclineReason"].as_str()), (Some("Declined"), Some(reason)), "{ntid}");
    };
    declined("m1-poor", "PaymentInstrumentFailure");
    declined("m1-ghost", "NoPaymentInstrument");
    declined("m1-leaving", "CustomerRequestedCancel");
    assert_eq!(rig.balance("poor").await, "5.00");
    assert_eq!(rig.balance("leaving").await, "100.00");
    let (status, _) = rig.host.admin("GET", "/accounts/sub-ghost", None).await;
    assert_eq!(status, 404, "no account is opened for an unknown customer");

    let free = rig.accepted("m1-trial");
    assert_eq!(free["ChargeStatus"], "Approved");
    assert!(free.get("DeclineReason").is_none());
    assert!(free["PartnerReferenceID"].as_str().unwrap().starts_with("nfx-"), "{free}");
    assert_eq!(rig.accepted("m1-garbled")["ChargeStatus"], "BadRequest");

    let history = rig.charges("funded").await;
    assert_eq!(history.len(), 2, "{history:?}");
    let charge = history.iter().find(|c| c["netflix_transaction_id"] == "m1-funded").expect("funded charge");
    assert_eq!(charge["delivery"], "sent");
    assert_eq!(charge["amount"], "15.49");
    assert_eq!(charge["ledger_transaction_id"], approved["PartnerReferenceID"]);

    // Next month: the cancellation is lifted and both customers pay.
    let (status, body) = rig.plugin_admin("DELETE", "/customers/leaving/cancelled", None).await;
    assert_eq!((status, body["was_cancelled"].clone()), (200, json!(true)));
    rig.sim.push_event(NetflixSim::charge_event("m2-funded", "funded", "15.49", "USD"));
    rig.sim.push_event(NetflixSim::charge_event("m2-leaving", "leaving", "15.49", "USD"));
    rig.poll().await;
    assert_eq!(rig.accepted("m2-funded")["ChargeStatus"], "Approved");
    assert_eq!(rig.accepted("m2-leaving")["ChargeStatus"], "Approved");
    assert_eq!(rig.balance("funded").await, "69.02");
    assert_eq!(rig.balance("leaving").await, "84.51");
    rig.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivered_events_are_answered_with_the_stored_result() {
    let mut rig = Rig::start().await;
    rig.start_loop().await;
    rig.fund("again", "50.00").await;
    rig.sim.set_redeliver_resolved(true);
    rig.sim.push_event(NetflixSim::charge_event("r1", "again", "9.99", "USD"));
    rig.sim.push_event(NetflixSim::charge_event("r2", "nobody", "9.99", "USD"));

    for _ in 0..3 {
        rig.poll().await;
    }
    for ntid in ["r1", "r2"] {
        let results = rig.sim.results_for(ntid);
        assert_eq!(results.len(), 3, "{ntid} is answered each time it is served");
        assert!(results.iter().all(|r| *r == results[0]), "{ntid} got different results: {results:?}");
    }
    assert_eq!(rig.balance("again").await, "40.01", "charged once");
    assert_eq!(rig.entries("again", "debit").await.len(), 1);
    let charges = rig.charges("again").await;
    assert_eq!(charges[0]["times_sent"], 3);
    rig.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_result_is_reversed_and_never_sent_again() {
    let mut rig = Rig::start().await;
    rig.start_loop().await;
    rig.fund("refused", "100.00").await;
    rig.sim.reject_transaction("x1");
    rig.sim.set_redeliver_resolved(true);
    rig.sim.push_event(NetflixSim::charge_event("x1", "refused", "20.00", "USD"));

    rig.poll().await;
    assert!(matches!(rig.sim.resolution("x1"), Some(Resolution::Rejected(_))));
    assert_eq!(rig.balance("refused").await, "100.00", "the debit was put back");
    let debit = rig.entries("refused", "debit").await;
    let reversal = rig.entries("refused", "reversal").await;
    assert_eq!((debit.len(), reversal.len()), (1, 1));
    let charge = &rig.charges("refused").await[0];
    assert_eq!(charge["delivery"], "rejected");
    assert_eq!(charge["ledger_transaction_id"], debit[0]["transaction_id"]);
    assert_eq!(charge["reversal_transaction_id"], reversal[0]["transaction_id"]);

    // Netflix keeps serving it; we never answer it again (the fake flags a resend).
    rig.poll().await;
    rig.poll().await;
    assert_eq!(rig.sim.results_for("x1").len(), 1);
    assert_eq!(rig.balance("refused").await, "100.00");
    assert_eq!(rig.loop_state().await["pending_results"], 0);
    rig.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn netflix_down_backs_off_then_recovers() {
    let mut rig = Rig::start().await;
    rig.start_loop().await;
    rig.fund("patient", "30.00").await;
    rig.sim.push_event(NetflixSim::charge_event("d1", "patient", "10.00", "USD"));
    rig.sim.set_down(true);

    let mut delays = Vec::new();
    for _ in 0..3 {
        let state = rig.poll().await;
        assert!(state["last_error"].as_str().unwrap_or_default().contains("ReadCharge"), "{state}");
        delays.push(state["next_at"].as_i64().unwrap() - state["last_run_at"].as_i64().unwrap());
    }
    assert_eq!(delays, [30, 60, 120], "the backoff doubles");
    assert_eq!(rig.balance("patient").await, "30.00");

    // Customer calls fail clearly while Netflix is down.
    let (status, body) = rig.call("GET", "/customers/patient/subscription", None, None).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["netflix_status"], 503);
    assert_eq!(body["netflix_message"], "simulated outage");

    rig.sim.set_down(false);
    let state = rig.poll().await;
    assert_eq!(state["failures"], 0, "{state}");
    assert_eq!(state["next_at"].as_i64().unwrap() - state["last_run_at"].as_i64().unwrap(), 60);
    assert_eq!(rig.accepted("d1")["ChargeStatus"], "Approved");
    assert_eq!(rig.balance("patient").await, "20.00");
    rig.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_debit_and_send_charge_resends_the_same_result() {
    let mut rig = Rig::start().await;
    rig.start_loop().await;
    rig.fund("crash", "100.00").await;
    rig.sim.push_event(NetflixSim::charge_event("k1", "crash", "15.49", "USD"));
    rig.sim.set_send_charge_failing(true);

    let state = rig.poll().await;
    assert!(state["last_error"].as_str().unwrap_or_default().contains("SendCharge"), "{state}");
    assert_eq!(rig.balance("crash").await, "84.51", "debited before sending");
    let failed = rig.sim.failed_results();
    assert_eq!(failed.len(), 1);
    let reference = failed[0]["PartnerReferenceID"].clone();
    assert_eq!(rig.loop_state().await["pending_results"], 1);

    rig.host.kill9().await;
    rig.sim.set_send_charge_failing(false);
    rig.host.start_again().await;
    rig.sync_clock().await;

    rig.poll().await;
    let accepted = rig.accepted("k1");
    assert_eq!(accepted["PartnerReferenceID"], reference, "the stored result is sent, not a new one");
    assert!(rig.sim.results_for("k1").iter().all(|r| r["PartnerReferenceID"] == reference));
    assert_eq!(rig.balance("crash").await, "84.51", "debited once");
    let debits = rig.entries("crash", "debit").await;
    assert_eq!(debits.len(), 1);
    assert_eq!(debits[0]["transaction_id"], reference);
    assert_eq!(rig.loop_state().await["pending_results"], 0);
    assert_eq!(rig.charges("crash").await[0]["delivery"], "sent");
    rig.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_follows_next_call_in_seconds_within_bounds() {
    let mut rig = Rig::start().await;
    rig.start_loop().await;
    for (header, expected) in [(Some("600"), 600), (Some("1"), 5), (None, 60), (Some("99999"), 3600)] {
        rig.sim.set_next_call_seconds(header);
        let state = rig.poll().await;
        assert_eq!(state["next_at"].as_i64().unwrap() - state["last_run_at"].as_i64().unwrap(), expected, "header {header:?}");
    }
    // The operator can make it poll now (the clock stays where it is).
    let reads = rig.sim.reads();
    let (status, body) = rig.plugin_admin("POST", "/charge-loop/start", None).await;
    assert_eq!(status, 202, "{body}");
    let sim = &rig.sim;
    assert!(rig.host.wait_until(WAIT, || async move { sim.reads() > reads }).await, "no poll after start");
    rig.assert_clean();
}

/// The fake's checks are what the tests above rely on: make sure they refuse.
#[tokio::test(flavor = "multi_thread")]
async fn the_netflix_fake_refuses_bad_signatures_and_stale_time() {
    let sim = NetflixSim::start(PARTNER_KEY, CREDENTIAL, OFFSET).await;
    let now = 1_795_341_612; // 2026-11-22T10:00:12Z
    sim.set_now(now);
    let client = reqwest::Client::new();
    let url = format!("{}{CHARGE_PATH}", sim.base_url());
    let send = |time: &'static str, key: &'static [u8]| {
        let signature = nflx_signature(key, header_string(Some(time), None).as_bytes());
        client
            .get(&url)
            .header("X-Netflix-AuthorizationTime", time)
            .header("X-Netflix-Header-Authorization", format!("nflxv1 Credential={CREDENTIAL},Signature={signature}"))
            .send()
    };
    assert_eq!(send("20261122T153012+0530", PARTNER_KEY).await.unwrap().status(), 200);
    assert_eq!(send("20261122T153012+0530", b"another-key").await.unwrap().status(), 401);
    assert_eq!(send("20261122T100012+0000", PARTNER_KEY).await.unwrap().status(), 401, "wrong offset");
    assert_eq!(send("20261122T173012+0530", PARTNER_KEY).await.unwrap().status(), 401, "two hours off");
    assert_eq!(sim.violations().len(), 3);
}

/// A charge run bigger than one SendCharge call and one ledger batch: every funded event is
/// debited once, answered and accepted, and the balances add up. It also prints how many
/// events per second the run decided (a measurement, never asserted): with
/// `PAYHOST_BENCH_EVENTS=10000` and `PAYHOST_TEST_BINARY` naming a release build it is the
/// charge-run figure of BENCHMARKS.md
/// (`PAYHOST_TEST_PREBUILT=1 cargo test --test netflix -- --nocapture charge_run_throughput`;
/// `PAYHOST_BENCH_NETFLIX_WASM` measures another build of the plugin).
#[tokio::test(flavor = "multi_thread")]
async fn charge_run_throughput() {
    // 600 by default: more than one ledger batch (512 postings) and six SendCharge calls.
    let events: usize = std::env::var("PAYHOST_BENCH_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(600);
    let component = std::env::var_os("PAYHOST_BENCH_NETFLIX_WASM").map(std::path::PathBuf::from).unwrap_or_else(|| plugin_wasm("netflix"));
    let mut rig = Rig::start_with(&component, 100).await;
    rig.start_loop().await;
    for i in 0..events {
        rig.fund(&format!("bench-{i}"), "100.00").await;
        rig.sim.push_event(NetflixSim::charge_event(&format!("bench-tx-{i}"), &format!("bench-{i}"), "15.49", "USD"));
    }
    let started = std::time::Instant::now();
    // A run too long for one call's deadline stops part way and the next poll goes on
    // from what it stored, so the clock is moved until every event is answered.
    let mut state = rig.poll().await;
    let mut polls = 1;
    while !rig.sim.unresolved().is_empty() && polls < 20 {
        state = rig.poll().await;
        polls += 1;
    }
    let elapsed = started.elapsed();
    assert!(rig.sim.unresolved().is_empty(), "unresolved after {polls} polls: {:?}; {state}", rig.sim.unresolved().len());
    if polls == 1 {
        assert_eq!(state["last_events"], events, "{state}");
        assert_eq!(state["last_results_sent"], events, "{state}");
    }
    // Each event debited exactly once, on its own subscriber.
    for i in 0..events {
        assert_eq!(rig.balance(&format!("bench-{i}")).await, "84.51", "subscriber bench-{i}");
    }
    rig.assert_clean();
    println!(
        "netflix charge run: {events} events in {:.3} s = {:.0} events/s, {polls} poll(s) ({})",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        component.display()
    );
}
