//! Connects the job workers to the wasm runtime: a due timer or a stored payment event
//! becomes a call into the owning instance's current version.

use std::sync::{Arc, Weak};

use crate::capabilities::bindings::payments::{PaymentEvent, PaymentStatus};
use crate::jobs::ExportCaller;
use crate::runtime::Runtime;
use crate::storage::{KvWrite, PaymentEventRow};

pub struct RuntimeCaller(Weak<Runtime>);

impl RuntimeCaller {
    pub fn new(runtime: &Arc<Runtime>) -> Self {
        Self(Arc::downgrade(runtime))
    }

    fn runtime(&self) -> Result<Arc<Runtime>, String> {
        self.0.upgrade().ok_or_else(|| "the host is shutting down".to_string())
    }
}

#[async_trait::async_trait]
impl ExportCaller for RuntimeCaller {
    async fn on_timer(&self, instance: &str, name: &str, payload: Vec<u8>) -> Result<(), String> {
        self.runtime()?.call_on_timer(instance, name, payload).await
    }

    async fn on_payment_event(&self, row: &PaymentEventRow) -> Result<Vec<KvWrite>, String> {
        let status = match row.status.as_str() {
            "succeeded" => PaymentStatus::Succeeded,
            "failed" => PaymentStatus::Failed,
            "pending" => PaymentStatus::Pending,
            other => return Err(format!("stored event has unknown status `{other}`")),
        };
        let event = PaymentEvent {
            system: row.system.clone(),
            reference: row.reference.clone(),
            status,
            amount: row.amount.clone(),
            currency: row.currency.clone(),
            external_id: row.external_id.clone(),
            saved_method: row.saved_method.clone(),
            message: row.message.clone(),
        };
        self.runtime()?.call_on_payment_event(&row.provider, event).await
    }
}
