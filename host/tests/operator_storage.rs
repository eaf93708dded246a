//! The operator's storage, on both backends: the audit trail (append-only, read back
//! in order and filtered), job control (retry now, cancel, leases respected, a
//! cancelled delivery never sent) and the janitor (a payment whose event never came is
//! looked up once it is old enough, settled exactly once, and a later webhook adds
//! nothing).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payhost::clock::HostClock;
use payhost::call_failure::CallFailure;
use payhost::jobs::janitor::{JanitorConfig, LookupFailure};
use payhost::jobs::{ExportCaller, JobConfig, JobWorker};
use payhost::storage::{
    AuditQuery, ControlOutcome, DeliveryRequest, JobAction, JobRef, JobState, KvWrite, Lease, LookupResult, NewAuditEntry,
    NewPaymentEvent, PaymentEventRow, PaymentKind, PaymentStatus,
};
use serde_json::json;
use support::http_sink::Sink;
use support::{eventually, TestDb};

on_both_backends!(
    audit_trail_appends_in_order_filters_and_refuses_rewrites,
    job_control_retries_cancels_and_leaves_leased_jobs_alone,
    a_cancelled_delivery_is_never_sent,
    janitor_settles_a_payment_by_lookup_exactly_once,
);

fn entry(at: i64, kind: &str, target: &str) -> NewAuditEntry {
    NewAuditEntry {
        at,
        kind: kind.into(),
        source: "127.0.0.1:5000".into(),
        request_id: format!("req-{at}"),
        target: target.into(),
        request: json!({ "method": "POST", "path": format!("/x/{target}"), "body": { "amount": "1.00" } }),
        outcome: "ok".into(),
        status: 200,
        result: json!({ "ok": true }),
    }
}

/// Runs raw SQL against the test database, bypassing the host.
async fn raw_sql(db: &TestDb, sql: &str) -> Result<(), String> {
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
        conn.execute_batch(sql).map_err(|e| e.to_string())
    } else {
        let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        client.batch_execute(sql).await.map_err(|e| format!("{e}: {:?}", e.as_db_error().map(|d| d.message().to_string())))
    }
}

async fn audit_trail_appends_in_order_filters_and_refuses_rewrites(db: &TestDb) {
    let s = db.open().await;
    let first = s.audit_append(&entry(10, "credit", "a")).await.unwrap();
    let second = s.audit_append(&entry(20, "reload", "shop")).await.unwrap();
    let third = s.audit_append(&entry(30, "credit", "b")).await.unwrap();
    assert!(first < second && second < third);

    let all = s.audit_list(&AuditQuery { limit: 10, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), vec![first, second, third]);
    assert_eq!(all[0].entry, entry(10, "credit", "a"), "every field round-trips");

    let since = |since: Option<i64>, kind: Option<&str>, limit: u32| {
        let s = s.clone();
        let q = AuditQuery { since, kind: kind.map(str::to_string), limit };
        async move { s.audit_list(&q).await.unwrap().into_iter().map(|e| e.entry.target).collect::<Vec<_>>() }
    };
    assert_eq!(since(Some(20), None, 10).await, vec!["shop", "b"]);
    assert_eq!(since(None, Some("credit"), 10).await, vec!["a", "b"]);
    assert_eq!(since(Some(20), Some("credit"), 10).await, vec!["b"]);
    assert_eq!(since(None, None, 1).await, vec!["a"]);

    for sql in ["UPDATE audit_log SET outcome = 'refused'", "DELETE FROM audit_log"] {
        let refused = raw_sql(db, sql).await.expect_err("the trail cannot be rewritten");
        assert!(refused.contains("append-only"), "{sql}: {refused}");
    }
    assert_eq!(s.audit_list(&AuditQuery { limit: 10, ..AuditQuery::default() }).await.unwrap().len(), 3);
}

fn delivery(url: String) -> DeliveryRequest {
    DeliveryRequest { method: "POST".into(), url, headers: vec![], body: b"{}".to_vec(), max_attempts: 1 }
}

fn payment_event(reference: &str, external_id: &str, status: &str) -> NewPaymentEvent {
    NewPaymentEvent {
        system: "stripe".into(),
        reference: reference.into(),
        status: PaymentStatus::parse(status).expect("a payment status"),
        amount: "300.00".into(),
        currency: "USD".into(),
        external_id: external_id.into(),
        saved_method: None,
        message: None,
    }
}

