//! Which instance serves which mount, with atomic swaps.
//!
//! Each instance name has a `Slot` whose current version is an `ArcSwap`: a request
//! takes the `Arc` once and finishes on that version even if a swap happens meanwhile.
//! The routing table itself is swapped whole on config reload.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::Serialize;

use super::instance::LoadedInstance;

/// One entry of an instance's version history.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRecord {
    pub hash: String,
    pub wit_version: String,
    pub plugin_version: String,
    pub path: String,
    pub loaded_at: i64,
    pub trigger: String,
    /// The config generation this version ran with (see `Runtime::config_generation`).
    pub config_generation: u64,
}

pub struct Slot {
    pub name: String,
    current: ArcSwap<LoadedInstance>,
    /// Versions this slot served, oldest first (the last is the current one), and the
    /// loaded instances kept for instant rollback.
    history: Mutex<Vec<(VersionRecord, Arc<LoadedInstance>)>>,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

/// How many earlier versions a slot keeps loaded for rollback.
const KEPT_VERSIONS: usize = 8;

impl Slot {
    pub fn new(instance: Arc<LoadedInstance>) -> Arc<Self> {
        let record = record_of(&instance);
        Arc::new(Self {
            name: instance.name().to_string(),
            current: ArcSwap::new(instance.clone()),
            history: Mutex::new(vec![(record, instance)]),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    pub fn current(&self) -> Arc<LoadedInstance> {
        self.current.load_full()
    }

    /// Makes `instance` the version new requests get.
    pub fn swap(&self, instance: Arc<LoadedInstance>) {
        let mut history = self.history.lock().expect("history lock");
        remember(&mut history, record_of(&instance), instance.clone());
        let previous = self.current.swap(instance);
        previous.warm.clear();
    }

    /// The version before the current one: the code a rollback returns to (relinked
    /// with the config in force, so only the code goes back). `None` when there is none.
    pub fn previous(&self) -> Option<Arc<LoadedInstance>> {
        let history = self.history.lock().expect("history lock");
        history.len().checked_sub(2).map(|i| history[i].1.clone())
    }

    pub fn history(&self) -> Vec<VersionRecord> {
        self.history.lock().expect("history lock").iter().map(|(r, _)| r.clone()).collect()
    }

    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Appends a version, keeping only the newest `KEPT_VERSIONS` loaded.
fn remember(history: &mut Vec<(VersionRecord, Arc<LoadedInstance>)>, record: VersionRecord, instance: Arc<LoadedInstance>) {
    history.push((record, instance));
    let excess = history.len().saturating_sub(KEPT_VERSIONS);
    history.drain(..excess);
}

fn record_of(instance: &LoadedInstance) -> VersionRecord {
    VersionRecord {
        hash: instance.component.hash.clone(),
        wit_version: instance.component.wit_version.clone(),
        plugin_version: instance.info.version.clone(),
        path: instance.component.path.display().to_string(),
        loaded_at: instance.loaded_at,
        trigger: instance.trigger.clone(),
        config_generation: instance.config_generation,
    }
}

/// Mount prefixes and names to slots.
#[derive(Default)]
pub struct Table {
    pub by_name: HashMap<String, Arc<Slot>>,
    /// Longest mount first, so `/a/b` wins over `/a`.
    pub mounts: Vec<(String, Arc<Slot>)>,
}

impl Table {
    pub fn new(slots: Vec<(String, Arc<Slot>)>) -> Self {
        let mut mounts = slots.clone();
        mounts.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
        let by_name = slots.into_iter().map(|(_, s)| (s.name.clone(), s)).collect();
        Self { by_name, mounts }
    }

    /// The slot whose mount is a path-segment prefix of `path`, and the path below it.
    pub fn route<'p>(&self, path: &'p str) -> Option<(Arc<Slot>, &'p str)> {
        for (mount, slot) in &self.mounts {
            if let Some(rest) = path.strip_prefix(mount.as_str()) {
                if rest.is_empty() {
                    return Some((slot.clone(), "/"));
                }
                if rest.starts_with('/') {
                    return Some((slot.clone(), rest));
                }
            }
        }
        None
    }
}

pub struct Registry {
    table: ArcSwap<Table>,
}

impl Registry {
    pub fn new(table: Table) -> Self {
        Self { table: ArcSwap::new(Arc::new(table)) }
    }

    pub fn table(&self) -> Arc<Table> {
        self.table.load_full()
    }

    pub fn replace(&self, table: Table) {
        self.table.store(Arc::new(table));
    }

    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.table.load().by_name.get(name).cloned()
    }
}
