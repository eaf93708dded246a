//! What a plugin call's `Store` holds: the instance's granted capabilities (shared by
//! every call of that instance version) and the per-call WASI context and limits.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::log::LogBudget;
use super::store::KvBuffer;
use crate::config::PluginConfig;
use crate::payments::PaymentSystems;
use crate::secrets::Secrets;
use crate::services::Services;
use crate::storage::KvWrite;

/// One instance version's grants, built at load and shared by all its calls.
pub struct InstanceContext {
    pub name: String,
    pub config: PluginConfig,
    pub secrets: Secrets,
    /// Settings flattened to strings (tables and arrays as JSON text).
    pub settings: Vec<(String, String)>,
    pub services: Arc<Services>,
    /// The log lines the version's calls may still write (`limits.log_lines_per_second`).
    pub log_budget: LogBudget,
}

impl InstanceContext {
    pub fn new(config: PluginConfig, secrets: Secrets, services: Arc<Services>) -> Self {
        Self {
            name: config.name.clone(),
            settings: super::settings::flatten(&config.settings),
            log_budget: LogBudget::new(config.limits.log_lines_per_second),
            config,
            secrets,
            services,
        }
    }
}

/// The data of one call's `Store`.
pub struct PluginState {
    pub ctx: Arc<InstanceContext>,
    pub request_id: String,
    /// When the running call must stop: the epoch callback yields the thread back at
    /// every tick before it and traps at it (see `runtime::instance::new_store`).
    pub deadline_at: std::time::Instant,
    /// When the current call started (the reference for moving it, see `runtime::pool`).
    pub started_at: std::time::Instant,
    /// Set by the epoch callback once the call has run long enough to move to the
    /// plugin threads (see `runtime::pool`).
    pub move_now: Arc<std::sync::atomic::AtomicBool>,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    /// The payment-system instances `checkout` calls reach (the runtime making this call).
    pub payment_systems: Arc<dyn PaymentSystems>,
    /// Set while the plugin handles a payment event: its store writes are held here and
    /// committed with the event's record (see `store::KvBuffer`).
    pub kv_buffer: Option<KvBuffer>,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl PluginState {
    pub fn instance(&self) -> &str {
        &self.ctx.name
    }

    pub fn services(&self) -> &Services {
        &self.ctx.services
    }

    /// From now on this call's store writes are held back instead of written.
    pub fn hold_store_writes(&mut self) {
        self.kv_buffer = Some(KvBuffer::default());
    }

    /// The store writes held back since `hold_store_writes`, in order.
    pub fn take_held_writes(&mut self) -> Vec<KvWrite> {
        self.kv_buffer.take().map(KvBuffer::into_writes).unwrap_or_default()
    }
}
