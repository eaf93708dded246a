//! Prometheus metrics: one registry, created at start-up and handed to the parts that
//! record (runtime, server, outbound HTTP, ledger, job workers, registry swaps), each
//! recording with a one-line call. `GET /metrics` on the admin listener encodes it with
//! `prometheus-client` (OpenMetrics text, which Prometheus scrapes); the job and store
//! gauges are read from storage at scrape time, so they are true for every host on the
//! database.

pub mod labels;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use std::collections::BTreeMap;

use crate::storage::{JobCount, StoreUsage};
use labels::*;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every state a job of each kind can be in, so a state that empties reads 0, not its
/// last count.
const JOB_STATES: [(&str, &[&str]); 3] = [
    ("delivery", &["pending", "done", "failed", "cancelled"]),
    ("event", &["pending", "done", "failed", "cancelled"]),
    ("timer", &["scheduled", "firing"]),
];

pub struct Metrics {
    registry: Registry,
    requests: Family<InstanceStatus, Counter>,
    request_seconds: HistogramFamily<Instance>,
    failures: Family<InstanceCause, Counter>,
    instantiation_seconds: HistogramFamily<Instance>,
    moved: Family<Instance, Counter>,
    outbound: Family<Outbound, Counter>,
    outbound_seconds: HistogramFamily<OutboundHost>,
    postings: Family<PostingKind, Counter>,
    refusals: Family<Refusal, Counter>,
    jobs: Family<JobState, Gauge>,
    log_dropped: Family<Instance, Counter>,
    store_bytes: Family<Instance, Gauge>,
    store_quota_bytes: Family<Instance, Gauge>,
    oldest_due_seconds: Family<JobKind, Gauge<f64, AtomicU64>>,
    job_attempts: Family<JobAttempt, Counter>,
    swaps: Family<Instance, Counter>,
    rollbacks: Family<Instance, Counter>,
    reloads_refused: Family<Instance, Counter>,
    config_reloads: Family<Outcome, Counter>,
    lookups: Family<Lookup, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

fn instantiation_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_005, 2.0, 16))
}

