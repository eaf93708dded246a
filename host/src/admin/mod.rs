//! The admin API (JSON, bearer token, loopback by default): plugin instances and their
//! versions, reloads, the ledger, durable jobs and their control, the audit trail, the
//! janitor's view, metrics, readiness and the manual clock in rehearsals. Reloads and
//! rollbacks are carried out by `crate::live`; this module only speaks HTTP.
//!
//! The same listener serves the browser console under `/console/` (see `console`),
//! whose calls reach these routes through a sign-in session instead of the token.
//!
//! Every answer carries `x-request-id` (the client's own, when it sent a usable one);
//! actions that move money or change what runs are appended to the audit trail with it.

pub mod accounts;
pub mod answer;
pub mod audit;
mod bearer;
pub mod control;
pub mod in_flight;
pub mod janitor;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod plugins;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub use answer::{ok, query_limit, query_param, AdminError, Answer};

use in_flight::InFlightKeys;

use crate::live::LiveOps;
use crate::net::ConnectionSettings;
use crate::console::{self, Console, Gate};
use crate::http_util::{json_response, read_body, Body};
use crate::storage::{JobAction, NewAuditEntry};

/// What every admin request reaches: the live operations, the bearer token and the
/// console's sign-in sessions.
struct Admin {
    live: Arc<LiveOps>,
    token: String,
    console: Console,
    keys: InFlightKeys,
}

pub async fn serve_admin(listener: TcpListener, live: Arc<LiveOps>, token: String, shutdown: tokio::sync::watch::Receiver<bool>) {
    let settings = ConnectionSettings::from_config(&live.runtime.config.load().runtime);
    let app = Arc::new(Admin { live, token, console: Console::new(), keys: InFlightKeys::default() });
    crate::net::serve(listener, settings, shutdown, move |req, remote| {
        let app = app.clone();
        async move { handle(app, req, &remote).await }
    })
    .await;
}

/// The client's `x-request-id` when it is short and plain, so a console can follow its
/// own ids through the audit trail; otherwise a fresh one.
fn request_id(app: &LiveOps, req: &Request<Incoming>) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
        .map(str::to_string)
        .unwrap_or_else(|| app.runtime.next_request_id())
}

async fn handle(admin: Arc<Admin>, req: Request<Incoming>, remote: &str) -> Response<Body> {
    let request_id = request_id(&admin.live, &req);
    if let Some(rest) = console::rest_of_path(req.uri().path()).map(str::to_string) {
        let response = match admin.console.gate(req.method(), &rest, req.headers()) {
            Gate::Answer(resp) => resp,
            Gate::SignIn => match read_body(req.into_body(), 64 << 10, body_timeout(&admin.live)).await {
                Ok(body) => admin.console.sign_in(&admin.token, &body),
                Err(e) => console::secure(e.response(&request_id)),
            },
            Gate::Api(path) => console::secure(answer(&admin, &path, req, remote, &request_id).await),
        };
        return with_request_id(response, &request_id);
    }
    let authorization = req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let authorized = bearer::authorizes(authorization, &admin.token);
    if !authorized {
        let (status, value) = AdminError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token").answer();
        return with_request_id(json_response(status, &value), &request_id);
    }
    let path = req.uri().path().to_string();
    with_request_id(answer(&admin, &path, req, remote, &request_id).await, &request_id)
}

