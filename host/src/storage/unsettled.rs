//! Payments whose outcome the host has not heard: a hosted checkout or an off-session
//! charge that the payment system has an id for, but no final payment event yet. The
//! janitor looks these up at the payment system; the rows here remember what it found
//! and when to ask again.

use async_trait::async_trait;
use serde::Serialize;

use super::StorageResult;

/// A hosted checkout (buyer on the payment system's page) or an off-session charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentKind {
    Checkout,
    Charge,
}

impl PaymentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentKind::Checkout => "checkout",
            PaymentKind::Charge => "charge",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "checkout" => Some(PaymentKind::Checkout),
            "charge" => Some(PaymentKind::Charge),
            _ => None,
        }
    }
}

/// One registered checkout or charge and what the janitor knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackedPayment {
    pub system: String,
    pub reference: String,
    pub provider: String,
    /// `None` for rows registered before the payment system answered (or never did).
    pub kind: Option<PaymentKind>,
    /// The payment system's id to look up (`cs_…`, `pi_…`).
    pub external_id: Option<String>,
    pub created_at: i64,
    pub lookups: u32,
    pub last_lookup_at: Option<i64>,
    pub next_lookup_at: i64,
    pub last_error: Option<String>,
    pub settled_at: Option<i64>,
    /// `event` (a webhook or charge result), `lookup` (the janitor), `charge` (final at
    /// charge time).
    pub settled_by: Option<String>,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupResult {
    /// A final outcome was stored as a payment event.
    Settled,
    /// Still pending at the payment system: ask again at `next_at`.
    Pending { next_at: i64 },
    /// The lookup failed: ask again at `next_at`.
    Failed { next_at: i64, error: String },
}

#[async_trait]
pub trait UnsettledStore: Send + Sync {
    /// The payment system answered a checkout or charge with this id and no final outcome.
    async fn payment_started(&self, system: &str, reference: &str, kind: PaymentKind, external_id: &str) -> StorageResult<()>;
    /// The payment reached a final outcome outside the janitor (`by`: `charge`).
    async fn payment_settled(&self, system: &str, reference: &str, by: &str, now: i64) -> StorageResult<()>;
    /// Marks settled every open payment that has a final event, then leases up to `limit`
    /// open payments created at or before `created_before` and due for a lookup at `now`
    /// (their next lookup moves to `lease_until`, so another host skips them).
    async fn unsettled_claim(&self, created_before: i64, now: i64, lease_until: i64, limit: u32) -> StorageResult<Vec<TrackedPayment>>;
    /// Records a lookup's result.
    async fn unsettled_record(&self, system: &str, reference: &str, result: &LookupResult, now: i64) -> StorageResult<()>;
    /// Tracked payments, open ones first, then newest first.
    async fn tracked_payments(&self, open_only: bool, limit: u32) -> StorageResult<Vec<TrackedPayment>>;
}
