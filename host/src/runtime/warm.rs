//! Warm instances, opt-in per instance with `limits.reuse = N`: a provider instance
//! serves up to N `handle` calls one after another instead of a fresh one per call, which
//! saves the instantiation and the memory reset that dominate a short request.
//!
//! What persists from one request to the next is everything the guest keeps in its
//! linear memory (statics, heap, lazily built caches) and its WASI state; the host side
//! (request id, deadline) is set afresh for every call. An instance is retired at once,
//! never to serve again, after anything but a clean answer: a trap, a deadline, a memory
//! error or an error result. The pool belongs to one loaded version of one instance, so
//! a warm instance is never shared between instances or across a swap; a swapped-out
//! version's idle instances are dropped at the swap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use wasmtime::component::Func;
use wasmtime::Store;

use super::Runtime;
use crate::call_failure::CallFailure;
use crate::capabilities::state::PluginState;
use crate::payments::{PaymentSystems, ProcessorResult};
use crate::wit::payment_system::exports::payhost::gateway::processor::Webhook;
use crate::wit::payments::{ChargeRequest, Checkout, CheckoutRequest, PaymentEvent, RefundResult};
use crate::wit::types::Request;

/// Most idle warm instances one version keeps; more are dropped when they finish, so a
/// burst does not pin pool slots other instances need.
pub const MAX_IDLE: usize = 64;

/// An instantiated provider and its `handle` export, with the calls it has served.
pub struct Warm {
    pub store: Store<PluginState>,
    pub handle: Func,
    served: u32,
    /// The pool's generation when this instance was made: one made before the version
    /// was swapped out never comes back, even if the version is rolled back to.
    generation: u64,
}

/// Idle warm instances of one loaded version.
pub struct WarmPool {
    /// Calls one instance serves before it is retired; 1 disables reuse.
    reuse: u32,
    idle: Mutex<Vec<Warm>>,
    generation: AtomicU64,
}

impl WarmPool {
    pub fn new(reuse: u32) -> Self {
        Self { reuse: reuse.max(1), idle: Mutex::new(Vec::new()), generation: AtomicU64::new(0) }
    }

    /// Wraps a freshly instantiated provider for this pool.
    pub fn fresh(&self, store: Store<PluginState>, handle: Func) -> Warm {
        Warm { store, handle, served: 0, generation: self.generation.load(Ordering::Acquire) }
    }

    /// Whether calls of this version reuse instances at all.
    pub fn enabled(&self) -> bool {
        self.reuse > 1
    }

    /// An idle instance that has served fewer than `reuse` calls, if any.
    pub fn take(&self) -> Option<Warm> {
        self.idle.lock().expect("warm pool lock").pop()
    }

    /// Hands back an instance that just answered cleanly; it is dropped when it has
    /// served its `reuse` calls, or when the pool is full.
    pub fn give_back(&self, mut warm: Warm) {
        warm.served += 1;
        if warm.served >= self.reuse {
            return;
        }
        let mut idle = self.idle.lock().expect("warm pool lock");
        // Checked under the lock `clear` takes, so a call that finishes during a swap
        // cannot slip its instance back in after the pool was emptied.
        if idle.len() < MAX_IDLE && warm.generation == self.generation.load(Ordering::Acquire) {
            idle.push(warm);
        }
    }

    /// Drops every idle instance and refuses those still serving (the version was
    /// swapped out).
    pub fn clear(&self) {
        let drained = {
            let mut idle = self.idle.lock().expect("warm pool lock");
            self.generation.fetch_add(1, Ordering::AcqRel);
            std::mem::take(&mut *idle)
        };
        // The stores drop after the lock is released.
        drop(drained);
    }
}

/// The runtime as a warm store's payment systems, held weakly: an idle warm instance
/// lives in its version's pool, which the runtime owns, so a strong handle would keep
/// the runtime (and its engine) alive for ever.
pub struct WeakRuntime(pub Weak<Runtime>);

impl WeakRuntime {
    fn runtime(&self) -> Result<Arc<Runtime>, CallFailure> {
        self.0.upgrade().ok_or_else(|| CallFailure::Unavailable("the host is shutting down".into()))
    }
}

#[async_trait]
impl PaymentSystems for WeakRuntime {
    async fn start_checkout(self: Arc<Self>, system: &str, request_id: &str, req: CheckoutRequest) -> ProcessorResult<Checkout> {
        self.runtime()?.start_checkout(system, request_id, req).await
    }

    async fn charge(self: Arc<Self>, system: &str, request_id: &str, req: ChargeRequest) -> ProcessorResult<PaymentEvent> {
        self.runtime()?.charge(system, request_id, req).await
    }

    async fn lookup(self: Arc<Self>, system: &str, request_id: &str, external_id: String) -> ProcessorResult<PaymentEvent> {
        self.runtime()?.lookup(system, request_id, external_id).await
    }

    async fn refund(self: Arc<Self>, system: &str, request_id: &str, external_id: String, amount: Option<String>) -> ProcessorResult<RefundResult> {
        self.runtime()?.refund(system, request_id, external_id, amount).await
    }

    async fn parse_webhook(self: Arc<Self>, system: &str, request: Request) -> ProcessorResult<Webhook> {
        self.runtime()?.parse_webhook(system, request).await
    }
}
