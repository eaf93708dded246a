//! The SDK's fake host set up for WebTV, its payment systems, and a WebTV stand-in for
//! the flow tests.
//!
//! The host is `payhost_sdk::testing::FakeHost` with the WebTV key and settings; it signs
//! for real, keeps the store and timers. Behind `checkout` sit two payment systems:
//! `balance` (pays from wallets, idempotent per reference like the host's built-in
//! method) and `card` (hosted checkouts the test completes, saved-card charges). The
//! WebTV side builds signed requests and checks our redirects the way the vendor's PHP
//! does, with its own HMAC/MD5 (independent crates).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use payhost_sdk::host::Instant;
use payhost_sdk::payments::{
    ChargeRequest, Checkout, CheckoutRequest, Error as PayError, PaymentEvent, PaymentStatus, RefundResult,
};
use payhost_sdk::php;
use payhost_sdk::query::Params;
use payhost_sdk::testing::{FakeHost, PaymentSystems};
use payhost_sdk::{Host, Request, Response};
use rust_decimal::Decimal;
use sha2::Sha256;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::str::FromStr;

pub const KEY: &[u8] = b"the secret key";
pub const START: i64 = 1_700_000_000;
pub const DAY: i64 = 86_400;

/// The host the flow tests run against.
pub type TestHost = FakeHost<Systems>;

#[derive(Clone, Debug)]
pub struct FakeCheckout {
    pub reference: String,
    pub amount: String,
    pub currency: String,
    pub customer: String,
    pub save_card: bool,
    pub return_url: String,
    pub status: PaymentStatus,
}

/// The `balance` and `card` payment systems.
#[derive(Default)]
pub struct Systems {
    pub wallets: RefCell<BTreeMap<String, Decimal>>,
    /// Every charge call: (system, reference, amount).
    pub charge_calls: RefCell<Vec<(String, String, String)>>,
    /// Successful charges by reference (the systems' idempotency).
    pub settled: RefCell<BTreeMap<String, PaymentEvent>>,
    pub checkouts: RefCell<BTreeMap<String, FakeCheckout>>,
    pub refunds: RefCell<Vec<String>>,
    pub card_declines: Cell<bool>,
    pub unavailable: Cell<bool>,
    counter: Cell<u32>,
}

/// A host with WebTV's key, `webtv_base_url` and `settings`, at `START`.
pub fn test_host(settings: &[(&str, &str)]) -> TestHost {
    let host = FakeHost::new().with_secret(crate::host::KEY_NAME, KEY).with_setting("webtv_base_url", "https://tv.example.com");
    for (k, v) in settings {
        host.set_setting(k, v);
    }
    host.set_now(START);
    host.with_payments(Systems::default())
}

/// What the flow tests do with the host.
pub trait WebTvTests {
    fn cfg(&self) -> crate::config::Config;
    fn fund_wallet(&self, account: &str, amount: &str);
    fn wallet(&self, account: &str) -> String;
    /// Sends a request to the plugin as the host would.
    fn get(&self, path: &str, query: &str) -> Response;
    /// Fires every due timer (as the host does, retrying failed ones a minute later);
    /// returns how many fired.
    fn fire_due_timers(&self) -> usize;
    /// Moves the clock day by day, firing timers, for `days` days.
    fn run_days(&self, days: i64);
    /// The buyer pays the hosted checkout `id` (or fails it); returns the event the
    /// host would deliver.
    fn finish_checkout(&self, id: &str, succeed: bool) -> PaymentEvent;
    fn clear_timers(&self);
}

impl WebTvTests for TestHost {
    fn cfg(&self) -> crate::config::Config {
        crate::config::Config::load(self).expect("test settings are valid")
    }

    fn fund_wallet(&self, account: &str, amount: &str) {
        let payments = self.payments();
        let mut wallets = payments.wallets.borrow_mut();
        *wallets.entry(account.to_string()).or_insert(Decimal::ZERO) += Decimal::from_str(amount).unwrap();
    }

