//! The calls into a loaded instance's exports: a provider's `handle`, `on-timer` and
//! `on-payment-event`, and a payment system's `processor` functions. Each runs in a
//! fresh store through `Runtime::run`, except `handle` of an instance with
//! `limits.reuse` (see `warm`).

use std::sync::Arc;

use futures::future::BoxFuture;
use wasmtime::component::{ComponentExportIndex, TypedFunc};
use wasmtime::Store;

use super::instance::{restart_deadline, LoadedInstance, Pre};
use super::warm::WeakRuntime;
use super::{HandleParams, HandleResults, Runtime, HOST_GRACE};
use crate::call_failure::CallFailure;
use crate::capabilities::state::PluginState;
use crate::storage::KvWrite;
use super::exports::{Processor, ProviderPre};
use crate::wit::payments::PaymentEvent;
use crate::wit::types::{Request, Response};

impl Runtime {
    /// Calls a provider's `handle` export.
    pub async fn call_handle(self: &Arc<Self>, instance: &Arc<LoadedInstance>, request: Request) -> Result<Response, CallFailure> {
        if instance.warm.enabled() {
            return self.call_handle_warm(instance, request).await;
        }
        let id = request.id.clone();
        let result = self
            .run(instance, &id, move |store, inst| {
                Box::pin(async move {
                    let (pre, index) = provider(inst)?;
                    let started = std::time::Instant::now();
                    let wasm = pre.instance_pre().instantiate_async(&mut *store).await?;
                    inst.ctx.services.metrics.instantiated(inst.name(), started.elapsed());
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
        result.map_err(|e| {
            self.services.metrics.call_failure(instance.name(), "plugin-error");
            CallFailure::plugin_error(e)
        })
    }

    /// `handle` in a warm instance of this version (a fresh one when none is idle). Only
    /// a clean answer hands the instance back; after a trap, a deadline, a memory error
    /// or an error result it is dropped with the call.
    async fn call_handle_warm(self: &Arc<Self>, instance: &Arc<LoadedInstance>, request: Request) -> Result<Response, CallFailure> {
        let permits = self.call_permits(instance)?;
        let deadline = instance.deadline();
        let runtime = self.clone();
        let owned = instance.clone();
        let move_now = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = move_now.clone();
        self.pool
            .run(
                move_now,
                async move {
                    let result = runtime.warm_handle(&owned, request, deadline, flag).await;
                    drop(permits);
                    result
                },
                || self.services.metrics.call_moved(instance.name()),
            )
            .await
    }

    /// The body of `call_handle_warm`, on a plugin thread.
    async fn warm_handle(
        self: &Arc<Self>,
        instance: &LoadedInstance,
        request: Request,
        deadline: std::time::Duration,
        move_now: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Response, CallFailure> {
        let call = async {
            let mut warm = match instance.warm.take() {
                Some(mut warm) => {
                    warm.store.data_mut().request_id.clone_from(&request.id);
                    restart_deadline(&mut warm.store, deadline, move_now);
                    warm
                }
                None => {
                    // An idle store must not keep the runtime alive: it reaches payment
                    // systems through a weak handle.
                    let systems = Arc::new(WeakRuntime(Arc::downgrade(self)));
                    let mut store = instance.new_store(&self.engine, &request.id, systems);
                    store.data_mut().move_now = move_now;
                    let (pre, index) = provider(instance)?;
                    let wasm = pre.instance_pre().instantiate_async(&mut store).await?;
                    let func = wasm
                        .get_func(&mut store, index)
                        .ok_or_else(|| wasmtime::Error::msg("the `handle` export vanished from its component"))?;
                    instance.warm.fresh(store, func)
                }
            };
            // SAFETY: as in `call_handle`: `describe` type-checked this export of this
            // component against these types at load.
            let handle = unsafe { TypedFunc::<HandleParams<'_>, HandleResults>::new_unchecked(warm.handle) };
            let (response,) = handle.call_async(&mut warm.store, (&request,)).await?;
            wasmtime::Result::Ok((response, warm))
        };
        match tokio::time::timeout(deadline + HOST_GRACE, call).await {
            Err(_) => Err(CallFailure::Deadline),
            Ok(Err(e)) => Err(CallFailure::from_wasmtime(e)),
            Ok(Ok((Err(message), _retired))) => Err(CallFailure::plugin_error(message)),
            Ok(Ok((Ok(response), warm))) => {
                instance.warm.give_back(warm);
                Ok(response)
            }
        }
    }

    /// Calls a provider's `on-timer` export.
    pub async fn call_on_timer(self: &Arc<Self>, instance_name: &str, name: &str, payload: Vec<u8>) -> Result<(), CallFailure> {
        let instance = self.current(instance_name)?;
        let id = self.next_request_id();
        let name = name.to_string();
        let result = self
            .run(&instance, &id, move |store, inst| {
                Box::pin(async move {
                    let b = provider(inst)?.0.instantiate_async(&mut *store).await?;
                    b.on_timer(&mut *store, &name, &payload).await
                })
            })
            .await?;
        result.map_err(CallFailure::PluginError)
    }

    /// Calls a provider's `on-payment-event` export with its store writes held back:
    /// they are returned for the job worker to commit together with the event's record.
    pub async fn call_on_payment_event(self: &Arc<Self>, provider_name: &str, event: PaymentEvent) -> Result<Vec<KvWrite>, CallFailure> {
        let instance = self.current(provider_name)?;
        let id = self.next_request_id();
        let result = self
            .run(&instance, &id, move |store, inst| {
                Box::pin(async move {
                    store.data_mut().hold_store_writes();
                    let b = provider(inst)?.0.instantiate_async(&mut *store).await?;
                    let accepted = b.on_payment_event(&mut *store, event).await?;
                    let writes = store.data_mut().take_held_writes();
                    Ok(accepted.map(|()| writes))
                })
            })
            .await?;
        result.map_err(CallFailure::PluginError)
    }

    /// Runs `f` against a fresh instance of the payment-system instance `system`.
    pub(super) async fn call_processor<R, F>(self: &Arc<Self>, system: &str, request_id: &str, f: F) -> Result<R, CallFailure>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Store<PluginState>, Processor) -> BoxFuture<'a, wasmtime::Result<R>> + Send + 'static,
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
}

/// A provider's pre-instance and its `handle` export.
fn provider(inst: &LoadedInstance) -> wasmtime::Result<(&ProviderPre, &ComponentExportIndex)> {
    match &inst.pre {
        Pre::Provider { pre, handle } => Ok((pre, handle)),
        Pre::PaymentSystem(_) => Err(wasmtime::Error::msg(format!("instance `{}` is a payment system, not a provider", inst.name()))),
    }
}

