//! The admin API (JSON, bearer token, loopback by default): plugin instances and their
//! versions, reloads, the ledger, durable jobs, and the manual clock in rehearsals.
//! Reloads and rollbacks are carried out by `crate::live`; this module only speaks HTTP.
//! The same listener serves the browser console under `/console/` (see `console`),
//! whose calls reach these routes through a sign-in session instead of the token.

pub mod accounts;
pub mod jobs;
pub mod plugins;

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::live::LiveOps;
use crate::capabilities::signing::constant_time_eq;
use crate::console::{self, Console, Gate};
use crate::http_util::{json_response, read_body, Body};

/// What every admin request reaches: the live operations, the bearer token and the
/// console's sign-in sessions.
struct Admin {
    live: Arc<LiveOps>,
    token: String,
    console: Console,
}

pub async fn serve_admin(listener: TcpListener, live: Arc<LiveOps>, token: String, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let app = Arc::new(Admin { live, token, console: Console::new() });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(handle(app, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn handle(app: Arc<Admin>, req: Request<Incoming>) -> Response<Body> {
    if let Some(rest) = console::rest_of_path(req.uri().path()).map(str::to_string) {
        return match app.console.gate(req.method(), &rest, req.headers()) {
            Gate::Answer(resp) => resp,
            Gate::SignIn => match read_body(req.into_body(), 64 << 10).await {
                Ok(body) => app.console.sign_in(&app.token, &body),
                Err(msg) => console::secure(json_response(StatusCode::PAYLOAD_TOO_LARGE, &json!({ "error": msg }))),
            },
            Gate::Api(path) => console::secure(answer(&app, &path, req).await),
        };
    }
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| constant_time_eq(token.as_bytes(), app.token.as_bytes()));
    if !authorized {
        return json_response(StatusCode::UNAUTHORIZED, &json!({ "error": "missing or wrong bearer token" }));
    }
    let path = req.uri().path().to_string();
    answer(&app, &path, req).await
}

/// Routes an authorized admin call for `path`.
async fn answer(app: &Admin, path: &str, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match read_body(req.into_body(), 16 << 20).await {
        Ok(b) => b,
        Err(msg) => return json_response(StatusCode::PAYLOAD_TOO_LARGE, &json!({ "error": msg })),
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (status, value) = route(&app.live, &method, &segments, &query, &body).await;
    json_response(status, &value)
}

async fn route(app: &LiveOps, method: &Method, segments: &[&str], query: &str, body: &[u8]) -> (StatusCode, Value) {
    match segments {
        ["health"] => (StatusCode::OK, json!({ "status": "ok" })),
        ["plugins", ..] => plugins::handle(app, method, &segments[1..], body).await,
        ["config", "reload"] if method == Method::POST => plugins::reload_config(app, "admin config reload").await,
        ["accounts", rest @ ..] => accounts::handle(&app.runtime.services.ledger, method, rest, query, body).await,
        [kind @ ("deliveries" | "events" | "timers"), ..] => {
            jobs::handle(app.runtime.services.storage.as_ref(), method, kind, &segments[1..], query).await
        }
        ["clock"] if method == Method::GET => {
            let clock = &app.runtime.services.clock;
            (StatusCode::OK, json!({ "now_ms": clock.now_millis(), "manual": clock.is_manual() }))
        }
        ["clock", "advance"] if method == Method::POST => advance_clock(app, body),
        _ => (StatusCode::NOT_FOUND, json!({ "error": "no such admin route" })),
    }
}

fn advance_clock(app: &LiveOps, body: &[u8]) -> (StatusCode, Value) {
    let seconds = serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("seconds").and_then(Value::as_i64));
    let Some(seconds) = seconds else {
        return (StatusCode::BAD_REQUEST, json!({ "error": "body must be {\"seconds\": N}" }));
    };
    match app.runtime.services.clock.advance(seconds.saturating_mul(1000)) {
        Ok(now_ms) => {
            app.runtime.services.wake_jobs();
            (StatusCode::OK, json!({ "now_ms": now_ms }))
        }
        Err(msg) => (StatusCode::CONFLICT, json!({ "error": msg })),
    }
}