    fn wallet(&self, account: &str) -> String {
        self.payments().wallets.borrow().get(account).copied().unwrap_or(Decimal::ZERO).to_string()
    }

    fn get(&self, path: &str, query: &str) -> Response {
        let req = Request {
            id: "req-1".into(),
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            headers: vec![],
            body: vec![],
            remote_addr: "127.0.0.1".into(),
        };
        crate::handle(self, &req).expect("the handler answers")
    }

    fn fire_due_timers(&self) -> usize {
        let cfg = self.cfg();
        let mut fired = 0;
        loop {
            let Some((name, payload)) = self.take_due_timers().into_iter().next() else { return fired };
            fired += 1;
            assert!(fired < 1000, "timers keep firing");
            if let Err(e) = crate::recurring::on_timer(self, &cfg, &name) {
                self.log(payhost_sdk::log::Level::Warn, "timer failed", &[("timer", &name), ("error", &e)]);
                let retry = Instant { seconds: self.now().seconds + 60, nanoseconds: 0 };
                self.schedule_timer(&name, retry, &payload).unwrap();
            }
        }
    }

    fn run_days(&self, days: i64) {
        for _ in 0..days {
            self.advance(DAY);
            self.fire_due_timers();
        }
    }

    fn finish_checkout(&self, id: &str, succeed: bool) -> PaymentEvent {
        let payments = self.payments();
        let mut checkouts = payments.checkouts.borrow_mut();
        let checkout = checkouts.get_mut(id).expect("known checkout");
        checkout.status = if succeed { PaymentStatus::Succeeded } else { PaymentStatus::Failed };
        event_of(id, checkout)
    }

    fn clear_timers(&self) {
        for name in self.timers().keys() {
            self.cancel_timer(name).unwrap();
        }
    }
}

impl Systems {
    fn next_id(&self, prefix: &str) -> String {
        self.counter.set(self.counter.get() + 1);
        format!("{prefix}{}", self.counter.get())
    }
}

fn event_of(id: &str, c: &FakeCheckout) -> PaymentEvent {
    PaymentEvent {
        system: "card".into(),
        reference: c.reference.clone(),
        status: c.status,
        amount: c.amount.clone(),
        currency: c.currency.clone(),
        external_id: format!("pi_{id}"),
        saved_method: (c.save_card && c.status == PaymentStatus::Succeeded).then(|| format!("pm_{}", c.customer)),
        message: (c.status == PaymentStatus::Failed).then(|| "Your card was declined".to_string()),
    }
}

