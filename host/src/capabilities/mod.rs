//! Host capabilities: one file per WIT interface, each the `Host` trait impl delegating
//! to a host service (storage, ledger, the job worker, `crate::payments`), plus
//! `state.rs`, the data of a call's `Store`, and `since_v0_1.rs`, the 0.1.0 contract's
//! imports as the current implementations. Nothing here calls into wasm.

pub mod checkout;
pub mod clock;
pub mod deliveries;
pub mod http;
pub mod ledger;
pub mod log;
pub mod payments;
pub mod settings;
pub mod since_v0_1;
pub mod signing;
pub mod state;
pub mod store;
pub mod timers;
pub mod types;
