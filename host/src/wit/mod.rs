//! The compiled WIT contract, on the ground floor: the `bindgen!` output (one file per
//! WIT version) and the package name and version this host serves. Every module that
//! speaks the contract imports it from here; this module imports nothing of the host.

mod v0_1;

pub use v0_1::{
    checkout, clock, deliveries, http, ledger, log, payment_system, payments, provider, settings, signing, store,
    timers, types,
};

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = payhost_wit::PACKAGE;
/// Its version, from the contract's own `package` line (`wit/worlds.wit`).
pub const WIT_VERSION: &str = payhost_wit::VERSION;
