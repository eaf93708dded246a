//! Calls to Platform24's provider API (`api_base_url`), the billing's side of the
//! "48 hours" scheme: users, the packet catalog and subscriptions.
//!
//! The operator's provider token travels as the `token` query parameter, filled in by
//! the host from the `platform24_api_token` secret: the plugin never sees it and no
//! log shows it. Every call has a deadline: the purchase path gives each call what is
//! left of the answer budget (Platform24 waits about 5 s), background work gives each
//! call `api_timeout_ms`.

pub mod wire;

use crate::config::Config;
use crate::time::now_ms;
use payhost_sdk::outbound;
use std::fmt;

/// Name of the secret holding the provider API token.
pub const TOKEN_SECRET: &str = "platform24_api_token";

/// Why a provider API call did not give a usable 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The platform refused the request (4xx other than 429): it was not applied.
    Refused { status: u16, message: String },
    /// The platform failed (5xx or 429): it may or may not have applied it.
    Failed { status: u16, message: String },
    /// No answer within the deadline (it may have been applied).
    Timeout,
    /// Not sent: no time left in the answer budget.
    NoTime,
    /// Connection failure, or the host refused the destination or the request.
    Unreachable(String),
    /// A 2xx answer we cannot read.
    BadAnswer(String),
}

impl ApiError {
    /// Whether the platform certainly did not apply the call.
    pub fn not_applied(&self) -> bool {
        matches!(self, ApiError::Refused { .. } | ApiError::NoTime)
    }

    /// A 404: the thing is gone on the platform.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Refused { status: 404, .. })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Refused { status, message } => write!(f, "Platform24 refused the call ({status}): {message}"),
            ApiError::Failed { status, message } => write!(f, "Platform24 failed ({status}): {message}"),
            ApiError::Timeout => f.write_str("Platform24 did not answer in time"),
            ApiError::NoTime => f.write_str("no time left to call Platform24 within its answer limit"),
            ApiError::Unreachable(m) => write!(f, "Platform24 unreachable: {m}"),
            ApiError::BadAnswer(m) => write!(f, "Platform24 answer unreadable: {m}"),
        }
    }
}

/// Below this many milliseconds a call is not worth starting.
const MIN_CALL_MS: i64 = 100;

/// How long the next call may take: the per-call cap, cut to what is left before the
/// deadline; `None` when too little is left.
pub fn call_timeout(remaining_ms: i64, cap_ms: u32) -> Option<u32> {
    (remaining_ms >= MIN_CALL_MS).then(|| remaining_ms.min(i64::from(cap_ms)) as u32)
}

/// A client with one deadline for all its calls (`None`: each call gets the cap).
pub struct Api<'a> {
    config: &'a Config,
    deadline_ms: Option<i64>,
}

fn encode_segment(segment: &str) -> String {
    payhost_sdk::pct::encode(segment)
}

impl<'a> Api<'a> {
    /// For background work (timers, operator routes).
    pub fn background(config: &'a Config) -> Self {
        Self { config, deadline_ms: None }
    }

    /// For Platform24's requests: every call ends by `deadline_ms` (host clock).
    pub fn until(config: &'a Config, deadline_ms: i64) -> Self {
        Self { config, deadline_ms: Some(deadline_ms) }
    }

    /// Milliseconds left before the deadline (`i64::MAX` without one).
    pub fn remaining_ms(&self) -> i64 {
        self.deadline_ms.map_or(i64::MAX, |d| d - now_ms())
    }

