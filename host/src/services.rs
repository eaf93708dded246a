//! The host services every plugin instance shares (storage, ledger, clock, outbound
//! HTTP, and a way to wake the job worker), built once at start-up before the runtime.

use std::sync::Arc;

use crate::clock::HostClock;
use crate::jobs::JobWaker;
use crate::ledger::Ledger;
use crate::storage::Storage;

pub struct Services {
    pub storage: Arc<dyn Storage>,
    pub ledger: Ledger,
    pub clock: HostClock,
    pub http: reqwest::Client,
    /// Wakes the job worker when work is enqueued or the clock moves.
    pub jobs: JobWaker,
}

impl Services {
    pub fn new(storage: Arc<dyn Storage>, clock: HostClock, http: reqwest::Client, jobs: JobWaker) -> Arc<Self> {
        Arc::new(Self { ledger: Ledger::new(storage.clone(), clock.clone()), storage, clock, http, jobs })
    }

    pub fn wake_jobs(&self) {
        self.jobs.wake();
    }
}
