//! Platform24 (24часаТВ) "48 hours" provider billing with card payments.
//!
//! Platform24 calls the provider's billing for every purchase; this plugin is that
//! billing, on top of the host's subscriber ledger (the account is the provider uid,
//! optionally prefixed). Routes under the instance's mount:
//!
//! | route | job |
//! |---|---|
//! | `/auth` | match a platform user to a billing account |
//! | `/packet`, `/packets` | debit all requested packets at once (`{"status":1}` / `-1` / `< -1`) |
//! | `/packet`, `/packets` | debit all requested packets at once and connect them through the provider API (`{"status":1}` / `-1` / `< -1`) |
//! | `/delete_subscription` | stop the subscription's renewal on the platform |
//! | `/balance` | `{"balance":1234.56}` |
//! | `payment_form_path` setting (`/payment_form`) | signed request for a card payment page |
//! | `/admin/...` | operator routes (bearer token): register, look up, block a subscriber |
//!
//! A card payment's outcome arrives at `on_payment_event`, which credits the account
//! and sends Platform24 the signed confirm or fail callback as a durable delivery.
//! Timers: `purchase/…` resolves a purchase its request left unfinished, `renew/…`
//! charges a renewal, `chore/…` retries a platform follow-up, `push/…` sends the
//! balance, and `start` resolves what a stopped host left open.
//! Pure logic (parsing, answers, signatures' strings, dedup decisions, packet rules,
//! purchase resolution, renewal steps) lives in modules that do not touch host
//! imports, so it is unit-tested natively.
// Native builds (unit tests) do not export the component, so its entry points look unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

// The parsers of untrusted bytes are `pub` for the fuzz targets in `fuzz/`.
mod admin;
pub mod amount;
mod answer;
pub mod api;
mod balance_push;
mod billing;
mod callbacks;
mod catalog;
mod config;
mod dedup;
mod followups;
mod payment_form;
mod purchase;
mod records;
mod renewal;
mod rules;
mod security;
mod subscriptions;
pub mod time;
mod users;
pub mod wire;

use answer::Failure;
use config::Config;
use payhost_sdk::payments::PaymentEvent;
use payhost_sdk::types::PluginInfo;
use payhost_sdk::{Request, Response};

struct Platform24;

/// The route part of a path: no trailing `/`, lower case.
fn route(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/".into() } else { trimmed.to_ascii_lowercase() }
}

impl payhost_sdk::Plugin for Platform24 {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "platform24".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Platform24 \"48 hours\" provider billing with card payments".into(),
            secrets: vec![security::SECRET.into(), api::TOKEN_SECRET.into(), admin::ADMIN_TOKEN_SECRET.into()],
            // Platform24's hosts come from `platform_url` and `api_base_url`; the operator grants them.
            hosts: vec![],
            host_settings: vec!["platform_url".into(), "api_base_url".into()],
            settings: config::specs(),
        }
    }

    fn handle(req: Request) -> Result<Response, String> {
        let path = route(&req.path);
        // The query can hold a SecurityKey: only the path is logged.
        payhost_sdk::info(
            "platform24 request",
            &[("request_id", &req.id), ("method", &req.method), ("path", &path), ("remote", &req.remote_addr)],
        );
        let config = match Config::load() {
            Ok(c) => c,
            Err(e) => {
                payhost_sdk::error("platform24 is misconfigured", &[("error", &e)]);
                return Ok(Response::raw_json(500, answer::failure(&Failure::Unavailable)));
            }
        };
        let segments: Vec<String> = req.path.trim_matches('/').split('/').map(payhost_sdk::pct::decode).collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let response = if let ["admin", rest @ ..] = segments.as_slice() {
            admin::dispatch(&config, &req, rest)
        } else if !matches!(req.method.as_str(), "GET" | "POST") {
            Response::raw_json(405, answer::form_error("Метод не поддерживается, ожидается POST"))
        } else if path == route(&config.payment_form_path) {
            payment_form::handle(&config, &req)
        } else {
            match path.as_str() {
                "/auth" => billing::auth(&config, &req),
                "/packet" | "/packets" => billing::purchase(&config, &req),
                "/delete_subscription" => billing::cancel(&config, &req),
                "/balance" => billing::balance(&config, &req),
                _ => Response::raw_json(404, answer::form_error("Неизвестный запрос")),
            }
        };
        payhost_sdk::info(
            "platform24 answer",
            &[("request_id", &req.id), ("path", &path), ("http_status", &response.status.to_string())],
        );
        Ok(response)
    }
}

impl payhost_sdk::Events for Platform24 {
    fn on_timer(name: String, payload: Vec<u8>) -> Result<(), String> {
        let config = Config::load()?;
        let key = String::from_utf8_lossy(&payload);
        if name == "start" {
            purchase::recovery::on_start(&config)
        } else if name.starts_with(purchase::store::TIMER_PREFIX) {
            purchase::recovery::on_timer(&config, &key)
        } else if name.starts_with(renewal::TIMER_PREFIX) {
            renewal::on_timer(&config, &payload)
        } else if name.starts_with(followups::TIMER_PREFIX) {
            followups::on_timer(&config, &payload)
        } else if name.starts_with(balance_push::TIMER_PREFIX) {
            balance_push::on_timer(&config, &payload)
        } else {
            // Acknowledged so it does not retry forever.
            payhost_sdk::warn("platform24 ignored an unknown timer", &[("timer", &name)]);
            Ok(())
        }
    }

    fn on_payment_event(event: PaymentEvent) -> Result<(), String> {
        callbacks::on_payment_event(event)
    }
}

// Components export on wasm only; native builds run the unit tests.
#[cfg(target_arch = "wasm32")]
payhost_sdk::export_provider!(Platform24);

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn routes_ignore_trailing_slash_and_case() {
        assert_eq!(route("/packets/"), "/packets");
        assert_eq!(route("/PACKET"), "/packet");
        assert_eq!(route("/"), "/");
        assert_eq!(route(""), "/");
    }
}
