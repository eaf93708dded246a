//! The host capabilities the plugin uses, behind one trait.
//!
//! Every flow (pay, return, payment events, recurring charges, rp_status/rp_cancel)
//! talks to [`Host`] only, so the flows run natively in unit tests against an in-memory
//! fake; [`WasmHost`] is the thin adapter onto the real WIT imports.

use payhost_sdk::log::Level;
use payhost_sdk::payments::{
    ChargeRequest, Checkout, CheckoutRequest, Error as PayError, PaymentEvent, RefundResult,
};
use payhost_sdk::records::RecordStore;
use payhost_sdk::signing::{DigestAlgorithm, HmacAlgorithm, Part};
use payhost_sdk::{checkout, clock, log, settings, signing, store, timers};

/// The secret WebTV and we sign with; it is resolved by the host and never seen here.
pub const KEY_NAME: &str = "webtv_key";

pub trait Host {
    /// Host clock, Unix seconds.
    fn now(&self) -> i64;
    fn setting(&self, name: &str) -> Option<String>;
    fn store_get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn store_cas(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, String>;
    /// HMAC-SHA256 keyed by the `webtv_key` secret.
    fn hmac(&self, message: &[u8]) -> Result<Vec<u8>, String>;
    /// Constant-time check of an HMAC-SHA256 keyed by `webtv_key`.
    fn verify_hmac(&self, message: &[u8], expected: &[u8]) -> Result<bool, String>;
    /// Lowercase hex MD5, as PHP's `md5()` returns it.
    fn md5_hex(&self, message: &[u8]) -> Result<String, String>;
    fn start_checkout(&self, system: &str, req: &CheckoutRequest) -> Result<Checkout, PayError>;
    fn charge(&self, system: &str, req: &ChargeRequest) -> Result<PaymentEvent, PayError>;
    fn lookup(&self, system: &str, external_id: &str) -> Result<PaymentEvent, PayError>;
    fn refund(&self, system: &str, external_id: &str) -> Result<RefundResult, PayError>;
    fn schedule_timer(&self, name: &str, at: i64) -> Result<(), String>;
    fn cancel_timer(&self, name: &str) -> Result<(), String>;
    /// Never pass secrets or signatures.
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]);
}

/// The record helpers reach the store through the host trait, so flows that keep
/// records run against the test fake too.
impl RecordStore for dyn Host + '_ {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.store_get(key)
    }

    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, String> {
        self.store_cas(key, expected, new)
    }
}

/// The real host, through the component's imports.
pub struct WasmHost;

impl Host for WasmHost {
    fn now(&self) -> i64 {
        clock::now().seconds
    }

    fn setting(&self, name: &str) -> Option<String> {
        settings::get(name)
    }

    fn store_get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        store::get(key).map_err(|e| format!("store get `{key}`: {e:?}"))
    }

    fn store_cas(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, String> {
        store::compare_and_swap(key, expected, new).map_err(|e| format!("store write `{key}`: {e:?}"))
    }

    fn hmac(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        signing::hmac(HmacAlgorithm::Sha256, KEY_NAME, &[Part::Bytes(message.to_vec())])
            .map_err(signing_error)
    }

    fn verify_hmac(&self, message: &[u8], expected: &[u8]) -> Result<bool, String> {
        signing::verify_hmac(
            HmacAlgorithm::Sha256,
            KEY_NAME,
            &[Part::Bytes(message.to_vec())],
            expected,
        )
        .map_err(signing_error)
    }

    fn md5_hex(&self, message: &[u8]) -> Result<String, String> {
        let digest = signing::digest(DigestAlgorithm::Md5, &[Part::Bytes(message.to_vec())])
            .map_err(signing_error)?;
        Ok(payhost_sdk::hex::encode(&digest))
    }

    fn start_checkout(&self, system: &str, req: &CheckoutRequest) -> Result<Checkout, PayError> {
        checkout::start_checkout(system, req)
    }

    fn charge(&self, system: &str, req: &ChargeRequest) -> Result<PaymentEvent, PayError> {
        checkout::charge(system, req)
    }

    fn lookup(&self, system: &str, external_id: &str) -> Result<PaymentEvent, PayError> {
        checkout::lookup(system, external_id)
    }

    fn refund(&self, system: &str, external_id: &str) -> Result<RefundResult, PayError> {
        checkout::refund(system, external_id, None)
    }

    fn schedule_timer(&self, name: &str, at: i64) -> Result<(), String> {
        let at = clock::Instant { seconds: at, nanoseconds: 0 };
        timers::schedule(name, at, &[]).map_err(|e| format!("timer `{name}`: {e:?}"))
    }

    fn cancel_timer(&self, name: &str) -> Result<(), String> {
        timers::cancel(name)
            .map(|_| ())
            .map_err(|e| format!("timer `{name}`: {e:?}"))
    }

    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<(String, String)> =
            fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        log::log(level, message, &fields);
    }
}

fn signing_error(e: signing::Error) -> String {
    match e {
        signing::Error::NotGranted(name) => format!(
            "secret `{name}` is not granted to this instance: add it under [plugins.secrets]"
        ),
        signing::Error::InvalidEncoding(detail) => format!("signing: {detail}"),
    }
}
