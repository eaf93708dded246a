//! The `bindgen!` calls for the current WIT contract (`wit/`, `payhost:gateway@0.2`), and nothing else.
//!
//! Interfaces that do I/O (http, store, ledger, timers, deliveries, checkout) are async
//! on the host; pure ones (signing, clock, log, settings) are plain functions.

/// The `provider` world: payment-provider integrations.
pub mod provider {
    wasmtime::component::bindgen!({
        world: "provider",
        path: "../wit",
        imports: {
            "payhost:gateway/http": async,
            "payhost:gateway/store": async,
            "payhost:gateway/ledger": async,
            "payhost:gateway/timers": async,
            "payhost:gateway/deliveries": async,
            "payhost:gateway/checkout": async,
        },
        exports: { default: async },
    });
}

/// The `payment-system` world: card payment systems, sharing the provider's imports.
pub mod payment_system {
    wasmtime::component::bindgen!({
        world: "payment-system",
        path: "../wit",
        exports: { default: async },
        with: {
            "payhost:gateway/types": super::provider::payhost::gateway::types,
            "payhost:gateway/signing": super::provider::payhost::gateway::signing,
            "payhost:gateway/http": super::provider::payhost::gateway::http,
            "payhost:gateway/store": super::provider::payhost::gateway::store,
            "payhost:gateway/clock": super::provider::payhost::gateway::clock,
            "payhost:gateway/log": super::provider::payhost::gateway::log,
            "payhost:gateway/settings": super::provider::payhost::gateway::settings,
            "payhost:gateway/payments": super::provider::payhost::gateway::payments,
        },
    });
}

pub use provider::payhost::gateway::{
    checkout, clock, deliveries, http, ledger, log, payments, settings, signing, store, timers,
    types,
};
