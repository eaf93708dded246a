//! A native fake of the whole host, for plugin logic tested with plain `cargo test`.
//!
//! [`FakeHost`] implements [`Host`]: it signs with keys the test gives (real HMAC and
//! digests), keeps an in-memory store with compare-and-swap, a ledger with idempotency
//! keys, a clock the test sets, and records outbound HTTP (answered by the test),
//! timers, deliveries and log lines. A log line that contains a secret fails the test.
//! Payments go to a [`PaymentSystems`] the test provides.
//!
//! ```
//! use payhost_sdk::host::{Host, HmacAlgorithm, Part};
//! use payhost_sdk::testing::FakeHost;
//!
//! let host = FakeHost::new().with_secret("key", b"k").with_setting("shop", "7");
//! host.set_now(1_700_000_000);
//! let mac = host.hmac(HmacAlgorithm::Sha256, "key", &[Part::Text("abc".into())]).unwrap();
//! assert_eq!(mac.len(), 32);
//! assert!(host.store_compare_and_swap("n", None, b"1").unwrap());
//! assert!(!host.store_compare_and_swap("n", None, b"2").unwrap());
//! ```

mod ledger;
mod signing;

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::host::{
    Account, BatchPosting, ChargeRequest, Checkout, CheckoutRequest, DebitLine, Delivery, DigestAlgorithm, Entry, Expectation,
    GuardedWrite, HmacAlgorithm, Host, Instant, Part, PaymentEvent, PostingKind, RefundResult,
};
use crate::ledger::EntryKind;
use crate::{deliveries, log, outbound as http, payments, store, timers};

/// An outbound request as it left the host: secret headers and query parameters filled
/// in (so the test can check what the counterpart receives), and as the plugin built it.
#[derive(Clone, Debug)]
pub struct SentRequest {
    pub method: String,
    /// With the secret query parameters appended.
    pub url: String,
    /// The plain headers, then the secret ones filled in.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub request: http::Request,
}