fn lease(owner: &str, until: i64) -> Lease {
    Lease { owner: owner.into(), until }
}

async fn job_control_retries_cancels_and_leaves_leased_jobs_alone(db: &TestDb) {
    let s = db.open().await;
    let now = 1_000_000;
    let d1 = s.delivery_enqueue("shop", "k1", &delivery("http://127.0.0.1:9/a".into()), now).await.unwrap();
    let d2 = s.delivery_enqueue("shop", "k2", &delivery("http://127.0.0.1:9/b".into()), now + 60_000).await.unwrap();
    let control = |job: JobRef, action: JobAction, at: i64| {
        let s = s.clone();
        async move { s.job_control(&job, action, at).await.unwrap() }
    };

    assert_eq!(control(JobRef::Delivery(d1.clone()), JobAction::Cancel, now).await, ControlOutcome::Applied { state: "cancelled".into() });
    assert_eq!(control(JobRef::Delivery(d1.clone()), JobAction::Cancel, now).await, ControlOutcome::Ended { state: "cancelled".into() });
    assert_eq!(control(JobRef::Delivery(d1.clone()), JobAction::RetryNow, now).await, ControlOutcome::Ended { state: "cancelled".into() });
    assert_eq!(control(JobRef::Delivery("dl_none".into()), JobAction::RetryNow, now).await, ControlOutcome::NotFound);
    // d2 is due in a minute: nothing is due now, until an operator says "now".
    assert!(s.delivery_claim_due(now, &lease("h", now + 5_000), 10).await.unwrap().is_empty(), "a cancelled delivery is never claimed");
    assert_eq!(control(JobRef::Delivery(d2.clone()), JobAction::RetryNow, now).await, ControlOutcome::Applied { state: "pending".into() });
    let claimed = s.delivery_claim_due(now, &lease("h", now + 5_000), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), vec![d2.as_str()]);
    // While an attempt runs, the job is left alone.
    assert_eq!(control(JobRef::Delivery(d2.clone()), JobAction::Cancel, now).await, ControlOutcome::Busy { leased_until: now + 5_000 });
    s.delivery_record(&d2, &lease("h", now + 5_000), JobState::Failed, Some(500), Some("HTTP 500"), now).await.unwrap();
    let given_up = s.delivery_list_in(Some("shop"), Some(JobState::Failed), 10).await.unwrap();
    assert_eq!(given_up.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), vec![d2.as_str()]);
    // A given-up delivery gets one more attempt.
    assert_eq!(control(JobRef::Delivery(d2.clone()), JobAction::RetryNow, now + 1).await, ControlOutcome::Applied { state: "pending".into() });
    let again = s.delivery_claim_due(now + 1, &lease("h", now + 6_000), 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));

    s.timer_upsert("shop", "renewal", now + 3_600_000, b"p").await.unwrap();
    let timer = s.timer_list(Some("shop"), 10).await.unwrap().remove(0);
    assert_eq!(control(JobRef::Timer(timer.id), JobAction::RetryNow, now).await, ControlOutcome::Applied { state: "scheduled".into() });
    let fired = s.timer_claim_due(now, &lease("h", now + 5_000), 10).await.unwrap();
    assert_eq!(fired.len(), 1, "retry now makes the timer due now");
    assert_eq!(control(JobRef::Timer(timer.id), JobAction::Cancel, now).await, ControlOutcome::Busy { leased_until: now + 5_000 });
    s.timer_retry(&fired[0], &lease("h", now + 5_000), now + 60_000, "plugin failed").await.unwrap();
    assert_eq!(control(JobRef::Timer(timer.id), JobAction::Cancel, now).await, ControlOutcome::Applied { state: "cancelled".into() });
    assert!(s.timer_list(Some("shop"), 10).await.unwrap().is_empty());
    assert_eq!(control(JobRef::Timer(timer.id), JobAction::Cancel, now).await, ControlOutcome::NotFound);

    let (event, _) = s.event_ingest("shop", &payment_event("order-1", "pi_1", "succeeded"), now).await.unwrap();
    assert_eq!(control(JobRef::Event(event), JobAction::Cancel, now).await, ControlOutcome::Applied { state: "cancelled".into() });
    assert!(s.event_claim_due(now, &lease("h", now + 5_000), 10).await.unwrap().is_empty(), "a cancelled event is never handed over");
    let (again, new) = s.event_ingest("shop", &payment_event("order-1", "pi_1", "succeeded"), now).await.unwrap();
    assert_eq!((again, new), (event, false), "the same event again stays cancelled");

    let counts = s.job_counts(now + 2).await.unwrap();
    let count = |kind: &str, state: &str| counts.iter().filter(|c| c.kind == kind && c.state == state).map(|c| c.count).sum::<u64>();
    assert_eq!((count("delivery", "cancelled"), count("delivery", "pending"), count("event", "cancelled")), (1, 1, 1));
}

