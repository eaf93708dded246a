//! The one wasmtime `Engine`, configured for a fresh instance per request.
//!
//! Per-request cost is dominated by the guest memory an instance touches and the kernel
//! work to reset it (see "What shaped the engine" in BENCHMARKS.md): the pooling allocator with copy-on-write
//! memory images and a resident slice of each slot keeps that cheap; epoch interruption
//! gives every call a deadline.

use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::MAX_MEMORY_MB;

/// How often the epoch advances: a running guest yields its thread at every tick and
/// checks its deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Engine sizing; `instances` bounds how many plugin calls run at once.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub instances: u32,
}

/// The fresh-path knobs `payhost bench knobs` compares; `default()` is what serves.
/// Each alternative was measured against the default in one run (BENCHMARKS.md) and
/// kept only where it measured better on this machine kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineKnobs {
    pub memory_init_cow: bool,
    /// Bytes of each linear-memory slot kept resident (reset by memset, not madvise).
    pub keep_resident: usize,
    /// Decommits batched into one call (1: none).
    pub decommit_batch: usize,
    /// Reset resident pages found by the `PAGEMAP_SCAN` ioctl (Linux 6.7+) only.
    pub pagemap_scan: bool,
    /// Virtual reservation per linear memory, in MiB.
    pub reservation_mb: u64,
}

impl Default for EngineKnobs {
    fn default() -> Self {
        Self { memory_init_cow: true, keep_resident: 1 << 20, decommit_batch: 1, pagemap_scan: false, reservation_mb: u64::from(MAX_MEMORY_MB) }
    }
}

/// Knobs the next engine is built with; only benchmarks change them.
static KNOBS: std::sync::Mutex<Option<EngineKnobs>> = std::sync::Mutex::new(None);

/// Makes engines built from now on use `knobs` (`None`: the defaults). For benchmarks.
pub fn set_knobs_for_bench(knobs: Option<EngineKnobs>) {
    *KNOBS.lock().expect("knobs lock") = knobs;
}

pub fn build_engine(settings: &EngineSettings) -> Result<Engine> {
    let knobs = KNOBS.lock().expect("knobs lock").clone().unwrap_or_default();
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.memory_init_cow(knobs.memory_init_cow);
    // Fiber stacks for async calls; plugin guests run with a 64 KiB wasm stack.
    config.async_stack_size(2 << 20);
    config.max_wasm_stack(1 << 20);
    // A guard region instead of bounds checks, but no multi-GiB reservations per slot,
    // so the pool fits in the address space of an ordinary host.
    config.memory_reservation(knobs.reservation_mb << 20);
    config.memory_guard_size(64 << 20);
    config.memory_reservation_for_growth(0);

    let mut pool = PoolingAllocationConfig::new();
    // A component instance holds a few core instances (the guest, its adapter shims).
    pool.total_component_instances(settings.instances);
    pool.total_core_instances(settings.instances * 4);
    pool.total_memories(settings.instances * 2);
    pool.total_tables(settings.instances * 4);
    pool.total_stacks(settings.instances);
    pool.max_memory_size((knobs.reservation_mb as usize) << 20);
    pool.max_core_instances_per_component(16);
    pool.max_memories_per_component(4);
    pool.max_tables_per_component(8);
    // Keep the first pages of each slot resident between instances: a guest touches
    // its stack and data there on every call.
    pool.linear_memory_keep_resident(knobs.keep_resident);
    pool.decommit_batch_size(knobs.decommit_batch);
    if knobs.pagemap_scan {
        pool.pagemap_scan(wasmtime::Enabled::Auto);
    }
    pool.table_keep_resident(64 << 10);
    pool.async_stack_keep_resident(64 << 10);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

/// Advances the engine's epoch on a timer thread until the engine is dropped.
pub fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("payhost-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawn epoch thread");
}
