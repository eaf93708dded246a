//! A provider plugin as a third party built it against `payhost:gateway@0.1.0`, with
//! bindings generated from the frozen `wit/since_v0.1.0/`. The contract-versions suite
//! serves it beside 0.2 plugins on one host; each route uses one 0.1 import, so every
//! adapted import and export is exercised:
//!
//! | route | 0.1 import |
//! |---|---|
//! | `GET /` | `settings` (and `describe` at load) |
//! | `POST /hmac?key=NAME` | `signing.hmac` over the body, hex |
//! | `POST /count/KEY` | `store.compare-and-swap` counter |
//! | `GET /fetch?url=URL&secret=NAME` | `http.send` with a `secret-headers` `x-key: {NAME}` |
//! | `POST /credit?account=&amount=&key=` | `ledger.credit` in RUB |
//! | `POST /timer?in=SECONDS` | `timers.schedule`; `GET /fired` shows what `on-timer` stored |
//! | `GET /now` | `clock.now` |
//! | `POST /charge?system=&reference=&amount=` | `checkout.charge` (RUB) |
//! | `POST /checkout?system=&reference=&amount=` | `checkout.start-checkout`; `GET /event?reference=` shows what `on-payment-event` stored |
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

wit_bindgen::generate!({
    world: "provider",
    path: "../../../wit/since_v0.1.0",
    generate_all,
});

use exports::payhost::gateway::events::Guest as Events;
use exports::payhost::gateway::plugin::Guest as Plugin;
use payhost::gateway::payments::PaymentEvent;
use payhost::gateway::types::{PluginInfo, Request, Response, SettingSpec};
use payhost::gateway::payments::{ChargeRequest, CheckoutRequest};
use payhost::gateway::{checkout, clock, http, ledger, log, settings, signing, store, timers};
use serde_json::json;

struct Legacy;