fn hmac_sha256(message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

pub fn md5_hex(message: &[u8]) -> String {
    Md5::digest(message).iter().map(|b| format!("{b:02x}")).collect()
}

/// WebTV's signature: base64(hmac_sha256(key, message)).
pub fn webtv_sign(message: &str) -> String {
    STANDARD.encode(hmac_sha256(message.as_bytes()))
}

impl PaymentSystems for Systems {
    fn start_checkout(&mut self, system: &str, req: &CheckoutRequest) -> Result<Checkout, PayError> {
        if system != "card" {
            return Err(PayError::UnknownSystem(system.into()));
        }
        if self.unavailable.get() {
            return Err(PayError::Unavailable("card system down".into()));
        }
        let id = self.next_id("cs_");
        self.checkouts.borrow_mut().insert(
            id.clone(),
            FakeCheckout {
                reference: req.reference.clone(),
                amount: req.amount.clone(),
                currency: req.currency.clone(),
                customer: req.customer.clone(),
                save_card: req.save_card,
                return_url: req.return_url.clone(),
                status: PaymentStatus::Pending,
            },
        );
        Ok(Checkout { id: id.clone(), redirect_url: format!("https://pay.example/{id}") })
    }

    fn charge(&mut self, system: &str, req: &ChargeRequest) -> Result<PaymentEvent, PayError> {
        self.charge_calls.borrow_mut().push((system.into(), req.reference.clone(), req.amount.clone()));
        if self.unavailable.get() {
            return Err(PayError::Unavailable("system down".into()));
        }
        let key = format!("{system}/{}", req.reference);
        if let Some(done) = self.settled.borrow().get(&key) {
            return Ok(done.clone());
        }
        let event = |status, external_id: String, message: Option<String>| PaymentEvent {
            system: system.into(),
            reference: req.reference.clone(),
            status,
            amount: req.amount.clone(),
            currency: req.currency.clone(),
            external_id,
            saved_method: req.saved_method.clone(),
            message,
        };
        let result = match system {
            "balance" => {
                let amount = Decimal::from_str(&req.amount).map_err(|e| PayError::Rejected(e.to_string()))?;
                // Like the host's built-in method: refusals are failed events, not errors.
                let mut wallets = self.wallets.borrow_mut();
                let Some(balance) = wallets.get_mut(&req.customer) else {
                    let message = format!("no ledger account `{}`", req.customer);
                    return Ok(event(PaymentStatus::Failed, String::new(), Some(message)));
                };
                if *balance < amount {
                    let message = format!("insufficient funds: balance {balance} {}", req.currency);
                    return Ok(event(PaymentStatus::Failed, String::new(), Some(message)));
                }
                *balance -= amount;
                event(PaymentStatus::Succeeded, self.next_id("ltx_"), None)
            }
            "card" => {
                if req.saved_method.is_none() {
                    return Err(PayError::Rejected("no saved card".into()));
                }
                if self.card_declines.get() {
                    return Ok(event(PaymentStatus::Failed, self.next_id("pi_"), Some("Your card was declined".into())));
                }
                event(PaymentStatus::Succeeded, self.next_id("pi_"), None)
            }
            other => return Err(PayError::UnknownSystem(other.into())),
        };
        self.settled.borrow_mut().insert(key, result.clone());
        Ok(result)
    }

    fn lookup(&mut self, system: &str, external_id: &str) -> Result<PaymentEvent, PayError> {
        if self.unavailable.get() {
            return Err(PayError::Unavailable("down".into()));
        }
        match (system, self.checkouts.borrow().get(external_id)) {
            ("card", Some(c)) => Ok(event_of(external_id, c)),
            _ => Err(PayError::NotFound(external_id.into())),
        }
    }

    fn refund(&mut self, _system: &str, external_id: &str, _amount: Option<&str>) -> Result<RefundResult, PayError> {
        self.refunds.borrow_mut().push(external_id.into());
        Ok(RefundResult { external_id: external_id.into(), amount: "0".into(), status: PaymentStatus::Succeeded })
    }
}

/// One recurring item WebTV asks for.
#[derive(Clone, Debug)]
pub struct WebTvItem {
    pub sku: String,
    pub amount: String,
    pub period: String,
    pub frequency: String,
    pub first_payment_date: i64,
    /// Sign with this amount instead (to tamper).
    pub signed_amount: Option<String>,
}

impl WebTvItem {
    pub fn monthly(sku: &str, amount: &str, first: i64) -> Self {
        Self {
            sku: sku.into(),
            amount: amount.into(),
            period: "MONTH".into(),
            frequency: "1".into(),
            first_payment_date: first,
            signed_amount: None,
        }
    }
}

/// A pay request as WebTV builds it.
#[derive(Clone, Debug)]
pub struct WebTvOrder {
    pub id_gateway: String,
    pub id_order: String,
    pub amount: String,
    pub currency_code: String,
    pub order_number: String,
    pub id_user: String,
    pub items: Vec<WebTvItem>,
}

impl WebTvOrder {
    pub fn new(id_order: &str, amount: &str) -> Self {
        Self {
            id_gateway: "3".into(),
            id_order: id_order.into(),
            amount: amount.into(),
            currency_code: "USD".into(),
            order_number: format!("ORD-{id_order}"),
            id_user: "7".into(),
            items: vec![],
        }
    }

    /// The signed query string.
    pub fn query(&self) -> String {
        let message = php::json_object(&[
            ("id_gateway", &self.id_gateway),
            ("id_order", &self.id_order),
            ("amount", &self.amount),
            ("currency_code", &self.currency_code),
            ("order_number", &self.order_number),
        ]);
        let mut pairs: Vec<(String, String)> = vec![
            ("action".into(), "pay".into()),
            ("id_gateway".into(), self.id_gateway.clone()),
            ("id_order".into(), self.id_order.clone()),
            ("amount".into(), self.amount.clone()),
            ("currency_code".into(), self.currency_code.clone()),
            ("order_number".into(), self.order_number.clone()),
            ("signature".into(), webtv_sign(&message)),
            ("id_user".into(), self.id_user.clone()),
        ];
        if !self.items.is_empty() {
            pairs.push(("rp_num".into(), self.items.len().to_string()));
        }
        for (i, item) in self.items.iter().enumerate() {
            let signed_amount = item.signed_amount.as_deref().unwrap_or(&item.amount);
            let digest = md5_hex(
                format!("{}{}{}{}", item.sku, php::floatval_string(signed_amount), item.frequency, item.period).as_bytes(),
            );
            pairs.push((format!("rp_{i}_sku"), item.sku.clone()));
            pairs.push((format!("rp_{i}_amount"), item.amount.clone()));
            pairs.push((format!("rp_{i}_period"), item.period.clone()));
            pairs.push((format!("rp_{i}_period_frequency"), item.frequency.clone()));
            pairs.push((format!("rp_{i}_first_payment_date"), item.first_payment_date.to_string()));
            pairs.push((format!("rp_{i}_signature"), webtv_sign(&digest)));
        }
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        payhost_sdk::query::encode(&pairs)
    }
}

/// What WebTV reads from our redirect, after checking every signature in it.
#[derive(Debug)]
pub struct WebTvReturn {
    pub params: Params,
}

impl WebTvReturn {
    pub fn get(&self, name: &str) -> &str {
        self.params.get(name).unwrap_or_else(|| panic!("return URL lacks `{name}`"))
    }
}

/// Checks a redirect to WebTV as WebTV would, panicking on any mismatch.
pub fn webtv_return(response: &Response) -> WebTvReturn {
    assert_eq!(response.status, 302, "expected a redirect, got {} {}", response.status, String::from_utf8_lossy(&response.body));
    let location = response.headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone()).unwrap();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, "https://tv.example.com/index.php");
    let params = Params::parse(query);
    let r = WebTvReturn { params };
    assert_eq!((r.get("go"), r.get("do")), ("store", "payOrder"));
    let tp = r.get("tp");
    let gateway = tp.strip_prefix("gid_").and_then(|t| t.split("-step_2").next()).unwrap();
    let message = php::json_object(&[
        ("id_gateway", gateway),
        ("id_order", r.get("iq")),
        ("status", r.get("status")),
        ("id_transaction", r.get("transaction")),
    ]);
    assert_eq!(r.get("signature"), webtv_sign(&message), "return signature");
    if tp.ends_with("-rp_1") {
        let mut n = 0;
        while let Some(profile_id) = r.params.get(&format!("rp_{n}_profile_id")) {
            let status = r.get(&format!("rp_{n}_status"));
            let digest = md5_hex(format!("{profile_id}{status}").as_bytes());
            assert_eq!(r.get(&format!("rp_{n}_signature")), webtv_sign(&digest), "item {n} signature");
            n += 1;
        }
        assert!(n > 0, "-rp_1 without items");
    }
    r
}

/// The signed query of `action=rp_status|rp_cancel`.
pub fn action_query(action: &str, profile_id: &str) -> String {
    let signature = webtv_sign(&php::json_object(&[("action", action), ("profile_id", profile_id)]));
    payhost_sdk::query::encode(&[("action", action), ("profile_id", profile_id), ("signature", &signature)])
}

pub fn body(response: &Response) -> String {
    String::from_utf8(response.body.clone()).unwrap()
}
