//! Stripe as a payhost payment system, following Stripe's public REST API.
//!
//! | processor call | Stripe |
//! |---|---|
//! | `start-checkout` | `POST /v1/checkout/sessions` (hosted page; buyer goes to `session.url`) |
//! | `parse-webhook` | `Stripe-Signature` check, then `checkout.session.*` / `payment_intent.*` |
//! | `charge` | `POST /v1/payment_intents` with `off_session=true&confirm=true` |
//! | `lookup` | `GET /v1/checkout/sessions/{cs_}` or `GET /v1/payment_intents/{pi_}` |
//! | `refund` | `POST /v1/refunds` |
//!
//! Secrets (`[plugins.secrets]`): `stripe_secret_key` (sent by the host as
//! `Authorization: Bearer ...` through a secret header; it never enters wasm) and
//! `stripe_webhook_secret` (the endpoint's `whsec_...`, used only inside host HMAC).
//! `describe` lists no hosts because operators point `api_base_url` elsewhere in tests;
//! `allowed_hosts` must include the API host (`api.stripe.com` in production).
//! The webhook endpoint to register with Stripe is any path under the instance's mount
//! (e.g. `https://pay.example.com/stripe/webhook`), subscribed to
//! `checkout.session.completed`, `checkout.session.async_payment_succeeded`,
//! `checkout.session.async_payment_failed`, `checkout.session.expired`,
//! `payment_intent.succeeded` and `payment_intent.payment_failed`.
//!
//! ```toml
//! [[plugins]]
//! name = "stripe"
//! component = "plugins/payhost_plugin_stripe.wasm"
//! mount = "/stripe"
//! allowed_hosts = ["api.stripe.com"]
//! [plugins.secrets]
//! stripe_secret_key = { env = "STRIPE_SECRET_KEY" }
//! stripe_webhook_secret = { env = "STRIPE_WEBHOOK_SECRET" }
//! ```
//!
//! A saved card is the token `cus_...:pm_...` (Stripe customer and payment method).
// Native builds (unit tests) do not export the component, so its entry points look unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

// The parsers of untrusted bytes are `pub` for the fuzz targets in `fuzz/`.
pub mod amount;
mod api;
mod charge;
mod checkout;
mod config;
pub mod events;
mod lookup;
pub mod objects;
mod refund;
mod retrieve;
pub mod signature;
mod webhook;

use payhost_sdk::bindings::payment_system::exports::payhost::gateway::processor::{Guest, Webhook};
use payhost_sdk::payments::{ChargeRequest, Checkout, CheckoutRequest, Error, PaymentEvent, RefundResult};
use payhost_sdk::types::PluginInfo;
use payhost_sdk::Request;

struct Stripe;

impl Guest for Stripe {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "stripe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Stripe Checkout, signed webhooks, off-session charges and refunds".into(),
            secrets: vec![api::SECRET_KEY.into(), webhook::WEBHOOK_SECRET.into()],
            hosts: vec![],
            host_settings: vec![config::API_BASE_URL.into()],
            settings: config::Config::specs(),
        }
    }

    fn start_checkout(req: CheckoutRequest) -> Result<Checkout, Error> {
        checkout::start(req)
    }

    fn parse_webhook(req: Request) -> Result<Webhook, Error> {
        webhook::parse(req)
    }

    fn lookup_payment(external_id: String) -> Result<PaymentEvent, Error> {
        lookup::lookup(&external_id)
    }

    fn charge(req: ChargeRequest) -> Result<PaymentEvent, Error> {
        charge::charge(req)
    }

    fn refund(external_id: String, amount: Option<String>) -> Result<RefundResult, Error> {
        refund::refund(&external_id, amount)
    }
}

// Components export on wasm only; native builds run the unit tests.
#[cfg(target_arch = "wasm32")]
payhost_sdk::export_payment_system!(Stripe);
