//! Calls into a component's exports, whichever served contract it was built against.
//!
//! The rest of the host speaks the current contract's types only; a component built
//! against an older one is called through that version's bindings in `crate::wit`.

use wasmtime::component::{Instance, InstancePre};
use wasmtime::Store;

use crate::capabilities::state::PluginState;
use crate::wit::latest::payments::{ChargeRequest, Checkout, CheckoutRequest, Error, PaymentEvent, RefundResult};
use crate::wit::latest::processor::Webhook;
use crate::wit::latest::types::{PluginInfo, Request};
use crate::wit::latest::{payment_system, provider};
use crate::wit::{since_v0_1, Contract};

/// A provider component pre-instantiated against its contract's linker.
pub enum ProviderPre {
    V0_2(provider::ProviderPre<PluginState>),
    V0_1(since_v0_1::ProviderPre<PluginState>),
}

/// One instance's provider exports.
pub enum Provider {
    V0_2(provider::Provider),
    V0_1(since_v0_1::Provider),
}

impl ProviderPre {
    /// Finds the world's exports; fails when the component does not export them.
    pub fn new(contract: Contract, pre: InstancePre<PluginState>) -> wasmtime::Result<Self> {
        Ok(match contract {
            Contract::V0_2 => Self::V0_2(provider::ProviderPre::new(pre)?),
            Contract::V0_1 => Self::V0_1(since_v0_1::ProviderPre::new(pre)?),
        })
    }

    pub fn instance_pre(&self) -> &InstancePre<PluginState> {
        match self {
            Self::V0_2(p) => p.instance_pre(),
            Self::V0_1(p) => p.instance_pre(),
        }
    }

    pub async fn instantiate_async(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Provider> {
        Ok(match self {
            Self::V0_2(p) => Provider::V0_2(p.instantiate_async(store).await?),
            Self::V0_1(p) => Provider::V0_1(p.instantiate_async(store).await?),
        })
    }

    /// The exports of an instance already made from this pre-instance.
    pub fn bindings(&self, store: &mut Store<PluginState>, instance: &Instance) -> wasmtime::Result<Provider> {
        Ok(match self {
            Self::V0_2(_) => Provider::V0_2(provider::Provider::new(store, instance)?),
            Self::V0_1(_) => Provider::V0_1(since_v0_1::Provider::new(store, instance)?),
        })
    }
}

impl Provider {
    pub async fn describe(&self, store: &mut Store<PluginState>) -> wasmtime::Result<PluginInfo> {
        match self {
            Self::V0_2(b) => b.payhost_gateway_plugin().call_describe(store).await,
            Self::V0_1(b) => since_v0_1::describe_provider(b, store).await,
        }
    }

    pub async fn on_timer(&self, store: &mut Store<PluginState>, name: &str, payload: &[u8]) -> wasmtime::Result<Result<(), String>> {
        match self {
            Self::V0_2(b) => b.payhost_gateway_events().call_on_timer(store, name, payload).await,
            Self::V0_1(b) => since_v0_1::on_timer(b, store, name, payload).await,
        }
    }

    pub async fn on_payment_event(&self, store: &mut Store<PluginState>, event: PaymentEvent) -> wasmtime::Result<Result<(), String>> {
        match self {
            Self::V0_2(b) => b.payhost_gateway_events().call_on_payment_event(store, &event).await,
            Self::V0_1(b) => since_v0_1::on_payment_event(b, store, event).await,
        }
    }
}

/// A payment-system component pre-instantiated against its contract's linker.
pub enum ProcessorPre {
    V0_2(payment_system::PaymentSystemPre<PluginState>),
    V0_1(since_v0_1::PaymentSystemPre<PluginState>),
}

/// One instance's `processor` export.
pub enum Processor {
    V0_2(payment_system::PaymentSystem),
    V0_1(since_v0_1::Processor),
}

impl ProcessorPre {
    pub fn new(contract: Contract, pre: InstancePre<PluginState>) -> wasmtime::Result<Self> {
        Ok(match contract {
            Contract::V0_2 => Self::V0_2(payment_system::PaymentSystemPre::new(pre)?),
            Contract::V0_1 => Self::V0_1(since_v0_1::PaymentSystemPre::new(pre)?),
        })
    }

    pub async fn instantiate_async(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Processor> {
        Ok(match self {
            Self::V0_2(p) => Processor::V0_2(p.instantiate_async(store).await?),
            Self::V0_1(p) => Processor::V0_1(since_v0_1::Processor(p.instantiate_async(store).await?)),
        })
    }
}

impl Processor {
    pub async fn describe(&self, store: &mut Store<PluginState>) -> wasmtime::Result<PluginInfo> {
        match self {
            Self::V0_2(b) => b.payhost_gateway_processor().call_describe(store).await,
            Self::V0_1(p) => p.describe(store).await,
        }
    }

    pub async fn start_checkout(&self, store: &mut Store<PluginState>, req: CheckoutRequest) -> wasmtime::Result<Result<Checkout, Error>> {
        match self {
            Self::V0_2(b) => b.payhost_gateway_processor().call_start_checkout(store, &req).await,
            Self::V0_1(p) => p.start_checkout(store, req).await,
        }
    }

    pub async fn parse_webhook(&self, store: &mut Store<PluginState>, req: Request) -> wasmtime::Result<Result<Webhook, Error>> {
        match self {
            Self::V0_2(b) => b.payhost_gateway_processor().call_parse_webhook(store, &req).await,
            Self::V0_1(p) => p.parse_webhook(store, req).await,
        }
    }

    pub async fn lookup_payment(&self, store: &mut Store<PluginState>, external_id: &str) -> wasmtime::Result<Result<PaymentEvent, Error>> {
        match self {
            Self::V0_2(b) => b.payhost_gateway_processor().call_lookup_payment(store, external_id).await,
            Self::V0_1(p) => p.lookup_payment(store, external_id).await,
        }
    }

    pub async fn charge(&self, store: &mut Store<PluginState>, req: ChargeRequest) -> wasmtime::Result<Result<PaymentEvent, Error>> {
        match self {
            Self::V0_2(b) => b.payhost_gateway_processor().call_charge(store, &req).await,
            Self::V0_1(p) => p.charge(store, req).await,
        }
    }

    pub async fn refund(
        &self,
        store: &mut Store<PluginState>,
        external_id: &str,
        amount: Option<&str>,
    ) -> wasmtime::Result<Result<RefundResult, Error>> {
        match self {
            Self::V0_2(b) => b.payhost_gateway_processor().call_refund(store, external_id, amount).await,
            Self::V0_1(p) => p.refund(store, external_id, amount).await,
        }
    }
}
