//! Connection handling shared by the public and the admin listener: the accept loop
//! (a bounded number of open connections, accept errors backed off and logged once per
//! burst), per-connection timeouts for slow or silent clients, and a bounded graceful
//! shutdown. Request handling itself stays in `server` and `admin`; nothing here knows
//! what a request means.
//!
//! No client can hold the server: a half-sent or trickled request head is closed after
//! `header_read_timeout_ms` from its first byte, a connection that sits idle between
//! requests after `idle_timeout_ms`, and a body that does not arrive whole within
//! `body_read_timeout_ms` is answered 408 (see `http_util::read_body`). A request head
//! larger than `max_header_bytes` is answered 431 and closed before it is buffered whole.

mod accept;
mod activity;
mod watched;

pub use accept::serve;

use std::time::Duration;

use crate::config::RuntimeConfig;

/// The connection limits of one listener, from `[runtime]`.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl ConnectionSettings {
    pub fn from_config(runtime: &RuntimeConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(runtime.header_read_timeout_ms),
            max_header_bytes: runtime.max_header_bytes as usize,
            body_read_timeout: Duration::from_millis(runtime.body_read_timeout_ms),
            idle_timeout: Duration::from_millis(runtime.idle_timeout_ms),
            max_connections: runtime.max_connections as usize,
            shutdown_grace: Duration::from_millis(runtime.shutdown_grace_ms),
        }
    }
}
