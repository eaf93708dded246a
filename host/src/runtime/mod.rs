//! The plugin runtime: one engine, one linker per world, the registry of loaded
//! instances, and the calls into them (inbound HTTP, timers, payment events, payment
//! systems). Every call runs in a fresh store under the instance's deadline and memory
//! cap; a failing plugin fails only its own call.

pub mod component;
pub mod engine;
pub mod failure;
pub mod instance;
pub mod registry;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use wasmtime::component::{ComponentExportIndex, Linker, TypedFunc};
use wasmtime::{Engine, Store};

use crate::capabilities::bindings::payment_system::{PaymentSystem, PaymentSystemPre};
use crate::capabilities::bindings::payments::PaymentEvent;
use crate::capabilities::bindings::provider::{Provider, ProviderPre};
use crate::capabilities::bindings::types::{PluginInfo, Request, Response};
use crate::capabilities::settings::flatten;
use crate::capabilities::state::{InstanceContext, PluginState, Services};
use crate::capabilities::store::KvBuffer;
use crate::storage::KvWrite;
use crate::config::{Config, PluginConfig};
use crate::secrets::Secrets;
use component::WorldKind;
use failure::CallFailure;
use instance::{LoadedInstance, Pre};
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
    provider_linker: Linker<PluginState>,
    payment_system_linker: Linker<PluginState>,
    pub services: Arc<Services>,
    pub registry: Registry,
    pub config: ArcSwap<Config>,
    calls: Arc<tokio::sync::Semaphore>,
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
        let runtime = Arc::new(Self {
            provider_linker: provider_linker(&engine)?,
            payment_system_linker: payment_system_linker(&engine)?,
            engine,
            services: services.clone(),
            registry: Registry::new(Table::default()),
            config: ArcSwap::from_pointee(config.clone()),
            calls: Arc::new(tokio::sync::Semaphore::new(slots_needed as usize * 2)),
            request_seq: AtomicU64::new(0),
            request_prefix: format!("{:08x}", rand::random::<u32>()),
        });
        let _ = services.runtime.set(Arc::downgrade(&runtime));
        let prepared = runtime.prepare(&config, "startup").await?;
        runtime.commit(prepared, config);
        Ok(runtime)
    }

    /// Loads every instance of `config` off the request path. Nothing is swapped in:
    /// a config with one bad instance is refused whole. Instances whose config and
    /// component are unchanged keep their loaded version.
    pub async fn prepare(&self, config: &Config, trigger: &str) -> Result<Vec<Prepared>> {
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
                _ => self.load_instance(plugin, trigger).await?,
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
                        slot.clone()
                    }
                    None => Slot::new(p.instance),
                };
                (p.mount, slot)
            })
            .collect();
        self.registry.replace(Table::new(slots));
        self.config.store(Arc::new(config));
    }

    /// Compiles (or takes from cache), links and checks one instance off the request path.
    pub async fn load_instance(&self, plugin: &PluginConfig, trigger: &str) -> Result<Arc<LoadedInstance>> {
        let name = plugin.name.clone();
        let secrets = Secrets::resolve(&name, &plugin.secrets)?;
        let cache_dir = self.config.load().runtime.cache_dir.clone();
        let engine = self.engine.clone();
        let path = plugin.component.clone();
        let component = tokio::task::spawn_blocking(move || component::load(&engine, &path, &cache_dir))
            .await
            .context("compile task failed")?
            .with_context(|| format!("plugin `{name}`: component {}", plugin.component.display()))?;
        let ctx = Arc::new(InstanceContext {
            name: name.clone(),
            config: plugin.clone(),
            secrets,
            settings: flatten(&plugin.settings),
            services: self.services.clone(),
        });
        let pre = match component.world {
            WorldKind::Provider => {
                let pre = self
                    .provider_linker
                    .instantiate_pre(&component.component)
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("plugin `{name}`: the component imports something this host does not provide"))?;
                Pre::Provider {
                    pre: ProviderPre::new(pre).map_err(anyhow::Error::from).with_context(|| format!("plugin `{name}`: exports do not match the provider world"))?,
                    handle: handle_export(&component).with_context(|| format!("plugin `{name}`"))?,
                }
            }
            WorldKind::PaymentSystem => {
                let pre = self
                    .payment_system_linker
                    .instantiate_pre(&component.component)
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("plugin `{name}`: the component imports something this host does not provide"))?;
                Pre::PaymentSystem(
                    PaymentSystemPre::new(pre).map_err(anyhow::Error::from).with_context(|| format!("plugin `{name}`: exports do not match the payment-system world"))?,
                )
            }
        };
        let loaded_at = self.services.clock.now_millis();
        let mut instance = LoadedInstance {
            ctx,
            component,
            pre,
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                secrets: vec![],
                hosts: vec![],
                settings: vec![],
            },
            loaded_at,
            trigger: trigger.to_string(),
        };
        let info = self
            .describe(&instance)
            .await
            .map_err(|e| anyhow::anyhow!("plugin `{name}`: describe() failed: {e}"))?;
        check_grants(plugin, &info)?;
        instance.info = info;
        tracing::info!(
            instance = %name,
            plugin = %instance.info.name,
            version = %instance.info.version,
            hash = %&instance.component.hash[..12],
            cached = instance.component.from_cache,
            trigger,
            "plugin loaded"
        );
        Ok(Arc::new(instance))
    }

    async fn describe(&self, instance: &LoadedInstance) -> Result<PluginInfo, CallFailure> {
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
                        let b = Provider::new(&mut *store, &wasm)?;
                        b.payhost_gateway_plugin().call_describe(&mut *store).await
                    }
                    Pre::PaymentSystem(pre) => {
                        let b = pre.instantiate_async(&mut *store).await?;
                        b.payhost_gateway_processor().call_describe(&mut *store).await
                    }
                }
            })
        })
        .await
    }

    pub fn next_request_id(&self) -> String {
        format!("{}-{:06}", self.request_prefix, self.request_seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs `f` in a fresh store of `instance` under its deadline.
    async fn run<R, F>(&self, instance: &LoadedInstance, request_id: &str, f: F) -> Result<R, CallFailure>
    where
        F: for<'a> FnOnce(&'a mut Store<PluginState>, &'a LoadedInstance) -> BoxFuture<'a, wasmtime::Result<R>>,
    {
        let _permit = self
            .calls
            .clone()
            .try_acquire_owned()
            .map_err(|_| CallFailure::Unavailable("too many plugin calls at once".into()))?;
        let mut store = instance.new_store(&self.engine, request_id);
        let deadline = instance.deadline() + HOST_GRACE;
        match tokio::time::timeout(deadline, f(&mut store, instance)).await {
            Err(_) => Err(CallFailure::Deadline),
            Ok(Err(e)) => Err(CallFailure::from_wasmtime(e)),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Calls a provider's `handle` export.
    pub async fn call_handle(&self, instance: &LoadedInstance, request: Request) -> Result<Response, CallFailure> {
        let id = request.id.clone();
        let result = self
            .run(instance, &id, move |store, inst| {
                Box::pin(async move {
                    let (pre, index) = provider(inst)?;
                    let wasm = pre.instance_pre().instantiate_async(&mut *store).await?;
                    let func = wasm
                        .get_func(&mut *store, index)
                        .ok_or_else(|| wasmtime::Error::msg("the `handle` export vanished from its component"))?;
                    // SAFETY: `describe` type-checked this export of this same component
                    // against exactly these parameter and result types at load, before the
                    // version could serve.
                    let handle = unsafe { TypedFunc::<HandleParams<'_>, HandleResults>::new_unchecked(func) };
                    let (response,) = handle.call_async(&mut *store, (&request,)).await?;
                    Ok(response)
                })
            })
            .await?;
        result.map_err(CallFailure::PluginError)
    }

    /// Calls a provider's `on-timer` export.
    pub async fn call_on_timer(&self, instance_name: &str, name: &str, payload: Vec<u8>) -> Result<(), String> {
        let instance = self.current(instance_name).map_err(|e| e.to_string())?;
        let id = self.next_request_id();
        let name = name.to_string();
        let result = self
            .run(&instance, &id, move |store, inst| {
                Box::pin(async move {
                    let b = provider(inst)?.0.instantiate_async(&mut *store).await?;
                    b.payhost_gateway_events().call_on_timer(&mut *store, &name, &payload).await
                })
            })
            .await;
        flatten_result(result)
    }

    /// Calls a provider's `on-payment-event` export with its store writes held back:
    /// they are returned for the job worker to commit together with the event's record.
    pub async fn call_on_payment_event(&self, provider_name: &str, event: PaymentEvent) -> Result<Vec<KvWrite>, String> {
        let instance = self.current(provider_name).map_err(|e| e.to_string())?;
        let id = self.next_request_id();
        let result = self
            .run(&instance, &id, move |store, inst| {
                Box::pin(async move {
                    store.data_mut().kv_buffer = Some(KvBuffer::default());
                    let b = provider(inst)?.0.instantiate_async(&mut *store).await?;
                    let accepted = b.payhost_gateway_events().call_on_payment_event(&mut *store, &event).await?;
                    let writes = store.data_mut().kv_buffer.take().map(KvBuffer::into_writes).unwrap_or_default();
                    Ok(accepted.map(|()| writes))
                })
            })
            .await;
        match result {
            Ok(inner) => inner,
            Err(failure) => Err(failure.to_string()),
        }
    }

    /// Runs `f` against a fresh instance of the payment-system instance `system`.
    pub async fn call_processor<R, F>(&self, system: &str, request_id: &str, f: F) -> Result<R, CallFailure>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Store<PluginState>, PaymentSystem) -> BoxFuture<'a, wasmtime::Result<R>> + Send + 'static,
    {
        let instance = self.current(system)?;
        self.run(&instance, request_id, move |store, inst| {
            Box::pin(async move {
                let Pre::PaymentSystem(pre) = &inst.pre else {
                    return Err(wasmtime::Error::msg(format!("instance `{}` is not a payment system", inst.name())));
                };
                let b = pre.instantiate_async(&mut *store).await?;
                f(store, b).await
            })
        })
        .await
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
type HandleParams<'a> = (&'a Request,);
type HandleResults = (Result<Response, String>,);

/// Where a provider component exports `handle` (found by name; its signature is checked
/// when `describe` first instantiates the component).
fn handle_export(component: &component::LoadedComponent) -> Result<ComponentExportIndex> {
    let interface = format!("{}/plugin@{}", component::WIT_PACKAGE, component.wit_version);
    component
        .component
        .get_export_index(None, &interface)
        .and_then(|iface| component.component.get_export_index(Some(&iface), "handle"))
        .with_context(|| format!("the component exports no `handle` function in {interface}"))
}

/// A provider's pre-instance and its `handle` export.
fn provider(inst: &LoadedInstance) -> wasmtime::Result<(&ProviderPre<PluginState>, &ComponentExportIndex)> {
    match &inst.pre {
        Pre::Provider { pre, handle } => Ok((pre, handle)),
        Pre::PaymentSystem(_) => Err(wasmtime::Error::msg(format!("instance `{}` is a payment system, not a provider", inst.name()))),
    }
}

fn flatten_result(result: Result<Result<(), String>, CallFailure>) -> Result<(), String> {
    match result {
        Ok(inner) => inner,
        Err(failure) => Err(failure.to_string()),
    }
}

/// Refuses an instance whose plugin needs a secret, host or setting the config does not grant.
fn check_grants(plugin: &PluginConfig, info: &PluginInfo) -> Result<()> {
    let name = &plugin.name;
    for secret in &info.secrets {
        if !plugin.secrets.contains_key(secret) {
            bail!(
                "plugin `{name}`: the plugin needs secret `{secret}`, which [plugins.secrets] does not grant; \
                 add `{secret} = {{ env = \"VAR\" }}` (or `file = \"...\"`) to its secrets"
            );
        }
    }
    for host in &info.hosts {
        if !plugin.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            bail!("plugin `{name}`: the plugin needs outbound host `{host}`, which allowed_hosts does not grant; add it to allowed_hosts");
        }
    }
    for setting in info.settings.iter().filter(|s| s.required) {
        if !plugin.settings.contains_key(&setting.name) {
            bail!(
                "plugin `{name}`: the plugin needs setting `{}` ({}); add it under [plugins.settings]",
                setting.name, setting.description
            );
        }
    }
    Ok(())
}

fn provider_linker(engine: &Engine) -> Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Provider::add_to_linker::<PluginState, wasmtime::component::HasSelf<PluginState>>(&mut linker, |s| s)?;
    Ok(linker)
}

fn payment_system_linker(engine: &Engine) -> Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    PaymentSystem::add_to_linker::<PluginState, wasmtime::component::HasSelf<PluginState>>(&mut linker, |s| s)?;
    Ok(linker)
}
