//! The WebTV external payment processor through the real host, against a WebTV store
//! simulator that signs requests and checks our redirects as WebTV does: one-time
//! payments from the buyer's ledger balance and through Stripe's hosted page, refused
//! requests, recurring profiles charged on the host clock, `rp_status`, `rp_cancel`,
//! trials and replays.

use std::time::Duration;

use payhost_tests::sim::stripe::{Outcome, StripeSim};
use payhost_tests::sim::webtv::{Order, RecurringItem, Returned, WebTvSim};
use payhost_tests::{plugin_wasm, HostBuilder, TestHost};
use serde_json::{json, Value};

const KEY: &str = "webtv-key-Zq8v1Lr5mN3x";
const WAIT: Duration = Duration::from_secs(30);
const DAY: i64 = 86_400;
const STRIPE_SECRET_KEY: &str = "sk_test_51SimulatedKeyForWebTvTests";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_SimulatedSecretForWebTvTests";
/// Where the operator publishes the webtv mount (a proxy in front of the host).
const PUBLIC_URL: &str = "https://pay.example.test/webtv";

struct Setup {
    host: TestHost,
    store: WebTvSim,
    stripe: Option<StripeSim>,
}

/// The webtv instance paying from the ledger balance; `settings` are extra TOML lines.
async fn balance_setup(settings: &str) -> Setup {
    let store = WebTvSim::start(KEY).await;
    let config = format!(
        r#"
[[plugins]]
name = "webtv"
component = {webtv:?}
mount = "/webtv"
payment_systems = ["balance"]
[plugins.secrets]
webtv_key = {{ env = "WEBTV_KEY" }}
[plugins.settings]
webtv_base_url = {base:?}
{settings}
"#,
        // `PAYHOST_BENCH_WEBTV_WASM`: another build of the plugin, for a before/after
        // measurement of the recurring run.
        webtv = std::env::var_os("PAYHOST_BENCH_WEBTV_WASM")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| plugin_wasm("webtv"))
            .display()
            .to_string(),
        base = store.base_url(),
    );
    let host = HostBuilder::new().env("WEBTV_KEY", KEY).config(&config).start().await;
    Setup { host, store, stripe: None }
}

/// The webtv instance taking card payments through the stripe instance; `settings` are
/// extra TOML lines for the webtv instance.
async fn stripe_setup(settings: &str) -> Setup {
    let store = WebTvSim::start(KEY).await;
    let stripe = StripeSim::start(STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET).await;
    let config = format!(
        r#"
{stripe_config}

[[plugins]]
name = "webtv"
component = {webtv:?}
mount = "/webtv"
payment_systems = ["stripe"]
[plugins.secrets]
webtv_key = {{ env = "WEBTV_KEY" }}
[plugins.settings]
webtv_base_url = {base:?}
payment_method = "stripe"
public_url = {PUBLIC_URL:?}
{settings}
"#,
        stripe_config = stripe.instance_config(),
        webtv = plugin_wasm("webtv").display().to_string(),
        base = store.base_url(),
    );
    let host = stripe
        .grant(HostBuilder::new())
        .env("WEBTV_KEY", KEY)
        .config(&config)
        .start()
        .await;
    Setup { host, store, stripe: Some(stripe) }
}

impl Setup {
    fn stripe(&self) -> &StripeSim {
        self.stripe.as_ref().expect("a stripe setup")
    }

    async fn credit(&self, account: &str, amount: &str, key: &str) {
        let body = json!({ "amount": amount, "currency": "USD", "reference": "topup", "idempotency_key": key });
        let (status, answer) = self.host.admin("POST", &format!("/accounts/{}/credit", path_segment(account)), Some(body)).await;
        assert_eq!(status, 200, "credit: {answer}");
    }

    async fn balance(&self, account: &str) -> String {
        let (status, body) = self.host.admin("GET", &format!("/accounts/{}", path_segment(account)), None).await;
        assert_eq!(status, 200, "account {account}: {body}");
        let account = if body["account"].is_object() { &body["account"] } else { &body };
        account["balance"].as_str().expect("balance is a decimal string").to_string()
    }

