//! Host capabilities: one file per WIT interface, each only the `Host` trait impl
//! delegating to a host service (storage, ledger, runtime).

pub mod bindings;
pub mod checkout;
pub mod clock;
pub mod deliveries;
pub mod http;
pub mod ledger;
pub mod log;
pub mod settings;
pub mod signing;
pub mod state;
pub mod store;
pub mod timers;
pub mod types;

use bindings::payments::Host as PaymentsHost;
use state::PluginState;

/// `payments` declares types only.
impl PaymentsHost for PluginState {}
