//! End-to-end test harness: builds the real plugins and the real `payhost` binary,
//! starts the host on loopback with a generated config, and offers counterpart
//! simulators (`sim`) that speak each provider's protocol, and a headless browser
//! (`browser`) for the console.

pub mod browser;
pub mod build;
pub mod host;
pub mod postgres;
pub mod schemathesis;
pub mod sim;

pub use build::{payhost_binary, plugin_wasm};
pub use host::{check_config, HostBuilder, TestHost};

/// The `[[plugins]]` block of the test plugin `faulty` (it loops, balloons, traps or counts
/// on request) with the probe grants it declares and the given `[plugins.limits]` lines.
pub fn faulty_config(name: &str, mount: &str, limits: &str) -> String {
    format!(
        r#"
[[plugins]]
name = "{name}"
component = {:?}
mount = "{mount}"
allowed_hosts = ["probe.invalid"]
[plugins.secrets]
probe_key = {{ env = "PROBE_KEY" }}
[plugins.limits]
{limits}
"#,
        plugin_wasm("faulty").display().to_string()
    )
}
