//! Start-up and shutdown: wires storage, services, runtime, the job worker, the live
//! operations and the two listeners together. Nothing here is called while serving;
//! reloads and rollbacks live in `crate::live`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use tokio::net::TcpListener;

use crate::clock::HostClock;
use crate::config::Config;
use crate::jobs::janitor::JanitorConfig;
use crate::jobs::{JobConfig, JobHandle, JobWaker, JobWorker};
use crate::live::{apply_store_quotas, schedule_start_timers, LiveOps};
use crate::runtime::{Runtime, RuntimeCaller};
use crate::services::Services;

/// Addresses the server actually listens on (ports may have been chosen by the OS).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Bound {
    pub listen: SocketAddr,
    pub admin: Option<SocketAddr>,
}

pub struct Running {
    pub live: Arc<LiveOps>,
    pub bound: Bound,
    jobs: JobHandle,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish within `runtime.shutdown_grace_ms`
    /// (the listeners close what is left), stops the job workers, and waits for the calls
    /// of the requests it closed to be cancelled.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.jobs.shutdown().await;
        let grace = std::time::Duration::from_millis(self.live.runtime.config.load().runtime.shutdown_grace_ms);
        for task in self.tasks {
            // The listeners bound themselves by the grace; this only guards against a
            // task that never ends.
            let _ = tokio::time::timeout(grace + std::time::Duration::from_secs(1), task).await;
        }
        if !self.live.runtime.wait_for_calls_to_end(std::time::Duration::from_secs(1)).await {
            tracing::warn!("plugin calls were still running when the host exited");
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
    apply_store_quotas(storage.as_ref(), &config).await?;

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
    let waker = JobWaker::default();
    let services = Services::new(storage.clone(), clock.clone(), http.clone(), waker.clone());
    if let Ok(header) = reqwest::header::HeaderName::from_bytes(config.tracing.request_id_header.as_bytes()) {
        let _ = services.request_id_header.set(header);
    }
    let metrics = services.metrics.clone();
    let runtime = Runtime::start(config.clone(), services).await?;

    let job_config = JobConfig {
        poll_interval: std::time::Duration::from_millis(config.runtime.job_poll_interval_ms),
        lease_seconds: config.runtime.job_lease_seconds.max(1) as u64,
        default_max_attempts: config.runtime.delivery_max_attempts,
        metrics,
        janitor: config.janitor.enabled.then(|| janitor_config(&config.janitor)),
        ..JobConfig::default()
    };
    let caller = Arc::new(RuntimeCaller(runtime.clone()));
    let jobs = Arc::new(JobWorker::new(storage, clock, caller, http, job_config).with_waker(waker)).start();
    let names: Vec<String> = config.plugins.iter().map(|p| p.name.clone()).collect();
    schedule_start_timers(&runtime, &names).await?;

    let listener = TcpListener::bind(&config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let listen = listener.local_addr()?;
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let live = LiveOps::new(runtime.clone(), config_path.to_path_buf());
    let mut tasks = vec![tokio::spawn(crate::server::serve_public(listener, runtime.clone(), shutdown_rx.clone()))];

    let admin = if admin_token.is_empty() {
        tracing::warn!(env = %config.admin.token_env, "admin API disabled: its bearer token variable is not set");
        None
    } else {
        let admin_listener = TcpListener::bind(&config.admin.listen)
            .await
            .with_context(|| format!("cannot listen on admin.listen {}", config.admin.listen))?;
        let addr = admin_listener.local_addr()?;
        tasks.push(tokio::spawn(crate::admin::serve_admin(admin_listener, live.clone(), admin_token, shutdown_rx.clone())));
        Some(addr)
    };
    tasks.push(tokio::spawn(crate::watch::watch_components(live.clone(), shutdown_rx)));
    tracing::info!(%listen, admin = ?admin, plugins = config.plugins.len(), storage = storage_kind(&config.storage.url), "payhost serving");
    Ok(Running { live, bound: Bound { listen, admin }, jobs, shutdown, tasks })
}

fn janitor_config(settings: &crate::config::JanitorSettings) -> JanitorConfig {
    use std::time::Duration;
    JanitorConfig {
        after: Duration::from_secs(settings.after_seconds),
        scan_interval: Duration::from_secs(settings.scan_seconds),
        recheck: Duration::from_secs(settings.recheck_seconds),
        ..JanitorConfig::default()
    }
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

/// A runtime for checking, not serving: in-memory storage, few instance slots, the
/// instances of `config` loaded (none for `plugin check`, which loads its own).
pub async fn probe_runtime(mut config: Config) -> Result<Arc<Runtime>> {
    let storage = crate::storage::open("sqlite://:memory:").await.context("in-memory storage for checking")?;
    let services = Services::new(storage, HostClock::system(), http_client()?, JobWaker::default());
    config.runtime.max_concurrent_requests = 4;
    Runtime::start(config, services).await
}

/// Everything `serve` would check before serving, without opening listeners or storage:
/// secrets readable, components valid and built for this WIT, grants complete.
pub async fn check(config: &Config) -> Result<String> {
    let runtime = probe_runtime(config.clone()).await?;
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
        for warning in crate::runtime::grants::undeclared(&i.ctx.config, &i.info) {
            lines.push(format!("  warning: {warning}"));
        }
    }
    Ok(lines.join("\n"))
}
