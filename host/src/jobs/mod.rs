//! The durable job workers: fire due timers, send outbound deliveries and hand payment
//! events to the provider instance that started the checkout, each retried with backoff
//! on the host clock; and the janitor, which looks up payments whose outcome never
//! arrived. Independent of wasm: the plugin side is behind `ExportCaller`.
//!
//! Several hosts may run workers on one database. Each worker leases what it claims
//! under its own random owner id, and records results only while it still holds the
//! lease, so a job runs on one host at a time; a host that dies mid-job leaves a lease
//! that expires and the job is run again (handlers must be idempotent, as the WIT says).

pub mod backoff;
mod deliveries;
mod events;
pub mod janitor;
mod timers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::call_failure::CallFailure;
use crate::clock::HostClock;
use crate::metrics::Metrics;
use crate::storage::{JobState, KvWrite, Lease, NewPaymentEvent, PaymentEventRow, Storage, StorageResult};

/// The plugin exports a job ends in. An unknown instance is an `Err` (retried later:
/// the instance may be back after a config reload).
#[async_trait]
pub trait ExportCaller: Send + Sync {
    async fn on_timer(&self, instance: &str, name: &str, payload: Vec<u8>) -> Result<(), CallFailure>;
    /// On success, the provider's store writes, which the worker commits together with
    /// marking the event done.
    async fn on_payment_event(&self, row: &PaymentEventRow) -> Result<Vec<KvWrite>, CallFailure>;
    /// Asks payment-system instance `system` for the payment `external_id` as it stands.
    async fn lookup_payment(&self, system: &str, external_id: &str) -> Result<NewPaymentEvent, janitor::LookupFailure>;
}

/// One kind of durable job, as the worker's claim-and-run loop sees it: how to claim a
/// batch of due jobs under a lease, and how to run one claimed job to its recorded end.
trait JobKind {
    type Job: Send + 'static;
    /// Plural, for logs: `timers`, `deliveries`, `payment events`.
    const NAME: &'static str;
    fn claim(worker: &JobWorker, now: i64, lease: &Lease) -> impl std::future::Future<Output = StorageResult<Vec<Self::Job>>> + Send;
    /// Runs the job and records the outcome (done, retry, failed) while the lease holds.
    fn run(worker: &JobWorker, job: Self::Job, lease: &Lease) -> impl std::future::Future<Output = ()> + Send;
}

/// Claims one batch of `K` and runs each job in its own task; returns how many it claimed.
async fn claim_and_run<K: JobKind>(worker: &Arc<JobWorker>) -> usize {
    let now = worker.clock.now_millis();
    let lease = worker.lease(now);
    let due = match K::claim(worker, now, &lease).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "could not claim due {}", K::NAME);
            return 0;
        }
    };
    run_all(due, |job| {
        let (worker, lease) = (worker.clone(), lease.clone());
        async move { K::run(&worker, job, &lease).await }
    })
    .await
}

#[derive(Debug, Clone)]
pub struct JobConfig {
    /// How often the worker looks for due work when nobody wakes it.
    pub poll_interval: Duration,
    /// How long a claimed job stays with this host before another may take it over;
    /// longer than any single attempt can take.
    pub lease_seconds: u64,
    /// Jobs of each kind claimed (and run concurrently) per round.
    pub batch: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Attempts of a delivery that asked for 0 (the host default), and of a payment
    /// event, before it is marked failed. Timers are retried without limit: giving up
    /// would silently drop a scheduled charge.
    pub default_max_attempts: u32,
    pub delivery_timeout: Duration,
    /// Where attempts and lookups are counted.
    pub metrics: Arc<Metrics>,
    /// Looking up payments with no final outcome; `None`: off.
    pub janitor: Option<janitor::JanitorConfig>,
}

impl Default for JobConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            lease_seconds: 300,
            batch: 16,
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            default_max_attempts: 12,
            delivery_timeout: Duration::from_secs(30),
            metrics: Arc::default(),
            janitor: None,
        }
    }
}

/// What one round did, per kind of job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub timers: usize,
    pub deliveries: usize,
    pub events: usize,
    /// Payments the janitor looked up.
    pub lookups: usize,
}

impl RoundReport {
    pub fn total(&self) -> usize {
        self.timers + self.deliveries + self.events + self.lookups
    }
}

/// Makes a worker look for due work now. Made before the worker (the services that
/// enqueue work exist first) and handed to it with [`JobWorker::with_waker`].
#[derive(Clone, Default)]
pub struct JobWaker(Arc<Notify>);

