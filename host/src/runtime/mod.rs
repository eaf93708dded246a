//! The plugin runtime: one engine, one linker per world, the registry of loaded
//! instances, and the calls into them (inbound HTTP, timers, payment events, payment
//! systems). Every call runs in a fresh store under the instance's deadline and memory
//! cap; a failing plugin fails only its own call.

mod calls;
pub mod component;
pub mod engine;
pub mod exports;
pub mod grants;
pub mod instance;
mod job_exports;
mod payment_systems;
pub mod pool;
pub mod registry;
pub mod warm;

pub use job_exports::RuntimeCaller;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use arc_swap::ArcSwap;
use tokio::sync::OwnedSemaphorePermit;
use futures::future::BoxFuture;
use wasmtime::component::{ComponentExportIndex, HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::call_failure::CallFailure;
use crate::capabilities::state::{InstanceContext, PluginState};
use crate::config::{Config, PluginConfig};
use crate::secrets::Secrets;
use crate::services::Services;
use crate::wit::payment_system::PaymentSystem;
use crate::wit::provider::Provider;
use crate::wit::types::{PluginInfo, Request, Response};
use crate::wit::{since_v0_1, Contract, WIT_PACKAGE};
use component::{LoadedComponent, WorldKind};
use exports::{ProcessorPre, ProviderPre};
use instance::{LoadedInstance, Pre};
use pool::{PluginPool, PoolSettings};
use registry::{Registry, Slot, Table};

/// Extra time past a plugin's own deadline before the host abandons a call that is
/// stuck in a host function (an epoch deadline only interrupts running wasm).
const HOST_GRACE: Duration = Duration::from_millis(500);

/// An instance loaded for a new routing table, not yet serving.
pub struct Prepared {
    pub mount: String,
    pub instance: Arc<LoadedInstance>,
}

pub struct Runtime {
    pub engine: Engine,
    linkers: Linkers,
    pub services: Arc<Services>,
    pub registry: Registry,
    pub config: ArcSwap<Config>,
    calls: Arc<tokio::sync::Semaphore>,
    /// How many slots `calls` has.
    call_slots: u32,
    /// Where every plugin call runs: threads of their own, so plugins never hold the
    /// workers that accept connections and serve the host's own routes.
    pool: PluginPool,
    /// Bumped whenever the running config is replaced; each loaded version records the
    /// generation it was linked with.
    config_generation: AtomicU64,
    request_seq: AtomicU64,
    request_prefix: String,
}

impl Runtime {
    /// Builds the engine and loads every configured instance; any instance that fails
    /// to load stops start-up with its reason.
    pub async fn start(config: Config, services: Arc<Services>) -> Result<Arc<Self>> {
        let slots_needed = config.runtime.max_concurrent_requests;
        // Provider calls may call into a payment-system instance: room for both.
        let engine = engine::build_engine(&engine::EngineSettings { instances: slots_needed * 2 + 16 })?;
        engine::spawn_epoch_ticker(&engine);
        let pool = PluginPool::start(PoolSettings { threads: config.runtime.plugin_threads as usize, nice: config.runtime.plugin_nice })?;
        let runtime = Arc::new(Self {
            linkers: Linkers::new(&engine)?,
            engine,
            services,
            registry: Registry::new(Table::default()),
            config: ArcSwap::from_pointee(config.clone()),
            calls: Arc::new(tokio::sync::Semaphore::new(slots_needed as usize * 2)),
            call_slots: slots_needed * 2,
            pool,
            config_generation: AtomicU64::new(0),
            request_seq: AtomicU64::new(0),
            request_prefix: format!("{:08x}", rand::random::<u32>()),
        });
        let prepared = runtime.prepare(&config, "startup").await?;
        runtime.commit(prepared, config);
        Ok(runtime)
    }

    /// Loads every instance of `config` off the request path. Nothing is swapped in:
    /// a config with one bad instance is refused whole. Instances whose config and
    /// component are unchanged keep their loaded version.
    pub async fn prepare(self: &Arc<Self>, config: &Config, trigger: &str) -> Result<Vec<Prepared>> {
        let current = self.registry.table();
        let mut prepared = Vec::new();
        for plugin in &config.plugins {
            let existing = current.by_name.get(&plugin.name).map(|s| s.current());
            let unchanged = match &existing {
                Some(e) if e.ctx.config == *plugin => {
                    component::file_hash(&plugin.component).ok().as_deref() == Some(e.component.hash.as_str())
                        && Secrets::resolve(&plugin.name, &plugin.secrets).ok().as_ref() == Some(&e.ctx.secrets)
                }
                _ => false,
            };
            let instance = match existing {
                Some(e) if unchanged => e,
                // Linked with the generation `commit` gives this config.
                _ => self.load_instance(plugin, trigger, self.config_generation() + 1).await?,
            };
            prepared.push(Prepared { mount: plugin.mount.clone(), instance });
        }
        Ok(prepared)
    }

    /// Swaps prepared instances in and makes their mounts the routing table.
    pub fn commit(&self, prepared: Vec<Prepared>, config: Config) {
        let current = self.registry.table();
        let slots = prepared
            .into_iter()
            .map(|p| {
                let slot = match current.by_name.get(p.instance.name()) {
                    Some(slot) if Arc::ptr_eq(&slot.current(), &p.instance) => slot.clone(),
                    Some(slot) => {
                        slot.swap(p.instance);
                        self.services.metrics.swapped(&slot.name);
                        slot.clone()
                    }
                    None => Slot::new(p.instance),
                };
                (p.mount, slot)
            })
            .collect();
        self.registry.replace(Table::new(slots));
        self.config.store(Arc::new(config));
        self.config_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The generation of the running config: 1 from start-up, one more per config reload.
    pub fn config_generation(&self) -> u64 {
        self.config_generation.load(Ordering::Acquire)
    }

    /// Compiles (or takes from cache), links and checks one instance off the request path.
    /// `generation` is the config generation `plugin` comes from.
    pub async fn load_instance(self: &Arc<Self>, plugin: &PluginConfig, trigger: &str, generation: u64) -> Result<Arc<LoadedInstance>> {
        let secrets = Secrets::resolve(&plugin.name, &plugin.secrets)?;
        let component = self.compile(plugin).await?;
        self.link_checked(plugin, secrets, component, trigger, generation).await
    }

    /// Links an already compiled component with `plugin`'s config (a rollback: the code of
    /// an earlier version, the secrets, hosts, settings and limits in force now).
    pub async fn relink_instance(self: &Arc<Self>, plugin: &PluginConfig, component: LoadedComponent, trigger: &str) -> Result<Arc<LoadedInstance>> {
        let secrets = Secrets::resolve(&plugin.name, &plugin.secrets)?;
        self.link_checked(plugin, secrets, component, trigger, self.config_generation()).await
    }

    async fn link_checked(
        self: &Arc<Self>,
        plugin: &PluginConfig,
        secrets: Secrets,
        component: LoadedComponent,
        trigger: &str,
        generation: u64,
    ) -> Result<Arc<LoadedInstance>> {
        let instance = self.link_instance(plugin, secrets, component, trigger, generation).await?;
        check_grants(plugin, &instance.info)?;
        tracing::info!(
            instance = %plugin.name,
            plugin = %instance.info.name,
            version = %instance.info.version,
            hash = %&instance.component.hash[..12],
            cached = instance.component.from_cache,
            config_generation = instance.config_generation,
            trigger,
            "plugin loaded"
        );
        Ok(Arc::new(instance))
    }

    /// Compiles, links and describes one instance without checking its grants (for
    /// `payhost plugin check`, which reports them instead).
    pub async fn describe_instance(self: &Arc<Self>, plugin: &PluginConfig, secrets: Secrets, trigger: &str) -> Result<LoadedInstance> {
        let component = self.compile(plugin).await?;
        self.link_instance(plugin, secrets, component, trigger, self.config_generation()).await
    }

    /// Compiles `plugin`'s component (or takes it from the on-disk cache) off the async
    /// workers.
    async fn compile(&self, plugin: &PluginConfig) -> Result<LoadedComponent> {
        let name = plugin.name.clone();
        let cache_dir = self.config.load().runtime.cache_dir.clone();
        let engine = self.engine.clone();
        let path = plugin.component.clone();
        tokio::task::spawn_blocking(move || component::load(&engine, &path, &cache_dir))
            .await
            .context("compile task failed")?
            .with_context(|| format!("plugin `{name}`: component {}", plugin.component.display()))
    }

    /// Pre-instantiates `component` against the host's linker with `plugin`'s grants and
    /// asks the plugin to describe itself.
    async fn link_instance(
        self: &Arc<Self>,
        plugin: &PluginConfig,
        secrets: Secrets,
        component: LoadedComponent,
        trigger: &str,
        generation: u64,
    ) -> Result<LoadedInstance> {
        let name = plugin.name.clone();
        let ctx = Arc::new(InstanceContext::new(plugin.clone(), secrets, self.services.clone()));
        let pre = self
            .linkers
            .get(component.contract, component.world)
            .instantiate_pre(&component.component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("plugin `{name}`: the component imports something this host does not provide"))?;
        let pre = match component.world {
            WorldKind::Provider => Pre::Provider {
                pre: ProviderPre::new(component.contract, pre)
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("plugin `{name}`: exports do not match the provider world"))?,
                handle: handle_export(&component).with_context(|| format!("plugin `{name}`"))?,
            },
            WorldKind::PaymentSystem => Pre::PaymentSystem(
                ProcessorPre::new(component.contract, pre)
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("plugin `{name}`: exports do not match the payment-system world"))?,
            ),
        };
        let loaded_at = self.services.clock.now_millis();
        let instance = Arc::new(LoadedInstance {
            ctx,
            component,
            pre,
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                secrets: vec![],
                hosts: vec![],
                host_settings: vec![],
                settings: vec![],
            },
            loaded_at,
            trigger: trigger.to_string(),
            warm: warm::WarmPool::new(plugin.limits.reuse),
            calls: Arc::new(tokio::sync::Semaphore::new(plugin.limits.max_concurrent as usize)),
            config_generation: generation,
        });
        let info = self
            .describe(&instance)
            .await
            .map_err(|e| anyhow::anyhow!("plugin `{name}`: describe() failed: {e}"))?;
        // `run` drops its handle on the instance before it answers.
        let mut instance = Arc::into_inner(instance).context("a described instance is still referenced by its call")?;
        instance.info = info;
        Ok(instance)
    }

    async fn describe(self: &Arc<Self>, instance: &Arc<LoadedInstance>) -> Result<PluginInfo, CallFailure> {
        self.run(instance, "load", |store, inst| {
            Box::pin(async move {
                match &inst.pre {
                    Pre::Provider { pre, handle } => {
                        let wasm = pre.instance_pre().instantiate_async(&mut *store).await?;
                        // `call_handle` calls this export unchecked: its signature is
                        // checked here, once per loaded version.
                        wasm.get_typed_func::<HandleParams<'_>, HandleResults>(&mut *store, handle).map_err(|e| {
                            wasmtime::Error::msg(format!("the `handle` export does not match the provider world: {e}"))
                        })?;
                        pre.bindings(&mut *store, &wasm)?.describe(&mut *store).await
                    }
                    Pre::PaymentSystem(pre) => pre.instantiate_async(&mut *store).await?.describe(&mut *store).await,
                }
            })
        })
        .await
    }

    pub fn next_request_id(&self) -> String {
        format!("{}-{:06}", self.request_prefix, self.request_seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs `f` in a fresh store of `instance` under its deadline: on this task while it is
    /// short, on the plugin threads once it runs long (`pool`).
    async fn run<R, F>(self: &Arc<Self>, instance: &Arc<LoadedInstance>, request_id: &str, f: F) -> Result<R, CallFailure>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Store<PluginState>, &'a LoadedInstance) -> BoxFuture<'a, wasmtime::Result<R>> + Send + 'static,
    {
        let permits = self.call_permits(instance)?;
        let mut store = instance.new_store(&self.engine, request_id, self.clone());
        let deadline = instance.deadline() + HOST_GRACE;
        let inst = instance.clone();
        let move_now = store.data().move_now.clone();
        let result = self
            .pool
            .run(
                move_now,
                async move {
                    let result = match tokio::time::timeout(deadline, f(&mut store, &inst)).await {
                        Err(_) => Err(CallFailure::Deadline),
                        Ok(Err(e)) => Err(CallFailure::from_wasmtime(e)),
                        Ok(Ok(r)) => Ok(r),
                    };
                    // Before the answer, so a caller holding the only other handle on the
                    // instance (`link_instance`) can take it back.
                    drop(store);
                    drop(inst);
                    drop(permits);
                    result
                },
                || self.services.metrics.call_moved(instance.name()),
            )
            .await;
        if let Err(failure) = &result {
            self.services.metrics.call_failure(instance.name(), failure.kind());
        }
        result
    }

    /// A slot of the instance's own limit, then one of the host's: over either the call
    /// is refused at once (503 with `Retry-After`), never queued.
    fn call_permits(&self, instance: &LoadedInstance) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), CallFailure> {
        let Some(own) = instance.call_slot() else {
            self.services.metrics.call_failure(instance.name(), "busy");
            return Err(CallFailure::Busy(format!(
                "instance `{}` is running its limit of {} calls (limits.max_concurrent)",
                instance.name(),
                instance.ctx.config.limits.max_concurrent
            )));
        };
        let Ok(host) = self.calls.clone().try_acquire_owned() else {
            self.services.metrics.call_failure(instance.name(), "unavailable");
            return Err(CallFailure::Busy("the host is running its limit of plugin calls (runtime.max_concurrent_requests)".into()));
        };
        Ok((own, host))
    }

    /// Waits, at most `limit`, until no plugin call is running (every slot of the host's
    /// limit is back); false when some still are. For shutdown, once the listeners have
    /// dropped the requests that outlived the grace: their moved calls are then cancelled
    /// at the next epoch tick, and the process must not exit under them, since their
    /// timers belong to the host's runtime that exiting tears down.
    pub async fn wait_for_calls_to_end(&self, limit: std::time::Duration) -> bool {
        tokio::time::timeout(limit, self.calls.acquire_many(self.call_slots)).await.is_ok_and(|permits| permits.is_ok())
    }

    pub fn current(&self, name: &str) -> Result<Arc<LoadedInstance>, CallFailure> {
        self.registry
            .slot(name)
            .map(|s| s.current())
            .ok_or_else(|| CallFailure::Unavailable(format!("no plugin instance `{name}`")))
    }
}

