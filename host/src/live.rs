//! Live operations on a serving host: reload one instance (optionally from another
//! file), roll it back, reload the whole config, and fire the `start` timer of newly
//! loaded providers. A bad new version or config never replaces the one serving. The
//! admin API, the file watcher and SIGHUP all act through here, and so does the store
//! quota (`limits.store_mb`) each config gives its instances.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::config::Config;
use crate::runtime::component::WorldKind;
use crate::runtime::Runtime;

/// Name of the timer the host fires when a provider instance is loaded (at start-up, or
/// when a config reload adds it), so plugins with background work start it themselves.
pub const START_TIMER: &str = "start";

pub struct LiveOps {
    pub runtime: Arc<Runtime>,
    pub config_path: PathBuf,
    /// One reload at a time; requests never wait on it.
    reload_lock: tokio::sync::Mutex<()>,
}

impl LiveOps {
    pub fn new(runtime: Arc<Runtime>, config_path: PathBuf) -> Arc<Self> {
        Arc::new(Self { runtime, config_path, reload_lock: tokio::sync::Mutex::new(()) })
    }

    /// Loads a new version of one instance (optionally from another file) off the
    /// request path and swaps it in; on any failure the old version keeps serving.
    pub async fn reload_instance(&self, name: &str, path: Option<PathBuf>, trigger: &str) -> Result<Value> {
        let _guard = self.reload_lock.lock().await;
        let config = self.runtime.config.load_full();
        let mut plugin = config
            .plugin(name)
            .cloned()
            .ok_or_else(|| anyhow!("no plugin instance `{name}` in the running config"))?;
        if let Some(path) = path {
            let base = self.config_path.parent().unwrap_or_else(|| Path::new("."));
            plugin.component = if path.is_relative() { base.join(path) } else { path };
        }
        let slot = self.runtime.registry.slot(name).ok_or_else(|| anyhow!("instance `{name}` is not serving"))?;
        let started = std::time::Instant::now();
        let result = self.runtime.load_instance(&plugin, trigger, self.runtime.config_generation()).await;
        let instance = match result {
            Ok(i) => i,
            Err(e) => {
                self.runtime.services.metrics.reload_refused(name);
                tracing::error!(instance = name, trigger, error = %format!("{e:#}"), "reload refused; previous version keeps serving");
                return Err(e);
            }
        };
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        let summary = json!({
            "name": name,
            "component_hash": instance.component.hash,
            "plugin_version": instance.info.version,
            "compiled": !instance.component.from_cache,
            "load_ms": load_ms,
        });
        slot.swap(instance);
        self.runtime.services.metrics.swapped(name);
        self.follow_component(&config, plugin);
        tracing::info!(instance = name, trigger, load_ms, "plugin swapped");
        Ok(summary)
    }

    /// Returns the instance to its previous code. Only the code goes back: the component
    /// is relinked with the config in force now (secrets as they read now, hosts,
    /// settings, limits), so a rotated secret or a revoked host stays rotated or revoked.
    /// If that config no longer suits the old code, the rollback is refused and the
    /// current version keeps serving.
    pub async fn rollback_instance(&self, name: &str) -> Result<Value> {
        let _guard = self.reload_lock.lock().await;
        let slot = self.runtime.registry.slot(name).ok_or_else(|| anyhow!("no plugin instance `{name}`"))?;
        let previous = slot.previous().ok_or_else(|| anyhow!("instance `{name}` has no earlier version to return to"))?;
        let config = self.runtime.config.load_full();
        let mut plugin = config.plugin(name).cloned().ok_or_else(|| anyhow!("no plugin instance `{name}` in the running config"))?;
        plugin.component = previous.component.path.clone();
        let instance = match self.runtime.relink_instance(&plugin, previous.component.clone(), "admin rollback").await {
            Ok(instance) => instance,
            Err(e) => {
                tracing::error!(instance = name, error = %format!("{e:#}"), "rollback refused; current version keeps serving");
                return Err(e);
            }
        };
        let summary = json!({
            "name": name,
            "component_hash": instance.component.hash,
            "plugin_version": instance.info.version,
            "config_generation": instance.config_generation,
        });
        slot.swap(instance);
        self.runtime.services.metrics.rolled_back(name);
        self.follow_component(&config, plugin);
        tracing::info!(instance = name, hash = %previous.component.hash, "plugin rolled back");
        Ok(summary)
    }

    /// Keeps the running config in step with the component an instance now runs, so
    /// `GET /plugins` and later reloads agree.
    fn follow_component(&self, config: &Config, plugin: crate::config::PluginConfig) {
        let mut next = config.clone();
        if let Some(p) = next.plugins.iter_mut().find(|p| p.name == plugin.name) {
            *p = plugin;
        }
        self.runtime.config.store(Arc::new(next));
    }

