//! The calls into a loaded instance's exports: a provider's `handle`, `on-timer` and
//! `on-payment-event`, and a payment system's `processor` functions. Each runs in a
//! fresh store through `Runtime::run`.

use std::sync::Arc;

use futures::future::BoxFuture;
use wasmtime::component::{ComponentExportIndex, TypedFunc};
use wasmtime::Store;

use super::instance::{LoadedInstance, Pre};
use super::{HandleParams, HandleResults, Runtime};
use crate::call_failure::CallFailure;
use crate::capabilities::state::PluginState;
use crate::storage::KvWrite;
use super::exports::{Processor, ProviderPre};
use crate::wit::payments::PaymentEvent;
use crate::wit::types::{Request, Response};

impl Runtime {
    /// Calls a provider's `handle` export.
    pub async fn call_handle(self: &Arc<Self>, instance: &LoadedInstance, request: Request) -> Result<Response, CallFailure> {
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