impl SentRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A timer the plugin set and that has not fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledTimer {
    pub at: i64,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct LogLine {
    pub level: log::Level,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// The payment systems behind `checkout`, as the test wants them to answer. Every method
/// answers `unavailable` unless the test overrides it.
pub trait PaymentSystems {
    fn start_checkout(&mut self, system: &str, req: &CheckoutRequest) -> Result<Checkout, payments::Error> {
        let _ = req;
        Err(payments::Error::Unavailable(format!("the fake host has no answer for start-checkout on `{system}`")))
    }
    fn charge(&mut self, system: &str, req: &ChargeRequest) -> Result<PaymentEvent, payments::Error> {
        let _ = req;
        Err(payments::Error::Unavailable(format!("the fake host has no answer for charge on `{system}`")))
    }
    fn lookup(&mut self, system: &str, external_id: &str) -> Result<PaymentEvent, payments::Error> {
        let _ = external_id;
        Err(payments::Error::Unavailable(format!("the fake host has no answer for lookup on `{system}`")))
    }
    fn refund(&mut self, system: &str, external_id: &str, amount: Option<&str>) -> Result<RefundResult, payments::Error> {
        let _ = (external_id, amount);
        Err(payments::Error::Unavailable(format!("the fake host has no answer for refund on `{system}`")))
    }
}

/// No payment systems: every payment call answers `unavailable`.
pub struct NoPayments;
impl PaymentSystems for NoPayments {}

type HttpHandler = Box<dyn FnMut(&SentRequest) -> Result<http::Response, http::Error>>;

#[derive(Default)]
struct State {
    now: i64,
    secrets: BTreeMap<String, Vec<u8>>,
    settings: BTreeMap<String, String>,
    store: BTreeMap<String, Vec<u8>>,
    store_down: bool,
    sent: Vec<SentRequest>,
    ledger: ledger::Ledger,
    timers: BTreeMap<String, ScheduledTimer>,
    deliveries: Vec<(String, String, Delivery)>,
    logs: Vec<LogLine>,
    /// How many `charge-many` calls the plugin made.
    charge_batches: usize,
}

/// The in-memory host, with the payment systems `P` behind `checkout`. Interior
/// mutability: plugin code takes `&impl Host`.
pub struct FakeHost<P = NoPayments> {
    state: RefCell<State>,
    http: RefCell<Option<HttpHandler>>,
    payments: RefCell<P>,
    /// Runs once, just before the next `compare-and-swap-many` is checked.
    before_guarded_batch: RefCell<Option<Box<dyn FnOnce(&FakeHost<P>)>>>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// No secrets, no settings, the clock at 0, no HTTP answers, no payment systems.
    pub fn new() -> Self {
        Self { state: RefCell::default(), http: RefCell::new(None), payments: RefCell::new(NoPayments), before_guarded_batch: RefCell::new(None) }
    }
}

impl<P: PaymentSystems> FakeHost<P> {
    /// The same host with `systems` answering payment calls.
    pub fn with_payments<Q: PaymentSystems>(self, systems: Q) -> FakeHost<Q> {
        FakeHost { state: self.state, http: self.http, payments: RefCell::new(systems), before_guarded_batch: RefCell::new(None) }
    }

    /// Runs `change` once, right before the next `compare-and-swap-many` checks its
    /// expectations: another writer landing between a plugin's reads and its batch write
    /// (a cancellation racing a billing run), so the plugin's handling of a skipped group
    /// can be tested. Store calls inside `change` go straight through.
    pub fn before_next_guarded_batch(&self, change: impl FnOnce(&Self) + 'static) {
        *self.before_guarded_batch.borrow_mut() = Some(Box::new(change));
    }

    /// The payment systems, to set them up or inspect what they were asked.
    pub fn payments(&self) -> std::cell::RefMut<'_, P> {
        self.payments.borrow_mut()
    }

    /// Grants a secret with these key bytes (the plugin still only names it).
    pub fn with_secret(self, name: &str, key: &[u8]) -> Self {
        self.state.borrow_mut().secrets.insert(name.into(), key.to_vec());
        self
    }

    pub fn with_setting(self, name: &str, value: &str) -> Self {
        self.set_setting(name, value);
        self
    }

    pub fn set_setting(&self, name: &str, value: &str) {
        self.state.borrow_mut().settings.insert(name.into(), value.into());
    }

    /// Sets the host clock (Unix seconds).
    pub fn set_now(&self, seconds: i64) {
        self.state.borrow_mut().now = seconds;
    }

    pub fn advance(&self, seconds: i64) {
        self.state.borrow_mut().now += seconds;
    }

    /// Answers every outbound request from now on.
    pub fn on_http(&self, handler: impl FnMut(&SentRequest) -> Result<http::Response, http::Error> + 'static) {
        *self.http.borrow_mut() = Some(Box::new(handler));
    }

    /// Every outbound request so far, oldest first.
    pub fn sent(&self) -> Vec<SentRequest> {
        self.state.borrow().sent.clone()
    }

    /// Makes every store call fail with `backend` (an outage) until set back.
    pub fn set_store_down(&self, down: bool) {
        self.state.borrow_mut().store_down = down;
    }

    pub fn stored(&self, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().store.get(key).cloned()
    }

    /// Puts a value in the store as an earlier call would have.
    pub fn put(&self, key: &str, value: &[u8]) {
        self.state.borrow_mut().store.insert(key.into(), value.to_vec());
    }

    pub fn store_keys(&self) -> Vec<String> {
        self.state.borrow().store.keys().cloned().collect()
    }

    /// Credits an account as the operator would (opening it in `currency`).
    pub fn fund(&self, account: &str, currency: &str, amount: &str) {
        let key = format!("fund/{account}/{}", self.state.borrow().ledger.entries().len());
        self.open_account(account, currency).expect("fund: open account");
        self.credit(&key, account, amount, currency, "test funding").expect("fund: credit");
    }

    pub fn balance(&self, account: &str) -> Option<String> {
        self.state.borrow().ledger.account(account).map(|a| a.balance)
    }

    /// Every ledger entry, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        self.state.borrow().ledger.entries().to_vec()
    }

    /// How many `charge-many` calls the plugin has made.
    pub fn charge_batches(&self) -> usize {
        self.state.borrow().charge_batches
    }

    pub fn timers(&self) -> BTreeMap<String, ScheduledTimer> {
        self.state.borrow().timers.clone()
    }

