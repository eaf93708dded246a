//! The host services every plugin instance shares (storage, ledger, clock, outbound
//! HTTP, the metrics registry, and a way to wake the job worker), built once at start-up
//! before the runtime.

use std::sync::Arc;

use crate::clock::HostClock;
use crate::jobs::JobWaker;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::storage::Storage;

pub struct Services {
    pub storage: Arc<dyn Storage>,
    pub ledger: Ledger,
    pub clock: HostClock,
    pub http: reqwest::Client,
    /// Wakes the job worker when work is enqueued or the clock moves.
    pub jobs: JobWaker,
    /// The one metrics registry of this host, shared with the ledger.
    pub metrics: Arc<Metrics>,
    /// Header that carries the request id into plugins' outbound calls (unset: none).
    pub request_id_header: std::sync::OnceLock<reqwest::header::HeaderName>,
}

impl Services {
    /// Creates the metrics registry, once, for everything built on these services.
    pub fn new(storage: Arc<dyn Storage>, clock: HostClock, http: reqwest::Client, jobs: JobWaker) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new());
        let ledger = Ledger { storage: storage.clone(), clock: clock.clone(), metrics: metrics.clone() };
        Arc::new(Self { ledger, storage, clock, http, jobs, metrics, request_id_header: std::sync::OnceLock::new() })
    }

    pub fn wake_jobs(&self) {
        self.jobs.wake();
    }
}
