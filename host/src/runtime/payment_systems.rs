//! The runtime as `crate::payments::PaymentSystems`: each call runs the payment-system
//! instance's `processor` export in a fresh store.

use std::sync::Arc;

use async_trait::async_trait;

use super::Runtime;
use crate::payments::{PaymentSystems, ProcessorResult};
use crate::wit::payment_system::exports::payhost::gateway::processor::Webhook;
use crate::wit::payments::{ChargeRequest, Checkout, CheckoutRequest, PaymentEvent, RefundResult};
use crate::wit::types::Request;

#[async_trait]
impl PaymentSystems for Runtime {
    async fn start_checkout(self: Arc<Self>, system: &str, request_id: &str, req: CheckoutRequest) -> ProcessorResult<Checkout> {
        self.call_processor(system, request_id, move |store, ps| {
            Box::pin(async move { ps.start_checkout(store, req).await })
        })
        .await
    }

    async fn charge(self: Arc<Self>, system: &str, request_id: &str, req: ChargeRequest) -> ProcessorResult<PaymentEvent> {
        self.call_processor(system, request_id, move |store, ps| {
            Box::pin(async move { ps.charge(store, req).await })
        })
        .await
    }

    async fn lookup(self: Arc<Self>, system: &str, request_id: &str, external_id: String) -> ProcessorResult<PaymentEvent> {
        self.call_processor(system, request_id, move |store, ps| {
            Box::pin(async move { ps.lookup_payment(store, &external_id).await })
        })
        .await
    }

    async fn refund(self: Arc<Self>, system: &str, request_id: &str, external_id: String, amount: Option<String>) -> ProcessorResult<RefundResult> {
        self.call_processor(system, request_id, move |store, ps| {
            Box::pin(async move { ps.refund(store, &external_id, amount.as_deref()).await })
        })
        .await
    }

    async fn parse_webhook(self: Arc<Self>, system: &str, request: Request) -> ProcessorResult<Webhook> {
        let request_id = request.id.clone();
        self.call_processor(system, &request_id, move |store, ps| {
            Box::pin(async move { ps.parse_webhook(store, request).await })
        })
        .await
    }
}