    /// Removes and returns the timers due at the current time, earliest first, as the
    /// host hands them to `on-timer`.
    pub fn take_due_timers(&self) -> Vec<(String, Vec<u8>)> {
        let mut state = self.state.borrow_mut();
        let now = state.now;
        let mut due: Vec<(String, ScheduledTimer)> =
            state.timers.iter().filter(|(_, t)| t.at <= now).map(|(n, t)| (n.clone(), t.clone())).collect();
        due.sort_by_key(|(name, t)| (t.at, name.clone()));
        for (name, _) in &due {
            state.timers.remove(name);
        }
        due.into_iter().map(|(name, t)| (name, t.payload)).collect()
    }

    /// Enqueued deliveries: (idempotency key, delivery id, delivery).
    pub fn deliveries(&self) -> Vec<(String, String, Delivery)> {
        self.state.borrow().deliveries.clone()
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.state.borrow().logs.clone()
    }

    fn store_up(&self) -> Result<(), store::Error> {
        if self.state.borrow().store_down {
            Err(store::Error::Backend("the fake store is down".into()))
        } else {
            Ok(())
        }
    }

    fn render(&self, template: &str) -> Result<String, http::Error> {
        let state = self.state.borrow();
        let mut out = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').ok_or_else(|| http::Error::InvalidRequest("secret template has an unclosed `{`".into()))?;
            let name = &rest[open + 1..open + close];
            let secret = state
                .secrets
                .get(name)
                .ok_or_else(|| http::Error::InvalidRequest(format!("secret `{name}` is not granted to this instance")))?;
            out.push_str(&String::from_utf8_lossy(secret));
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn ledger_call(&self, key: &str, request: String, f: impl FnOnce(&mut ledger::Ledger, i64) -> Result<Vec<Entry>, crate::ledger::Error>) -> Result<Vec<Entry>, crate::ledger::Error> {
        let mut state = self.state.borrow_mut();
        let now = state.now;
        state.ledger.once(key, request, |l| f(l, now))
    }
}

impl<P: PaymentSystems> Host for FakeHost<P> {
    fn now(&self) -> Instant {
        Instant { seconds: self.state.borrow().now, nanoseconds: 0 }
    }
    fn setting(&self, name: &str) -> Option<String> {
        self.state.borrow().settings.get(name).cloned()
    }
    fn settings(&self) -> Vec<(String, String)> {
        self.state.borrow().settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
    fn log(&self, level: log::Level, message: &str, fields: &[(&str, &str)]) {
        let mut state = self.state.borrow_mut();
        for (name, secret) in &state.secrets {
            let text = String::from_utf8_lossy(secret);
            let leaked = text.len() >= 4 && (message.contains(&*text) || fields.iter().any(|(_, v)| v.contains(&*text)));
            assert!(!leaked, "the plugin logged secret `{name}`: {message} {fields:?}");
        }
        let fields = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        state.logs.push(LogLine { level, message: message.to_string(), fields });
    }

    fn hmac(&self, algorithm: HmacAlgorithm, key: &str, message: &[Part]) -> Result<Vec<u8>, crate::signing::Error> {
        let state = self.state.borrow();
        let secret = state.secrets.get(key).ok_or_else(|| crate::signing::Error::NotGranted(key.into()))?;
        Ok(signing::hmac(algorithm, secret, &signing::message(&state.secrets, message)?))
    }
    fn verify_hmac(&self, algorithm: HmacAlgorithm, key: &str, message: &[Part], expected: &[u8]) -> Result<bool, crate::signing::Error> {
        Ok(self.hmac(algorithm, key, message)? == expected)
    }
    fn digest(&self, algorithm: DigestAlgorithm, message: &[Part]) -> Result<Vec<u8>, crate::signing::Error> {
        let state = self.state.borrow();
        Ok(signing::digest(algorithm, &signing::message(&state.secrets, message)?))
    }
    fn verify_digest(&self, algorithm: DigestAlgorithm, message: &[Part], expected: &[u8]) -> Result<bool, crate::signing::Error> {
        Ok(self.digest(algorithm, message)? == expected)
    }

    fn store_get(&self, key: &str) -> Result<Option<Vec<u8>>, store::Error> {
        self.store_up()?;
        Ok(self.stored(key))
    }
    fn store_set(&self, key: &str, value: &[u8]) -> Result<(), store::Error> {
        self.store_up()?;
        self.put(key, value);
        Ok(())
    }
    fn store_delete(&self, key: &str) -> Result<bool, store::Error> {
        self.store_up()?;
        Ok(self.state.borrow_mut().store.remove(key).is_some())
    }
    fn store_compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, store::Error> {
        self.store_up()?;
        let mut state = self.state.borrow_mut();
        if state.store.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        state.store.insert(key.into(), new.to_vec());
        Ok(true)
    }
    fn store_list_keys(&self, prefix: &str, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, store::Error> {
        self.store_up()?;
        let state = self.state.borrow();
        Ok(state
            .store
            .keys()
            .filter(|k| k.starts_with(prefix) && start_after.is_none_or(|after| k.as_str() > after))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    fn store_set_many(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), store::Error> {
        self.store_up()?;
        let mut state = self.state.borrow_mut();
        for (key, value) in writes {
            match value {
                Some(value) => state.store.insert(key.clone(), value.clone()),
                None => state.store.remove(key),
            };
        }
        Ok(())
    }

    fn store_compare_and_swap_many(&self, groups: &[Vec<GuardedWrite>]) -> Result<Vec<bool>, store::Error> {
        let change = self.before_guarded_batch.borrow_mut().take();
        if let Some(change) = change {
            change(self);
        }
        self.store_up()?;
        let total: usize = groups.iter().map(Vec::len).sum();
        if total > 512 {
            return Err(store::Error::TooLarge(format!("compare-and-swap-many takes at most 512 writes, not {total}")));
        }
        let mut state = self.state.borrow_mut();
        let holds = |store: &BTreeMap<String, Vec<u8>>, w: &GuardedWrite| match &w.expect {
            Expectation::Any => true,
            Expectation::Absent => !store.contains_key(&w.key),
            Expectation::Equals(value) => store.get(&w.key) == Some(value),
        };
        let mut written = Vec::with_capacity(groups.len());
        for group in groups {
            let ok = group.iter().all(|w| holds(&state.store, w));
            if ok {
                for w in group {
                    match &w.value {
                        Some(value) => state.store.insert(w.key.clone(), value.clone()),
                        None => state.store.remove(&w.key),
                    };
                }
            }
            written.push(ok);
        }
        Ok(written)
    }

    fn send(&self, request: &http::Request) -> Result<http::Response, http::Error> {
        let mut url = request.url.clone();
        for (i, (name, template)) in request.secret_query.iter().enumerate() {
            let value = self.render(template)?;
            let pair: String = form_urlencoded::Serializer::new(String::new()).append_pair(name, &value).finish();
            let sep = if i == 0 && !url.contains('?') { '?' } else { '&' };
            url.push(sep);
            url.push_str(&pair);
        }
        let mut headers = request.headers.clone();
        for (name, template) in &request.secret_headers {
            headers.push((name.clone(), self.render(template)?));
        }
        let sent = SentRequest { method: request.method.clone(), url, headers, body: request.body.clone(), request: request.clone() };
        self.state.borrow_mut().sent.push(sent.clone());
        match self.http.borrow_mut().as_mut() {
            Some(answer) => answer(&sent),
            None => Err(http::Error::Connect("the fake host has no HTTP answer set (FakeHost::on_http)".into())),
        }
    }

    fn open_account(&self, id: &str, currency: &str) -> Result<Account, crate::ledger::Error> {
        self.state.borrow_mut().ledger.open(id, currency)
    }
    fn get_account(&self, id: &str) -> Result<Option<Account>, crate::ledger::Error> {
        Ok(self.state.borrow().ledger.account(id))
    }
    fn credit(&self, key: &str, account: &str, amount: &str, currency: &str, reference: &str) -> Result<Entry, crate::ledger::Error> {
        let line = DebitLine { account: account.into(), amount: amount.into(), reference: reference.into() };
        let request = format!("credit {account} {amount} {currency} {reference}");
        let entries = self.ledger_call(key, request, |l, now| l.post(now, EntryKind::Credit, &[line], currency))?;
        Ok(entries.into_iter().next().expect("one line"))
    }
    fn debit(&self, key: &str, account: &str, amount: &str, currency: &str, reference: &str) -> Result<Entry, crate::ledger::Error> {
        let line = DebitLine { account: account.into(), amount: amount.into(), reference: reference.into() };
        let request = format!("debit {account} {amount} {currency} {reference}");
        let entries = self.ledger_call(key, request, |l, now| l.post(now, EntryKind::Debit, &[line], currency))?;
        Ok(entries.into_iter().next().expect("one line"))
    }
    fn debit_many(&self, key: &str, currency: &str, lines: &[DebitLine]) -> Result<Vec<Entry>, crate::ledger::Error> {
        let request = format!("debit-many {currency} {:?}", lines.iter().map(|l| (&l.account, &l.amount, &l.reference)).collect::<Vec<_>>());
        self.ledger_call(key, request, |l, now| l.post(now, EntryKind::Debit, lines, currency))
    }
    fn reverse(&self, key: &str, transaction_id: &str, reference: &str) -> Result<Vec<Entry>, crate::ledger::Error> {
        let request = format!("reverse {transaction_id} {reference}");
        self.ledger_call(key, request, |l, now| l.reverse(now, transaction_id, reference))
    }
    fn post_batch(&self, postings: &[BatchPosting]) -> Vec<Result<Vec<Entry>, crate::ledger::Error>> {
        // Each posting is the call it stands for (one line: `credit` or `debit`; several
        // debit lines: `debit-many`), so keys replay across the two the way the host's do.
        postings
            .iter()
            .map(|p| match (&p.lines[..], p.kind) {
                ([line], PostingKind::Credit) => self.credit(&p.idempotency_key, &line.account, &line.amount, &p.currency, &line.reference).map(|e| vec![e]),
                ([line], PostingKind::Debit) => self.debit(&p.idempotency_key, &line.account, &line.amount, &p.currency, &line.reference).map(|e| vec![e]),
                ([], _) => Err(crate::ledger::Error::InvalidAmount("a batch posting needs at least one line".into())),
                (lines, PostingKind::Debit) => self.debit_many(&p.idempotency_key, &p.currency, lines),
                (lines, PostingKind::Credit) => {
                    let request = format!("credit-many {} {:?}", p.currency, lines.iter().map(|l| (&l.account, &l.amount, &l.reference)).collect::<Vec<_>>());
                    self.ledger_call(&p.idempotency_key, request, |l, now| l.post(now, EntryKind::Credit, lines, &p.currency))
                }
            })
            .collect()
    }
    fn history(&self, account: &str, limit: u32) -> Result<Vec<Entry>, crate::ledger::Error> {
        let state = self.state.borrow();
        if state.ledger.account(account).is_none() {
            return Err(crate::ledger::Error::UnknownAccount(account.into()));
        }
        Ok(state.ledger.entries().iter().rev().filter(|e| e.account == account).take(limit as usize).cloned().collect())
    }

    fn schedule_timer(&self, name: &str, at: Instant, payload: &[u8]) -> Result<(), timers::Error> {
        if name.is_empty() {
            return Err(timers::Error::Invalid("a timer needs a name".into()));
        }
        self.state.borrow_mut().timers.insert(name.into(), ScheduledTimer { at: at.seconds, payload: payload.to_vec() });
        Ok(())
    }
    fn cancel_timer(&self, name: &str) -> Result<bool, timers::Error> {
        Ok(self.state.borrow_mut().timers.remove(name).is_some())
    }
    fn enqueue_delivery(&self, key: &str, delivery: &Delivery) -> Result<String, deliveries::Error> {
        let mut state = self.state.borrow_mut();
        if let Some((_, id, _)) = state.deliveries.iter().find(|(k, _, _)| k == key) {
            return Ok(id.clone());
        }
        let id = format!("delivery-{}", state.deliveries.len() + 1);
        state.deliveries.push((key.into(), id.clone(), delivery.clone()));
        Ok(id)
    }

    fn start_checkout(&self, system: &str, req: &CheckoutRequest) -> Result<Checkout, payments::Error> {
        self.payments.borrow_mut().start_checkout(system, req)
    }
    fn charge(&self, system: &str, req: &ChargeRequest) -> Result<PaymentEvent, payments::Error> {
        self.payments.borrow_mut().charge(system, req)
    }
    fn charge_many(&self, system: &str, requests: &[ChargeRequest]) -> Vec<Result<PaymentEvent, payments::Error>> {
        self.state.borrow_mut().charge_batches += 1;
        requests.iter().map(|req| self.charge(system, req)).collect()
    }
    fn lookup(&self, system: &str, external_id: &str) -> Result<PaymentEvent, payments::Error> {
        self.payments.borrow_mut().lookup(system, external_id)
    }
    fn refund(&self, system: &str, external_id: &str, amount: Option<&str>) -> Result<RefundResult, payments::Error> {
        self.payments.borrow_mut().refund(system, external_id, amount)
    }
}

#[cfg(test)]
mod tests;