/// `handle`'s parameters and results in the provider world: the one definition both the
/// load-time type check and the unchecked per-request call use.
pub(crate) type HandleParams<'a> = (&'a Request,);
pub(crate) type HandleResults = (Result<Response, String>,);

/// Where a provider component exports `handle` (found by name; its signature is checked
/// when `describe` first instantiates the component).
fn handle_export(component: &component::LoadedComponent) -> Result<ComponentExportIndex> {
    let interface = format!("{}/plugin@{}", WIT_PACKAGE, component.wit_version);
    component
        .component
        .get_export_index(None, &interface)
        .and_then(|iface| component.component.get_export_index(Some(&iface), "handle"))
        .with_context(|| format!("the component exports no `handle` function in {interface}"))
}

/// Refuses an instance whose plugin needs a secret, host or setting the config does not
/// grant (every such grant named); reports grants the plugin never declared.
fn check_grants(plugin: &PluginConfig, info: &PluginInfo) -> Result<()> {
    let problems = grants::missing(plugin, info);
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    for warning in grants::undeclared(plugin, info) {
        tracing::warn!(instance = %plugin.name, "{warning}");
    }
    Ok(())
}

/// One linker per served contract and world.
struct Linkers {
    provider: Linker<PluginState>,
    payment_system: Linker<PluginState>,
    provider_v0_1: Linker<PluginState>,
    payment_system_v0_1: Linker<PluginState>,
}

