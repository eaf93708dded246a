//! Every host capability behind one trait, so plugin logic runs natively in unit tests.
//!
//! Write flows against `&impl Host` (or `&dyn Host`); the component passes [`WasmHost`],
//! the thin adapter onto the WIT imports, and tests pass
//! [`testing::FakeHost`](crate::testing::FakeHost). The methods are the imports one for
//! one, with the same types and errors, so what a test sees is what the host returns.

use crate::bindings::payhost::gateway::{
    checkout, clock, deliveries, http, ledger, log, payments, settings, signing, store, timers,
};

pub use clock::Instant;
pub use deliveries::Delivery;
pub use ledger::{Account, BatchPosting, DebitLine, Entry, PostingKind};
pub use payments::{ChargeRequest, Checkout, CheckoutRequest, PaymentEvent, RefundResult};
pub use signing::{DigestAlgorithm, HmacAlgorithm, Part};
pub use store::{Expectation, GuardedWrite};

pub trait Host {
    // clock, settings, log
    fn now(&self) -> Instant;
    fn setting(&self, name: &str) -> Option<String>;
    fn settings(&self) -> Vec<(String, String)>;
    /// Never put secrets or card data in `message` or `fields`.
    fn log(&self, level: log::Level, message: &str, fields: &[(&str, &str)]);

    // signing
    fn hmac(&self, algorithm: HmacAlgorithm, key: &str, message: &[Part]) -> Result<Vec<u8>, signing::Error>;
    fn verify_hmac(&self, algorithm: HmacAlgorithm, key: &str, message: &[Part], expected: &[u8]) -> Result<bool, signing::Error>;
    fn digest(&self, algorithm: DigestAlgorithm, message: &[Part]) -> Result<Vec<u8>, signing::Error>;
    fn verify_digest(&self, algorithm: DigestAlgorithm, message: &[Part], expected: &[u8]) -> Result<bool, signing::Error>;

    // store
    fn store_get(&self, key: &str) -> Result<Option<Vec<u8>>, store::Error>;
    fn store_set(&self, key: &str, value: &[u8]) -> Result<(), store::Error>;
    fn store_delete(&self, key: &str) -> Result<bool, store::Error>;
    fn store_compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, store::Error>;
    fn store_list_keys(&self, prefix: &str, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, store::Error>;
    /// Every write (`None`: delete) in one transaction, all or none (since 0.2.1).
    fn store_set_many(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), store::Error>;
    /// Groups of guarded writes in one transaction, each written whole or skipped whole;
    /// whether each was written (since 0.2.2).
    fn store_compare_and_swap_many(&self, groups: &[Vec<GuardedWrite>]) -> Result<Vec<bool>, store::Error>;

    // outbound http
    fn send(&self, request: &http::Request) -> Result<http::Response, http::Error>;

    // ledger
    fn open_account(&self, id: &str, currency: &str) -> Result<Account, ledger::Error>;
    fn get_account(&self, id: &str) -> Result<Option<Account>, ledger::Error>;
    fn credit(&self, idempotency_key: &str, account: &str, amount: &str, currency: &str, reference: &str) -> Result<Entry, ledger::Error>;
    fn debit(&self, idempotency_key: &str, account: &str, amount: &str, currency: &str, reference: &str) -> Result<Entry, ledger::Error>;
    fn debit_many(&self, idempotency_key: &str, currency: &str, lines: &[DebitLine]) -> Result<Vec<Entry>, ledger::Error>;
    fn reverse(&self, idempotency_key: &str, transaction_id: &str, reference: &str) -> Result<Vec<Entry>, ledger::Error>;
    /// Independent postings in one durable commit, one result each (since 0.2.1).
    fn post_batch(&self, postings: &[BatchPosting]) -> Vec<Result<Vec<Entry>, ledger::Error>>;
    fn history(&self, account: &str, limit: u32) -> Result<Vec<Entry>, ledger::Error>;

    // timers, deliveries
    fn schedule_timer(&self, name: &str, at: Instant, payload: &[u8]) -> Result<(), timers::Error>;
    fn cancel_timer(&self, name: &str) -> Result<bool, timers::Error>;
    fn enqueue_delivery(&self, key: &str, delivery: &Delivery) -> Result<String, deliveries::Error>;

    // checkout
    fn start_checkout(&self, system: &str, req: &CheckoutRequest) -> Result<Checkout, payments::Error>;
    fn charge(&self, system: &str, req: &ChargeRequest) -> Result<PaymentEvent, payments::Error>;
    /// `charge` for each request, one result each; on `balance` one durable commit (since 0.2.2).
    fn charge_many(&self, system: &str, requests: &[ChargeRequest]) -> Vec<Result<PaymentEvent, payments::Error>>;
    fn lookup(&self, system: &str, external_id: &str) -> Result<PaymentEvent, payments::Error>;
    fn refund(&self, system: &str, external_id: &str, amount: Option<&str>) -> Result<RefundResult, payments::Error>;
}

/// The real host, through the component's imports (only callable inside the component).
pub struct WasmHost;

impl Host for WasmHost {
    fn now(&self) -> Instant {
        clock::now()
    }
    fn setting(&self, name: &str) -> Option<String> {
        settings::get(name)
    }
    fn settings(&self) -> Vec<(String, String)> {
        settings::all()
    }
    fn log(&self, level: log::Level, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        log::log(level, message, &fields);
    }

