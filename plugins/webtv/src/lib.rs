//! WS.WebTV's "External Payment Processor" as a payhost plugin.
//!
//! WebTV sends the buyer here with a signed order; we take the payment (the buyer's
//! ledger balance, or a payment system's hosted page), set up the recurring profiles
//! the order asks for, and send the buyer back with a signed result. WebTV later asks
//! about or cancels profiles (`action=rp_status`, `action=rp_cancel`), and host timers
//! charge each active profile on its schedule.
//!
//! | route | what |
//! |---|---|
//! | `GET {mount}` (no `action`, or `action=pay`) | pay an order ([`pay`]) |
//! | `GET {mount}?action=rp_status` / `rp_cancel` | profile status / cancellation ([`rp_api`]) |
//! | `GET {mount}/return?ref=..&t=..` | the buyer back from a hosted payment page ([`checkout_return`]) |
//!
//! The flows use the host only through `payhost_sdk::Host` (see [`host`]), so they are
//! unit-tested natively against `payhost_sdk::testing::FakeHost`.

pub mod amount;
pub mod charge_run;
pub mod checkout_return;
pub mod config;
pub mod due;
pub mod events;
pub mod host;
pub mod ids;
pub mod items;
pub mod order;
pub mod outcome;
pub mod pages;
pub mod pay;
pub mod payment;
pub mod profile;
pub mod recurring;
pub mod redirect;
pub mod request;
pub mod rp_api;
pub mod schedule;
pub mod settle;
pub mod signature;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod flow_tests;

use config::Config;
use host::Host;
use payhost_sdk::WasmHost;
use payhost_sdk::log::Level;
use payhost_sdk::payments::PaymentEvent;
use payhost_sdk::types::{PluginInfo, SettingSpec};
use payhost_sdk::{Request, Response};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct WebTv;

impl payhost_sdk::Plugin for WebTv {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "webtv".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "WS.WebTV external payment processor: signed one-time and recurring payments".into(),
            secrets: vec![host::KEY_NAME.into()],
            hosts: vec![],
            host_settings: vec![],
            settings: config::SETTINGS
                .iter()
                .map(|(name, required, description)| SettingSpec {
                    name: (*name).into(),
                    required: *required,
                    description: (*description).into(),
                })
                .collect(),
        }
    }

    fn handle(req: Request) -> Result<Response, String> {
        handle(&WasmHost, &req)
    }
}

impl payhost_sdk::Events for WebTv {
    fn on_timer(name: String, _payload: Vec<u8>) -> Result<(), String> {
        let host = WasmHost;
        recurring::on_timer(&host, &Config::load(&host)?, &name)
    }

    fn on_payment_event(event: PaymentEvent) -> Result<(), String> {
        let host = WasmHost;
        events::on_payment_event(&host, &Config::load(&host)?, event)
    }
}

/// Routes one request.
pub fn handle(host: &dyn Host, req: &Request) -> Result<Response, String> {
    let cfg = match Config::load(host) {
        Ok(cfg) => cfg,
        Err(e) => {
            host.log(Level::Error, "webtv is misconfigured", &[("problem", &e)]);
            return Ok(pages::error(503, "Payments are unavailable", "The payment processor is not configured.", &req.id));
        }
    };
    if !matches!(req.method.as_str(), "GET" | "POST") {
        return Ok(pages::error(405, "Method not allowed", "Use GET.", &req.id));
    }
    let params = req.params();
    match req.path.trim_end_matches('/') {
        "" => match params.get("action").unwrap_or("") {
            "" | "pay" => pay::handle(host, &cfg, &params, &req.id),
            "rp_status" => rp_api::status(host, &params),
            "rp_cancel" => rp_api::cancel(host, &params),
            other => Ok(pages::error(400, "Unknown action", &format!("Action `{other}` is not supported."), &req.id)),
        },
        "/return" => checkout_return::handle(host, &cfg, &params, &req.id),
        _ => Ok(pages::error(404, "Not found", "There is nothing at this address.", &req.id)),
    }
}

// Only the wasm component exports the WIT functions: their symbol names (`pkg:ns/iface#fn`)
// break native linkers, and native builds exist for the unit tests.
#[cfg(target_arch = "wasm32")]
payhost_sdk::export_provider!(WebTv);
