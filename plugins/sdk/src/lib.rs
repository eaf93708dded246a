//! Guest-side helper crate for payhost plugins.
//!
//! A plugin author depends on this crate only: it generates the WIT bindings once (so
//! every plugin links against the same contract version), re-exports them, and adds the
//! small pieces every gateway needs: reading a query or form, building JSON and redirect
//! answers, and PHP-compatible encoders for counterparts that sign PHP output.

pub mod auth;
pub mod bindings;
pub mod calendar;
pub mod hex;
pub mod host;
pub mod http;
pub mod pct;
pub mod php;
pub mod query;
pub mod records;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use bindings::exports::payhost::gateway::events::Guest as Events;
pub use bindings::exports::payhost::gateway::plugin::Guest as Plugin;
pub use bindings::payhost::gateway::{
    checkout, clock, deliveries, http as outbound, ledger, log, payments, settings, signing,
    store, timers, types,
};
pub use bindings::export_provider;
pub use bindings::payment_system::export_payment_system;
pub use bindings::payment_system::exports::payhost::gateway::processor::{Guest as Processor, Webhook};
pub use host::{Host, WasmHost};
pub use http::{Request, Response};

/// Version of the WIT package these bindings were generated from.
pub const WIT_VERSION: &str = payhost_wit::VERSION;

/// Logs at info level with structured fields.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    write_log(log::Level::Info, message, fields);
}

/// Logs at warn level with structured fields.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    write_log(log::Level::Warn, message, fields);
}

/// Logs at error level with structured fields.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    write_log(log::Level::Error, message, fields);
}

fn write_log(level: log::Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    log::log(level, message, &fields);
}

/// Reads a setting, or an error naming it when it is not configured.
pub fn required_setting(name: &str) -> Result<String, String> {
    settings::get(name).ok_or_else(|| format!("setting `{name}` is not configured"))
}

/// Current host time as Unix seconds.
pub fn now_seconds() -> i64 {
    clock::now().seconds
}
