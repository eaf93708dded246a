//! Durable jobs the host runs itself: timers and outbound deliveries, claimed under a
//! lease so several hosts on one database never run the same job at once.

use async_trait::async_trait;
use serde::Serialize;

use super::StorageResult;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerRow {
    /// Changes whenever the timer is (re)scheduled, so completing a fired timer never
    /// deletes the schedule its handler just set.
    pub id: i64,
    pub instance: String,
    pub name: String,
    pub due_at: i64,
    pub payload: Vec<u8>,
    /// Failed attempts so far at this schedule.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Set while a host holds the timer (it is firing or that host died mid-fire).
    pub leased_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Done,
    Failed,
    /// Stopped by an operator: never attempted again.
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(JobState::Pending),
            "done" => Some(JobState::Done),
            "failed" => Some(JobState::Failed),
            "cancelled" => Some(JobState::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    pub id: String,
    pub instance: String,
    pub key: String,
    pub request: DeliveryRequest,
    pub state: JobState,
    pub attempts: u32,
    pub next_at: i64,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    pub created_at: i64,
}

/// A claim on a job row: who holds it and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

#[async_trait]
pub trait JobStore: Send + Sync {
    // ---- timers ----
    /// Sets or replaces the instance's timer `name` (a pending one is rescheduled).
    async fn timer_upsert(&self, instance: &str, name: &str, due_at: i64, payload: &[u8]) -> StorageResult<()>;
    async fn timer_cancel(&self, instance: &str, name: &str) -> StorageResult<bool>;
    /// Up to `limit` timers due at `now`, leased to `lease.owner` until `lease.until`.
    async fn timer_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<TimerRow>>;
    /// Deletes the fired timer, unless it was rescheduled meanwhile (then it stays, with
    /// its new time) or the lease was lost.
    async fn timer_complete(&self, timer: &TimerRow, lease: &Lease) -> StorageResult<()>;
    /// Releases the lease, counts the failed attempt and sets the next attempt time.
    async fn timer_retry(&self, timer: &TimerRow, lease: &Lease, next_at: i64, error: &str) -> StorageResult<()>;
    /// Soonest first.
    async fn timer_list(&self, instance: Option<&str>, limit: u32) -> StorageResult<Vec<TimerRow>>;

    // ---- outbound deliveries ----
    /// Enqueues once per `(instance, key)`; returns the delivery id (the first one's
    /// when the key was used before).
    async fn delivery_enqueue(&self, instance: &str, key: &str, req: &DeliveryRequest, now: i64) -> StorageResult<String>;
    async fn delivery_claim_due(&self, now: i64, lease: &Lease, limit: u32) -> StorageResult<Vec<DeliveryRow>>;
    /// Records an attempt (counting it) and releases the lease: `done` when delivered,
    /// `pending` with `next_at` for the next try, or `failed` when attempts reached the
    /// limit. Ignored when the lease was lost (another host owns the row now).
    async fn delivery_record(&self, id: &str, lease: &Lease, state: JobState, status: Option<u16>, error: Option<&str>, next_at: i64) -> StorageResult<()>;
    /// Newest first.
    async fn delivery_list(&self, instance: Option<&str>, limit: u32) -> StorageResult<Vec<DeliveryRow>>;
}
