//! Payment checkouts (which provider owns a reference) and the payment events stored for
//! providers, handed over under a lease like the other jobs.

use async_trait::async_trait;
use serde::Serialize;

use super::{JobState, KvWrite, Lease, StorageResult};

/// How a payment stands, as its payment system reported it; stored as lowercase text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Succeeded,
    Failed,
    Pending,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Pending => "pending",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "succeeded" => Some(PaymentStatus::Succeeded),
            "failed" => Some(PaymentStatus::Failed),
            "pending" => Some(PaymentStatus::Pending),
            _ => None,
        }
    }
}

/// A normalised payment event waiting for (or delivered to) its provider instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentEventRow {
    pub id: i64,
    /// Provider instance that started the checkout.
    pub provider: String,
    /// The event as the payment system reported it.
    #[serde(flatten)]
    pub event: NewPaymentEvent,
    pub state: JobState,
    pub attempts: u32,
    pub next_at: i64,
    pub last_error: Option<String>,
}

/// A payment event as a payment system reported it (what is stored; a row adds the
/// provider and the hand-over's progress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewPaymentEvent {
    pub system: String,
    pub reference: String,
    pub status: PaymentStatus,
    pub amount: String,
    pub currency: String,
    pub external_id: String,
    pub saved_method: Option<String>,
    pub message: Option<String>,
}

#[async_trait]
pub trait PaymentEventStore: Send + Sync {
    /// Remembers which provider instance started the checkout `(system, reference)`.
    /// The first registration wins: a later one for the same pair never redirects the
    /// checkout's events to another instance.
    async fn checkout_register(&self, system: &str, reference: &str, provider: &str, at: i64) -> StorageResult<()>;
    async fn checkout_provider(&self, system: &str, reference: &str) -> StorageResult<Option<String>>;
    /// Stores the event for delivery to `provider`, once per
    /// `(system, external_id, status)`; returns its id and whether it was new.
    async fn event_ingest(&self, provider: &str, event: &NewPaymentEvent, now: i64) -> StorageResult<(i64, bool)>;
    async fn event_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<PaymentEventRow>>;
    /// Like `delivery_record`: counts the attempt, releases the lease, ignored when lost.
    async fn event_record(&self, id: i64, lease: &Lease, state: JobState, error: Option<&str>, next_at: i64) -> StorageResult<()>;
    /// In one transaction: checks the lease is still held and every `Expect` holds, applies
    /// the writes to namespace `ns`, and marks the event done. Returns false (nothing
    /// written) when the lease was lost or an expectation failed.
    async fn event_complete(&self, id: i64, lease: &Lease, ns: &str, writes: &[KvWrite]) -> StorageResult<bool>;
    /// Newest first.
    async fn event_list(&self, provider: Option<&str>, limit: u32) -> StorageResult<Vec<PaymentEventRow>>;
}