    fn call(&self, method: &str, path: &str, query: &[(&str, &str)], body: Option<Vec<u8>>) -> Result<Vec<u8>, ApiError> {
        let timeout = call_timeout(self.remaining_ms(), self.config.api_timeout_ms).ok_or(ApiError::NoTime)?;
        let mut url = format!("{}{path}", self.config.api_base_url);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&payhost_sdk::query::encode(query));
        }
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        let request = outbound::Request {
            method: method.into(),
            url,
            headers,
            secret_headers: vec![],
            // The host appends `token=<platform24_api_token>`; the plugin never sees it.
            secret_query: vec![("token".into(), format!("{{{TOKEN_SECRET}}}"))],
            body: body.unwrap_or_default(),
            timeout_ms: Some(timeout),
        };
        let started = now_ms();
        let result = outbound::send(&request);
        let elapsed = (now_ms() - started).to_string();
        // The URL's query holds no secret (the host adds the token), but the path is enough.
        let outcome = match &result {
            Ok(r) => r.status.to_string(),
            Err(e) => format!("{e:?}"),
        };
        payhost_sdk::info(
            "platform24 api call",
            &[("method", method), ("path", path), ("outcome", &outcome), ("elapsed_ms", &elapsed)],
        );
        let response = result.map_err(|e| match e {
            outbound::Error::Timeout => ApiError::Timeout,
            outbound::Error::Denied(host) => ApiError::Unreachable(format!("host {host} is not in allowed_hosts")),
            outbound::Error::Connect(m) | outbound::Error::InvalidRequest(m) => ApiError::Unreachable(m),
            outbound::Error::TooLarge(n) => ApiError::BadAnswer(format!("answer larger than {n} bytes")),
        })?;
        match response.status {
            200..=299 => Ok(response.body),
            429 | 500..=599 => Err(ApiError::Failed { status: response.status, message: wire::error_message(&response.body) }),
            status => Err(ApiError::Refused { status, message: wire::error_message(&response.body) }),
        }
    }

    fn json<T>(&self, method: &str, path: &str, query: &[(&str, &str)], body: Option<Vec<u8>>, read: fn(&[u8]) -> Result<T, String>) -> Result<T, ApiError> {
        let body = self.call(method, path, query, body)?;
        read(&body).map_err(ApiError::BadAnswer)
    }

    /// `GET /packets?includes=availables`
    pub fn catalog(&self) -> Result<Vec<wire::CatalogPacket>, ApiError> {
        self.json("GET", "/packets", &[("includes", "availables")], None, wire::catalog)
    }

    /// `GET /users/{id}/subscriptions?types=...`: the current, active and planned ones.
    pub fn subscriptions(&self, user: &str) -> Result<Vec<wire::PlatformSubscription>, ApiError> {
        let path = format!("/users/{}/subscriptions", encode_segment(user));
        self.json("GET", &path, &[("types", "active,current,planned")], None, wire::subscriptions)
    }

    /// `POST /users/{id}/subscriptions` with every packet at once.
    pub fn connect(&self, user: &str, entries: &[wire::ConnectEntry]) -> Result<Vec<wire::PlatformSubscription>, ApiError> {
        let path = format!("/users/{}/subscriptions", encode_segment(user));
        self.json("POST", &path, &[], Some(wire::connect_body(entries)), wire::subscriptions)
    }

    /// `PATCH /users/{id}/subscriptions/{sid}` `{"renew":false}`: stop auto-renewal.
    pub fn stop_renewal(&self, user: &str, subscription: &str) -> Result<(), ApiError> {
        let path = format!("/users/{}/subscriptions/{}", encode_segment(user), encode_segment(subscription));
        self.call("PATCH", &path, &[], Some(br#"{"renew":false}"#.to_vec())).map(|_| ())
    }

    /// `DELETE /users/{id}/subscriptions/{sid}`: end it (a 404 means it is gone already).
    pub fn end_subscription(&self, user: &str, subscription: &str) -> Result<(), ApiError> {
        let path = format!("/users/{}/subscriptions/{}", encode_segment(user), encode_segment(subscription));
        match self.call("DELETE", &path, &[], None) {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `GET /users?provider_uid=UID`
    pub fn find_user(&self, provider_uid: &str) -> Result<Option<wire::PlatformUser>, ApiError> {
        let users = self.json("GET", "/users", &[("provider_uid", provider_uid)], None, wire::users)?;
        Ok(users.into_iter().find(|u| u.provider_uid.as_deref().is_none_or(|p| p == provider_uid)))
    }

    /// `POST /users`
    pub fn create_user(&self, body: &serde_json::Value) -> Result<wire::PlatformUser, ApiError> {
        self.json("POST", "/users", &[], Some(body.to_string().into_bytes()), wire::user)
    }

    /// `PATCH /users/{id}` `{"is_active":false}`
    pub fn deactivate_user(&self, user: &str) -> Result<(), ApiError> {
        let path = format!("/users/{}", encode_segment(user));
        self.call("PATCH", &path, &[], Some(br#"{"is_active":false}"#.to_vec())).map(|_| ())
    }

    /// `POST /users/{id}/provider/account` `{"id":..,"amount":".."}`
    pub fn push_balance(&self, user: &str, id: &str, amount: &str) -> Result<(), ApiError> {
        let path = format!("/users/{}/provider/account", encode_segment(user));
        let body = serde_json::json!({ "id": id, "amount": amount }).to_string().into_bytes();
        self.call("POST", &path, &[], Some(body)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_gets_what_is_left_up_to_the_cap() {
        assert_eq!(call_timeout(i64::MAX, 1500), Some(1500));
        assert_eq!(call_timeout(900, 1500), Some(900));
        assert_eq!(call_timeout(99, 1500), None);
        assert_eq!(call_timeout(-5, 1500), None);
    }

    #[test]
    fn only_a_refusal_is_certainly_not_applied() {
        assert!(ApiError::Refused { status: 400, message: String::new() }.not_applied());
        assert!(ApiError::NoTime.not_applied());
        assert!(!ApiError::Timeout.not_applied());
        assert!(!ApiError::Failed { status: 500, message: String::new() }.not_applied());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("981"), "981");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
