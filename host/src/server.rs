//! The public listener: routes each request by mount prefix to its plugin instance
//! (provider `handle`, or a payment system's webhook) and turns plugin failures into
//! clean JSON errors with a request id.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::wit::types;
use crate::http_util::{error_response, read_body, Body};
use crate::runtime::instance::Pre;
use crate::net::ConnectionSettings;
use crate::runtime::Runtime;

/// Serves the plugins' mounts until `shutdown` turns true (see `net` for the connection
/// limits and the bounded graceful shutdown).
pub async fn serve_public(listener: TcpListener, runtime: Arc<Runtime>, shutdown: tokio::sync::watch::Receiver<bool>) {
    let settings = ConnectionSettings::from_config(&runtime.config.load().runtime);
    crate::net::serve(listener, settings, shutdown, move |req, remote| {
        let runtime = runtime.clone();
        async move { handle(runtime, req, &remote).await }
    })
    .await;
}

async fn handle(runtime: Arc<Runtime>, req: Request<Incoming>, remote: &str) -> Response<Body> {
    let request_id = runtime.next_request_id();
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        // Native liveness route for load balancers (and the benchmark's baseline).
        return crate::http_util::json_response(StatusCode::OK, &serde_json::json!({ "status": "ok" }));
    }
    if path == "/readyz" {
        let (status, readiness) = crate::health::readiness(&runtime).await;
        return crate::http_util::json_response(status, &serde_json::to_value(readiness).unwrap_or_default());
    }
    let table = runtime.registry.table();
    let Some((slot, rest)) = table.route(&path) else {
        return error_response(StatusCode::NOT_FOUND, "no plugin is mounted at this path", &request_id);
    };
    let rest = rest.to_string();
    slot.count_request();
    let instance = slot.current();
    let (max_body, body_timeout) = {
        let config = runtime.config.load();
        (config.runtime.max_request_bytes, Duration::from_millis(config.runtime.body_read_timeout_ms))
    };
    let (parts, body) = req.into_parts();
    let body = match read_body(body, max_body, body_timeout).await {
        Ok(b) => b,
        Err(e) => return e.response(&request_id),
    };
    let request = types::Request {
        id: request_id.clone(),
        method: parts.method.as_str().to_string(),
        path: rest,
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
        remote_addr: remote.to_string(),
    };
    let started = std::time::Instant::now();
    let span = tracing::debug_span!("request", instance = %slot.name, request = %request_id, method = %parts.method);
    let result = match instance.pre {
        Pre::Provider { .. } => runtime.call_handle(&instance, request).instrument(span).await,
        Pre::PaymentSystem(_) => {
            crate::payments::webhooks::handle(runtime.clone(), &runtime.services, instance.name(), request).instrument(span).await
        }
    };
    let elapsed_us = started.elapsed().as_micros() as u64;
    let response = match result {
        Ok(resp) => {
            tracing::debug!(instance = %slot.name, request = %request_id, status = resp.status, elapsed_us, "request");
            to_hyper(resp, &request_id)
        }
        Err(failure) => {
            slot.count_error();
            tracing::error!(
                instance = %slot.name,
                request = %request_id,
                kind = failure.kind(),
                cause = %failure,
                elapsed_us,
                "plugin call failed"
            );
            let status = StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error_response(status, failure.public_message(), &request_id);
            if let Some(seconds) = failure.retry_after() {
                response.headers_mut().insert(hyper::header::RETRY_AFTER, seconds.into());
            }
            response
        }
    };
    runtime.services.metrics.request(&slot.name, response.status().as_u16(), started.elapsed());
    response
}

/// Hop-by-hop headers belong to the host's connection, not to the plugin.
const HOP_BY_HOP: [&str; 6] = ["connection", "keep-alive", "transfer-encoding", "upgrade", "content-length", "te"];

fn to_hyper(resp: types::Response, request_id: &str) -> Response<Body> {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(status);
    for (name, value) in &resp.headers {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder = builder.header("x-request-id", request_id);
    builder.body(Full::new(Bytes::from(resp.body))).unwrap_or_else(|e| {
        tracing::error!(request = %request_id, error = %e, "plugin returned an invalid response head");
        error_response(StatusCode::INTERNAL_SERVER_ERROR, "the payment plugin returned an invalid response", request_id)
    })
}