impl Plugin for Legacy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy".into(),
            version: "0.1.0".into(),
            description: "Built against payhost:gateway@0.1.0".into(),
            secrets: vec!["legacy_key".into()],
            hosts: vec![],
            settings: vec![SettingSpec { name: "greeting".into(), required: true, description: "Answered at GET /".into() }],
        }
    }

    fn handle(req: Request) -> Result<Response, String> {
        log::log(log::Level::Info, "legacy request", &[("path".into(), req.path.clone())]);
        let query: Vec<(String, String)> = req
            .query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%2F", "/")))
            .collect();
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        Ok(match (req.method.as_str(), segments.as_slice()) {
            ("GET", [""]) => json_answer(200, json!({ "contract": "0.1.0", "greeting": settings::get("greeting") })),
            ("POST", ["hmac"]) => {
                let key = param("key").ok_or("missing key")?;
                match signing::hmac(signing::HmacAlgorithm::Sha256, &key, &[signing::Part::Bytes(req.body.clone())]) {
                    Ok(mac) => json_answer(200, json!({ "hmac": signing::to_hex(&mac) })),
                    Err(e) => json_answer(403, json!({ "error": format!("{e:?}") })),
                }
            }
            ("POST", ["count", key]) => json_answer(200, json!({ "count": increment(key)? })),
            ("GET", ["fetch"]) => {
                let url = param("url").ok_or("missing url")?;
                let secret = param("secret").ok_or("missing secret")?;
                let request = http::Request {
                    method: "GET".into(),
                    url,
                    headers: vec![],
                    secret_headers: vec![("x-key".into(), format!("{{{secret}}}"))],
                    body: vec![],
                    timeout_ms: Some(5_000),
                };
                match http::send(&request) {
                    Ok(r) => json_answer(200, json!({ "status": r.status, "body": String::from_utf8_lossy(&r.body) })),
                    Err(e) => json_answer(502, json!({ "error": format!("{e:?}") })),
                }
            }
            ("POST", ["credit"]) => {
                let (account, amount, key) = (param("account").ok_or("account")?, param("amount").ok_or("amount")?, param("key").ok_or("key")?);
                ledger::open_account(&account, "RUB").map_err(|e| format!("{e:?}"))?;
                match ledger::credit(&key, &account, &amount, "RUB", "legacy credit") {
                    Ok(entry) => json_answer(200, json!({ "balance": entry.balance_after, "kind": format!("{:?}", entry.kind) })),
                    Err(e) => json_answer(409, json!({ "error": format!("{e:?}") })),
                }
            }
            ("POST", ["timer"]) => {
                let seconds: i64 = param("in").and_then(|s| s.parse().ok()).ok_or("in")?;
                let at = clock::Instant { seconds: clock::now().seconds + seconds, nanoseconds: 0 };
                timers::schedule("legacy", at, b"from 0.1").map_err(|e| format!("{e:?}"))?;
                json_answer(200, json!({ "at": at.seconds }))
            }
            ("GET", ["fired"]) => {
                let fired = store::get("fired").map_err(|e| format!("{e:?}"))?;
                json_answer(200, json!({ "fired": fired.map(|b| String::from_utf8_lossy(&b).into_owned()) }))
            }
            ("GET", ["now"]) => json_answer(200, json!({ "seconds": clock::now().seconds })),
            ("POST", ["charge"]) => {
                let (system, reference, amount) = (param("system").ok_or("system")?, param("reference").ok_or("reference")?, param("amount").ok_or("amount")?);
                let req = ChargeRequest {
                    amount,
                    currency: "RUB".into(),
                    description: "legacy charge".into(),
                    reference,
                    customer: "legacy-customer".into(),
                    saved_method: Some("card-1".into()),
                };
                match checkout::charge(&system, &req) {
                    Ok(e) => json_answer(200, json!({ "external_id": e.external_id, "status": format!("{:?}", e.status), "system": e.system })),
                    Err(e) => json_answer(502, json!({ "error": format!("{e:?}") })),
                }
            }
            ("POST", ["checkout"]) => {
                let (system, reference, amount) = (param("system").ok_or("system")?, param("reference").ok_or("reference")?, param("amount").ok_or("amount")?);
                let req = CheckoutRequest {
                    amount,
                    currency: "RUB".into(),
                    description: "legacy checkout".into(),
                    reference,
                    return_url: "https://shop.example/back".into(),
                    customer: "legacy-customer".into(),
                    save_card: false,
                };
                match checkout::start_checkout(&system, &req) {
                    Ok(c) => json_answer(200, json!({ "id": c.id, "redirect_url": c.redirect_url })),
                    Err(e) => json_answer(502, json!({ "error": format!("{e:?}") })),
                }
            }
            ("GET", ["event"]) => {
                let reference = param("reference").ok_or("reference")?;
                let stored = store::get(&format!("event/{reference}")).map_err(|e| format!("{e:?}"))?;
                json_answer(200, json!({ "external_id": stored.map(|b| String::from_utf8_lossy(&b).into_owned()) }))
            }
            _ => json_answer(404, json!({ "error": "no such route" })),
        })
    }
}

impl Events for Legacy {
    fn on_timer(name: String, payload: Vec<u8>) -> Result<(), String> {
        if name == "start" {
            return Ok(());
        }
        let text = format!("{name}: {}", String::from_utf8_lossy(&payload));
        store::set("fired", text.as_bytes()).map_err(|e| format!("{e:?}"))
    }

    fn on_payment_event(event: PaymentEvent) -> Result<(), String> {
        store::set(&format!("event/{}", event.reference), event.external_id.as_bytes()).map_err(|e| format!("{e:?}"))
    }
}

fn increment(key: &str) -> Result<u64, String> {
    let key = format!("count/{key}");
    loop {
        let current = store::get(&key).map_err(|e| format!("{e:?}"))?;
        let n = current.as_deref().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok()).unwrap_or(0u64) + 1;
        if store::compare_and_swap(&key, current.as_deref(), n.to_string().as_bytes()).map_err(|e| format!("{e:?}"))? {
            return Ok(n);
        }
    }
}

fn json_answer(status: u16, value: serde_json::Value) -> Response {
    Response { status, headers: vec![("content-type".into(), "application/json".into())], body: value.to_string().into_bytes() }
}

#[cfg(target_arch = "wasm32")]
export!(Legacy);