impl Linkers {
    fn new(engine: &Engine) -> Result<Self> {
        let with_wasi = |add: fn(&mut Linker<PluginState>) -> wasmtime::Result<()>| -> Result<Linker<PluginState>> {
            let mut linker = Linker::new(engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            add(&mut linker)?;
            Ok(linker)
        };
        Ok(Self {
            provider: with_wasi(|l| Provider::add_to_linker::<PluginState, HasSelf<PluginState>>(l, |s| s))?,
            payment_system: with_wasi(|l| PaymentSystem::add_to_linker::<PluginState, HasSelf<PluginState>>(l, |s| s))?,
            provider_v0_1: with_wasi(|l| since_v0_1::Provider::add_to_linker::<PluginState, HasSelf<PluginState>>(l, |s| s))?,
            payment_system_v0_1: with_wasi(|l| since_v0_1::PaymentSystem::add_to_linker::<PluginState, HasSelf<PluginState>>(l, |s| s))?,
        })
    }

    fn get(&self, contract: Contract, world: WorldKind) -> &Linker<PluginState> {
        match (contract, world) {
            (Contract::V0_2, WorldKind::Provider) => &self.provider,
            (Contract::V0_2, WorldKind::PaymentSystem) => &self.payment_system,
            (Contract::V0_1, WorldKind::Provider) => &self.provider_v0_1,
            (Contract::V0_1, WorldKind::PaymentSystem) => &self.payment_system_v0_1,
        }
    }
}