    async fn wait_balance(&self, account: &str, expected: &str) {
        let reached = self.host.wait_until(WAIT, || async { self.balance(account).await == expected }).await;
        assert!(reached, "balance of {account} is {} not {expected}:\n{}", self.balance(account).await, self.host.logs());
    }

    /// The buyer arrives from WebTV with this query; returns the raw answer.
    async fn arrive(&self, query: &str) -> reqwest::Response {
        self.host.get(&format!("/webtv?{query}")).await
    }

    /// Pays `order` and returns the redirect's location.
    async fn pay_location(&self, order: &Order) -> String {
        let resp = self.arrive(&self.store.pay_query(order)).await;
        location(resp).await
    }

    /// Pays `order`, checks the redirect as WebTV does, and follows it to the store as
    /// the buyer's browser would.
    async fn pay(&self, order: &Order) -> Returned {
        let location = self.pay_location(order).await;
        self.back_to_store(&location).await
    }

    async fn back_to_store(&self, location: &str) -> Returned {
        let returned = self.store.verify_location(location).unwrap_or_else(|e| panic!("WebTV rejects {location}: {e}"));
        let resp = self.host.client().get(location).send().await.expect("store");
        assert_eq!(resp.status().as_u16(), 200, "the store refused the return: {}", resp.text().await.unwrap_or_default());
        returned
    }

    async fn action(&self, action: &str, profile_id: &str) -> Value {
        let resp = self.arrive(&self.store.action_query(action, profile_id)).await;
        assert_eq!(resp.status().as_u16(), 200);
        let text = resp.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{action} answered {text}: {e}"))
    }

    /// `rp_status` once `settled` holds: a charge shows in the balance a moment before
    /// the profile's dates are stored, both inside one timer call.
    async fn status_when(&self, profile_id: &str, settled: impl Fn(&Value) -> bool) -> Value {
        let reached = self.host.wait_until(WAIT, || async { settled(&self.action("rp_status", profile_id).await) }).await;
        let status = self.action("rp_status", profile_id).await;
        assert!(reached, "rp_status never settled: {status}\n{}", self.host.logs());
        status
    }

    async fn action_text(&self, action: &str, profile_id: &str) -> String {
        self.arrive(&self.store.action_query(action, profile_id)).await.text().await.unwrap()
    }

    /// Moves the host clock to `at` (plus a minute) if it is not there yet.
    async fn advance_to(&mut self, at: i64) {
        let now = self.host.now().await;
        if now < at + 60 {
            self.host.advance_clock(at + 60 - now).await;
        }
    }

    /// How often the host log says a recurring charge was declined.
    fn declines(&self) -> usize {
        self.host.logs().matches("webtv recurring charge declined").count()
    }
}

/// An account id as one URL path segment (`/` and non-ASCII percent-encoded).
fn path_segment(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

async fn location(resp: reqwest::Response) -> String {
    let status = resp.status().as_u16();
    let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    match location {
        Some(location) if status == 302 => location,
        _ => panic!("expected a redirect, got {status}: {}", resp.text().await.unwrap_or_default()),
    }
}

/// An error page: a status, HTML, and no redirect WebTV could take for an answer.
async fn assert_error_page(resp: reqwest::Response, status: u16, mentions: &str) {
    assert_eq!(resp.status().as_u16(), status);
    assert!(resp.headers().get("location").is_none(), "an error page must not redirect");
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let body = resp.text().await.unwrap();
    assert!(body.contains(mentions), "page does not mention {mentions:?}: {body}");
}

/// Days since 1970-01-01 of a UTC date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn noon(year: i64, month: i64, day: i64) -> i64 {
    days_from_civil(year, month, day) * DAY + 12 * 3600
}