impl JobWaker {
    /// A wake while the worker is busy makes it look again right after.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

pub struct JobWorker {
    storage: Arc<dyn Storage>,
    clock: HostClock,
    caller: Arc<dyn ExportCaller>,
    http: reqwest::Client,
    cfg: JobConfig,
    owner: String,
    waker: JobWaker,
    /// Host-clock time of the janitor's next scan.
    janitor_next_scan: Mutex<i64>,
}

impl JobWorker {
    pub fn new(storage: Arc<dyn Storage>, clock: HostClock, caller: Arc<dyn ExportCaller>, http: reqwest::Client, cfg: JobConfig) -> Self {
        let owner = format!("host-{}-{:016x}", std::process::id(), rand::random::<u64>());
        Self { storage, clock, caller, http, cfg, owner, waker: JobWaker::default(), janitor_next_scan: Mutex::new(0) }
    }

    /// Listens to `waker` instead of a waker of its own.
    pub fn with_waker(self, waker: JobWaker) -> Self {
        Self { waker, ..self }
    }

    /// Starts the worker loop on the current tokio runtime.
    pub fn spawn(
        storage: Arc<dyn Storage>,
        clock: HostClock,
        caller: Arc<dyn ExportCaller>,
        http: reqwest::Client,
        cfg: JobConfig,
    ) -> JobHandle {
        Arc::new(Self::new(storage, clock, caller, http, cfg)).start()
    }

    /// The lease owner id this worker claims under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn start(self: Arc<Self>) -> JobHandle {
        let wake = self.waker.clone();
        let (stop, mut stopped) = watch::channel(false);
        let owner = self.owner.clone();
        let woken = wake.0.clone();
        let task = tokio::spawn(async move {
            tracing::info!(owner = %self.owner, "job worker started");
            while !*stopped.borrow() {
                let round = self.run_once().await;
                let batch = self.cfg.batch as usize;
                // A full batch means more may be due already: go again without waiting.
                if round.timers >= batch || round.deliveries >= batch || round.events >= batch {
                    continue;
                }
                tokio::select! {
                    _ = woken.notified() => {}
                    _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                    _ = stopped.changed() => {}
                }
            }
            tracing::info!(owner = %self.owner, "job worker stopped");
        });
        JobHandle { wake, stop, task: Mutex::new(Some(task)), owner }
    }

    /// Claims and runs one batch of each kind of due job, waiting for all of them. The
    /// kinds run side by side, so slow deliveries do not hold timers back.
    pub async fn run_once(self: &Arc<Self>) -> RoundReport {
        let (timers, deliveries, events, lookups) = tokio::join!(
            claim_and_run::<timers::Timers>(self),
            claim_and_run::<deliveries::Deliveries>(self),
            claim_and_run::<events::PaymentEvents>(self),
            claim_and_run::<janitor::Janitor>(self),
        );
        RoundReport { timers, deliveries, events, lookups }
    }

    fn lease(&self, now: i64) -> Lease {
        let lease_ms = i64::try_from(self.cfg.lease_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        Lease { owner: self.owner.clone(), until: now.saturating_add(lease_ms) }
    }

    fn retry_at(&self, failures: u32) -> i64 {
        backoff::next_at(self.clock.now_millis(), failures, self.cfg.backoff_base, self.cfg.backoff_max)
    }
}

/// Runs each claimed job in its own task, so one slow or panicking job neither holds up
/// nor takes down the rest (a panicked job keeps its lease until it expires, then runs
/// again). Returns how many were claimed.
async fn run_all<T, F, Fut>(jobs: Vec<T>, run: F) -> usize
where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let count = jobs.len();
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        set.spawn(run(job));
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a job task failed; its lease will expire and the job will run again");
        }
    }
    count
}

/// The metrics outcome of an attempt that left its job in `state`.
fn attempt_outcome(state: JobState) -> &'static str {
    match state {
        JobState::Done => "done",
        JobState::Pending => "failed",
        JobState::Failed | JobState::Cancelled => "given-up",
    }
}

/// Error text kept with a job row: bounded, so a chatty handler cannot bloat the table.
fn clip(text: &str) -> String {
    crate::text::cut(text, 1000)
}

/// Pokes and stops a running worker.
pub struct JobHandle {
    wake: JobWaker,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    owner: String,
}

impl JobHandle {
    /// Makes the worker look for due work now (work was enqueued, or the manual clock
    /// moved). A wake while it is busy makes it look again right after.
    pub fn wake(&self) {
        self.wake.wake();
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Stops the loop after the round in progress and waits for it.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "job worker ended abnormally");
            }
        }
    }
}
