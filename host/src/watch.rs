//! Reloads instances configured with `watch = true` when their component file changes.
//!
//! Polling the file's size and modification time is enough here and behaves the same
//! on every filesystem; a change is acted on only once the file has stayed the same for
//! a whole poll interval, so a half-written file is never loaded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::app::App;

const POLL: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp { len: meta.len(), modified: meta.modified().ok() })
}

pub async fn watch_components(app: Arc<App>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    // Per instance: the stamp last loaded, and a changed stamp waiting to settle.
    let mut loaded: HashMap<String, (PathBuf, Option<Stamp>)> = HashMap::new();
    let mut settling: HashMap<String, Option<Stamp>> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        let config = app.runtime.config.load_full();
        for plugin in config.plugins.iter().filter(|p| p.watch) {
            let now = stamp(&plugin.component);
            let entry = loaded.entry(plugin.name.clone()).or_insert_with(|| (plugin.component.clone(), now));
            if entry.0 != plugin.component {
                // The path changed through a reload: start watching the new file.
                *entry = (plugin.component.clone(), now);
                settling.remove(&plugin.name);
                continue;
            }
            if now == entry.1 {
                settling.remove(&plugin.name);
                continue;
            }
            match settling.get(&plugin.name) {
                Some(previous) if *previous == now && now.is_some() => {
                    settling.remove(&plugin.name);
                    entry.1 = now;
                    if let Err(e) = app.reload_instance(&plugin.name, None, "file change").await {
                        tracing::error!(instance = %plugin.name, error = %format!("{e:#}"), "changed component refused; previous version keeps serving");
                    }
                }
                _ => {
                    settling.insert(plugin.name.clone(), now);
                }
            }
        }
    }
}
