//! Platform24 billing and the provider API end to end: a purchase debits and then
//! connects the packets through the platform's API (the simulator checks the `token`
//! query parameter on every call), a failed connect is refunded exactly once, a crash
//! between debit and connect ends in one outcome, base packets replace each other by
//! price, add-ons need a base, DELETE_SUBSCRIPTION stops renewal, renewals are
//! charged once per period, and operators register and block subscribers.

use std::time::Duration;

use payhost_tests::sim::platform24::{self as p24, Platform24Sim, OPERATOR_TOKEN};
use payhost_tests::sim::platform24_api::{Call, Fault, PERIOD_SECONDS};
use payhost_tests::{HostBuilder, TestHost};
use serde_json::{json, Value};

const PRIVATE_KEY: &str = "p24-private-key-3b7d";
const API_TOKEN: &str = "p24-api-token-c0ffee-42";
const WAIT: Duration = Duration::from_secs(30);
const DAY: i64 = 86_400;

/// Bases 1 (300), 2 (500, dearer), 3 (200, cheaper); add-on 10 goes with 1 and 2,
/// add-on 11 only with 3.
const CATALOG: &[(u64, &str, &str, bool, &[u64])] = &[
    (1, "Базовый", "300.00", true, &[10]),
    (2, "Максимальный", "500.00", true, &[10]),
    (3, "Эконом", "200.00", true, &[11]),
    (10, "Кино", "100.00", false, &[]),
    (11, "Спорт", "50.00", false, &[]),
];

struct Billing {
    host: TestHost,
    sim: Platform24Sim,
}

async fn start(settings: &str) -> Billing {
    let sim = Platform24Sim::start(PRIVATE_KEY, "payhost", API_TOKEN).await;
    sim.api().set_catalog(CATALOG);
    let settings = format!("api_timeout_ms = 1000\n{settings}");
    let host = sim.grant(HostBuilder::new()).config(&sim.billing_config("balance", &settings)).start().await;
    sim.api().set_now(host.now().await);
    Billing { host, sim }
}

impl Billing {
    async fn fund(&self, uid: &str, amount: &str) {
        let key = format!("fund-{uid}-{amount}-{}", rand_suffix());
        let body = json!({ "amount": amount, "currency": "RUB", "reference": "topup", "idempotency_key": key });
        let (status, v) = self.host.admin("POST", &format!("/accounts/{uid}/credit"), Some(body)).await;
        assert_eq!(status, 200, "credit: {v}");
    }

    async fn balance(&self, uid: &str) -> String {
        let (_, v) = self.host.admin("GET", &format!("/accounts/{uid}"), None).await;
        v["balance"].as_str().unwrap_or_else(|| panic!("no balance: {v}")).to_string()
    }

    /// Ledger entries of one kind (`debit`, `reversal`, `credit`).
    async fn entries(&self, uid: &str, kind: &str) -> Vec<Value> {
        let (_, v) = self.host.admin("GET", &format!("/accounts/{uid}/transactions?limit=100"), None).await;
        v["entries"].as_array().expect("entries").iter().filter(|e| e["kind"] == kind).cloned().collect()
    }

