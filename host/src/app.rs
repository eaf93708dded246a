//! Start-up and live operations: wires storage, ledger, runtime, job workers and the
//! two listeners together, and carries out reloads (one instance, or the whole config)
//! so that a bad new version or config never replaces the one serving.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::capabilities::state::Services;
use crate::clock::HostClock;
use crate::config::Config;
use crate::jobs::{JobConfig, JobWorker};
use crate::runtime::Runtime;

pub struct App {
    pub runtime: Arc<Runtime>,
    pub config_path: PathBuf,
    pub admin_token: String,
    /// One reload at a time; requests never wait on it.
    reload_lock: tokio::sync::Mutex<()>,
}

/// Addresses the server actually listens on (ports may have been chosen by the OS).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Bound {
    pub listen: SocketAddr,
    pub admin: Option<SocketAddr>,
}

pub struct Running {
    pub app: Arc<App>,
    pub bound: Bound,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, stops the job workers.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Some(jobs) = self.app.runtime.services.jobs.get() {
            jobs.shutdown().await;
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
    }
}

/// The outbound client (HTTPS through rustls with ring and the webpki roots).
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        // A redirect could leave the plugin's allow-list: plugins see 3xx themselves.
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build()
        .context("cannot build the outbound HTTP client")
}

/// Opens storage, loads every plugin, starts job workers and binds both listeners.
pub async fn start(config_path: &Path) -> Result<Running> {
    let config = Config::load(config_path)?;
    let admin_token = std::env::var(&config.admin.token_env).unwrap_or_default();

    if let Some(parent) = config.storage.url.strip_prefix("sqlite://").and_then(|p| Path::new(p).parent()) {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create the storage folder {}", parent.display()))?;
        }
    }
    let storage = crate::storage::open(&config.storage.url)
        .await
        .with_context(|| format!("storage `{}`", redact_url(&config.storage.url)))?;
    storage.migrate().await.context("storage migration failed")?;

    let clock = if config.runtime.manual_clock {
        let clock = HostClock::manual();
        // Rehearsals that restart the host keep the time they had moved to.
        if let Some(offset) = std::env::var("PAYHOST_CLOCK_OFFSET_MS").ok().and_then(|v| v.parse::<i64>().ok()) {
            clock.advance(offset.max(0)).map_err(|e| anyhow!(e))?;
        }
        tracing::warn!("manual_clock is on: the admin API can move the host clock (rehearsals and tests only)");
        clock
    } else {
        HostClock::system()
    };

    let http = http_client()?;
    let services = Services::new(storage.clone(), clock.clone(), http.clone());
    let runtime = Runtime::start(config.clone(), services.clone()).await?;

    let job_config = JobConfig {
        poll_interval: std::time::Duration::from_millis(config.runtime.job_poll_interval_ms),
        lease_seconds: config.runtime.job_lease_seconds.max(1) as u64,
        default_max_attempts: config.runtime.delivery_max_attempts,
        ..JobConfig::default()
    };
    let jobs = JobWorker::spawn(storage, clock, Arc::new(crate::jobs_bridge::RuntimeCaller::new(&runtime)), http, job_config);
    let _ = services.jobs.set(jobs);
    let names: Vec<String> = config.plugins.iter().map(|p| p.name.clone()).collect();
    schedule_start_timers(&runtime, &names).await?;

    let listener = TcpListener::bind(&config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let listen = listener.local_addr()?;
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let app = Arc::new(App {
        runtime: runtime.clone(),
        config_path: config_path.to_path_buf(),
        admin_token: admin_token.clone(),
        reload_lock: tokio::sync::Mutex::new(()),
    });
    let mut tasks = vec![tokio::spawn(crate::server::serve_public(listener, runtime.clone(), shutdown_rx.clone()))];

    let admin = if admin_token.is_empty() {
        tracing::warn!(env = %config.admin.token_env, "admin API disabled: its bearer token variable is not set");
        None
    } else {
        let admin_listener = TcpListener::bind(&config.admin.listen)
            .await
            .with_context(|| format!("cannot listen on admin.listen {}", config.admin.listen))?;
        let addr = admin_listener.local_addr()?;
        tasks.push(tokio::spawn(crate::admin::serve_admin(admin_listener, app.clone(), shutdown_rx.clone())));
        Some(addr)
    };
    tasks.push(tokio::spawn(crate::watch::watch_components(app.clone(), shutdown_rx)));
    tracing::info!(%listen, admin = ?admin, plugins = config.plugins.len(), storage = storage_kind(&config.storage.url), "payhost serving");
    Ok(Running { app, bound: Bound { listen, admin }, shutdown, tasks })
}