fn outbound_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<InstanceStatus, Counter>::default();
        registry.register("payhost_requests", "Plugin requests by instance and answer status class", requests.clone());
        let request_seconds: HistogramFamily<Instance> = Family::new_with_constructor(request_buckets);
        registry.register("payhost_request_duration_seconds", "Time to answer a plugin request", request_seconds.clone());
        let failures = Family::<InstanceCause, Counter>::default();
        registry.register("payhost_call_failures", "Plugin calls that failed, by cause", failures.clone());
        let instantiation_seconds: HistogramFamily<Instance> = Family::new_with_constructor(instantiation_buckets);
        registry.register("payhost_instantiation_duration_seconds", "Time to instantiate a plugin for one call", instantiation_seconds.clone());
        let moved = Family::<Instance, Counter>::default();
        registry.register(
            "payhost_calls_moved",
            "Plugin calls that ran guest code long enough to move to the plugin threads",
            moved.clone(),
        );
        let outbound = Family::<Outbound, Counter>::default();
        registry.register("payhost_outbound_requests", "Outbound HTTP requests of plugins by host and status", outbound.clone());
        let outbound_seconds: HistogramFamily<OutboundHost> = Family::new_with_constructor(outbound_buckets);
        registry.register("payhost_outbound_duration_seconds", "Time of an outbound HTTP request", outbound_seconds.clone());
        let postings = Family::<PostingKind, Counter>::default();
        registry.register("payhost_ledger_postings", "Ledger postings accepted, by kind", postings.clone());
        let refusals = Family::<Refusal, Counter>::default();
        registry.register("payhost_ledger_refusals", "Ledger postings refused, by kind and reason", refusals.clone());
        let jobs = Family::<JobState, Gauge>::default();
        registry.register("payhost_jobs", "Durable jobs by kind and state", jobs.clone());
        let oldest_due_seconds = Family::<JobKind, Gauge<f64, AtomicU64>>::default();
        registry.register("payhost_job_oldest_due_age_seconds", "How long the longest-waiting due job of each kind has been due", oldest_due_seconds.clone());
        let log_dropped = Family::<Instance, Counter>::default();
        registry.register("payhost_plugin_log_lines_dropped", "Plugin log lines dropped over limits.log_lines_per_second", log_dropped.clone());
        let store_bytes = Family::<Instance, Gauge>::default();
        registry.register("payhost_store_bytes", "What each instance's store holds: keys and values, pending timers, and 64 bytes for each key and timer", store_bytes.clone());
        let store_quota_bytes = Family::<Instance, Gauge>::default();
        registry.register("payhost_store_quota_bytes", "Each instance's store quota (limits.store_mb); none without a quota", store_quota_bytes.clone());
        let job_attempts = Family::<JobAttempt, Counter>::default();
        registry.register("payhost_job_attempts", "Job attempts by kind and outcome (done, failed and retried, given-up)", job_attempts.clone());
        let swaps = Family::<Instance, Counter>::default();
        registry.register("payhost_swaps", "New versions swapped in, by instance", swaps.clone());
        let rollbacks = Family::<Instance, Counter>::default();
        registry.register("payhost_rollbacks", "Rollbacks to an earlier version, by instance", rollbacks.clone());
        let reloads_refused = Family::<Instance, Counter>::default();
        registry.register("payhost_reloads_refused", "Instance reloads refused (the old version kept serving)", reloads_refused.clone());
        let config_reloads = Family::<Outcome, Counter>::default();
        registry.register("payhost_config_reloads", "Config reloads, applied or refused", config_reloads.clone());
        let lookups = Family::<Lookup, Counter>::default();
        registry.register("payhost_janitor_lookups", "Janitor lookups of payments with no final outcome, by result", lookups.clone());
        let build = Family::<Build, Gauge>::default();
        build.get_or_create(&Build { version: env!("CARGO_PKG_VERSION"), wit: crate::wit::WIT_VERSION }).set(1);
        registry.register("payhost_build_info", "The running build (always 1)", build);
        Self {
            registry,
            requests,
            request_seconds,
            failures,
            instantiation_seconds,
            moved,
            outbound,
            outbound_seconds,
            postings,
            refusals,
            jobs,
            log_dropped,
            store_bytes,
            store_quota_bytes,
            oldest_due_seconds,
            job_attempts,
            swaps,
            rollbacks,
            reloads_refused,
            config_reloads,
            lookups,
        }
    }

    /// The registry as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        text
    }

    /// A plugin request was answered with `status`.
    pub fn request(&self, instance: &str, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&InstanceStatus { instance: instance.to_string(), status: status_class(status) }).inc();
        self.request_seconds.get_or_create(&Instance { instance: instance.to_string() }).observe(elapsed.as_secs_f64());
    }

    /// A plugin call failed (`cause` is `CallFailure::kind`).
    pub fn call_failure(&self, instance: &str, cause: &'static str) {
        self.failures.get_or_create(&InstanceCause { instance: instance.to_string(), cause }).inc();
    }

    pub fn instantiated(&self, instance: &str, elapsed: Duration) {
        self.instantiation_seconds.get_or_create(&Instance { instance: instance.to_string() }).observe(elapsed.as_secs_f64());
    }

    /// A plugin log line dropped over the instance's rate.
    pub fn plugin_log_dropped(&self, instance: &str) {
        self.log_dropped.get_or_create(&Instance { instance: instance.to_string() }).inc();
    }

    /// A call of `instance` left the worker that took it for the plugin threads.
    pub fn call_moved(&self, instance: &str) {
        self.moved.get_or_create(&Instance { instance: instance.to_string() }).inc();
    }

    /// An outbound request to an allow-listed `host` ended with `status` (a status, or
    /// `timeout`, `connect`, `too-large`, `refused`).
    pub fn outbound(&self, instance: &str, host: &str, status: &'static str, elapsed: Duration) {
        let (instance, host) = (instance.to_string(), host.to_string());
        self.outbound.get_or_create(&Outbound { instance: instance.clone(), host: host.clone(), status }).inc();
        self.outbound_seconds.get_or_create(&OutboundHost { instance, host }).observe(elapsed.as_secs_f64());
    }

    pub fn posted(&self, kind: &'static str) {
        self.postings.get_or_create(&PostingKind { kind }).inc();
    }

    pub fn refused(&self, kind: &'static str, reason: &'static str) {
        self.refusals.get_or_create(&Refusal { kind, reason }).inc();
    }

    /// One job attempt ended: `done`, `failed` (retried later) or `given-up`.
    pub fn job_attempt(&self, kind: &'static str, outcome: &'static str) {
        self.job_attempts.get_or_create(&JobAttempt { kind, outcome }).inc();
    }

    pub fn swapped(&self, instance: &str) {
        self.swaps.get_or_create(&Instance { instance: instance.to_string() }).inc();
    }

    pub fn rolled_back(&self, instance: &str) {
        self.rollbacks.get_or_create(&Instance { instance: instance.to_string() }).inc();
    }

    pub fn reload_refused(&self, instance: &str) {
        self.reloads_refused.get_or_create(&Instance { instance: instance.to_string() }).inc();
    }

    pub fn config_reload(&self, applied: bool) {
        self.config_reloads.get_or_create(&Outcome { outcome: if applied { "applied" } else { "refused" } }).inc();
    }

    /// A janitor lookup at payment system `system`: `settled`, `pending` or `error`.
    pub fn lookup(&self, system: &str, outcome: &'static str) {
        self.lookups.get_or_create(&Lookup { system: system.to_string(), outcome }).inc();
    }

    /// The stores' usage and quotas as storage counts them, read at scrape time. A quota
    /// removed since the last scrape leaves no stale series.
    pub fn set_stores(&self, usages: &BTreeMap<String, StoreUsage>) {
        self.store_bytes.clear();
        self.store_quota_bytes.clear();
        for (ns, usage) in usages {
            let instance = Instance { instance: ns.clone() };
            self.store_bytes.get_or_create(&instance).set(i64::try_from(usage.bytes).unwrap_or(i64::MAX));
            if let Some(quota) = usage.quota {
                self.store_quota_bytes.get_or_create(&instance).set(i64::try_from(quota).unwrap_or(i64::MAX));
            }
        }
    }

    /// Sets the job gauges from storage counts taken at `now` (ms).
    pub fn set_jobs(&self, counts: &[JobCount], now: i64) {
        for (kind, states) in JOB_STATES {
            for state in states {
                let count = counts.iter().filter(|c| c.kind == kind && c.state == *state).map(|c| c.count).sum::<u64>();
                self.jobs.get_or_create(&JobState { kind, state }).set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            let oldest = counts.iter().filter(|c| c.kind == kind).filter_map(|c| c.oldest_due_at).min();
            let age = oldest.map_or(0.0, |due| (now - due).max(0) as f64 / 1000.0);
            self.oldest_due_seconds.get_or_create(&JobKind { kind }).set(age);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_was_recorded() {
        let m = Metrics::new();
        m.request("shop", 200, Duration::from_millis(3));
        m.request("shop", 503, Duration::from_millis(3));
        m.call_failure("shop", "trap");
        m.posted("debit");
        m.refused("debit", "insufficient-funds");
        m.set_jobs(
            &[JobCount { kind: "delivery", state: "pending".into(), count: 2, oldest_due_at: Some(1_000) }],
            4_000,
        );
        let full = StoreUsage { bytes: 900, quota: Some(1_000) };
        m.set_stores(&BTreeMap::from([("shop".to_string(), full), ("old".to_string(), StoreUsage { bytes: 5, quota: Some(9) })]));
        m.set_stores(&BTreeMap::from([("shop".to_string(), full), ("old".to_string(), StoreUsage { bytes: 5, quota: None })]));
        let text = m.encode();
        assert!(text.contains(r#"payhost_store_bytes{instance="shop"} 900"#), "{text}");
        assert!(text.contains(r#"payhost_store_quota_bytes{instance="shop"} 1000"#), "{text}");
        assert!(text.contains(r#"payhost_store_bytes{instance="old"} 5"#), "{text}");
        assert!(!text.contains(r#"payhost_store_quota_bytes{instance="old"}"#), "a quota removed leaves no series: {text}");
        assert!(text.contains(r#"payhost_requests_total{instance="shop",status="2xx"} 1"#), "{text}");
        assert!(text.contains(r#"payhost_requests_total{instance="shop",status="5xx"} 1"#), "{text}");
        assert!(text.contains(r#"payhost_call_failures_total{instance="shop",cause="trap"} 1"#), "{text}");
        assert!(text.contains(r#"payhost_ledger_refusals_total{kind="debit",reason="insufficient-funds"} 1"#), "{text}");
        assert!(text.contains(r#"payhost_jobs{kind="delivery",state="pending"} 2"#), "{text}");
        assert!(text.contains(r#"payhost_jobs{kind="delivery",state="failed"} 0"#), "{text}");
        assert!(text.contains(r#"payhost_job_oldest_due_age_seconds{kind="delivery"} 3"#), "{text}");
        assert!(text.contains("payhost_build_info{"), "{text}");
    }

    #[test]
    fn the_grafana_dashboard_only_charts_metrics_that_exist() {
        let dashboard = include_str!("../../../ops/grafana/payhost.json");
        let _: serde_json::Value = serde_json::from_str(dashboard).expect("the dashboard is JSON");
        // A family is encoded once it has a sample: record one of each.
        let m = Metrics::new();
        m.request("a", 200, Duration::ZERO);
        m.call_failure("a", "trap");
        m.instantiated("a", Duration::ZERO);
        m.call_moved("a");
        m.plugin_log_dropped("a");
        m.outbound("a", "h", "2xx", Duration::ZERO);
        m.posted("debit");
        m.refused("debit", "insufficient-funds");
        m.set_jobs(&[], 0);
        m.set_stores(&BTreeMap::from([("a".to_string(), StoreUsage { bytes: 1, quota: Some(2) })]));
        m.job_attempt("delivery", "done");
        m.swapped("a");
        m.rolled_back("a");
        m.reload_refused("a");
        m.config_reload(true);
        m.lookup("s", "settled");
        let text = m.encode();
        let families: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
        let mut charted = 0;
        for (at, _) in dashboard.match_indices("payhost_") {
            let name: String = dashboard[at..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            let family = ["_bucket", "_total", "_count", "_sum"].iter().fold(name.as_str(), |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
            if family == "payhost_" || family.starts_with("payhost_operator") {
                continue;
            }
            assert!(families.contains(&family), "the dashboard charts `{name}`, which is not a payhost metric; families: {families:?}");
            charted += 1;
        }
        assert!(charted >= 12, "{charted}");
    }
}
