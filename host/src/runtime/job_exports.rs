//! The runtime as the job worker's `ExportCaller`: a due timer or a stored payment
//! event becomes a call into the owning instance's current version.

use std::sync::Arc;

use super::Runtime;
use crate::call_failure::CallFailure;
use crate::jobs::janitor::LookupFailure;
use crate::jobs::ExportCaller;
use crate::payments::{event, PaymentSystems};
use crate::storage::{KvWrite, NewPaymentEvent, PaymentEventRow};

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

    async fn lookup_payment(&self, system: &str, external_id: &str) -> Result<NewPaymentEvent, LookupFailure> {
        let request_id = self.0.next_request_id();
        match self.0.clone().lookup(system, &request_id, external_id.to_string()).await {
            Ok(Ok(found)) => Ok(event::to_store(system, found)),
            Ok(Err(e)) => Err(LookupFailure::Refused(format!("payment system `{system}` could not look up {external_id}: {e:?}"))),
            Err(failure) => Err(LookupFailure::Call(failure)),
        }
    }
}
