//! payhost: a payment-gateway host that runs each payment-provider integration as a
//! sandboxed WebAssembly component.
//!
//! The host owns everything that must be right for money to be safe (secrets, the
//! ledger, durable jobs, outbound access); plugins own the protocol of one provider and
//! reach the world only through the capabilities in `wit/`.

pub mod admin;
pub mod app;
pub mod bench;
pub mod call_failure;
pub mod capabilities;
pub mod clock;
pub mod config;
pub mod console;
pub mod health;
pub mod http_util;
pub mod identifiers;
pub mod jobs;
pub mod ledger;
pub mod isolation_bench;
pub mod ledger_bench;
pub mod live;
pub mod peer_bench;
pub mod metrics;
pub mod money;
pub mod net;
pub mod payments;
pub mod plugin_kit;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod services;
pub mod storage;
pub mod telemetry;
pub mod text;
pub mod watch;
pub mod wit;
