//! Operator control of durable jobs: run one now, or cancel it, and the counts the
//! metrics show. A job another host is working on (its lease has not run out) is left
//! alone: its attempt is already under way and cannot be taken back.

use async_trait::async_trait;
use serde::Serialize;

use super::{DeliveryRow, JobState, StorageResult};

/// One job, by kind and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRef {
    Delivery(String),
    Timer(i64),
    Event(i64),
}

impl JobRef {
    pub fn kind(&self) -> &'static str {
        match self {
            JobRef::Delivery(_) => "delivery",
            JobRef::Timer(_) => "timer",
            JobRef::Event(_) => "event",
        }
    }

    pub fn id(&self) -> String {
        match self {
            JobRef::Delivery(id) => id.clone(),
            JobRef::Timer(id) | JobRef::Event(id) => id.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// Due now: a pending job's wait is cut short; a failed (given-up) delivery or
    /// event gets one more attempt.
    RetryNow,
    /// Never run: a delivery or event becomes `cancelled`, a timer is removed.
    Cancel,
}

impl JobAction {
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::RetryNow => "retry",
            JobAction::Cancel => "cancel",
        }
    }
}

/// What a control action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlOutcome {
    /// Carried out; the job's state now.
    Applied { state: String },
    NotFound,
    /// A host holds the job's lease (an attempt is running) until this time.
    Busy { leased_until: i64 },
    /// The job already ended (`done` or `cancelled`): nothing to retry or cancel.
    Ended { state: String },
}

/// How many jobs of one kind are in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobCount {
    /// `delivery`, `timer`, `event`.
    pub kind: &'static str,
    /// Job state (`pending`, `done`, `failed`, `cancelled`; timers: `scheduled`).
    pub state: String,
    pub count: u64,
    /// Due time of the longest-waiting job of this kind and state that is due at `now`.
    pub oldest_due_at: Option<i64>,
}

#[async_trait]
pub trait JobControlStore: Send + Sync {
    /// Applies `action` to `job` unless it is leased or has ended, in one statement.
    async fn job_control(&self, job: &JobRef, action: JobAction, now: i64) -> StorageResult<ControlOutcome>;
    /// Deliveries in `state` (any when `None`), newest first.
    async fn delivery_list_in(&self, instance: Option<&str>, state: Option<JobState>, limit: u32) -> StorageResult<Vec<DeliveryRow>>;
    /// Counts per kind and state, with the oldest due time among those due at `now`.
    async fn job_counts(&self, now: i64) -> StorageResult<Vec<JobCount>>;
}
