//! The runtime as the job worker's `ExportCaller`: a due timer or a stored payment
//! event becomes a call into the owning instance's current version.

use std::sync::Arc;

use super::Runtime;
use crate::call_failure::CallFailure;
use crate::jobs::ExportCaller;
use crate::payments::event;
use crate::storage::{KvWrite, PaymentEventRow};

/// The runtime, for the job worker (which the runtime does not hold: no cycle).
pub struct RuntimeCaller(pub Arc<Runtime>);

#[async_trait::async_trait]
impl ExportCaller for RuntimeCaller {
    async fn on_timer(&self, instance: &str, name: &str, payload: Vec<u8>) -> Result<(), CallFailure> {
        self.0.call_on_timer(instance, name, payload).await
    }

    async fn on_payment_event(&self, row: &PaymentEventRow) -> Result<Vec<KvWrite>, CallFailure> {
        self.0.call_on_payment_event(&row.provider, event::for_provider(row)).await
    }
}
