//! Netflix partner payments: the partner (MVPD) backend as a payhost plugin.
//!
//! It gets customers activated on Netflix (Token API), reports their subscription
//! (Status API), and bills Netflix's monthly charge events from the operator's ledger
//! (ReadCharge / SendCharge) in a loop driven by host timers. Every Netflix call is
//! signed by the host with the partner key, which never enters the plugin.
//!
//! Pure pieces (time stamp, string to sign, wire formats, decisions, schedule) are in
//! their own modules and tested natively; the rest talks to host capabilities.

// Natively (unit tests) nothing is exported, so the host-facing code looks unused there.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

// The parsers of untrusted bytes are `pub` for the fuzz targets in `fuzz/`.
pub mod activation;
mod auth;
pub mod authtime;
mod charge_loop;
mod client;
mod config;
mod decision;
pub mod event;
mod poller;
mod record;
mod repo;
mod routes;
pub mod schedule;
mod signature;
pub mod wire;

use payhost_sdk::types::PluginInfo;
use payhost_sdk::{payments, Request, Response};

struct NetflixPlugin;

impl payhost_sdk::Plugin for NetflixPlugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "netflix".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Netflix partner payments: activation links, subscription status, monthly charges from the ledger"
                .into(),
            secrets: vec![config::PARTNER_KEY_SECRET.into(), config::ADMIN_TOKEN_SECRET.into()],
            // The Netflix host comes from `api_base_url`; the operator grants it.
            hosts: vec![],
            host_settings: vec!["api_base_url".into()],
            settings: config::setting_specs(),
        }
    }

    fn handle(req: Request) -> Result<Response, String> {
        // The charge loop must run even if the host never fires a start timer: any request
        // makes sure a poll is scheduled. A store outage must not take the routes down.
        if let Err(e) = poller::ensure_running() {
            payhost_sdk::warn("netflix charge loop could not be scheduled", &[("problem", &e)]);
        }
        Ok(routes::dispatch(&req))
    }
}

impl payhost_sdk::Events for NetflixPlugin {
    fn on_timer(name: String, _payload: Vec<u8>) -> Result<(), String> {
        match name.as_str() {
            poller::POLL_TIMER => poller::on_poll(),
            poller::START_TIMER => poller::ensure_running(),
            other => {
                payhost_sdk::warn("netflix plugin ignores an unknown timer", &[("timer", other)]);
                Ok(())
            }
        }
    }

    fn on_payment_event(event: payments::PaymentEvent) -> Result<(), String> {
        // Charges go through the ledger directly; this plugin starts no checkouts.
        payhost_sdk::warn("netflix plugin got a payment event it never asked for", &[("reference", &event.reference)]);
        Ok(())
    }
}

// Components export on wasm only; native builds run the unit tests.
#[cfg(target_arch = "wasm32")]
payhost_sdk::export_provider!(NetflixPlugin);
