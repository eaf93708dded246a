//! What a plugin call's `Store` holds: the instance's granted capabilities (shared by
//! every call of that instance version) and the per-call WASI context and limits.

use std::sync::{Arc, Weak};

use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::clock::HostClock;
use crate::config::PluginConfig;
use crate::jobs::JobHandle;
use crate::ledger::Ledger;
use crate::runtime::Runtime;
use crate::secrets::Secrets;
use crate::storage::Storage;

/// Services every instance shares.
pub struct Services {
    pub storage: Arc<dyn Storage>,
    pub ledger: Ledger,
    pub clock: HostClock,
    pub http: reqwest::Client,
    pub jobs: std::sync::OnceLock<JobHandle>,
    /// Back to the runtime, for payment calls into payment-system instances.
    pub runtime: std::sync::OnceLock<Weak<Runtime>>,
}

impl Services {
    /// Services before the runtime and job workers exist; they are attached later.
    pub fn new(storage: Arc<dyn Storage>, clock: HostClock, http: reqwest::Client) -> Arc<Self> {
        Arc::new(Self {
            ledger: Ledger::new(storage.clone(), clock.clone()),
            storage,
            clock,
            http,
            jobs: std::sync::OnceLock::new(),
            runtime: std::sync::OnceLock::new(),
        })
    }

    pub fn wake_jobs(&self) {
        if let Some(jobs) = self.jobs.get() {
            jobs.wake();
        }
    }
}

/// One instance version's grants, built at load and shared by all its calls.
pub struct InstanceContext {
    pub name: String,
    pub config: PluginConfig,
    pub secrets: Secrets,
    /// Settings flattened to strings (tables and arrays as JSON text).
    pub settings: Vec<(String, String)>,
    pub services: Arc<Services>,
}

/// The data of one call's `Store`.
pub struct PluginState {
    pub ctx: Arc<InstanceContext>,
    pub request_id: String,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    /// Set while the plugin handles a payment event: its store writes are held here and
    /// committed with the event's record (see `store::KvBuffer`).
    pub kv_buffer: Option<super::store::KvBuffer>,
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
}
