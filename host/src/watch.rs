//! Reloads instances configured with `watch = true` when their component file changes.
//!
//! Polling the file's size and modification time is enough here and behaves the same
//! on every filesystem. A change is acted on only once the file has stayed the same for
//! a whole poll interval, so a half-written file is never loaded, and only when its
//! content hash differs from the version serving.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::live::LiveOps;
use crate::runtime::component::file_hash;

const POLL: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp { len: meta.len(), modified: meta.modified().ok() })
}

pub async fn watch_components(app: Arc<LiveOps>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    // Per instance: the stamp of the file as last settled.
    let mut settled: HashMap<String, Option<Stamp>> = HashMap::new();
    // A stamp seen once and waiting to stay the same for one more poll.
    let mut settling: HashMap<String, Option<Stamp>> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        let config = app.runtime.config.load_full();
        for plugin in config.plugins.iter().filter(|p| p.watch) {
            let now = stamp(&plugin.component);
            if settled.get(&plugin.name) == Some(&now) {
                settling.remove(&plugin.name);
                continue;
            }
            if settling.get(&plugin.name) != Some(&now) {
                settling.insert(plugin.name.clone(), now);
                continue;
            }
            // Unchanged for a whole interval: settled.
            settling.remove(&plugin.name);
            settled.insert(plugin.name.clone(), now);
            let Ok(hash) = file_hash(&plugin.component) else { continue };
            let serving = app.runtime.registry.slot(&plugin.name).map(|s| s.current().component.hash.clone());
            if serving.as_deref() == Some(hash.as_str()) {
                continue;
            }
            if let Err(e) = app.reload_instance(&plugin.name, None, "file change").await {
                tracing::error!(instance = %plugin.name, error = %format!("{e:#}"), "changed component refused; previous version keeps serving");
            }
        }
    }
}
