//! `payhost:gateway@0.1.0` imports: every 0.1 function is the current implementation,
//! its arguments and results converted by `crate::wit::since_v0_1` (so a component built
//! against the frozen 0.1 contract gets exactly today's behaviour, limits and checks).

use super::state::PluginState;
use crate::wit::adapt::Adapt;
use crate::wit::latest as new;
use crate::wit::since_v0_1::old;

impl old::types::Host for PluginState {}
impl old::payments::Host for PluginState {}

impl old::signing::Host for PluginState {
    fn hmac(&mut self, algorithm: old::signing::HmacAlgorithm, key: String, message: Vec<old::signing::Part>) -> Result<Vec<u8>, old::signing::Error> {
        new::signing::Host::hmac(self, algorithm.adapt(), key, message.adapt()).adapt()
    }
    fn verify_hmac(&mut self, algorithm: old::signing::HmacAlgorithm, key: String, message: Vec<old::signing::Part>, expected: Vec<u8>) -> Result<bool, old::signing::Error> {
        new::signing::Host::verify_hmac(self, algorithm.adapt(), key, message.adapt(), expected).adapt()
    }
    fn digest(&mut self, algorithm: old::signing::DigestAlgorithm, message: Vec<old::signing::Part>) -> Result<Vec<u8>, old::signing::Error> {
        new::signing::Host::digest(self, algorithm.adapt(), message.adapt()).adapt()
    }
    fn verify_digest(&mut self, algorithm: old::signing::DigestAlgorithm, message: Vec<old::signing::Part>, expected: Vec<u8>) -> Result<bool, old::signing::Error> {
        new::signing::Host::verify_digest(self, algorithm.adapt(), message.adapt(), expected).adapt()
    }
    fn equal(&mut self, a: Vec<u8>, b: Vec<u8>) -> bool {
        new::signing::Host::equal(self, a, b)
    }
    fn to_hex(&mut self, data: Vec<u8>) -> String {
        new::signing::Host::to_hex(self, data)
    }
    fn from_hex(&mut self, text: String) -> Result<Vec<u8>, old::signing::Error> {
        new::signing::Host::from_hex(self, text).adapt()
    }
    fn base64_encode(&mut self, data: Vec<u8>) -> String {
        new::signing::Host::base64_encode(self, data)
    }
    fn base64_decode(&mut self, text: String) -> Result<Vec<u8>, old::signing::Error> {
        new::signing::Host::base64_decode(self, text).adapt()
    }
}

impl old::http::Host for PluginState {
    async fn send(&mut self, req: old::http::Request) -> Result<old::http::Response, old::http::Error> {
        new::http::Host::send(self, req.adapt()).await.adapt()
    }
}

impl old::store::Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, old::store::Error> {
        new::store::Host::get(self, key).await.adapt()
    }
    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), old::store::Error> {
        new::store::Host::set(self, key, value).await.adapt()
    }
    async fn delete(&mut self, key: String) -> Result<bool, old::store::Error> {
        new::store::Host::delete(self, key).await.adapt()
    }
    async fn compare_and_swap(&mut self, key: String, expected: Option<Vec<u8>>, new: Vec<u8>) -> Result<bool, old::store::Error> {
        new::store::Host::compare_and_swap(self, key, expected, new).await.adapt()
    }
    async fn list_keys(&mut self, prefix: String, start_after: Option<String>, limit: u32) -> Result<Vec<String>, old::store::Error> {
        new::store::Host::list_keys(self, prefix, start_after, limit).await.adapt()
    }
}

impl old::clock::Host for PluginState {
    fn now(&mut self) -> old::clock::Instant {
        new::clock::Host::now(self).adapt()
    }
}

impl old::log::Host for PluginState {
    fn log(&mut self, level: old::log::Level, message: String, fields: Vec<(String, String)>) {
        new::log::Host::log(self, level.adapt(), message, fields)
    }
}

impl old::settings::Host for PluginState {
    fn get(&mut self, name: String) -> Option<String> {
        new::settings::Host::get(self, name)
    }
    fn all(&mut self) -> Vec<(String, String)> {
        new::settings::Host::all(self)
    }
}

impl old::ledger::Host for PluginState {
    async fn open_account(&mut self, id: String, currency: String) -> Result<old::ledger::Account, old::ledger::Error> {
        new::ledger::Host::open_account(self, id, currency).await.adapt()
    }
    async fn get_account(&mut self, id: String) -> Result<Option<old::ledger::Account>, old::ledger::Error> {
        new::ledger::Host::get_account(self, id).await.adapt()
    }
    async fn credit(&mut self, key: String, account: String, amount: String, currency: String, reference: String) -> Result<old::ledger::Entry, old::ledger::Error> {
        new::ledger::Host::credit(self, key, account, amount, currency, reference).await.adapt()
    }
    async fn debit(&mut self, key: String, account: String, amount: String, currency: String, reference: String) -> Result<old::ledger::Entry, old::ledger::Error> {
        new::ledger::Host::debit(self, key, account, amount, currency, reference).await.adapt()
    }
    async fn debit_many(&mut self, key: String, currency: String, lines: Vec<old::ledger::DebitLine>) -> Result<Vec<old::ledger::Entry>, old::ledger::Error> {
        new::ledger::Host::debit_many(self, key, currency, lines.adapt()).await.adapt()
    }
    async fn reverse(&mut self, key: String, transaction_id: String, reference: String) -> Result<Vec<old::ledger::Entry>, old::ledger::Error> {
        new::ledger::Host::reverse(self, key, transaction_id, reference).await.adapt()
    }
    async fn history(&mut self, account: String, limit: u32) -> Result<Vec<old::ledger::Entry>, old::ledger::Error> {
        new::ledger::Host::history(self, account, limit).await.adapt()
    }
}

impl old::timers::Host for PluginState {
    async fn schedule(&mut self, name: String, at: old::clock::Instant, payload: Vec<u8>) -> Result<(), old::timers::Error> {
        new::timers::Host::schedule(self, name, at.adapt(), payload).await.adapt()
    }
    async fn cancel(&mut self, name: String) -> Result<bool, old::timers::Error> {
        new::timers::Host::cancel(self, name).await.adapt()
    }
}

impl old::deliveries::Host for PluginState {
    async fn enqueue(&mut self, key: String, delivery: old::deliveries::Delivery) -> Result<String, old::deliveries::Error> {
        new::deliveries::Host::enqueue(self, key, delivery.adapt()).await.adapt()
    }
}

impl old::checkout::Host for PluginState {
    async fn start_checkout(&mut self, system: String, req: old::payments::CheckoutRequest) -> Result<old::payments::Checkout, old::payments::Error> {
        new::checkout::Host::start_checkout(self, system, req.adapt()).await.adapt()
    }
    async fn charge(&mut self, system: String, req: old::payments::ChargeRequest) -> Result<old::payments::PaymentEvent, old::payments::Error> {
        new::checkout::Host::charge(self, system, req.adapt()).await.adapt()
    }
    async fn lookup(&mut self, system: String, external_id: String) -> Result<old::payments::PaymentEvent, old::payments::Error> {
        new::checkout::Host::lookup(self, system, external_id).await.adapt()
    }
    async fn refund(&mut self, system: String, external_id: String, amount: Option<String>) -> Result<old::payments::RefundResult, old::payments::Error> {
        new::checkout::Host::refund(self, system, external_id, amount).await.adapt()
    }
}
