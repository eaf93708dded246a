//! One loaded version of a plugin instance: its compiled component, pre-instantiated
//! against the host's linker, with the grants from config. Every call gets a fresh
//! `Store` from here, so no state leaks between requests, unless the operator turned on
//! `limits.reuse` (then `handle` calls may run in a warm instance of this version).
//!
//! A store never holds its thread: at every epoch tick the running guest yields to the
//! async executor; a call still running a tick after it started moves to the plugin
//! threads (`pool`); at its deadline it traps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{ComponentExportIndex, ResourceTable};
use wasmtime::{Engine, Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

use super::component::LoadedComponent;
use super::exports::{ProcessorPre, ProviderPre};
use super::warm::WarmPool;
use crate::wit::types::PluginInfo;
use crate::capabilities::state::{InstanceContext, PluginState};
use crate::clock::HostClock;
use crate::payments::PaymentSystems;

/// The typed pre-instance, by world.
pub enum Pre {
    /// A provider, with its `handle` export found and type-checked once at load, so a
    /// request instantiates and calls it without the generated bindings' per-call lookup
    /// and type check of every export (a measurable share of per-request dispatch).
    Provider { pre: ProviderPre, handle: ComponentExportIndex },
    PaymentSystem(ProcessorPre),
}

pub struct LoadedInstance {
    pub ctx: Arc<InstanceContext>,
    pub component: LoadedComponent,
    pub pre: Pre,
    /// What the plugin said about itself at load.
    pub info: PluginInfo,
    /// Unix milliseconds on the host clock.
    pub loaded_at: i64,
    /// What loaded this version (`startup`, `admin reload`, `file change`, ...).
    pub trigger: String,
    /// Idle warm instances of this version (`limits.reuse`; empty when reuse is off).
    pub warm: WarmPool,
    /// Calls of this version running at once (`limits.max_concurrent`), so one instance
    /// cannot take every call slot of the host.
    pub calls: Arc<Semaphore>,
    /// The running config's generation this version was linked with.
    pub config_generation: u64,
}

impl LoadedInstance {
    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.ctx.config.limits.deadline_ms)
    }

    /// A call slot of this version, or `None` when `limits.max_concurrent` calls are
    /// already running (the caller answers 503 with `Retry-After`).
    pub fn call_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.calls.clone().try_acquire_owned().ok()
    }

    /// A fresh store for one call: minimal WASI (no env, args, files or sockets; the
    /// wall clock is the host clock), the instance's memory cap and deadline.
    /// `payment_systems` is what the call's `checkout` import reaches.
    pub fn new_store(&self, engine: &Engine, request_id: &str, payment_systems: Arc<dyn PaymentSystems>) -> Store<PluginState> {
        new_store(engine, self.ctx.clone(), request_id, self.deadline(), payment_systems)
    }
}

pub fn new_store(
    engine: &Engine,
    ctx: Arc<InstanceContext>,
    request_id: &str,
    deadline: Duration,
    payment_systems: Arc<dyn PaymentSystems>,
) -> Store<PluginState> {
    let memory = (ctx.config.limits.memory_mb as usize) << 20;
    let wasi = WasiCtx::builder().wall_clock(WasiWallClock(ctx.services.clock.clone())).build();
    let limits = StoreLimitsBuilder::new().memory_size(memory).trap_on_grow_failure(true).build();
    let started_at = Instant::now();
    let state = PluginState {
        ctx,
        request_id: request_id.to_string(),
        deadline_at: started_at + deadline,
        started_at,
        move_now: Arc::new(AtomicBool::new(false)),
        wasi,
        table: ResourceTable::new(),
        limits,
        payment_systems,
        kv_buffer: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    // Yield at every tick until the deadline, then trap: the guest gives its worker back
    // between ticks instead of holding it until the trap. Through tokio's own yield: a
    // task that merely wakes itself goes to the front of its worker's queue and runs
    // again at once, so two looping guests on two workers would still starve the rest
    // (measured by `payhost bench isolation`).
    store.epoch_deadline_callback(|ctx| {
        let now = Instant::now();
        let ran = now.duration_since(ctx.data().started_at);
        if ran >= MOVE_AFTER {
            ctx.data().move_now.store(true, Ordering::Release);
        }
        if now >= ctx.data().deadline_at {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        }
    });
    store.set_epoch_deadline(1);
    store
}

/// How long a call may run on the worker that took its request; at the first tick past
/// it, the call moves to the plugin threads (`pool`). Short calls never see it.
pub const MOVE_AFTER: Duration = Duration::from_millis(1);

/// Starts a new call's deadline in a store that served before (a warm instance), with the
/// flag the new call's `pool::PluginPool::run` watches.
pub fn restart_deadline(store: &mut Store<PluginState>, deadline: Duration, move_now: Arc<AtomicBool>) {
    let started_at = Instant::now();
    store.data_mut().deadline_at = started_at + deadline;
    store.data_mut().started_at = started_at;
    store.data_mut().move_now = move_now;
    store.set_epoch_deadline(1);
}

/// WASI's wall clock reads the host clock too, so `std::time::SystemTime` in a plugin
/// agrees with the `clock` import.
struct WasiWallClock(HostClock);

impl wasmtime_wasi::HostWallClock for WasiWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now_millis().max(0) as u64)
    }
}