/// Routes an authorized admin call for `path` (the console's calls arrive here with the
/// path below `/console/api`), and appends what it did to the audit trail.
async fn answer(admin: &Admin, path: &str, req: Request<Incoming>, remote: &str, request_id: &str) -> Response<Body> {
    let app = &admin.live;
    if req.method() == Method::GET && path == "/metrics" {
        return metrics::scrape(&app.runtime.services).await;
    }
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let (status, value) = match read_body(req.into_body(), 16 << 20, body_timeout(app)).await {
        Ok(body) => {
            let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
            let (status, mut value) = route(app, &admin.keys, &method, &segments, &query, &body).await;
            if status.is_server_error() {
                // The operator reads the cause in the log under this id; the answer
                // carries the id to quote.
                tracing::error!(request = %request_id, %method, path, error = %value.get("error").and_then(serde_json::Value::as_str).unwrap_or_default(), "admin call failed");
                if let Some(fields) = value.as_object_mut() {
                    fields.insert("request_id".into(), json!(request_id));
                }
            }
            if let Some((kind, target)) = audit::classify(&method, &segments) {
                let entry = NewAuditEntry {
                    at: app.runtime.services.clock.now_millis(),
                    kind: kind.to_string(),
                    source: remote.to_string(),
                    request_id: request_id.to_string(),
                    target,
                    request: audit::asked(&method, path, &query, &body),
                    outcome: audit::outcome(status).to_string(),
                    status: status.as_u16(),
                    result: value.clone(),
                };
                audit::append(app.runtime.services.storage.as_ref(), entry).await;
            }
            (status, value)
        }
        Err(e) => return e.response(request_id),
    };
    json_response(status, &value)
}

fn body_timeout(app: &LiveOps) -> std::time::Duration {
    std::time::Duration::from_millis(app.runtime.config.load().runtime.body_read_timeout_ms)
}

fn with_request_id(mut response: Response<Body>, request_id: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn route(app: &LiveOps, keys: &InFlightKeys, method: &Method, segments: &[&str], query: &str, body: &[u8]) -> Answer {
    let services = &app.runtime.services;
    match segments {
        ["health"] => (StatusCode::OK, json!({ "status": "ok" })),
        ["openapi.json"] if method == Method::GET => (StatusCode::OK, openapi::document()),
        ["plugins", ..] => plugins::handle(app, method, &segments[1..], body).await,
        ["config", "reload"] if method == Method::POST => plugins::reload_config(app, "admin config reload").await,
        ["accounts", rest @ ..] => accounts::handle(&services.ledger, keys, method, rest, query, body).await,
        [kind @ ("deliveries" | "events" | "timers"), id, action @ ("retry" | "cancel")] if method == Method::POST => {
            let action = if *action == "retry" { JobAction::RetryNow } else { JobAction::Cancel };
            control::control(services, kind, id, action, body).await
        }
        [kind @ ("deliveries" | "events" | "timers"), ..] => jobs::handle(services.storage.as_ref(), method, kind, &segments[1..], query).await,
        ["audit"] if method == Method::GET => audit::list(services.storage.as_ref(), query).await,
        ["janitor"] if method == Method::GET => {
            let settings = app.runtime.config.load_full().janitor.clone();
            janitor::state(services.storage.as_ref(), &settings, query).await
        }
        ["readyz"] if method == Method::GET => {
            let (status, readiness) = crate::health::readiness(&app.runtime).await;
            (status, serde_json::to_value(readiness).unwrap_or_default())
        }
        ["clock"] if method == Method::GET => {
            let clock = &services.clock;
            (StatusCode::OK, json!({ "now_ms": clock.now_millis(), "manual": clock.is_manual() }))
        }
        ["clock", "advance"] if method == Method::POST => advance_clock(app, body),
        _ => AdminError::not_found("no such admin route").answer(),
    }
}

fn advance_clock(app: &LiveOps, body: &[u8]) -> Answer {
    let seconds = serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("seconds").and_then(Value::as_i64));
    // Ten years at most: a larger move would take the clock past what timestamps hold.
    let Some(seconds) = seconds.filter(|s| *s <= 315_360_000) else {
        return AdminError::bad_request("body must be {\"seconds\": N} with N at most 315360000 (ten years)").answer();
    };
    match app.runtime.services.clock.advance(seconds.saturating_mul(1000)) {
        Ok(now_ms) => {
            app.runtime.services.wake_jobs();
            (StatusCode::OK, json!({ "now_ms": now_ms }))
        }
        Err(msg) => AdminError::conflict("conflict", &msg).answer(),
    }
}