    fn hmac(&self, algorithm: HmacAlgorithm, key: &str, message: &[Part]) -> Result<Vec<u8>, signing::Error> {
        signing::hmac(algorithm, key, message)
    }
    fn verify_hmac(&self, algorithm: HmacAlgorithm, key: &str, message: &[Part], expected: &[u8]) -> Result<bool, signing::Error> {
        signing::verify_hmac(algorithm, key, message, expected)
    }
    fn digest(&self, algorithm: DigestAlgorithm, message: &[Part]) -> Result<Vec<u8>, signing::Error> {
        signing::digest(algorithm, message)
    }
    fn verify_digest(&self, algorithm: DigestAlgorithm, message: &[Part], expected: &[u8]) -> Result<bool, signing::Error> {
        signing::verify_digest(algorithm, message, expected)
    }

    fn store_get(&self, key: &str) -> Result<Option<Vec<u8>>, store::Error> {
        store::get(key)
    }
    fn store_set(&self, key: &str, value: &[u8]) -> Result<(), store::Error> {
        store::set(key, value)
    }
    fn store_delete(&self, key: &str) -> Result<bool, store::Error> {
        store::delete(key)
    }
    fn store_compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, store::Error> {
        store::compare_and_swap(key, expected, new)
    }
    fn store_list_keys(&self, prefix: &str, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, store::Error> {
        store::list_keys(prefix, start_after, limit)
    }
    fn store_set_many(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), store::Error> {
        store::set_many(writes)
    }
    fn store_compare_and_swap_many(&self, groups: &[Vec<GuardedWrite>]) -> Result<Vec<bool>, store::Error> {
        store::compare_and_swap_many(groups)
    }

    fn send(&self, request: &http::Request) -> Result<http::Response, http::Error> {
        http::send(request)
    }

    fn open_account(&self, id: &str, currency: &str) -> Result<Account, ledger::Error> {
        ledger::open_account(id, currency)
    }
    fn get_account(&self, id: &str) -> Result<Option<Account>, ledger::Error> {
        ledger::get_account(id)
    }
    fn credit(&self, idempotency_key: &str, account: &str, amount: &str, currency: &str, reference: &str) -> Result<Entry, ledger::Error> {
        ledger::credit(idempotency_key, account, amount, currency, reference)
    }
    fn debit(&self, idempotency_key: &str, account: &str, amount: &str, currency: &str, reference: &str) -> Result<Entry, ledger::Error> {
        ledger::debit(idempotency_key, account, amount, currency, reference)
    }
    fn debit_many(&self, idempotency_key: &str, currency: &str, lines: &[DebitLine]) -> Result<Vec<Entry>, ledger::Error> {
        ledger::debit_many(idempotency_key, currency, lines)
    }
    fn reverse(&self, idempotency_key: &str, transaction_id: &str, reference: &str) -> Result<Vec<Entry>, ledger::Error> {
        ledger::reverse(idempotency_key, transaction_id, reference)
    }
    fn post_batch(&self, postings: &[BatchPosting]) -> Vec<Result<Vec<Entry>, ledger::Error>> {
        ledger::post_batch(postings)
    }
    fn history(&self, account: &str, limit: u32) -> Result<Vec<Entry>, ledger::Error> {
        ledger::history(account, limit)
    }

    fn schedule_timer(&self, name: &str, at: Instant, payload: &[u8]) -> Result<(), timers::Error> {
        timers::schedule(name, at, payload)
    }
    fn cancel_timer(&self, name: &str) -> Result<bool, timers::Error> {
        timers::cancel(name)
    }
    fn enqueue_delivery(&self, key: &str, delivery: &Delivery) -> Result<String, deliveries::Error> {
        deliveries::enqueue(key, delivery)
    }

    fn start_checkout(&self, system: &str, req: &CheckoutRequest) -> Result<Checkout, payments::Error> {
        checkout::start_checkout(system, req)
    }
    fn charge(&self, system: &str, req: &ChargeRequest) -> Result<PaymentEvent, payments::Error> {
        checkout::charge(system, req)
    }
    fn charge_many(&self, system: &str, requests: &[ChargeRequest]) -> Vec<Result<PaymentEvent, payments::Error>> {
        checkout::charge_many(system, requests)
    }
    fn lookup(&self, system: &str, external_id: &str) -> Result<PaymentEvent, payments::Error> {
        checkout::lookup(system, external_id)
    }
    fn refund(&self, system: &str, external_id: &str, amount: Option<&str>) -> Result<RefundResult, payments::Error> {
        checkout::refund(system, external_id, amount)
    }
}