fn worker_config(janitor: Option<JanitorConfig>) -> JobConfig {
    JobConfig {
        poll_interval: Duration::from_millis(20),
        backoff_base: Duration::from_secs(60),
        default_max_attempts: 3,
        delivery_timeout: Duration::from_secs(10),
        janitor,
        ..JobConfig::default()
    }
}

/// Answers lookups from a table and counts every call.
#[derive(Default)]
struct Counterpart {
    answers: Mutex<HashMap<String, NewPaymentEvent>>,
    lookups: Mutex<HashMap<String, usize>>,
    handed: Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl ExportCaller for Counterpart {
    async fn on_timer(&self, _instance: &str, _name: &str, _payload: Vec<u8>) -> Result<(), CallFailure> {
        Ok(())
    }

    async fn on_payment_event(&self, row: &PaymentEventRow) -> Result<Vec<KvWrite>, CallFailure> {
        self.handed.lock().unwrap().push((row.event.reference.clone(), row.event.status.as_str().to_string()));
        Ok(vec![])
    }

    async fn lookup_payment(&self, system: &str, external_id: &str) -> Result<NewPaymentEvent, LookupFailure> {
        *self.lookups.lock().unwrap().entry(external_id.to_string()).or_default() += 1;
        let answer = self.answers.lock().unwrap().get(external_id).cloned();
        answer.map(|e| NewPaymentEvent { system: system.to_string(), ..e }).ok_or_else(|| LookupFailure::Refused(format!("no payment {external_id}")))
    }
}

async fn a_cancelled_delivery_is_never_sent(db: &TestDb) {
    let s = db.open().await;
    let clock = HostClock::manual();
    let sink = Sink::start().await;
    let now = clock.now_millis();
    let kept = s.delivery_enqueue("shop", "kept", &delivery(sink.url("/kept")), now).await.unwrap();
    let cancelled = s.delivery_enqueue("shop", "cancelled", &delivery(sink.url("/cancelled")), now).await.unwrap();
    assert!(matches!(s.job_control(&JobRef::Delivery(cancelled.clone()), JobAction::Cancel, now).await.unwrap(), ControlOutcome::Applied { .. }));
    let worker = Arc::new(JobWorker::new(s.clone(), clock.clone(), Arc::new(Counterpart::default()), payhost::app::http_client().unwrap(), worker_config(None)));
    for _ in 0..3 {
        worker.run_once().await;
        clock.advance(3_600_000).unwrap();
    }
    assert_eq!(sink.hits("/kept").len(), 1);
    assert!(sink.hits("/cancelled").is_empty(), "a cancelled delivery is never sent");
    let rows = s.delivery_list(Some("shop"), 10).await.unwrap();
    let state = |id: &str| rows.iter().find(|d| d.id == id).map(|d| (d.state, d.attempts)).unwrap();
    assert_eq!(state(&kept), (JobState::Done, 1));
    assert_eq!(state(&cancelled), (JobState::Cancelled, 0));
}

async fn janitor_settles_a_payment_by_lookup_exactly_once(db: &TestDb) {
    let s = db.open().await;
    let clock = HostClock::manual();
    let counterpart = Arc::new(Counterpart::default());
    let t0 = clock.now_millis();
    for (reference, id) in [("order-lost", "cs_lost"), ("order-open", "cs_open"), ("order-hooked", "cs_hooked")] {
        s.checkout_register("stripe", reference, "shop", t0).await.unwrap();
        s.payment_started("stripe", reference, PaymentKind::Checkout, id).await.unwrap();
    }
    // Registered before the payment system answered: no id, never looked up.
    s.checkout_register("stripe", "order-no-id", "shop", t0).await.unwrap();
    counterpart.answers.lock().unwrap().insert("cs_lost".into(), payment_event("order-lost", "pi_lost", "succeeded"));
    counterpart.answers.lock().unwrap().insert("cs_open".into(), payment_event("order-open", "cs_open", "pending"));
    // This one's webhook came: it is settled by its event, never looked up.
    s.event_ingest("shop", &payment_event("order-hooked", "pi_hooked", "failed"), t0).await.unwrap();

    let janitor = JanitorConfig {
        after: Duration::from_secs(900),
        scan_interval: Duration::from_secs(30),
        recheck: Duration::from_secs(300),
        recheck_max: Duration::from_secs(3600),
    };
    let worker = Arc::new(JobWorker::new(s.clone(), clock.clone(), counterpart.clone(), payhost::app::http_client().unwrap(), worker_config(Some(janitor))));
    let lookups = |id: &str| counterpart.lookups.lock().unwrap().get(id).copied().unwrap_or(0);

    worker.run_once().await;
    clock.advance(600_000).unwrap();
    worker.run_once().await;
    assert_eq!(lookups("cs_lost"), 0, "younger than the configured age: not looked up");

    clock.advance(301_000).unwrap();
    let report = worker.run_once().await;
    assert_eq!(report.lookups, 2, "{report:?}");
    assert_eq!((lookups("cs_lost"), lookups("cs_open"), lookups("cs_hooked")), (1, 1, 0));
    eventually("the looked-up event reaches the provider", || async {
        worker.run_once().await;
        !counterpart.handed.lock().unwrap().is_empty()
    })
    .await;
    let handed: Vec<_> = counterpart.handed.lock().unwrap().clone();
    assert!(handed.contains(&("order-lost".to_string(), "succeeded".to_string())), "{handed:?}");

    // The late webhook for the settled payment is the same event: nothing new.
    let (_, new) = s.event_ingest("shop", &payment_event("order-lost", "pi_lost", "succeeded"), clock.now_millis()).await.unwrap();
    assert!(!new);
    for _ in 0..3 {
        clock.advance(31_000).unwrap();
        worker.run_once().await;
    }
    let to_lost = counterpart.handed.lock().unwrap().iter().filter(|(r, _)| r == "order-lost").count();
    assert_eq!(to_lost, 1, "the provider is handed the outcome exactly once");
    assert_eq!(lookups("cs_lost"), 1, "a settled payment is not looked up again");
    assert_eq!(lookups("cs_open"), 1, "a pending payment waits for its recheck");

    let tracked = s.tracked_payments(false, 10).await.unwrap();
    let row = |reference: &str| tracked.iter().find(|p| p.reference == reference).cloned().unwrap();
    assert_eq!(row("order-lost").settled_by.as_deref(), Some("lookup"));
    assert_eq!(row("order-lost").lookups, 1);
    assert_eq!(row("order-hooked").settled_by.as_deref(), Some("event"));
    assert_eq!((row("order-open").settled_at, row("order-open").lookups), (None, 1));
    assert_eq!((row("order-no-id").settled_at, row("order-no-id").lookups), (None, 0));
    let open: Vec<String> = s.tracked_payments(true, 10).await.unwrap().into_iter().map(|p| p.reference).collect();
    assert_eq!(open.len(), 2, "{open:?}");

    // After the recheck wait the pending one is asked again; an error is kept.
    counterpart.answers.lock().unwrap().remove("cs_open");
    clock.advance(300_000).unwrap();
    worker.run_once().await;
    assert_eq!(lookups("cs_open"), 2);
    let open = s.tracked_payments(true, 10).await.unwrap().into_iter().find(|p| p.reference == "order-open").unwrap();
    assert!(open.last_error.as_deref().unwrap_or_default().contains("no payment"), "{open:?}");
    s.unsettled_record("stripe", "order-open", &LookupResult::Settled, clock.now_millis()).await.unwrap();
    assert_eq!(s.tracked_payments(true, 10).await.unwrap().len(), 1);
}
