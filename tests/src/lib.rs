//! End-to-end test harness: builds the real plugins and the real `payhost` binary,
//! starts the host on loopback with a generated config, and offers counterpart
//! simulators (`sim`) that speak each provider's protocol, and a headless browser
//! (`browser`) for the console.

pub mod browser;
pub mod build;
pub mod host;
pub mod schemathesis;
pub mod sim;

pub use build::{payhost_binary, plugin_wasm};
pub use host::{check_config, HostBuilder, TestHost};