    /// Re-reads the config file; applies it whole or not at all. Listener, storage and
    /// runtime sizing changes need a restart and are reported as such.
    pub async fn reload_config(&self, trigger: &str) -> Result<Value> {
        let result = self.reload_config_once(trigger).await;
        self.runtime.services.metrics.config_reload(result.is_ok());
        result
    }

    async fn reload_config_once(&self, trigger: &str) -> Result<Value> {
        let _guard = self.reload_lock.lock().await;
        let next = Config::load(&self.config_path)?;
        let current = self.runtime.config.load_full();
        let mut needs_restart = Vec::new();
        if next.listen != current.listen {
            needs_restart.push("listen");
        }
        if next.admin.listen != current.admin.listen {
            needs_restart.push("admin.listen");
        }
        if next.storage.url != current.storage.url {
            needs_restart.push("storage.url");
        }
        if next.runtime.max_concurrent_requests != current.runtime.max_concurrent_requests {
            needs_restart.push("runtime.max_concurrent_requests");
        }
        let (a, b) = (&next.runtime, &current.runtime);
        for (key, changed) in [
            ("runtime.header_read_timeout_ms", a.header_read_timeout_ms != b.header_read_timeout_ms),
            ("runtime.max_header_bytes", a.max_header_bytes != b.max_header_bytes),
            ("runtime.idle_timeout_ms", a.idle_timeout_ms != b.idle_timeout_ms),
            ("runtime.max_connections", a.max_connections != b.max_connections),
            ("runtime.shutdown_grace_ms", a.shutdown_grace_ms != b.shutdown_grace_ms),
        ] {
            if changed {
                needs_restart.push(key);
            }
        }
        if next.tracing != current.tracing {
            needs_restart.push("tracing");
        }
        if next.janitor != current.janitor {
            needs_restart.push("janitor");
        }
        let prepared = self.runtime.prepare(&next, trigger).await?;
        apply_store_quotas(self.runtime.services.storage.as_ref(), &next).await?;
        let names: Vec<String> = next.plugins.iter().map(|p| p.name.clone()).collect();
        let added: Vec<String> = names.iter().filter(|n| current.plugin(n).is_none()).cloned().collect();
        self.runtime.commit(prepared, next);
        schedule_start_timers(&self.runtime, &added).await?;
        tracing::info!(trigger, plugins = ?names, "config reloaded");
        Ok(json!({ "plugins": names, "needs_restart": needs_restart }))
    }
}

/// Gives every configured instance's store the quota of its `limits.store_mb`, before
/// its plugin can write (at start-up) or with the config that sets it (on reload).
pub async fn apply_store_quotas(storage: &dyn crate::storage::Storage, config: &Config) -> Result<()> {
    let quotas: Vec<(String, Option<u64>)> = config.plugins.iter().map(|p| (p.name.clone(), p.limits.store_quota_bytes())).collect();
    storage.kv_set_quotas(&quotas).await.context("setting the instances' store quotas")?;
    // A store already near its quota (one kept from before quotas, or a quota lowered)
    // refuses writes soon: say so now, not at the first refusal.
    match storage.kv_usages().await {
        Ok(usages) => {
            for (instance, usage) in &usages {
                if let Some(quota) = usage.quota.filter(|q| usage.bytes.saturating_mul(10) >= q.saturating_mul(9)) {
                    tracing::warn!(%instance, bytes = usage.bytes, quota, "the instance's store holds 90% of its quota (limits.store_mb) or more; writes that grow it past the quota are refused");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the stores' usage"),
    }
    Ok(())
}

/// Schedules the `start` timer, due now, of every provider among `names`.
pub async fn schedule_start_timers(runtime: &Runtime, names: &[String]) -> Result<()> {
    let now = runtime.services.clock.now_millis();
    for name in names {
        let is_provider = runtime.registry.slot(name).is_some_and(|s| s.current().component.world == WorldKind::Provider);
        if is_provider {
            match runtime.services.storage.timer_upsert(name, START_TIMER, now, &[]).await {
                // A full store must not stop the host, nor the other instances' start.
                Err(crate::storage::StorageError::QuotaExceeded { .. }) => {
                    tracing::error!(instance = %name, "the start timer was not scheduled: the instance's store quota (limits.store_mb) is used up");
                }
                other => other.context("scheduling the start timer")?,
            }
        }
    }
    runtime.services.wake_jobs();
    Ok(())
}
