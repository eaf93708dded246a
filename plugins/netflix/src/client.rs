//! Signed calls to the Netflix MVPD API.
//!
//! Every call carries the authorization time, the customer header when the call is about
//! one customer, the header signature, and the payload signature over the exact body
//! bytes when there is a body. The host computes the HMACs with the partner key, which
//! never enters the plugin.

use crate::authtime::authorization_time;
use crate::config::{Config, PARTNER_KEY_SECRET};
use crate::signature::{
    authorization_value, header_string_to_sign, AUTHORIZATION_TIME, CUSTOMER_IDENTIFIER, HEADER_AUTHORIZATION,
    PAYLOAD_AUTHORIZATION,
};
use crate::wire::error_message;
use payhost_sdk::signing::{self, HmacAlgorithm, Part};
use payhost_sdk::{clock, outbound};
use std::fmt;

/// Why a Netflix call did not produce a 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetflixError {
    /// Netflix answered with a non-2xx status.
    Status { status: u16, message: String },
    /// No answer: connection, timeout, or the host refused the destination.
    Unreachable(String),
    /// We could not sign (the partner key is not granted or not decodable).
    Signing(String),
}

impl fmt::Display for NetflixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetflixError::Status { status, message } => write!(f, "Netflix answered {status}: {message}"),
            NetflixError::Unreachable(m) => write!(f, "Netflix unreachable: {m}"),
            NetflixError::Signing(m) => write!(f, "cannot sign the Netflix call: {m}"),
        }
    }
}

/// A 2xx Netflix answer.
pub struct Answer {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub struct Netflix<'a> {
    config: &'a Config,
}

impl<'a> Netflix<'a> {
    pub fn new(config: &'a Config) -> Self {
        Self { config }
    }

    pub fn get(&self, path: &str, customer: Option<&str>) -> Result<Answer, NetflixError> {
        self.call("GET", path, customer, None)
    }

    pub fn post(&self, path: &str, customer: Option<&str>, body: Vec<u8>) -> Result<Answer, NetflixError> {
        self.call("POST", path, customer, Some(body))
    }

    fn call(&self, method: &str, path: &str, customer: Option<&str>, body: Option<Vec<u8>>) -> Result<Answer, NetflixError> {
        let headers = self.signed_headers(customer, body.as_deref())?;
        let request = outbound::Request {
            method: method.into(),
            url: format!("{}{}", self.config.api_base_url, path),
            headers,
            secret_headers: Vec::new(),
            secret_query: vec![],
            body: body.unwrap_or_default(),
            timeout_ms: Some(self.config.http_timeout_ms),
        };
        let response = outbound::send(&request).map_err(|e| NetflixError::Unreachable(describe_http_error(e)))?;
        if (200..300).contains(&response.status) {
            Ok(Answer { headers: response.headers, body: response.body })
        } else {
            Err(NetflixError::Status { status: response.status, message: error_message(&response.body) })
        }
    }

    fn signed_headers(&self, customer: Option<&str>, body: Option<&[u8]>) -> Result<Vec<(String, String)>, NetflixError> {
        let time = authorization_time(clock::now().seconds, self.config.utc_offset);
        let mut headers = vec![(AUTHORIZATION_TIME.to_string(), time)];
        if let Some(customer) = customer {
            headers.push((CUSTOMER_IDENTIFIER.to_string(), customer.to_string()));
        }
        let header_signature = self.sign(Part::Text(header_string_to_sign(&headers)))?;
        headers.push((HEADER_AUTHORIZATION.into(), authorization_value(&self.config.credential, &header_signature)));
        if let Some(body) = body {
            let payload_signature = self.sign(Part::Bytes(body.to_vec()))?;
            headers.push((PAYLOAD_AUTHORIZATION.into(), authorization_value(&self.config.credential, &payload_signature)));
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        headers.push(("Accept".into(), "application/json".into()));
        Ok(headers)
    }

    fn sign(&self, message: Part) -> Result<String, NetflixError> {
        signing::hmac(HmacAlgorithm::Sha256, PARTNER_KEY_SECRET, &[message])
            .map(|mac| signing::base64_encode(&mac))
            .map_err(|e| match e {
                signing::Error::NotGranted(name) => NetflixError::Signing(format!("secret `{name}` is not granted")),
                signing::Error::InvalidEncoding(m) => NetflixError::Signing(format!("secret does not decode: {m}")),
            })
    }
}

fn describe_http_error(error: outbound::Error) -> String {
    match error {
        outbound::Error::Denied(host) => format!("host `{host}` is not in allowed_hosts"),
        outbound::Error::Timeout => "no answer in time".into(),
        outbound::Error::Connect(m) => format!("connection failed: {m}"),
        outbound::Error::TooLarge(limit) => format!("answer larger than {limit} bytes"),
        outbound::Error::InvalidRequest(m) => format!("invalid request: {m}"),
    }
}
