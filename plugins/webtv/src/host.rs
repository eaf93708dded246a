//! How WebTV's flows use the host: through `payhost_sdk::Host` only, so they run
//! natively in unit tests against `payhost_sdk::testing::FakeHost`; the component passes
//! `payhost_sdk::WasmHost`. The helpers here give the calls the shapes the flows want
//! (Unix seconds, the one WebTV key, errors as text).

use payhost_sdk::host::{DigestAlgorithm, HmacAlgorithm, Instant, Part};
pub use payhost_sdk::Host;
use payhost_sdk::signing;

/// The secret WebTV and we sign with; it is resolved by the host and never seen here.
pub const KEY_NAME: &str = "webtv_key";

/// Host clock, Unix seconds.
pub fn now(host: &dyn Host) -> i64 {
    host.now().seconds
}

/// HMAC-SHA256 keyed by the `webtv_key` secret.
pub fn sign(host: &dyn Host, message: &[u8]) -> Result<Vec<u8>, String> {
    host.hmac(HmacAlgorithm::Sha256, KEY_NAME, &[Part::Bytes(message.to_vec())]).map_err(signing_error)
}

/// Constant-time check of an HMAC-SHA256 keyed by `webtv_key`.
pub fn verify(host: &dyn Host, message: &[u8], expected: &[u8]) -> Result<bool, String> {
    host.verify_hmac(HmacAlgorithm::Sha256, KEY_NAME, &[Part::Bytes(message.to_vec())], expected).map_err(signing_error)
}

/// Lowercase hex MD5, as PHP's `md5()` returns it.
pub fn md5_hex(host: &dyn Host, message: &[u8]) -> Result<String, String> {
    let digest = host.digest(DigestAlgorithm::Md5, &[Part::Bytes(message.to_vec())]).map_err(signing_error)?;
    Ok(payhost_sdk::hex::encode(&digest))
}

pub fn schedule(host: &dyn Host, name: &str, at: i64) -> Result<(), String> {
    host.schedule_timer(name, Instant { seconds: at, nanoseconds: 0 }, &[]).map_err(|e| format!("timer `{name}`: {e:?}"))
}

pub fn cancel(host: &dyn Host, name: &str) -> Result<(), String> {
    host.cancel_timer(name).map(|_| ()).map_err(|e| format!("timer `{name}`: {e:?}"))
}

fn signing_error(e: signing::Error) -> String {
    match e {
        signing::Error::NotGranted(name) => format!("secret `{name}` is not granted to this instance: add it under [plugins.secrets]"),
        signing::Error::InvalidEncoding(detail) => format!("signing: {detail}"),
    }
}
