//! The payment path, in one place: a provider's checkout reaches a payment-system
//! plugin (or the built-in balance method) under a reference the host records as the
//! provider's; the payment system's webhook becomes normalised events stored for that
//! provider; the job worker hands each event to the provider. The status stays typed
//! (`wit::payments::PaymentStatus` at the plugin edge, `storage::PaymentStatus` in a
//! row) the whole way.
//!
//! This module never calls wasm itself: it reaches payment-system plugins through
//! [`PaymentSystems`], which the runtime implements.

pub mod balance;
pub mod event;
pub mod ownership;
pub mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;

use crate::call_failure::CallFailure;
use crate::wit::payment_system::exports::payhost::gateway::processor::Webhook;
use crate::wit::payments::{ChargeRequest, Checkout, CheckoutRequest, Error, PaymentEvent, RefundResult};
use crate::wit::types::Request;

/// A call into a payment-system instance's `processor` exports: `Err` when the call
/// itself failed (no such instance, trap, deadline), `Ok(Err)` when the plugin answered
/// with an error of the contract.
pub type ProcessorResult<T> = Result<Result<T, Error>, CallFailure>;

/// The payment-system instances, as the host's checkout and webhook code sees them.
/// `system` names the instance; `request_id` is the id of the call that leads here.
/// Calls take the handle by `Arc`: each runs in a fresh store that holds it again, for
/// the payment system's own imports.
#[async_trait]
pub trait PaymentSystems: Send + Sync {
    async fn start_checkout(self: Arc<Self>, system: &str, request_id: &str, req: CheckoutRequest) -> ProcessorResult<Checkout>;
    async fn charge(self: Arc<Self>, system: &str, request_id: &str, req: ChargeRequest) -> ProcessorResult<PaymentEvent>;
    async fn lookup(self: Arc<Self>, system: &str, request_id: &str, external_id: String) -> ProcessorResult<PaymentEvent>;
    async fn refund(self: Arc<Self>, system: &str, request_id: &str, external_id: String, amount: Option<String>) -> ProcessorResult<RefundResult>;
    async fn parse_webhook(self: Arc<Self>, system: &str, request: Request) -> ProcessorResult<Webhook>;
}
