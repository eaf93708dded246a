//! A plugin that misbehaves on purpose, so the host's fault isolation can be tested
//! with a real component: `GET /loop` never returns, `GET /alloc` grows memory without
//! bound, `GET /trap` panics; `GET /` answers normally, naming itself. `GET /env` and
//! `GET /file` show what the sandbox lets a plugin see of the host (nothing). It asks
//! for a secret and a host in `describe`, so config checks have something to refuse.
//! `GET /count` counts its calls in a static, so tests can see what a warm instance
//! (`limits.reuse`) keeps between requests and what a fresh one starts over with.
//! `POST /echo` repeats the body in a log line and in its error, as a careless plugin
//! would, so tests can see that no client text starts a log line of its own.
// Native builds (unit tests) do not export the component, so its entry points look unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

use payhost_sdk::payments::PaymentEvent;
use payhost_sdk::types::PluginInfo;
use payhost_sdk::{Request, Response};
use serde_json::json;

struct Faulty;

/// Calls of `/count` this instance has served; lives in linear memory.
static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl payhost_sdk::Plugin for Faulty {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "faulty".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "misbehaves on request (tests only)".into(),
            secrets: vec!["probe_key".into()],
            hosts: vec!["probe.invalid".into()],
            host_settings: vec![],
            settings: vec![],
        }
    }

    fn handle(req: Request) -> Result<Response, String> {
        match req.path.as_str() {
            "/" => Ok(Response::json(200, &json!({ "plugin": "faulty" }))),
            "/loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "/alloc" => {
                let mut chunks: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    chunk[0] = 1;
                    chunks.push(std::hint::black_box(chunk));
                }
            }
            "/count" => {
                let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                Ok(Response::json(200, &json!({ "count": count })))
            }
            "/trap" => panic!("deliberate trap"),
            "/error" => Err("deliberate plugin error".into()),
            // As a careless plugin would: what the client sent, in a log line and an error.
            "/echo" => {
                let said = String::from_utf8_lossy(&req.body).into_owned();
                payhost_sdk::warn(&format!("client sent {said}"), &[]);
                Err(format!("could not handle {said}"))
            }
            "/env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                Ok(Response::json(200, &json!({ "vars": vars, "args": std::env::args().count() })))
            }
            "/file" => {
                let outcome = match std::fs::read("/etc/hostname") {
                    Ok(_) => "read".to_string(),
                    Err(e) => format!("refused: {e}"),
                };
                Ok(Response::json(200, &json!({ "outcome": outcome })))
            }
            _ => Ok(Response::not_found()),
        }
    }
}

impl payhost_sdk::Events for Faulty {
    fn on_timer(_name: String, _payload: Vec<u8>) -> Result<(), String> {
        Ok(())
    }

    fn on_payment_event(_event: PaymentEvent) -> Result<(), String> {
        Ok(())
    }
}

// Components export on wasm only; native builds run the unit tests.
#[cfg(target_arch = "wasm32")]
payhost_sdk::export_provider!(Faulty);