/// Name of the timer the host fires when a provider instance is loaded (at start-up, or
/// when a config reload adds it), so plugins with background work start it themselves.
pub const START_TIMER: &str = "start";

async fn schedule_start_timers(runtime: &Runtime, names: &[String]) -> Result<()> {
    let now = runtime.services.clock.now_millis();
    for name in names {
        let is_provider = runtime
            .registry
            .slot(name)
            .is_some_and(|s| s.current().component.world == crate::runtime::component::WorldKind::Provider);
        if is_provider {
            runtime.services.storage.timer_upsert(name, START_TIMER, now, &[]).await.context("scheduling the start timer")?;
        }
    }
    runtime.services.wake_jobs();
    Ok(())
}

fn storage_kind(url: &str) -> &'static str {
    if url.starts_with("sqlite://") { "sqlite" } else { "postgres" }
}

/// A storage URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl App {
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
        let result = self.runtime.load_instance(&plugin, trigger).await;
        let instance = match result {
            Ok(i) => i,
            Err(e) => {
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
        // Keep the running config in step, so `GET /plugins` and later reloads agree.
        let mut next = (*config).clone();
        if let Some(p) = next.plugins.iter_mut().find(|p| p.name == name) {
            *p = plugin;
        }
        self.runtime.config.store(Arc::new(next));
        tracing::info!(instance = name, trigger, load_ms, "plugin swapped");
        Ok(summary)
    }

    pub fn rollback_instance(&self, name: &str) -> Result<Value> {
        let slot = self.runtime.registry.slot(name).ok_or_else(|| anyhow!("no plugin instance `{name}`"))?;
        let previous = slot.rollback("admin rollback").ok_or_else(|| anyhow!("instance `{name}` has no earlier version to return to"))?;
        tracing::info!(instance = name, hash = %previous.component.hash, "plugin rolled back");
        Ok(json!({ "name": name, "component_hash": previous.component.hash, "plugin_version": previous.info.version }))
    }

    /// Re-reads the config file; applies it whole or not at all. Listener, storage and
    /// runtime sizing changes need a restart and are reported as such.
    pub async fn reload_config(&self, trigger: &str) -> Result<Value> {
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
        let prepared = self.runtime.prepare(&next, trigger).await?;
        let names: Vec<String> = next.plugins.iter().map(|p| p.name.clone()).collect();
        let added: Vec<String> = names.iter().filter(|n| current.plugin(n).is_none()).cloned().collect();
        self.runtime.commit(prepared, next);
        schedule_start_timers(&self.runtime, &added).await?;
        tracing::info!(trigger, plugins = ?names, "config reloaded");
        Ok(json!({ "plugins": names, "needs_restart": needs_restart }))
    }
}

/// Everything `serve` would check before serving, without opening listeners or storage:
/// secrets readable, components valid and built for this WIT, grants complete.
pub async fn check(config: &Config) -> Result<String> {
    let storage = crate::storage::open("sqlite://:memory:").await.context("in-memory storage for checking")?;
    let services = Services::new(storage, HostClock::system(), http_client()?);
    let mut probe = config.clone();
    // A check needs few instance slots.
    probe.runtime.max_concurrent_requests = 4;
    let runtime = Runtime::start(probe, services).await?;
    let table = runtime.registry.table();
    let mut lines = vec![format!("config OK: {} plugin instance(s)", table.mounts.len())];
    for (mount, slot) in &table.mounts {
        let i = slot.current();
        lines.push(format!(
            "  {} at {mount}: {} {} ({:?}, WIT {}, {})",
            slot.name,
            i.info.name,
            i.info.version,
            i.component.world,
            i.component.wit_version,
            &i.component.hash[..12]
        ));
    }
    Ok(lines.join("\n"))
}
