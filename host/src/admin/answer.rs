//! How every admin route answers: a status and a JSON body; errors share one shape,
//! `{"error": "what went wrong and what to do", "code": "machine-readable"}` (some add
//! fields, e.g. the balance of a refused debit).

use hyper::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// A status and the JSON body to send.
pub type Answer = (StatusCode, Value);

/// 200 with `value` as the body.
pub fn ok<T: Serialize>(value: &T) -> Answer {
    match serde_json::to_value(value) {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => AdminError::internal(&format!("the answer could not be encoded: {e}")).answer(),
    }
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminError {
    #[serde(skip)]
    pub status: StatusCode,
    /// For people: what went wrong and what to do.
    pub error: String,
    /// For programs: `bad-request`, `not-found`, `conflict`, `busy`, `ended`, `backend`,
    /// `unauthorized`, or a ledger error (`insufficient-funds`, `idempotency-conflict`, …).
    pub code: String,
}

impl AdminError {
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        Self { status, error: message.to_string(), code: code.to_string() }
    }

    pub fn bad_request(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    pub fn not_found(message: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    pub fn conflict(code: &str, message: &str) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn backend(message: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "backend", message)
    }

    pub fn internal(message: &str) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn answer(&self) -> Answer {
        (self.status, json!({ "error": self.error, "code": self.code }))
    }
}

/// The first non-empty value of query parameter `name`.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.into_owned())
}

/// `limit=` as a whole number in `1..=max`, `default` when absent.
pub fn query_limit(query: &str, default: u32, max: u32) -> Result<u32, AdminError> {
    match form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "limit") {
        None => Ok(default),
        Some((_, v)) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(AdminError::bad_request(&format!("limit must be a whole number from 1 to {max}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_one_shape() {
        let (status, body) = AdminError::conflict("busy", "later").answer();
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body, json!({ "error": "later", "code": "busy" }));
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(query_limit("", 100, 1000).unwrap(), 100);
        assert_eq!(query_limit("limit=5", 100, 1000).unwrap(), 5);
        assert!(query_limit("limit=0", 100, 1000).is_err());
        assert!(query_limit("limit=1001", 100, 1000).is_err());
        assert_eq!(query_param("instance=p24&limit=3", "instance").as_deref(), Some("p24"));
        assert_eq!(query_param("instance=", "instance"), None);
    }
}
