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
    PaymentEvent {
        system: row.system.clone(),
        reference: row.reference.clone(),
        status: row.status.into(),
        amount: row.amount.clone(),
        currency: row.currency.clone(),
        external_id: row.external_id.clone(),
        saved_method: row.saved_method.clone(),
        message: row.message.clone(),
    }
}