    /// Platform24's request; the JSON answer.
    async fn send(&self, (path, body): (String, Value)) -> Value {
        let resp = self.host.post_json(&format!("/p24/{path}"), &body).await;
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.expect("body");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    async fn buy(&self, uid: &str, packets: &[(u64, &str, &str)]) -> Value {
        self.send(p24::packets_request(uid, packets)).await
    }

    /// Moves the host's and the platform's clocks together.
    async fn advance(&mut self, seconds: i64) {
        self.host.advance_clock(seconds).await;
        self.sim.api().advance(seconds);
    }

    async fn operator(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.host.client().request(method, self.host.url(&format!("/p24/admin{path}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("operator call");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn wait<F, Fut>(&self, what: &str, cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let held = self.host.wait_until(WAIT, cond).await;
        assert!(held, "{what}:\n{}", self.host.logs());
    }
}

fn rand_suffix() -> u64 {
    rand::random::<u64>()
}

/// A catalog packet as Platform24 puts it in a request: `(id, price, name)`.
fn base(id: u64) -> (u64, &'static str, &'static str) {
    let (_, name, price, _, _) = CATALOG.iter().find(|p| p.0 == id).expect("catalog packet");
    (id, price, name)
}

#[tokio::test(flavor = "multi_thread")]
async fn packets_are_connected_through_the_api_with_the_token() {
    let b = start("").await;
    b.fund("u-pk", "500.00").await;
    let v = b.buy("u-pk", &[base(1), base(10)]).await;
    assert_eq!(v, json!({ "status": 1 }), "{}", b.host.logs());
    assert_eq!(b.balance("u-pk").await, "100.00");

    let live = b.sim.api().live(p24::platform_id("u-pk"));
    let mut packets: Vec<u64> = live.iter().map(|s| s.packet_id).collect();
    packets.sort_unstable();
    assert_eq!(packets, vec![1, 10], "both packets connected");
    assert!(live.iter().all(|s| s.renew), "{live:?}");
    assert_eq!(b.sim.api().count(Call::Connect), 1, "one call for every packet");
    assert_eq!(b.sim.api().unauthorised(), 0, "every call carried the token");
    let logs = b.host.logs();
    assert!(!logs.contains(API_TOKEN), "the API token reached the log");

    // The platform's answer names the subscriptions; the operator sees them with history.
    let (status, v) = b.operator("GET", "/subscribers/u-pk", None, Some(OPERATOR_TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subscriptions"].as_array().unwrap().len(), 2, "{v}");
    assert!(v["history"].as_array().unwrap().iter().any(|h| h["event"] == "connected"), "{v}");
}

/// One debit, one reversal, balance back, nothing live on the platform.
async fn assert_refunded_once(b: &Billing, uid: &str, balance: &str) {
    assert_eq!(b.balance(uid).await, balance, "balance restored");
    assert_eq!(b.entries(uid, "debit").await.len(), 1, "one debit");
    assert_eq!(b.entries(uid, "reversal").await.len(), 1, "one reversal");
    assert!(b.sim.api().live(p24::platform_id(uid)).is_empty(), "nothing connected");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_connect_refunds_exactly_once_and_says_so_in_russian() {
    let mut b = start("").await;
    let cases = [("u-500", Fault::Status500), ("u-400", Fault::Status400), ("u-hang", Fault::Hang { apply: false })];
    for (uid, fault) in &cases {
        b.fund(uid, "400.00").await;
        b.sim.api().set_fault(Call::Connect, Some(fault.clone()));
        let v = b.buy(uid, &[base(1)]).await;
        if matches!(fault, Fault::Hang { .. }) {
            // The answer budget cut the call off: the answer came while it still hung.
            assert_eq!(b.sim.api().hanging(), 1, "the billing waited for the platform");
            b.sim.api().release_hangs();
        }
        assert_eq!(v["status"], -9, "{uid}: {v}");
        let text = v["errmsg"].as_str().unwrap();
        assert!(text.contains("возвращены на баланс"), "{text}");
        assert_refunded_once(&b, uid, "400.00").await;
    }
    b.sim.api().set_fault(Call::Connect, None);

    // The timers that look again after an ambiguous failure change nothing more.
    b.advance(31).await;
    for (uid, _) in &cases {
        b.wait("the purchase is closed", || async {
            let (_, v) = b.host.admin("GET", "/timers?instance=p24", None).await;
            !v.to_string().contains("purchase/")
        })
        .await;
        assert_refunded_once(&b, uid, "400.00").await;
    }

    // The subscriber tries again once the platform is fine: a new attempt, paid once.
    let v = b.buy("u-500", &[base(1)]).await;
    assert_eq!(v, json!({ "status": 1 }));
    assert_eq!(b.balance("u-500").await, "100.00");
    assert_eq!(b.sim.api().live(p24::platform_id("u-500")).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connect_the_platform_applies_after_our_timeout_is_undone() {
    let mut b = start("").await;
    b.fund("u-late", "300.00").await;
    b.sim.api().set_fault(Call::Connect, Some(Fault::Hang { apply: true }));
    let v = b.buy("u-late", &[base(1)]).await;
    assert_eq!(v["status"], -9, "{v}");
    assert_eq!(b.sim.api().hanging(), 1, "answered before the platform did");
    assert_eq!(b.balance("u-late").await, "300.00", "refunded at once");
    // The platform finishes the connect after we gave up.
    b.sim.api().release_hangs();
    let user = p24::platform_id("u-late");
    b.wait("the late connect lands", || async { b.sim.api().live(user).len() == 1 }).await;
    b.sim.api().set_fault(Call::Connect, None);
    // The purchase's timer sees it and ends it: refunded, never both.
    b.advance(31).await;
    b.wait("the late subscription is ended", || async { b.sim.api().live(user).is_empty() }).await;
    assert_eq!(b.balance("u-late").await, "300.00");
    assert_eq!(b.entries("u-late", "reversal").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_between_debit_and_connect_resolves_to_one_outcome() {
    let mut b = start("").await;
    for uid in ["u-kc", "u-kr"] {
        b.fund(uid, "300.00").await;
    }
    // u-kc: the platform applies the connect it received; u-kr: it never does.
    let mut requests = Vec::new();
    for (uid, apply) in [("u-kc", true), ("u-kr", false)] {
        b.sim.api().set_fault(Call::Connect, Some(Fault::Hang { apply }));
        let before = b.sim.api().count(Call::Connect);
        let (client, url, (path, body)) = (b.host.client().clone(), b.host.url("/p24/"), p24::packets_request(uid, &[base(1)]));
        requests.push(tokio::spawn(async move { client.post(format!("{url}{path}")).json(&body).send().await.ok() }));
        b.wait("the connect reached the platform", || async { b.sim.api().count(Call::Connect) > before }).await;
        assert_eq!(b.balance(uid).await, "0.00", "debited before the connect");
    }
    b.host.kill9().await;
    for r in requests {
        assert!(r.await.unwrap().is_none_or(|resp| resp.status() != 200), "no answer from a killed host");
    }
    b.sim.api().release_hangs();
    b.wait("the platform applied u-kc's connect", || async { b.sim.api().live(p24::platform_id("u-kc")).len() == 1 }).await;
    b.sim.api().set_fault(Call::Connect, None);

    b.host.start_again().await;
    b.advance(31).await;
    b.wait("u-kr refunded", || async { b.balance("u-kr").await == "300.00" }).await;
    b.wait("both purchases closed", || async {
        let (_, v) = b.host.admin("GET", "/timers?instance=p24", None).await;
        !v.to_string().contains("purchase/")
    })
    .await;

    // Connected: the money stays debited, nothing reversed, the packet is on.
    assert_eq!(b.balance("u-kc").await, "0.00");
    assert!(b.entries("u-kc", "reversal").await.is_empty(), "connected and refunded");
    assert_eq!(b.sim.api().live(p24::platform_id("u-kc")).len(), 1);
    // Refunded: one reversal, nothing on the platform.
    assert_refunded_once(&b, "u-kr", "300.00").await;

    // Platform24 repeating the connected purchase gets success without a second debit.
    assert_eq!(b.buy("u-kc", &[base(1)]).await, json!({ "status": 1 }));
    assert_eq!(b.entries("u-kc", "debit").await.len(), 1);
    assert_eq!(b.sim.api().count(Call::Connect), 2, "no connect after the restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dearer_base_replaces_now_and_a_cheaper_one_waits() {
    let b = start("").await;
    b.fund("u-base", "1000.00").await;
    let user = p24::platform_id("u-base");
    assert_eq!(b.buy("u-base", &[base(1)]).await, json!({ "status": 1 }));
    let first = b.sim.api().live(user)[0].clone();

    // Upgrade: base 2 now, base 1 ends.
    assert_eq!(b.buy("u-base", &[base(2)]).await, json!({ "status": 1 }));
    let live = b.sim.api().live(user);
    assert_eq!(live.iter().map(|s| s.packet_id).collect::<Vec<_>>(), vec![2], "{live:?}");
    let second = live[0].clone();
    assert!(b.sim.api().subscriptions().iter().any(|s| s.id == first.id && s.ended));

    // Downgrade: base 3 starts when base 2 ends; base 2 stops renewing.
    assert_eq!(b.buy("u-base", &[base(3)]).await, json!({ "status": 1 }));
    let live = b.sim.api().live(user);
    let now_base = live.iter().find(|s| s.packet_id == 2).expect("base 2 still runs");
    let next = live.iter().find(|s| s.packet_id == 3).expect("base 3 planned");
    assert!(!now_base.renew, "base 2 stops renewing");
    assert_eq!(next.start_at, second.end_at, "base 3 starts when base 2 ends");
    assert_eq!(b.balance("u-base").await, "0.00", "each packet paid once");

    // Two bases at once break the rules: refused, nothing debited.
    b.fund("u-two", "900.00").await;
    let v = b.buy("u-two", &[base(1), base(2)]).await;
    assert_eq!(v["status"], -7, "{v}");
    assert_eq!(b.balance("u-two").await, "900.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_addon_without_a_base_is_refused() {
    let b = start("").await;
    b.fund("u-add", "500.00").await;
    let v = b.buy("u-add", &[base(10)]).await;
    assert_eq!(v["status"], -7, "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("базовый пакет"), "{v}");
    // An add-on the base does not allow.
    let v = b.buy("u-add", &[base(1), base(11)]).await;
    assert_eq!(v["status"], -7, "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("нельзя подключить"), "{v}");
    assert_eq!(b.balance("u-add").await, "500.00");
    assert!(b.entries("u-add", "debit").await.is_empty());
    assert_eq!(b.sim.api().count(Call::Connect), 0);
    // With the base first, the add-on goes through.
    assert_eq!(b.buy("u-add", &[base(1)]).await, json!({ "status": 1 }));
    assert_eq!(b.buy("u-add", &[base(10)]).await, json!({ "status": 1 }));
    assert_eq!(b.balance("u-add").await, "100.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_addon_alone_goes_through_where_the_setting_allows_it() {
    let b = start("addons_without_base = true").await;
    b.fund("u-alone", "500.00").await;
    assert_eq!(b.buy("u-alone", &[base(10)]).await, json!({ "status": 1 }));
    assert_eq!(b.balance("u-alone").await, "400.00");
    assert_eq!(b.entries("u-alone", "debit").await.len(), 1);
    assert_eq!(b.sim.api().count(Call::Connect), 1, "the add-on was connected on the platform");
    // A base bought after the add-on goes through as usual.
    assert_eq!(b.buy("u-alone", &[base(1)]).await, json!({ "status": 1 }));
    assert_eq!(b.balance("u-alone").await, "100.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_subscription_stops_renewal() {
    let mut b = start("").await;
    b.fund("u-del", "1000.00").await;
    let user = p24::platform_id("u-del");
    assert_eq!(b.buy("u-del", &[base(1)]).await, json!({ "status": 1 }));
    let sub = b.sim.api().live(user)[0].clone();
    // Platform24 names the subscription by the platform's id.
    let (_, body) = p24::delete_subscription_request("u-del", 0, 1);
    let path = format!("delete_subscription?user_id=u-del&sub_id={}", sub.id);

    // The platform failing: nothing changes, the answer says so.
    b.sim.api().set_fault(Call::PatchSubscription, Some(Fault::Status500));
    let v = b.send((path.clone(), body.clone())).await;
    assert_eq!(v["status"], -11, "{v}");
    assert!(b.sim.api().live(user)[0].renew);
    b.sim.api().set_fault(Call::PatchSubscription, None);

    assert_eq!(b.send((path, body)).await, json!({ "status": 1 }));
    assert!(!b.sim.api().live(user)[0].renew, "renewal stopped on the platform");
    // Past the renewal time and the period's end: no charge, and the subscription ends.
    b.advance(PERIOD_SECONDS + 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.entries("u-del", "debit").await.len(), 1, "no renewal charged");
    assert!(b.sim.api().live(user).is_empty());
    let (_, v) = b.operator("GET", "/subscribers/u-del", None, Some(OPERATOR_TOKEN)).await;
    assert_eq!(v["subscriptions"][0]["renew"], false, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewal_is_charged_once_per_period_and_short_money_ends_it() {
    let mut b = start("").await;
    b.fund("u-ren", "700.00").await;
    let user = p24::platform_id("u-ren");
    assert_eq!(b.buy("u-ren", &[base(1)]).await, json!({ "status": 1 }));
    assert_eq!(b.balance("u-ren").await, "400.00");

    // A day before the period ends the billing charges the next one, once.
    b.advance(PERIOD_SECONDS - DAY + 10).await;
    b.wait("first renewal charged", || async { b.balance("u-ren").await == "100.00" }).await;
    b.advance(3 * 3600).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.entries("u-ren", "debit").await.len(), 2, "one charge for the period");

    // The platform renews it; before the next period the money is short.
    b.advance(DAY).await;
    assert_eq!(b.sim.api().live(user)[0].renewals, 1);
    b.advance(PERIOD_SECONDS - DAY).await;
    b.wait("renewal stopped on the platform", || async { b.sim.api().live(user).first().is_some_and(|s| !s.renew) }).await;
    assert_eq!(b.balance("u-ren").await, "100.00", "nothing charged");
    assert_eq!(b.entries("u-ren", "debit").await.len(), 2);
    let (_, v) = b.operator("GET", "/subscribers/u-ren", None, Some(OPERATOR_TOKEN)).await;
    let why = v["history"].as_array().unwrap().iter().any(|h| h["text"].as_str().unwrap_or("").contains("Недостаточно средств"));
    assert!(why, "the history says why: {v}");
    // The period ends and the subscription with it.
    b.advance(DAY + 60).await;
    assert!(b.sim.api().live(user).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_register_and_block_a_subscriber() {
    let mut b = start("push_balance = true").await;
    b.fund("u-op", "500.00").await;
    let register = json!({ "provider_uid": "u-op", "username": "petrov", "phone": "+79990002233" });

    let (status, _) = b.operator("POST", "/subscribers", Some(register.clone()), None).await;
    assert_eq!(status, 401);
    let (status, _) = b.operator("POST", "/subscribers", Some(register.clone()), Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, v) = b.operator("POST", "/subscribers", Some(json!({ "provider_uid": "u-op", "username": "x" })), Some(OPERATOR_TOKEN)).await;
    assert_eq!(status, 400, "{v}");

    let (status, v) = b.operator("POST", "/subscribers", Some(register.clone()), Some(OPERATOR_TOKEN)).await;
    assert_eq!(status, 201, "{v}");
    let id: u64 = v["platform_user"].as_str().unwrap().parse().unwrap();
    let users = b.sim.api().users();
    let user = users.iter().find(|u| u.id == id).expect("user on the platform");
    assert_eq!(user.body["provider_uid"], "u-op");
    assert_eq!(user.body["phone"], "+79990002233");
    assert!(user.body.get("email").is_none(), "an absent email is left out");
    let (status, v) = b.operator("POST", "/subscribers", Some(register), Some(OPERATOR_TOKEN)).await;
    assert_eq!((status, v["created"].clone()), (200, json!(false)), "registered once");

    // A purchase by that user; the balance goes to the platform after it.
    let (path, mut body) = p24::packets_request("u-op", &[base(1)]);
    body["user"]["id"] = json!(id);
    assert_eq!(b.send((path, body)).await, json!({ "status": 1 }));
    b.wait("balance pushed", || async { b.sim.api().pushes().iter().any(|(u, v)| *u == id && v["amount"] == "200.00") }).await;

    let (status, v) = b.operator("POST", "/subscribers/u-op/block", None, Some(OPERATOR_TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    assert!(b.sim.api().live(id).is_empty(), "subscriptions ended first");
    assert!(!b.sim.api().users().iter().find(|u| u.id == id).unwrap().is_active, "then the login blocked");
    // Nothing renews after a block.
    b.advance(PERIOD_SECONDS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.balance("u-op").await, "200.00");
    let (_, v) = b.operator("GET", "/subscribers/u-op", None, Some(OPERATOR_TOKEN)).await;
    assert!(v["blocked_at"].is_number(), "{v}");
    assert_eq!(v["subscriptions"][0]["state"], "ended", "{v}");
    assert!(!b.host.logs().contains(OPERATOR_TOKEN) && !b.host.logs().contains(API_TOKEN));
}
