//! Calls to Stripe's REST API and what their answers mean.
//!
//! Stripe takes form-encoded bodies with bracketed keys (`metadata[reference]=...`) and a
//! `Bearer` secret key. The key never enters wasm: the request names it in a secret-header
//! template the host fills in. Every POST carries an `Idempotency-Key` derived from our
//! reference, so a retried call (ours or the host's) cannot create a second payment.

use payhost_sdk::outbound;
use payhost_sdk::payments::Error;

use crate::config::Config;
use crate::objects::{ApiError, ErrorBody};

/// The named secret holding the API secret key (`sk_...` or a restricted `rk_...`).
pub const SECRET_KEY: &str = "stripe_secret_key";
/// Stripe's idempotency keys may be up to 255 characters.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A form body in the order fields were added.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((key.into(), value.into()));
        self
    }

    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn encode(&self) -> String {
        let pairs: Vec<(&str, &str)> = self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        payhost_sdk::query::encode(&pairs)
    }
}

/// A non-2xx answer from Stripe.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub error: ApiError,
}

impl Failure {
    /// What the caller of the payment system should see.
    pub fn into_error(self) -> Error {
        let detail = self.error.describe();
        match self.status {
            404 => Error::NotFound(detail),
            // Retrying may work: rate limits, a concurrent request on the same key, outages.
            409 | 429 | 500..=599 => Error::Unavailable(format!("stripe answered {}: {detail}", self.status)),
            // The key itself is wrong or lacks permission: the operator must act.
            401 | 403 => Error::Other(format!("stripe refused the API key ({}): {detail}", self.status)),
            _ => Error::Rejected(detail),
        }
    }
}

/// The outcome of one call: the 2xx body, or Stripe's error.
pub type Answer = Result<Vec<u8>, Failure>;

/// Reads an HTTP answer: 2xx is the object, anything else an error body.
pub fn read_answer(status: u16, body: Vec<u8>) -> Answer {
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let error = serde_json::from_slice::<ErrorBody>(&body)
        .map(|b| b.error)
        .unwrap_or_else(|_| ApiError {
            message: Some(format!("unreadable error answer ({} bytes)", body.len())),
            ..ApiError::default()
        });
    Err(Failure { status, error })
}

/// Whether `id` is a plain Stripe object id, safe to place in a URL path.
pub fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `payhost-{kind}-{id}`, or its SHA-256 when that is too long for Stripe or not plain
/// ASCII (references are the provider's, and a header value must be printable ASCII).
pub fn idempotency_key(kind: &str, id: &str) -> Result<String, Error> {
    let key = format!("payhost-{kind}-{id}");
    if key.len() <= MAX_IDEMPOTENCY_KEY && key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(key);
    }
    let digest = payhost_sdk::signing::digest(
        payhost_sdk::signing::DigestAlgorithm::Sha256,
        &[payhost_sdk::signing::Part::Text(key)],
    )
    .map_err(|e| Error::Other(format!("cannot derive an idempotency key: {e:?}")))?;
    Ok(format!("payhost-{kind}-sha256-{}", payhost_sdk::signing::to_hex(&digest)))
}

/// `POST {base}{path}` with a form body and an idempotency key.
pub fn post(config: &Config, path: &str, form: &Form, idempotency_key: &str) -> Result<Answer, Error> {
    let mut headers = vec![
        ("content-type".to_string(), "application/x-www-form-urlencoded".to_string()),
        ("idempotency-key".to_string(), idempotency_key.to_string()),
    ];
    headers.extend(version_header(config));
    send(config, "POST", path, headers, form.encode().into_bytes())
}

/// `GET {base}{path}`.
pub fn get(config: &Config, path: &str) -> Result<Answer, Error> {
    send(config, "GET", path, version_header(config), Vec::new())
}

/// Parses a 2xx body as the Stripe object `T`.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Other(format!("unreadable {what} from stripe: {e}")))
}

fn version_header(config: &Config) -> Vec<(String, String)> {
    config
        .api_version
        .iter()
        .map(|v| ("stripe-version".to_string(), v.clone()))
        .collect()
}

fn send(config: &Config, method: &str, path: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Result<Answer, Error> {
    let request = outbound::Request {
        method: method.into(),
        url: format!("{}{path}", config.api_base_url),
        headers,
        secret_headers: vec![("authorization".into(), format!("Bearer {{{SECRET_KEY}}}"))],
        secret_query: vec![],
        body,
        timeout_ms: None,
    };
    let response = outbound::send(&request).map_err(|e| match e {
        outbound::Error::Denied(host) => Error::Other(format!(
            "outbound call to {host} denied: add it to this instance's allowed_hosts"
        )),
        outbound::Error::Timeout => Error::Unavailable("stripe did not answer in time".into()),
        outbound::Error::Connect(detail) => Error::Unavailable(format!("cannot reach stripe: {detail}")),
        outbound::Error::TooLarge(limit) => Error::Other(format!("stripe's answer exceeded {limit} bytes")),
        outbound::Error::InvalidRequest(detail) => Error::Other(format!("stripe request not sent: {detail}")),
    })?;
    payhost_sdk::info(
        "stripe api call",
        &[("method", method), ("path", path), ("status", &response.status.to_string())],
    );
    Ok(read_answer(response.status, response.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_encode_bracketed_keys_in_order() {
        let mut form = Form::new();
        form.add("mode", "payment").add("metadata[reference]", "a b&c").add("line_items[0][quantity]", "1");
        assert_eq!(
            form.encode(),
            "mode=payment&metadata%5Breference%5D=a+b%26c&line_items%5B0%5D%5Bquantity%5D=1"
        );
        assert_eq!(form.get("metadata[reference]"), Some("a b&c"));
    }

    #[test]
    fn reads_success_and_error_answers() {
        assert_eq!(read_answer(200, b"{}".to_vec()).unwrap(), b"{}".to_vec());
        let body = br#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such checkout.session: 'cs_x'"}}"#;
        let failure = read_answer(404, body.to_vec()).unwrap_err();
        assert_eq!(failure.error.code.as_deref(), Some("resource_missing"));
        assert!(matches!(failure.into_error(), Error::NotFound(m) if m.contains("No such checkout.session")));
        let garbled = read_answer(502, b"<html>".to_vec()).unwrap_err();
        assert!(matches!(garbled.into_error(), Error::Unavailable(m) if m.contains("502")));
    }

    #[test]
    fn error_statuses_map_to_what_the_caller_can_do() {
        let fail = |status| Failure { status, error: ApiError::default() }.into_error();
        assert!(matches!(fail(400), Error::Rejected(_)));
        assert!(matches!(fail(402), Error::Rejected(_)));
        assert!(matches!(fail(401), Error::Other(m) if m.contains("API key")));
        assert!(matches!(fail(403), Error::Other(_)));
        assert!(matches!(fail(404), Error::NotFound(_)));
        assert!(matches!(fail(409), Error::Unavailable(_)));
        assert!(matches!(fail(429), Error::Unavailable(_)));
        assert!(matches!(fail(503), Error::Unavailable(_)));
    }

    #[test]
    fn ids_safe_for_paths() {
        assert!(is_id("cs_test_a1B2"));
        assert!(is_id("pi_3MtwBwLkdIwHu7ix28a3tqPa"));
        assert!(!is_id(""));
        assert!(!is_id("pi_1/../../v1/refunds"));
        assert!(!is_id("pi_1?expand=x"));
    }

    #[test]
    fn short_idempotency_keys_are_readable() {
        assert_eq!(idempotency_key("checkout", "order-42").unwrap(), "payhost-checkout-order-42");
    }
}