#[tokio::test(flavor = "multi_thread")]
async fn balance_payments_succeed_decline_and_replay_without_charging_twice() {
    let s = balance_setup("").await;
    s.credit("7", "100.00", "k1").await;
    let order = Order::new("1001", "10.50", "7");
    let first = s.pay_location(&order).await;
    let r = s.back_to_store(&first).await;
    assert_eq!((r.id_order.as_str(), r.id_gateway.as_str(), r.status.as_str(), r.status_msg.as_str()), ("1001", "3", "SUCCESS", ""));
    assert!(!r.transaction.is_empty() && r.transaction != "N/A", "{r:?}");
    assert!(!r.recurring);
    assert_eq!(s.balance("7").await, "89.50");

    // A replayed request answers the same redirect and moves no money.
    assert_eq!(s.pay_location(&order).await, first);
    assert_eq!(s.balance("7").await, "89.50");

    // Not enough money: ERROR with a reason, nothing taken.
    s.credit("8", "5.00", "k2").await;
    let poor = Order::new("1002", "10.50", "8");
    let r = s.pay(&poor).await;
    assert_eq!((r.status.as_str(), r.transaction.as_str()), ("ERROR", ""));
    assert!(r.status_msg.contains("insufficient funds"), "{}", r.status_msg);
    assert_eq!(s.balance("8").await, "5.00");

    // After a top-up the buyer presses "Pay order" again: the same order is paid.
    s.credit("8", "10.00", "k3").await;
    let r = s.pay(&poor).await;
    assert_eq!(r.status, "SUCCESS");
    assert_eq!(s.balance("8").await, "4.50");

    // A buyer without an account gets an ERROR, not a crash.
    let r = s.pay(&Order::new("1003", "1.00", "nobody")).await;
    assert_eq!(r.status, "ERROR");
    assert_eq!(s.store.accepted().len(), 4);
    assert!(!s.host.logs().contains(KEY), "the WebTV key reached the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_replays_of_one_order_charge_once() {
    let s = balance_setup("").await;
    s.credit("7", "100.00", "k1").await;
    let query = s.store.pay_query(&Order::new("1010", "25.00", "7"));
    let answers = futures::future::join_all((0..6).map(|_| s.arrive(&query))).await;
    let mut locations = Vec::new();
    for resp in answers {
        locations.push(location(resp).await);
    }
    locations.dedup();
    assert_eq!(locations.len(), 1, "every replay answers the same redirect: {locations:?}");
    assert_eq!(s.store.verify_location(&locations[0]).unwrap().status, "SUCCESS");
    assert_eq!(s.balance("7").await, "75.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_unsigned_and_incomplete_requests_get_an_error_page() {
    let s = balance_setup("").await;
    s.credit("7", "100.00", "k1").await;
    let order = Order::new("1020", "10.50", "7");
    let query = s.store.pay_query(&order);

    let tampered = query.replace("amount=10.50", "amount=0.50");
    assert_ne!(tampered, query);
    assert_error_page(s.arrive(&tampered).await, 403, "signature").await;
    assert_error_page(s.arrive(&s.store.pay_query_signed_with(&order, "not the key")).await, 403, "signature").await;
    let unsigned: Vec<&str> = query.split('&').filter(|p| !p.starts_with("signature=")).collect();
    assert_error_page(s.arrive(&unsigned.join("&")).await, 400, "signature").await;
    let no_order: Vec<&str> = query.split('&').filter(|p| !p.starts_with("id_order=")).collect();
    assert_error_page(s.arrive(&no_order.join("&")).await, 400, "id_order").await;
    assert_error_page(s.arrive("").await, 400, "id_gateway").await;
    assert_error_page(s.arrive("action=refund").await, 400, "refund").await;

    // rp_* actions answer JSON errors, as the PHP sample does.
    let forged = s.store.action_query("rp_cancel", "rp-3-1020-0").replace("rp_cancel", "rp_status");
    assert_eq!(s.arrive(&forged).await.text().await.unwrap(), r#"{"error":"Invalid signature"}"#);
    assert_eq!(s.action_text("rp_status", "rp-3-404-0").await, r#"{"error":"Unknown recurring payment profile"}"#);

    assert_eq!(s.balance("7").await, "100.00");
    assert!(s.store.accepted().is_empty());
    let logs = s.host.logs();
    let signature = query.split('&').find_map(|p| p.strip_prefix("signature=")).unwrap();
    assert!(!logs.contains(KEY) && !logs.contains(signature), "a key or signature reached the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn unicode_and_slashes_in_order_numbers_and_skus() {
    let s = balance_setup("").await;
    s.credit("user/ü", "100.00", "k1").await;
    let now = s.host.now().await;
    let mut order = Order::new("2001", "12.00", "user/ü")
        .with_item(RecurringItem::new("Пакет/Gold ÄÖÜ 😀", "5.00", "WEEK", 2, now + 3 * DAY));
    order.order_number = "Заказ №5/7 — \"HD\" 😀".into();
    let r = s.pay(&order).await;
    assert_eq!(r.status, "SUCCESS");
    assert!(r.recurring);
    assert_eq!(r.items[0].error, None);
    assert_eq!(r.items[0].status, "Active");
    assert_eq!(s.balance("user/ü").await, "88.00");
    let status = s.action("rp_status", &r.items[0].profile_id).await;
    assert_eq!(status, json!({ "status": "Active", "last_payment_date": 0, "next_payment_date": now + 3 * DAY }));
}

#[tokio::test(flavor = "multi_thread")]
async fn monthly_profile_charges_on_calendar_dates_until_cancelled() {
    let mut s = balance_setup("").await;
    s.credit("7", "100.00", "k1").await;
    let now = s.host.now().await;
    // The next Jan 31 at noon: month ends exercise the calendar (Feb 28/29, Mar 31).
    let year = (1970..).find(|y| noon(*y, 1, 31) > now + DAY).unwrap();
    let first = noon(year, 1, 31);
    let feb_end = if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 { 29 } else { 28 };
    let order = Order::new("3001", "10.00", "7").with_item(RecurringItem::new("GOLD", "9.99", "MONTH", 1, first));
    let r = s.pay(&order).await;
    let profile = r.items[0].profile_id.clone();
    assert_eq!((r.items[0].status.as_str(), r.items[0].first_payment_date.clone()), ("Active", first.to_string()));
    assert_eq!(s.balance("7").await, "90.00");
    assert_eq!(s.action("rp_status", &profile).await, json!({ "status": "Active", "last_payment_date": 0, "next_payment_date": first }));

    let expected = [
        (first, noon(year, 2, feb_end), "80.01"),
        (noon(year, 2, feb_end), noon(year, 3, 31), "70.02"),
        (noon(year, 3, 31), noon(year, 4, 30), "60.03"),
    ];
    for (due, next, balance) in expected {
        s.advance_to(due).await;
        s.wait_balance("7", balance).await;
        let status = s.status_when(&profile, |st| st["next_payment_date"] == next).await;
        assert_eq!(status["status"], "Active");
        let last = status["last_payment_date"].as_i64().unwrap();
        assert!(last >= due && last < next, "last payment {last} of period due {due}");
    }

    assert_eq!(s.action_text("rp_cancel", &profile).await, r#"{"status":"Cancelled"}"#);
    assert_eq!(s.action_text("rp_cancel", &profile).await, r#"{"status":"Cancelled"}"#);
    s.advance_to(noon(year, 6, 1)).await;
    // Give a wrongly surviving timer time to fire before concluding nothing happened.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.balance("7").await, "60.03");
    let status = s.action("rp_status", &profile).await;
    assert_eq!(status["status"], "Cancelled");
    assert_eq!(status["next_payment_date"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trial_with_one_bad_item_sets_up_the_good_one() {
    let mut s = balance_setup("").await;
    s.credit("7", "50.00", "k1").await;
    let now = s.host.now().await;
    let mut tampered = RecurringItem::new("SILVER", "4.99", "MONTH", 1, now + 14 * DAY);
    tampered.signed_amount = Some("0.99".into());
    let mut forged = RecurringItem::new("BRONZE", "1.99", "MONTH", 1, now + 14 * DAY);
    forged.signing_key = Some("not the key".into());
    let order = Order::new("4001", "0", "7")
        .with_item(tampered)
        .with_item(RecurringItem::new("GOLD", "10.00", "DAY", 7, now + 14 * DAY))
        .with_item(forged);
    let r = s.pay(&order).await;
    assert_eq!((r.status.as_str(), r.transaction.as_str()), ("SUCCESS", "N/A"));
    assert!(r.recurring);
    for bad in [0, 2] {
        let item = &r.items[bad];
        assert_eq!(item.error.as_deref(), Some("Invalid recurring payment data or signature mismatch"));
        assert_eq!((item.profile_id.as_str(), item.status.as_str(), item.first_payment_date.as_str()), ("", "Perfil inválido", "0"));
    }
    assert_eq!((r.items[1].error.as_deref(), r.items[1].status.as_str()), (None, "Active"));
    assert_eq!(s.balance("7").await, "50.00", "a trial charges nothing up front");

    s.advance_to(now + 14 * DAY).await;
    s.wait_balance("7", "40.00").await;
    s.advance_to(now + 21 * DAY).await;
    s.wait_balance("7", "30.00").await;
    s.status_when(&r.items[1].profile_id, |st| st["next_payment_date"] == now + 28 * DAY).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn declined_recurring_charges_retry_then_suspend() {
    let mut s = balance_setup("max_failures = \"2\"\nretry_after_seconds = \"3600\"").await;
    s.credit("7", "10.00", "k1").await;
    let now = s.host.now().await;
    let order = Order::new("5001", "10.00", "7").with_item(RecurringItem::new("GOLD", "5.00", "DAY", 1, now + DAY));
    let profile = s.pay(&order).await.items[0].profile_id.clone();
    assert_eq!(s.balance("7").await, "0.00");

    s.advance_to(now + DAY).await;
    assert!(s.host.wait_until(WAIT, || async { s.declines() >= 1 }).await, "{}", s.host.logs());
    let status = s.status_when(&profile, |st| st["next_payment_date"].as_i64().is_some_and(|at| at > now + DAY)).await;
    assert_eq!(status["status"], "Active");
    let retry_at = status["next_payment_date"].as_i64().unwrap();
    assert!(retry_at > now + DAY && retry_at <= now + DAY + 3600 + 120, "retry at {retry_at}");

    s.advance_to(retry_at).await;
    assert!(s.host.wait_until(WAIT, || async { s.declines() >= 2 }).await, "{}", s.host.logs());
    let suspended = s.host.wait_until(WAIT, || async { s.action("rp_status", &profile).await["status"] == "Suspended" }).await;
    assert!(suspended);
    assert_eq!(s.action("rp_status", &profile).await["next_payment_date"], 0);

    s.credit("7", "100.00", "k2").await;
    s.advance_to(now + 10 * DAY).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.balance("7").await, "100.00", "a suspended profile is not charged");
}

#[tokio::test(flavor = "multi_thread")]
async fn card_payments_through_stripe_and_recurring_charges_on_the_saved_card() {
    let mut s = stripe_setup("").await;
    let webhook = s.host.url("/stripe/webhook");
    let now = s.host.now().await;
    let order = Order::new("6001", "10.50", "7").with_item(RecurringItem::new("GOLD", "9.99", "MONTH", 1, now + 5 * DAY));

    // To Stripe's hosted page; a replay before paying goes back to the same page.
    let page = s.pay_location(&order).await;
    assert!(page.starts_with(&s.stripe().base_url()), "{page}");
    assert_eq!(s.pay_location(&order).await, page);
    assert_eq!(s.stripe().sessions().len(), 1);
    let session = s.stripe().sessions().remove(0);
    assert_eq!(session["client_reference_id"], "webtv-3-6001-a1");
    let success_url = session["success_url"].as_str().unwrap().to_string();
    let return_path = success_url.strip_prefix("https://pay.example.test").expect("the public URL").to_string();
    assert!(return_path.starts_with("/webtv/return?"), "{return_path}");

    // Back before paying: a page that waits, with a way to continue.
    let waiting = s.host.get(&return_path).await;
    assert_eq!(waiting.status().as_u16(), 200);
    assert!(waiting.text().await.unwrap().contains(&page));

    // Paid; Stripe's webhook reaches the plugin; the buyer's return redirects to WebTV.
    let id = session["id"].as_str().unwrap().to_string();
    assert_eq!(s.stripe().complete_session(&id, Outcome::Paid, &webhook, now).await.status, 200);
    let location = {
        let ready = s
            .host
            .wait_until(WAIT, || async { s.host.get(&return_path).await.status().as_u16() == 302 })
            .await;
        assert!(ready, "{}", s.host.logs());
        location(s.host.get(&return_path).await).await
    };
    let r = s.back_to_store(&location).await;
    assert_eq!(r.status, "SUCCESS");
    assert!(r.transaction.starts_with("pi_"), "{r:?}");
    assert_eq!(r.items[0].status, "Active");
    let profile = r.items[0].profile_id.clone();
    // WebTV's replay of the paid order answers the same outcome.
    assert_eq!(s.pay_location(&order).await, location);

    // The first recurring charge goes to the saved card, once.
    s.advance_to(now + 5 * DAY).await;
    let charged = s
        .host
        .wait_until(WAIT, || async {
            s.stripe().intents().iter().any(|pi| pi["metadata"]["reference"] == format!("{profile}-p0"))
        })
        .await;
    assert!(charged, "{}", s.host.logs());
    let paid = s.host.wait_until(WAIT, || async { s.action("rp_status", &profile).await["last_payment_date"] != 0 }).await;
    assert!(paid);
    let charges = s.stripe().intents().iter().filter(|pi| pi["metadata"]["reference"] == format!("{profile}-p0")).count();
    assert_eq!(charges, 1);
    assert!(!s.host.logs().contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stripe_return_before_the_webhook_uses_lookup_and_an_expired_page_is_an_error() {
    let s = stripe_setup("").await;
    let now = s.host.now().await;

    // Paid, but the webhook has not come yet: the return asks Stripe.
    let order = Order::new("6101", "20.00", "7");
    s.pay_location(&order).await;
    let session = s.stripe().sessions().remove(0);
    s.stripe().finish_session(session["id"].as_str().unwrap(), Outcome::Paid, now);
    let return_path = session["success_url"].as_str().unwrap().strip_prefix("https://pay.example.test").unwrap().to_string();
    let r = s.back_to_store(&location(s.host.get(&return_path).await).await).await;
    assert_eq!(r.status, "SUCCESS");

    // The page expired unpaid: ERROR, and the next try opens a new page.
    let expired = Order::new("6102", "20.00", "7");
    s.pay_location(&expired).await;
    let session = s.stripe().sessions().into_iter().find(|x| x["client_reference_id"] == "webtv-3-6102-a1").unwrap();
    let webhook = s.host.url("/stripe/webhook");
    assert_eq!(s.stripe().complete_session(session["id"].as_str().unwrap(), Outcome::Expired, &webhook, now).await.status, 200);
    let return_path = session["success_url"].as_str().unwrap().strip_prefix("https://pay.example.test").unwrap().to_string();
    let r = s.back_to_store(&location(s.host.get(&return_path).await).await).await;
    assert_eq!(r.status, "ERROR");
    assert!(!r.status_msg.is_empty());
    let again = s.pay_location(&expired).await;
    assert!(again.starts_with(&s.stripe().base_url()));
    assert!(s.stripe().sessions().iter().any(|x| x["client_reference_id"] == "webtv-3-6102-a2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declining_saved_card_suspends_the_profile() {
    let mut s = stripe_setup("max_failures = \"2\"\nretry_after_seconds = \"3600\"").await;
    let webhook = s.host.url("/stripe/webhook");
    let now = s.host.now().await;
    let order = Order::new("6201", "5.00", "9").with_item(RecurringItem::new("GOLD", "9.99", "WEEK", 1, now + DAY));
    s.pay_location(&order).await;
    let session = s.stripe().sessions().remove(0);
    let id = session["id"].as_str().unwrap().to_string();
    assert_eq!(s.stripe().complete_session(&id, Outcome::PaidWithDecliningCard, &webhook, now).await.status, 200);
    let return_path = session["success_url"].as_str().unwrap().strip_prefix("https://pay.example.test").unwrap().to_string();
    let r = s.back_to_store(&location(s.host.get(&return_path).await).await).await;
    assert_eq!((r.status.as_str(), r.items[0].status.as_str()), ("SUCCESS", "Active"));
    let profile = r.items[0].profile_id.clone();

    s.advance_to(now + DAY).await;
    assert!(s.host.wait_until(WAIT, || async { s.declines() >= 1 }).await, "{}", s.host.logs());
    s.advance_to(now + DAY + 3600).await;
    let suspended = s.host.wait_until(WAIT, || async { s.action("rp_status", &profile).await["status"] == "Suspended" }).await;
    assert!(suspended, "{}", s.host.logs());
    let tries: Vec<String> = s
        .stripe()
        .intents()
        .iter()
        .filter_map(|pi| pi["metadata"]["reference"].as_str().map(str::to_string))
        .filter(|r| r.starts_with(&profile))
        .collect();
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert!(tries.contains(&format!("{profile}-p0")) && tries.contains(&format!("{profile}-p0-r1")), "{tries:?}");
}

/// Many profiles due at the same moment: every one is charged exactly once, by the
/// charge run of that instant (batches of `charge-many` and `compare-and-swap-many`),
/// and the balances add up. It also prints how many recurring charges per second
/// the host decided (a measurement, never asserted; `PAYHOST_BENCH_PROFILES` sets how
/// many, and with `PAYHOST_TEST_BINARY` naming a release build it is the WebTV figure of
/// BENCHMARKS.md:
/// `PAYHOST_TEST_PREBUILT=1 cargo test -p payhost-tests --test webtv -- --nocapture a_recurring_run`).
#[tokio::test(flavor = "multi_thread")]
async fn a_recurring_run_charges_every_due_profile_once() {
    // 40 by default; more than one batch of 128 with `PAYHOST_BENCH_PROFILES`.
    let profiles: usize = std::env::var("PAYHOST_BENCH_PROFILES").ok().and_then(|n| n.parse().ok()).unwrap_or(40);
    let mut s = balance_setup("").await;
    let now = s.host.now().await;
    let due = now + DAY;
    for i in 0..profiles {
        let user = format!("run-{i}");
        s.credit(&user, "20.00", &format!("fund-{i}")).await;
        let order = Order::new(&format!("run-order-{i}"), "1.00", &user).with_item(RecurringItem::new("GOLD", "9.99", "MONTH", 1, due));
        let r = s.pay(&order).await;
        assert_eq!(r.items[0].status, "Active", "{i}");
    }
    let paid = |s: &Setup| s.host.logs().matches("webtv recurring charge paid").count();
    assert_eq!(paid(&s), 0, "nothing is charged before its date");

    let started = std::time::Instant::now();
    s.advance_to(due).await;
    let all = s.host.wait_until(WAIT * 4, || async { paid(&s) >= profiles }).await;
    let elapsed = started.elapsed();
    assert!(all, "{} of {profiles} profiles charged:\n{}", paid(&s), s.host.logs());
    // Give a timer that would charge twice time to fire before the totals are checked.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(paid(&s), profiles, "each profile is charged once");
    for i in 0..profiles {
        assert_eq!(s.balance(&format!("run-{i}")).await, "9.01", "profile {i}: the order's 1.00 and one period's 9.99");
    }
    println!(
        "webtv recurring run: {profiles} profiles in {:.3} s = {:.0} charges/s",
        elapsed.as_secs_f64(),
        profiles as f64 / elapsed.as_secs_f64()
    );
}
