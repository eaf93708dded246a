//! One payment event in its three shapes: as plugins exchange it (`wit`), as a payment
//! system reported it for storage (`NewPaymentEvent`) and as stored for its provider
//! (`PaymentEventRow`). The conversions are total: no status travels as text here.

use crate::storage::{self, NewPaymentEvent, PaymentEventRow};
use crate::wit::payments::{PaymentEvent, PaymentStatus};

impl From<PaymentStatus> for storage::PaymentStatus {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Succeeded => storage::PaymentStatus::Succeeded,
            PaymentStatus::Failed => storage::PaymentStatus::Failed,
            PaymentStatus::Pending => storage::PaymentStatus::Pending,
        }
    }
}

impl From<storage::PaymentStatus> for PaymentStatus {
    fn from(status: storage::PaymentStatus) -> Self {
        match status {
            storage::PaymentStatus::Succeeded => PaymentStatus::Succeeded,
            storage::PaymentStatus::Failed => PaymentStatus::Failed,
            storage::PaymentStatus::Pending => PaymentStatus::Pending,
        }
    }
}

/// The event a payment-system instance `system` reported, ready to store. The system
/// name is the host's (the plugin cannot know the instance name it runs under).
pub fn to_store(system: &str, event: PaymentEvent) -> NewPaymentEvent {
    NewPaymentEvent {
        system: system.to_string(),
        reference: event.reference,
        status: event.status.into(),
        amount: event.amount,
        currency: event.currency,
        external_id: event.external_id,
        saved_method: event.saved_method,
        message: event.message,
    }
}

/// The stored event as its provider's `on-payment-event` receives it.
pub fn for_provider(row: &PaymentEventRow) -> PaymentEvent {
    let e = &row.event;
    PaymentEvent {
        system: e.system.clone(),
        reference: e.reference.clone(),
        status: e.status.into(),
        amount: e.amount.clone(),
        currency: e.currency.clone(),
        external_id: e.external_id.clone(),
        saved_method: e.saved_method.clone(),
        message: e.message.clone(),
    }
}
