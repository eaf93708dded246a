//! Small hyper helpers shared by the public and admin listeners.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::{Response, StatusCode};
use std::time::Duration;

pub type Body = Full<Bytes>;

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body over {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive within {0} ms (runtime.body_read_timeout_ms)")]
    TimedOut(u128),
    #[error("could not read the request body: {0}")]
    Broken(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The answer to a request whose body failed. The connection is closed after it:
    /// the rest of that body may still be on its way.
    pub fn response(&self, request_id: &str) -> Response<Body> {
        let mut resp = error_response(self.status(), &self.to_string(), request_id);
        resp.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
        resp
    }
}

/// Reads a whole body, refusing more than `limit` bytes or taking longer than `within`
/// (a slow-loris body would otherwise hold the connection and its request for ever).
pub async fn read_body(body: Incoming, limit: usize, within: Duration) -> Result<Bytes, BodyError> {
    // A request that declares no body (most GETs) is answered without arming the read
    // timer: there is nothing to wait for.
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    // A declared length over the limit is refused before the body is polled: polling is
    // what makes hyper answer `Expect: 100-continue`, which would invite the client to
    // send what will be refused.
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge(limit));
    }
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(within, collect).await {
        Err(_) => Err(BodyError::TimedOut(within.as_millis())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge(limit)),
        Ok(Err(e)) => Err(BodyError::Broken(e.to_string())),
    }
}

pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// `{"error": message, "request_id": id}`.
pub fn error_response(status: StatusCode, message: &str, request_id: &str) -> Response<Body> {
    let mut resp = json_response(status, &serde_json::json!({ "error": message, "request_id": request_id }));
    if let Ok(v) = request_id.parse() {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
