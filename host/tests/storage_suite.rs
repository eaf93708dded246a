//! One suite for both storage backends: every test below is written once, against
//! `Arc<dyn Storage>` / `Ledger` / `JobWorker`, and runs as `sqlite::name` (temp file)
//! and `postgres::name` (fresh schema; skipped with a notice when PostgreSQL is not
//! reachable). "Two hosts" are two storage handles on the same database.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payhost::call_failure::CallFailure;
use payhost::clock::HostClock;
use payhost::jobs::janitor::LookupFailure;
use payhost::jobs::{ExportCaller, JobConfig, JobWorker};
use payhost::ledger::{DebitLine, Entry, Ledger, LedgerError};
use payhost::money;
use payhost::storage::{
    DeliveryRequest, EntryKind, JobState, KvWrite, Lease, NewPaymentEvent, PaymentEventRow, PaymentStatus, Posting, PostingLine,
    PostingRefusal, Storage,
};
use support::http_sink::Sink;
use support::{eventually, TestDb};

on_both_backends!(
    migrations_run_concurrently_and_again,
    kv_get_set_delete_cas_and_list_paging,
    concurrent_debits_never_overdraw,
    idempotent_replays_move_money_once,
    debit_many_is_all_or_nothing,
    a_batch_refuses_postings_one_by_one_and_applies_the_rest,
    a_batch_that_fails_midway_leaves_nothing_applied,
    group_committed_postings_answer_each_caller_with_its_own_outcome,
    amounts_currencies_and_accounts_are_validated,
    overdraft_is_the_floor_for_debits,
    a_transaction_is_reversed_once,
    timers_upsert_replace_and_two_hosts_never_claim_one_twice,
    deliveries_enqueue_once_claim_once_and_fail_after_max_attempts,
    events_ingest_once_claim_once_and_fail_after_max_attempts,
    event_completion_commits_store_writes_with_the_event_or_nothing,
    job_worker_retries_until_success_on_the_host_clock,
    two_hosts_run_each_job_exactly_once,
    admin_api_over_the_ledger_and_the_jobs,
);

// ---------------------------------------------------------------- helpers

async fn ledger(db: &TestDb) -> Arc<Ledger> {
    Arc::new(Ledger::new(db.open().await, HostClock::system()))
}

/// Signed decimal string to minor units (RUB).
fn minor(text: &str) -> i64 {
    match text.strip_prefix('-') {
        Some(abs) => -money::parse_amount(abs, "RUB").unwrap(),
        None => money::parse_amount(text, "RUB").unwrap(),
    }
}

async fn balance(ledger: &Ledger, id: &str) -> String {
    ledger.get_account(id).await.unwrap().expect("account exists").balance
}

fn line(account: &str, amount: &str) -> DebitLine {
    DebitLine { account: account.into(), amount: amount.into(), reference: format!("line {account}") }
}

fn lease(owner: &str, until: i64) -> Lease {
    Lease { owner: owner.into(), until }
}

fn delivery(url: String, max_attempts: u32) -> DeliveryRequest {
    DeliveryRequest {
        method: "POST".into(),
        url,
        headers: vec![("Content-Type".into(), "application/json".into()), ("X-Signature".into(), "sig-123".into())],
        body: br#"{"paid":true}"#.to_vec(),
        max_attempts,
    }
}

fn payment_event(external_id: &str, status: &str) -> NewPaymentEvent {
    NewPaymentEvent {
        system: "stripe".into(),
        reference: format!("order-{external_id}"),
        status: PaymentStatus::parse(status).expect("a payment status"),
        amount: "300.00".into(),
        currency: "RUB".into(),
        external_id: external_id.into(),
        saved_method: None,
        message: None,
    }
}

fn test_job_config(batch: u32) -> JobConfig {
    JobConfig {
        poll_interval: Duration::from_millis(20),
        lease_seconds: 300,
        batch,
        backoff_base: Duration::from_secs(60),
        backoff_max: Duration::from_secs(600),
        default_max_attempts: 5,
        delivery_timeout: Duration::from_secs(10),
        ..JobConfig::default()
    }
}

fn http_client() -> reqwest::Client {
    payhost::app::http_client().expect("http client")
}

/// Claims with `claim` in a loop until nothing is left, on two handles at once; returns
/// what each handle got.
async fn drain_from_two_hosts<T, F, Fut>(s1: Arc<dyn Storage>, s2: Arc<dyn Storage>, claim: F) -> (Vec<T>, Vec<T>)
where
    T: Send + 'static,
    F: Fn(Arc<dyn Storage>, String) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Vec<T>> + Send,
{
    let run = |s: Arc<dyn Storage>, owner: &str| {
        let (claim, owner) = (claim.clone(), owner.to_string());
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = claim(s.clone(), owner.clone()).await;
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch);
            }
        })
    };
    let (a, b) = (run(s1, "host-a"), run(s2, "host-b"));
    (a.await.unwrap(), b.await.unwrap())
}

/// Counts export calls; names and external ids starting with `flaky` fail the first time.
#[derive(Default)]
struct FakeCaller {
    timers: Mutex<HashMap<String, usize>>,
    events: Mutex<HashMap<String, usize>>,
}

impl FakeCaller {
    fn timer_calls(&self, instance: &str, name: &str) -> usize {
        self.timers.lock().unwrap().get(&format!("{instance}/{name}")).copied().unwrap_or(0)
    }

    fn event_calls(&self, external_id: &str) -> usize {
        self.events.lock().unwrap().get(external_id).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl ExportCaller for FakeCaller {
    async fn on_timer(&self, instance: &str, name: &str, _payload: Vec<u8>) -> Result<(), CallFailure> {
        let calls = {
            let mut timers = self.timers.lock().unwrap();
            let n = timers.entry(format!("{instance}/{name}")).or_default();
            *n += 1;
            *n
        };
        if name.starts_with("flaky") && calls == 1 {
            return Err(CallFailure::PluginError("the plugin failed this time".into()));
        }
        Ok(())
    }

    async fn on_payment_event(&self, row: &PaymentEventRow) -> Result<Vec<KvWrite>, CallFailure> {
        let calls = {
            let mut events = self.events.lock().unwrap();
            let n = events.entry(row.event.external_id.clone()).or_default();
            *n += 1;
            *n
        };
        if row.event.external_id.starts_with("flaky") && calls == 1 {
            return Err(CallFailure::PluginError("the plugin failed this time".into()));
        }
        // What the provider's store would hold after handling it, committed with the event.
        Ok(vec![KvWrite::Put { key: format!("handled/{}", row.event.external_id), value: calls.to_string().into_bytes() }])
    }

    async fn lookup_payment(&self, system: &str, external_id: &str) -> Result<NewPaymentEvent, LookupFailure> {
        // These suites run without the janitor; the janitor's own suite answers lookups.
        Err(LookupFailure::Refused(format!("no payment `{external_id}` at `{system}` in this suite")))
    }
}

// ---------------------------------------------------------------- schema

async fn migrations_run_concurrently_and_again(db: &TestDb) {
    // Hosts starting together on one fresh database each migrate it.
    let url = db.url.clone();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { payhost::storage::open(&url).await.map(|_| ()) })
        })
        .collect();
    for start in starts {
        start.await.unwrap().expect("concurrent start migrates or waits");
    }
    let s = db.open().await;
    s.migrate().await.expect("migrating an up-to-date schema is a no-op");
    s.kv_set("ns", "k", b"v").await.unwrap();
    assert_eq!(db.open().await.kv_get("ns", "k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

// ---------------------------------------------------------------- key-value

async fn kv_get_set_delete_cas_and_list_paging(db: &TestDb) {
    let s = db.open().await;
    assert_eq!(s.kv_get("a", "k").await.unwrap(), None);
    s.kv_set("a", "k", b"v1").await.unwrap();
    s.kv_set("a", "k", b"v2").await.unwrap();
    assert_eq!(s.kv_get("a", "k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(s.kv_get("b", "k").await.unwrap(), None, "namespaces are separate");

    assert!(!s.kv_cas("a", "k", Some(b"v1"), b"x").await.unwrap(), "stale expectation");
    assert!(s.kv_cas("a", "k", Some(b"v2"), b"v3").await.unwrap());
    assert!(!s.kv_cas("a", "k", None, b"x").await.unwrap(), "key exists");
    assert_eq!(s.kv_get("a", "k").await.unwrap().as_deref(), Some(&b"v3"[..]));
    assert!(s.kv_cas("a", "fresh", None, b"n").await.unwrap());
    assert_eq!(s.kv_get("a", "fresh").await.unwrap().as_deref(), Some(&b"n"[..]));

    assert!(s.kv_delete("a", "k").await.unwrap());
    assert!(!s.kv_delete("a", "k").await.unwrap());
    assert!(!s.kv_cas("a", "k", Some(b"v3"), b"x").await.unwrap(), "deleted key does not match");
    assert_eq!(s.kv_get("a", "k").await.unwrap(), None);

    for i in 0..25 {
        s.kv_set("p", &format!("user:{i:02}"), b"x").await.unwrap();
    }
    for other in ["user", "user;", "usera", "USER:1", "other:1"] {
        s.kv_set("p", other, b"x").await.unwrap();
    }
    s.kv_set("q", "user:99", b"x").await.unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.kv_list("p", "user:", after.as_deref(), 10).await.unwrap();
        assert!(page.len() <= 10);
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        seen.extend(page);
    }
    let expected: Vec<String> = (0..25).map(|i| format!("user:{i:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(s.kv_list("p", "", None, 100).await.unwrap().len(), 30);

    // Byte order, not a locale's: 'B' (0x42) < 'a' (0x61) < 'é' (0xC3 0xA9).
    for key in ["o:é", "o:a", "o:B"] {
        s.kv_set("order", key, b"").await.unwrap();
    }
    assert_eq!(s.kv_list("order", "o:", None, 10).await.unwrap(), vec!["o:B", "o:a", "o:é"]);
    assert_eq!(s.kv_list("order", "o:", Some("o:B"), 1).await.unwrap(), vec!["o:a"]);

    // Compare-and-swap from two hosts at once: exactly one creator wins.
    let s2 = db.open().await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = if i % 2 == 0 { s.clone() } else { s2.clone() };
            tokio::spawn(async move { s.kv_cas("race", "lock", None, format!("{i}").as_bytes()).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

// ---------------------------------------------------------------- ledger

async fn concurrent_debits_never_overdraw(db: &TestDb) {
    // Two handles, as two hosts would debit the same subscriber.
    let (l1, l2) = (ledger(db).await, ledger(db).await);
    l1.open_account("sub-1", "RUB").await.unwrap();
    l1.credit("test", "fund", "sub-1", "100.00", "RUB", "funding").await.unwrap();

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let l = if i % 2 == 0 { l1.clone() } else { l2.clone() };
            tokio::spawn(async move { l.debit("test", &format!("debit-{i}"), "sub-1", "1.00", "RUB", "charge").await })
        })
        .collect();
    let mut ok = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(entry) => ok.push(entry),
            Err(LedgerError::InsufficientFunds { account, balance, requested }) => {
                assert_eq!((account.as_str(), balance.as_str(), requested.as_str()), ("sub-1", "0.00", "1.00"));
                refused += 1;
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((ok.len(), refused), (100, 100));
    assert_eq!(balance(&l1, "sub-1").await, "0.00");

    // Every successful debit saw a distinct balance: they were applied one at a time.
    let mut afters: Vec<i64> = ok.iter().map(|e| minor(&e.balance_after)).collect();
    afters.sort();
    assert_eq!(afters, (0..100).map(|n| n * 100).collect::<Vec<_>>());

    let history = l2.history("sub-1", 1000).await.unwrap();
    assert_eq!(history.len(), 101);
    assert_eq!(history.iter().map(|e| minor(&e.amount)).sum::<i64>(), 0);
    assert_eq!(history[0].balance_after, "0.00", "newest first");
    assert_eq!(history.last().unwrap().kind, EntryKind::Credit);
    for pair in history.windows(2) {
        assert_eq!(minor(&pair[1].balance_after) + minor(&pair[0].amount), minor(&pair[0].balance_after));
    }
}

async fn idempotent_replays_move_money_once(db: &TestDb) {
    let l = ledger(db).await;
    l.open_account("a", "RUB").await.unwrap();
    l.open_account("b", "RUB").await.unwrap();

    let credit = l.credit("shop", "c1", "a", "100.00", "RUB", "top-up").await.unwrap();
    for _ in 0..2 {
        assert_eq!(l.credit("shop", "c1", "a", "100", "RUB", "top-up").await.unwrap(), credit, "same amount, other spelling");
    }
    assert_eq!(balance(&l, "a").await, "100.00");

    let debit = l.debit("shop", "d1", "a", "30.00", "RUB", "charge").await.unwrap();
    for _ in 0..2 {
        assert_eq!(l.debit("shop", "d1", "a", "30.00", "RUB", "charge").await.unwrap(), debit);
    }
    assert_eq!(balance(&l, "a").await, "70.00");

    l.credit("shop", "c2", "b", "50.00", "RUB", "top-up").await.unwrap();
    let lines = [line("a", "5.00"), line("b", "5.00")];
    let many = l.debit_many("shop", "m1", "RUB", &lines).await.unwrap();
    assert_eq!(many.len(), 2);
    for _ in 0..2 {
        assert_eq!(l.debit_many("shop", "m1", "RUB", &lines).await.unwrap(), many);
    }
    assert_eq!((balance(&l, "a").await, balance(&l, "b").await), ("65.00".into(), "45.00".into()));

    let reversal = l.reverse("shop", "r1", &debit.transaction_id, "refund").await.unwrap();
    for _ in 0..2 {
        assert_eq!(l.reverse("shop", "r1", &debit.transaction_id, "refund").await.unwrap(), reversal);
    }
    assert_eq!(balance(&l, "a").await, "95.00");

    // A replay returns the first result even though the balance has moved since.
    assert_eq!(l.credit("shop", "c1", "a", "100.00", "RUB", "top-up").await.unwrap().balance_after, "100.00");

    // The same key with other arguments is a conflict, and moves nothing.
    let conflicts: Vec<Result<Vec<Entry>, LedgerError>> = vec![
        l.credit("shop", "c1", "a", "100.01", "RUB", "top-up").await.map(|e| vec![e]),
        l.credit("shop", "c1", "b", "100.00", "RUB", "top-up").await.map(|e| vec![e]),
        l.debit("shop", "d1", "a", "30.00", "RUB", "another reference").await.map(|e| vec![e]),
        l.credit("shop", "d1", "a", "30.00", "RUB", "charge").await.map(|e| vec![e]),
        l.debit_many("shop", "m1", "RUB", &[line("a", "5.00"), line("b", "6.00")]).await,
        l.reverse("shop", "r1", &credit.transaction_id, "refund").await,
    ];
    for result in conflicts {
        assert!(matches!(result, Err(LedgerError::IdempotencyConflict(_))), "{result:?}");
    }
    assert_eq!((balance(&l, "a").await, balance(&l, "b").await), ("95.00".into(), "45.00".into()));

    // Keys are scoped per caller: another instance's `c1` is its own movement.
    l.credit("other-instance", "c1", "a", "1.00", "RUB", "top-up").await.unwrap();
    assert_eq!(balance(&l, "a").await, "96.00");

    // Concurrent replays of one key (from two hosts): one movement, one transaction.
    let l2 = ledger(db).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let l = if i % 2 == 0 { l.clone() } else { l2.clone() };
            tokio::spawn(async move { l.debit("shop", "parallel", "a", "1.00", "RUB", "charge").await.unwrap() })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().transaction_id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(balance(&l, "a").await, "95.00");
}

async fn debit_many_is_all_or_nothing(db: &TestDb) {
    let l = ledger(db).await;
    for (id, amount) in [("a", "100.00"), ("b", "10.00")] {
        l.open_account(id, "RUB").await.unwrap();
        l.credit("t", &format!("fund-{id}"), id, amount, "RUB", "fund").await.unwrap();
    }
    let short = l.debit_many("t", "m1", "RUB", &[line("a", "50.00"), line("b", "20.00")]).await;
    assert_eq!(
        short,
        Err(LedgerError::InsufficientFunds { account: "b".into(), balance: "10.00".into(), requested: "20.00".into() })
    );
    assert_eq!((balance(&l, "a").await, balance(&l, "b").await), ("100.00".into(), "10.00".into()));

    // One account in several lines is checked on its total.
    let twice = l.debit_many("t", "m2", "RUB", &[line("b", "6.00"), line("b", "6.00")]).await;
    assert!(matches!(twice, Err(LedgerError::InsufficientFunds { ref requested, .. }) if requested == "12.00"), "{twice:?}");
    assert!(matches!(
        l.debit_many("t", "m3", "RUB", &[line("a", "1.00"), line("nobody", "1.00")]).await,
        Err(LedgerError::UnknownAccount(ref id)) if id == "nobody"
    ));
    assert!(matches!(l.debit_many("t", "m4", "RUB", &[]).await, Err(LedgerError::InvalidAmount(_))));
    assert_eq!((balance(&l, "a").await, balance(&l, "b").await), ("100.00".into(), "10.00".into()));

    // A refused call did not use its key up: the same key succeeds once money is there.
    l.credit("t", "fund-b-2", "b", "10.00", "RUB", "fund").await.unwrap();
    let done = l.debit_many("t", "m1", "RUB", &[line("a", "50.00"), line("b", "20.00")]).await.unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(done[0].transaction_id, done[1].transaction_id);
    assert_eq!((done[0].amount.as_str(), done[1].amount.as_str()), ("-50.00", "-20.00"));
    assert_eq!((balance(&l, "a").await, balance(&l, "b").await), ("50.00".into(), "0.00".into()));
}

/// A one-line posting of `delta` kopecks on `account`, keyed `key`.
fn posting(key: &str, account: &str, delta: i64, reference: &str) -> Posting {
    Posting {
        idempotency_key: format!("batch:{key}"),
        request_hash: format!("{account}/{delta}/{reference}"),
        currency: "RUB".into(),
        lines: vec![PostingLine {
            account: account.into(),
            delta,
            kind: if delta < 0 { EntryKind::Debit } else { EntryKind::Credit },
            reference: reference.into(),
        }],
        reverses: None,
        opens: false,
        at: 1_700_000_000_000,
    }
}

async fn a_batch_refuses_postings_one_by_one_and_applies_the_rest(db: &TestDb) {
    let storage = db.open().await;
    let l = Ledger::new(storage.clone(), HostClock::system());
    l.open_account("b-1", "RUB").await.unwrap();
    l.open_account("b-2", "RUB").await.unwrap();
    l.credit("test", "fund", "b-1", "1.00", "RUB", "funding").await.unwrap();

    let mut conflict = posting("first", "b-1", -60, "again");
    conflict.request_hash = "another request".into();
    let batch = [
        posting("first", "b-1", -60, "ok"),
        posting("overdraw", "b-1", -60, "refused"),
        posting("credit", "b-2", 500, "ok"),
        posting("nobody", "b-404", -1, "refused"),
        posting("first", "b-1", -60, "ok"),
        conflict,
        posting("rest", "b-1", -40, "ok"),
    ];
    let outcomes = storage.post_batch(&batch).await.unwrap();
    assert_eq!(outcomes.len(), batch.len());
    let first = outcomes[0].as_ref().expect("first applies");
    assert_eq!(first[0].balance_after, 40);
    assert_eq!(outcomes[1], Err(PostingRefusal::InsufficientFunds { account: "b-1".into(), balance: 40, requested: 60 }));
    assert_eq!(outcomes[2].as_ref().unwrap()[0].balance_after, 500);
    assert_eq!(outcomes[3], Err(PostingRefusal::UnknownAccount("b-404".into())));
    // A later posting of the batch sees the earlier ones: the same key is a replay...
    assert_eq!(outcomes[4].as_ref().unwrap(), first);
    // ...or, with other arguments, a conflict.
    assert_eq!(outcomes[5], Err(PostingRefusal::IdempotencyConflict("batch:first".into())));
    assert_eq!(outcomes[6].as_ref().unwrap()[0].balance_after, 0);

    assert_eq!(balance(&l, "b-1").await, "0.00");
    assert_eq!(balance(&l, "b-2").await, "5.00");
    assert_eq!(l.history("b-1", 100).await.unwrap().len(), 3, "funding, first, rest");
    // A refused posting kept nothing, not even its key: it applies once funds are there.
    l.credit("test", "top-up", "b-1", "0.60", "RUB", "top-up").await.unwrap();
    let retried = storage.post_batch(&[posting("overdraw", "b-1", -60, "refused")]).await.unwrap();
    assert_eq!(retried[0].as_ref().unwrap()[0].balance_after, 0);
}

/// Makes the backend fail while it writes an entry with reference `boom`, in the middle
/// of whatever transaction is under way, as a crash between two postings would.
async fn fail_on_boom(db: &TestDb) {
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER fail_on_boom BEFORE INSERT ON ledger_entries WHEN NEW.reference = 'boom'
             BEGIN SELECT RAISE(ABORT, 'simulated failure mid-batch'); END;",
        )
        .unwrap();
    } else {
        let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE FUNCTION fail_on_boom() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF NEW.reference = 'boom' THEN RAISE EXCEPTION 'simulated failure mid-batch'; END IF; RETURN NEW; END $$;
                 CREATE TRIGGER fail_on_boom BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION fail_on_boom();",
            )
            .await
            .unwrap();
    }
}

async fn a_batch_that_fails_midway_leaves_nothing_applied(db: &TestDb) {
    let storage = db.open().await;
    let l = Ledger::new(storage.clone(), HostClock::system());
    l.open_account("c-1", "RUB").await.unwrap();
    l.credit("test", "fund", "c-1", "10.00", "RUB", "funding").await.unwrap();
    fail_on_boom(db).await;

    let batch = [
        posting("a", "c-1", -100, "a"),
        posting("b", "c-1", -100, "b"),
        posting("c", "c-1", -100, "boom"),
        posting("d", "c-1", -100, "d"),
    ];
    assert!(storage.post_batch(&batch).await.is_err(), "the batch fails as a whole");
    // Nothing of the unanswered batch was applied: not the postings before the failure,
    // not their idempotency keys.
    assert_eq!(balance(&l, "c-1").await, "10.00");
    assert_eq!(l.history("c-1", 100).await.unwrap().len(), 1);
    let again = storage.post_batch(&[posting("a", "c-1", -100, "a")]).await.unwrap();
    assert_eq!(again[0].as_ref().unwrap()[0].balance_after, 900, "key `a` was never taken");
}

async fn group_committed_postings_answer_each_caller_with_its_own_outcome(db: &TestDb) {
    let storage = db.open().await;
    let l = Arc::new(Ledger::new(storage.clone(), HostClock::system()));
    l.open_account("g-1", "RUB").await.unwrap();
    l.credit("test", "fund", "g-1", "10.00", "RUB", "funding").await.unwrap();
    l.open_account("g-boom", "RUB").await.unwrap();
    l.credit("test", "fund-boom", "g-boom", "10.00", "RUB", "funding").await.unwrap();
    fail_on_boom(db).await;

    // Concurrent callers share commits; the one whose posting breaks its batch's
    // transaction fails alone, every other caller gets its own outcome.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let l = l.clone();
            let (account, reference) = if i == 17 { ("g-boom", "boom".to_string()) } else { ("g-1", format!("charge {i}")) };
            tokio::spawn(async move { l.debit("test", &format!("g-{i}"), account, "0.25", "RUB", &reference).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert!(matches!(&outcomes[17], Err(LedgerError::Backend(_))), "{:?}", outcomes[17]);
    let applied = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes.iter().filter(|o| matches!(o, Err(LedgerError::InsufficientFunds { .. }))).count();
    assert_eq!((applied, refused), (40, 23), "10.00 pays for 40 debits of 0.25");
    assert_eq!(balance(&l, "g-1").await, "0.00");
    assert_eq!(l.history("g-1", 100).await.unwrap().len(), 41);
    assert_eq!(balance(&l, "g-boom").await, "10.00");
}

async fn amounts_currencies_and_accounts_are_validated(db: &TestDb) {
    let l = ledger(db).await;
    l.open_account("rub", "RUB").await.unwrap();
    l.credit("t", "fund", "rub", "10.00", "RUB", "fund").await.unwrap();

    assert!(matches!(l.debit("t", "k1", "rub", "1.00", "USD", "r").await, Err(LedgerError::CurrencyMismatch(_))));
    assert!(matches!(l.credit("t", "k2", "rub", "1.00", "EUR", "r").await, Err(LedgerError::CurrencyMismatch(_))));
    assert!(matches!(l.open_account("rub", "USD").await, Err(LedgerError::CurrencyMismatch(_))));
    assert!(matches!(l.debit("t", "k3", "rub", "1.001", "RUB", "r").await, Err(LedgerError::InvalidAmount(_))));
    assert!(matches!(l.debit("t", "k4", "rub", "1e3", "RUB", "r").await, Err(LedgerError::InvalidAmount(_))));
    assert!(matches!(l.debit("t", "k5", "rub", "-1.00", "RUB", "r").await, Err(LedgerError::InvalidAmount(_))));
    assert!(matches!(l.credit("t", "k6", "rub", "0.00", "RUB", "r").await, Err(LedgerError::InvalidAmount(_))));
    assert_eq!(l.debit("t", "k7", "rub", "1.00", "XYZ", "r").await, Err(LedgerError::UnknownCurrency("XYZ".into())));
    assert_eq!(l.open_account("x", "XYZ").await, Err(LedgerError::UnknownCurrency("XYZ".into())));
    assert_eq!(l.credit("t", "k8", "ghost", "1.00", "RUB", "r").await, Err(LedgerError::UnknownAccount("ghost".into())));
    assert_eq!(l.debit("t", "k9", "ghost", "1.00", "RUB", "r").await, Err(LedgerError::UnknownAccount("ghost".into())));
    assert!(matches!(l.history("ghost", 10).await, Err(LedgerError::UnknownAccount(_))));
    assert_eq!(balance(&l, "rub").await, "10.00");
    assert_eq!(l.get_account("ghost").await.unwrap(), None);

    // Currencies keep their own exponents.
    let yen = l.open_account("yen", "jpy").await.unwrap();
    assert_eq!((yen.currency.as_str(), yen.balance.as_str(), yen.overdraft_limit.as_str()), ("JPY", "0", "0"));
    assert!(matches!(l.credit("t", "y1", "yen", "1.5", "JPY", "r").await, Err(LedgerError::InvalidAmount(_))));
    assert_eq!(l.credit("t", "y2", "yen", "150", "JPY", "r").await.unwrap().balance_after, "150");
    l.open_account("kwd", "KWD").await.unwrap();
    assert_eq!(l.credit("t", "w1", "kwd", "1.234", "KWD", "r").await.unwrap().amount, "1.234");

    // The operator's top-up opens a new account, and only with a valid amount.
    assert!(matches!(l.credit_opening("admin", "o1", "new", "abc", "RUB", "r").await, Err(LedgerError::InvalidAmount(_))));
    assert_eq!(l.get_account("new").await.unwrap(), None, "a refused top-up opens nothing");
    assert_eq!(l.credit_opening("admin", "o2", "new", "5.00", "RUB", "r").await.unwrap().balance_after, "5.00");
}

async fn overdraft_is_the_floor_for_debits(db: &TestDb) {
    let l = ledger(db).await;
    l.open_account("a", "RUB").await.unwrap();
    l.credit("t", "fund", "a", "10.00", "RUB", "fund").await.unwrap();
    assert!(matches!(l.debit("t", "d0", "a", "10.01", "RUB", "r").await, Err(LedgerError::InsufficientFunds { .. })));

    assert_eq!(l.set_overdraft("a", "50.00").await.unwrap().overdraft_limit, "50.00");
    assert_eq!(l.debit("t", "d1", "a", "60.00", "RUB", "r").await.unwrap().balance_after, "-50.00");
    assert_eq!(
        l.debit("t", "d2", "a", "0.01", "RUB", "r").await,
        Err(LedgerError::InsufficientFunds { account: "a".into(), balance: "-50.00".into(), requested: "0.01".into() })
    );
    assert!(matches!(l.set_overdraft("ghost", "1.00").await, Err(LedgerError::UnknownAccount(_))));
    assert!(matches!(l.set_overdraft("a", "1.001").await, Err(LedgerError::InvalidAmount(_))));
    let account = l.get_account("a").await.unwrap().unwrap();
    assert_eq!((account.balance.as_str(), account.overdraft_limit.as_str()), ("-50.00", "50.00"));
    // Credits always pass, also on an overdrawn account.
    assert_eq!(l.credit("t", "c1", "a", "20.00", "RUB", "r").await.unwrap().balance_after, "-30.00");
}

async fn a_transaction_is_reversed_once(db: &TestDb) {
    let l = ledger(db).await;
    l.open_account("a", "RUB").await.unwrap();
    l.open_account("b", "RUB").await.unwrap();
    let credit = l.credit("t", "c", "a", "100.00", "RUB", "fund").await.unwrap();
    let debit = l.debit("t", "d", "a", "30.00", "RUB", "charge").await.unwrap();

    let reversal = l.reverse("t", "r1", &debit.transaction_id, "refund").await.unwrap();
    assert_eq!(reversal.len(), 1);
    assert_eq!((reversal[0].kind, reversal[0].amount.as_str(), reversal[0].balance_after.as_str()), (EntryKind::Reversal, "30.00", "100.00"));
    assert_eq!(reversal[0].reference, "refund");

    assert!(matches!(l.reverse("t", "r2", &debit.transaction_id, "again").await, Err(LedgerError::NotReversible(_))));
    assert!(matches!(l.reverse("t", "r3", &reversal[0].transaction_id, "undo").await, Err(LedgerError::NotReversible(_))));
    assert!(matches!(l.reverse("t", "r4", "tx_unknown", "x").await, Err(LedgerError::NotReversible(_))));
    assert_eq!(balance(&l, "a").await, "100.00");

    // A multi-line debit is put back line by line.
    l.credit("t", "cb", "b", "10.00", "RUB", "fund").await.unwrap();
    let many = l.debit_many("t", "m", "RUB", &[line("a", "1.00"), line("b", "2.00")]).await.unwrap();
    let back = l.reverse("t", "rm", &many[0].transaction_id, "undo").await.unwrap();
    assert_eq!(back.iter().map(|e| (e.account.as_str(), e.amount.as_str())).collect::<Vec<_>>(), vec![("a", "1.00"), ("b", "2.00")]);
    assert_eq!((balance(&l, "a").await, balance(&l, "b").await), ("100.00".into(), "10.00".into()));

    // Reversing a credit takes money back, so it is held to the overdraft like a debit.
    l.debit("t", "d-all", "a", "100.00", "RUB", "spend").await.unwrap();
    assert!(matches!(l.reverse("t", "rc", &credit.transaction_id, "chargeback").await, Err(LedgerError::InsufficientFunds { .. })));
    l.set_overdraft("a", "100.00").await.unwrap();
    assert_eq!(l.reverse("t", "rc", &credit.transaction_id, "chargeback").await.unwrap()[0].balance_after, "-100.00");

    // Many reversals of one transaction at once, from two hosts: one wins.
    let target = l.credit("t", "c3", "b", "1.00", "RUB", "fund").await.unwrap().transaction_id;
    let l2 = ledger(db).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (l, target) = (if i % 2 == 0 { l.clone() } else { l2.clone() }, target.clone());
            tokio::spawn(async move { l.reverse("t", &format!("race-{i}"), &target, "race").await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(LedgerError::NotReversible(_)) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(balance(&l, "b").await, "10.00");
}

// ---------------------------------------------------------------- timers

async fn timers_upsert_replace_and_two_hosts_never_claim_one_twice(db: &TestDb) {
    let (s1, s2) = (db.open().await, db.open().await);
    s1.timer_upsert("shop", "t1", 1_000, b"a").await.unwrap();
    s2.timer_upsert("shop", "t1", 2_000, b"b").await.unwrap();
    let listed = s1.timer_list(Some("shop"), 100).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].due_at, listed[0].payload.as_slice()), (2_000, &b"b"[..]));
    assert!(s1.timer_cancel("shop", "t1").await.unwrap());
    assert!(!s1.timer_cancel("shop", "t1").await.unwrap());

    for i in 0..60 {
        s1.timer_upsert("shop", &format!("n{i}"), 1_000 + i, b"").await.unwrap();
    }
    s1.timer_upsert("shop", "future", 10_000_000, b"").await.unwrap();
    let (a, b) = drain_from_two_hosts(s1.clone(), s2.clone(), |s, owner| async move {
        s.timer_claim_due(5_000, &lease(&owner, 100_000), 7).await.unwrap()
    })
    .await;
    let mut names: Vec<String> = a.iter().chain(b.iter()).map(|t| t.name.clone()).collect();
    assert_eq!(names.len(), 60, "each due timer claimed once ({} + {})", a.len(), b.len());
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 60);
    assert!(!names.contains(&"future".to_string()));

    // Leased timers are not handed out again until the lease ends.
    assert!(s2.timer_claim_due(99_999, &lease("host-c", 200_000), 100).await.unwrap().is_empty());
    let reclaimed = s2.timer_claim_due(100_000, &lease("host-c", 200_000), 100).await.unwrap();
    assert_eq!(reclaimed.len(), 60);

    // Completing under a lost lease does nothing; under the held one it deletes.
    let first = reclaimed[0].clone();
    s1.timer_complete(&first, &lease("host-a", 100_000)).await.unwrap();
    assert_eq!(s1.timer_list(Some("shop"), 100).await.unwrap().len(), 61);
    s1.timer_complete(&first, &lease("host-c", 200_000)).await.unwrap();
    assert_eq!(s1.timer_list(Some("shop"), 100).await.unwrap().len(), 60);

    // A timer rescheduled while it fires keeps its new schedule.
    let second = reclaimed[1].clone();
    s2.timer_upsert("shop", &second.name, 500_000, b"again").await.unwrap();
    s1.timer_complete(&second, &lease("host-c", 200_000)).await.unwrap();
    let kept = s1.timer_list(Some("shop"), 100).await.unwrap();
    let kept = kept.iter().find(|t| t.name == second.name).expect("rescheduled timer kept");
    assert_eq!((kept.due_at, kept.payload.as_slice(), kept.leased_until), (500_000, &b"again"[..], None));

    // A failed firing is retried later, with the attempt counted.
    let third = reclaimed[2].clone();
    s1.timer_retry(&third, &lease("host-c", 200_000), 300_000, "boom").await.unwrap();
    let retried = s1.timer_list(Some("shop"), 100).await.unwrap().into_iter().find(|t| t.name == third.name).unwrap();
    assert_eq!((retried.attempts, retried.last_error.as_deref(), retried.due_at, retried.leased_until), (1, Some("boom"), 300_000, None));
    assert!(s1.timer_claim_due(299_999, &lease("host-d", 400_000), 100).await.unwrap().iter().all(|t| t.name != third.name));
    let again = s1.timer_claim_due(300_000, &lease("host-d", 400_000), 100).await.unwrap();
    assert!(again.iter().any(|t| t.name == third.name && t.attempts == 1));
    assert!(s1.timer_list(Some("elsewhere"), 100).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- deliveries

async fn deliveries_enqueue_once_claim_once_and_fail_after_max_attempts(db: &TestDb) {
    let (s1, s2) = (db.open().await, db.open().await);
    let id = s1.delivery_enqueue("shop", "k1", &delivery("http://127.0.0.1:9/a".into(), 3), 1_000).await.unwrap();
    let again = s2.delivery_enqueue("shop", "k1", &delivery("http://127.0.0.1:9/changed".into(), 3), 2_000).await.unwrap();
    assert_eq!(id, again, "same key, same delivery");
    let other = s1.delivery_enqueue("other", "k1", &delivery("http://127.0.0.1:9/a".into(), 3), 1_000).await.unwrap();
    assert_ne!(id, other, "keys are per instance");
    let listed = s1.delivery_list(Some("shop"), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].request.url, "http://127.0.0.1:9/a", "the first enqueue wins");
    assert_eq!(listed[0].request.headers, delivery(String::new(), 3).headers);
    assert_eq!((listed[0].state, listed[0].attempts), (JobState::Pending, 0));

    for i in 0..40 {
        let s = if i % 2 == 0 { &s1 } else { &s2 };
        s.delivery_enqueue("bulk", &format!("b{i}"), &delivery(format!("http://127.0.0.1:9/{i}"), 0), 1_000).await.unwrap();
    }
    let (a, b) = drain_from_two_hosts(s1.clone(), s2.clone(), |s, owner| async move {
        s.delivery_claim_due(5_000, &lease(&owner, 100_000), 6).await.unwrap()
    })
    .await;
    let ids: Vec<String> = a.iter().chain(b.iter()).map(|d| d.id.clone()).collect();
    assert_eq!(ids.len(), 42);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 42, "no delivery claimed twice");

    // Attempts: retry, a record under a lost lease is ignored, then failure.
    let l = lease("host-a", 100_000);
    let claimed_by_a = a.iter().any(|d| d.id == id);
    let held = if claimed_by_a { l.clone() } else { lease("host-b", 100_000) };
    let lost = if claimed_by_a { lease("host-b", 100_000) } else { l };
    s1.delivery_record(&id, &lost, JobState::Done, Some(200), None, 5_000).await.unwrap();
    s1.delivery_record(&id, &held, JobState::Pending, Some(500), Some("HTTP 500"), 50_000).await.unwrap();
    let row = s1.delivery_list(Some("shop"), 10).await.unwrap().remove(0);
    assert_eq!((row.state, row.attempts, row.last_status, row.last_error.as_deref(), row.next_at), (JobState::Pending, 1, Some(500), Some("HTTP 500"), 50_000));
    assert!(s2.delivery_claim_due(49_999, &lease("host-c", 200_000), 100).await.unwrap().iter().all(|d| d.id != id));
    let retry = s2.delivery_claim_due(50_000, &lease("host-c", 200_000), 100).await.unwrap();
    assert_eq!(retry.iter().filter(|d| d.id == id).count(), 1);
    s2.delivery_record(&id, &lease("host-c", 200_000), JobState::Failed, None, Some("connection refused"), 50_000).await.unwrap();
    let row = s1.delivery_list(Some("shop"), 10).await.unwrap().remove(0);
    assert_eq!((row.state, row.attempts, row.last_status), (JobState::Failed, 2, None));
    assert!(s1.delivery_claim_due(i64::MAX, &lease("host-d", i64::MAX), 1000).await.unwrap().iter().all(|d| d.id != id), "failed stays failed");
}

// ---------------------------------------------------------------- payment events

async fn events_ingest_once_claim_once_and_fail_after_max_attempts(db: &TestDb) {
    let (s1, s2) = (db.open().await, db.open().await);
    s1.checkout_register("stripe", "order-1", "shop", 1_000).await.unwrap();
    s2.checkout_register("stripe", "order-1", "intruder", 2_000).await.unwrap();
    assert_eq!(s1.checkout_provider("stripe", "order-1").await.unwrap().as_deref(), Some("shop"), "first registration wins");
    assert_eq!(s1.checkout_provider("stripe", "order-2").await.unwrap(), None);

    let (id, new) = s1.event_ingest("shop", &payment_event("pi_1", "succeeded"), 1_000).await.unwrap();
    assert!(new);
    assert_eq!(s2.event_ingest("shop", &payment_event("pi_1", "succeeded"), 2_000).await.unwrap(), (id, false));
    let (failed_id, new) = s2.event_ingest("shop", &payment_event("pi_1", "failed"), 2_000).await.unwrap();
    assert!(new && failed_id != id, "another status of one payment is another event");
    assert_eq!(s1.event_list(Some("shop"), 10).await.unwrap().len(), 2);

    for i in 0..30 {
        let s = if i % 2 == 0 { &s1 } else { &s2 };
        s.event_ingest("bulk", &payment_event(&format!("pi_bulk_{i}"), "succeeded"), 1_000).await.unwrap();
    }
    let (a, b) = drain_from_two_hosts(s1.clone(), s2.clone(), |s, owner| async move {
        s.event_claim_due(5_000, &lease(&owner, 100_000), 4).await.unwrap()
    })
    .await;
    let ids: Vec<i64> = a.iter().chain(b.iter()).map(|e| e.id).collect();
    assert_eq!(ids.len(), 32);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 32, "no event claimed twice");

    let held = if a.iter().any(|e| e.id == id) { lease("host-a", 100_000) } else { lease("host-b", 100_000) };
    s1.event_record(id, &held, JobState::Pending, Some("plugin error"), 60_000).await.unwrap();
    let row = s1.event_list(Some("shop"), 10).await.unwrap().into_iter().find(|e| e.id == id).unwrap();
    assert_eq!((row.state, row.attempts, row.last_error.as_deref(), row.next_at), (JobState::Pending, 1, Some("plugin error"), 60_000));
    let retry = s2.event_claim_due(60_000, &lease("host-c", 200_000), 100).await.unwrap();
    assert_eq!(retry.iter().filter(|e| e.id == id).count(), 1);
    s2.event_record(id, &lease("host-c", 200_000), JobState::Failed, Some("gave up"), 60_000).await.unwrap();
    let row = s1.event_list(None, 100).await.unwrap().into_iter().find(|e| e.id == id).unwrap();
    assert_eq!((row.state, row.attempts), (JobState::Failed, 2));
    assert!(s1.event_claim_due(i64::MAX, &lease("host-d", i64::MAX), 1000).await.unwrap().iter().all(|e| e.id != id));
}

async fn event_completion_commits_store_writes_with_the_event_or_nothing(db: &TestDb) {
    let (s1, s2) = (db.open().await, db.open().await);
    let (id, _) = s1.event_ingest("shop", &payment_event("pi_c", "succeeded"), 1_000).await.unwrap();
    s1.kv_set("shop", "counter", b"1").await.unwrap();
    let held = lease("host-a", 100_000);
    assert_eq!(s1.event_claim_due(5_000, &held, 10).await.unwrap().len(), 1);
    let writes = vec![
        KvWrite::Expect { key: "counter".into(), value: Some(b"1".to_vec()) },
        KvWrite::Put { key: "counter".into(), value: b"2".to_vec() },
        KvWrite::Put { key: "order/pi_c".into(), value: b"paid".to_vec() },
        KvWrite::Delete { key: "pending/pi_c".into() },
    ];
    // Someone else changed the counter meanwhile: nothing is written, the event stays.
    s2.kv_set("shop", "counter", b"5").await.unwrap();
    assert!(!s1.event_complete(id, &held, "shop", &writes).await.unwrap());
    assert_eq!(s1.kv_get("shop", "order/pi_c").await.unwrap(), None);
    assert_eq!(s1.event_list(Some("shop"), 10).await.unwrap()[0].state, JobState::Pending);
    // A lease that is not held commits nothing either.
    s2.kv_set("shop", "counter", b"1").await.unwrap();
    assert!(!s2.event_complete(id, &lease("host-b", 100_000), "shop", &writes).await.unwrap());
    assert_eq!(s1.kv_get("shop", "counter").await.unwrap().as_deref(), Some(&b"1"[..]));
    // With the lease and the expectation holding, all of it commits with the event.
    s1.kv_set("shop", "pending/pi_c", b"x").await.unwrap();
    assert!(s1.event_complete(id, &held, "shop", &writes).await.unwrap());
    assert_eq!(s2.kv_get("shop", "counter").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(s2.kv_get("shop", "order/pi_c").await.unwrap().as_deref(), Some(&b"paid"[..]));
    assert_eq!(s2.kv_get("shop", "pending/pi_c").await.unwrap(), None);
    let row = s2.event_list(Some("shop"), 10).await.unwrap().into_iter().find(|e| e.id == id).unwrap();
    assert_eq!((row.state, row.attempts), (JobState::Done, 1));
    // Done is final: completing again does nothing.
    assert!(!s1.event_complete(id, &held, "shop", &writes).await.unwrap());
}

// ---------------------------------------------------------------- job workers

async fn job_worker_retries_until_success_on_the_host_clock(db: &TestDb) {
    let storage = db.open().await;
    let clock = HostClock::manual();
    let sink = Sink::start().await;
    let caller = Arc::new(FakeCaller::default());
    let now = clock.now_millis();
    let flaky = sink.url("/fail-2/flaky");
    let dead = sink.url("/always-500/dead");
    let fine = sink.url("/fine");
    storage.delivery_enqueue("shop", "d-flaky", &delivery(flaky, 0), now).await.unwrap();
    storage.delivery_enqueue("shop", "d-dead", &delivery(dead, 2), now).await.unwrap();
    storage.delivery_enqueue("shop", "d-fine", &delivery(fine, 0), now).await.unwrap();
    storage.timer_upsert("shop", "flaky-timer", now, b"payload").await.unwrap();
    storage.timer_upsert("shop", "in-an-hour", now + 3_600_000, b"").await.unwrap();
    storage.event_ingest("shop", &payment_event("flaky-event", "succeeded"), now).await.unwrap();

    let cfg = test_job_config(8);
    let handle = JobWorker::spawn(storage.clone(), clock.clone(), caller.clone(), http_client(), cfg.clone());
    handle.wake();

    let state = |key: &'static str| {
        let storage = storage.clone();
        async move {
            let rows = storage.delivery_list(Some("shop"), 10).await.unwrap();
            let row = rows.into_iter().find(|d| d.key == key).unwrap();
            (row.state, row.attempts)
        }
    };
    let event_state = || {
        let storage = storage.clone();
        async move {
            let row = storage.event_list(Some("shop"), 10).await.unwrap().remove(0);
            (row.state, row.attempts)
        }
    };
    let timer_attempts = |name: &'static str| {
        let storage = storage.clone();
        async move { storage.timer_list(Some("shop"), 10).await.unwrap().into_iter().find(|t| t.name == name).map(|t| t.attempts) }
    };

    eventually("first round of attempts recorded", || async {
        state("d-flaky").await == (JobState::Pending, 1)
            && state("d-dead").await == (JobState::Pending, 1)
            && state("d-fine").await == (JobState::Done, 1)
            && timer_attempts("flaky-timer").await == Some(1)
            && event_state().await == (JobState::Pending, 1)
    })
    .await;
    let fine_hits = sink.hits("/fine");
    assert_eq!(fine_hits.len(), 1);
    assert_eq!(fine_hits[0].method, "POST");
    assert_eq!(fine_hits[0].body, br#"{"paid":true}"#);
    assert!(fine_hits[0].headers.contains(&("x-signature".into(), "sig-123".into())));

    // Nothing is due again until the host clock reaches the backoff.
    let probe = Arc::new(JobWorker::new(storage.clone(), clock.clone(), caller.clone(), http_client(), cfg.clone()));
    assert_eq!(probe.run_once().await.total(), 0);

    clock.advance(60_000).unwrap();
    handle.wake();
    eventually("second round: retries after the first backoff", || async {
        state("d-flaky").await == (JobState::Pending, 2)
            && state("d-dead").await == (JobState::Failed, 2)
            && timer_attempts("flaky-timer").await.is_none()
            && event_state().await == (JobState::Done, 2)
    })
    .await;

    clock.advance(120_000).unwrap();
    handle.wake();
    eventually("third attempt succeeds after the doubled backoff", || async { state("d-flaky").await == (JobState::Done, 3) }).await;

    clock.advance(3_600_000).unwrap();
    handle.wake();
    eventually("the later timer fires", || async { timer_attempts("in-an-hour").await.is_none() }).await;
    handle.shutdown().await;

    // Far in the future nothing is left to do, and nothing was done twice.
    clock.advance(86_400_000).unwrap();
    assert_eq!(probe.run_once().await.total(), 0);
    assert_eq!((sink.count("/fail-2/flaky"), sink.count("/always-500/dead"), sink.count("/fine")), (3, 2, 1));
    assert_eq!((caller.timer_calls("shop", "flaky-timer"), caller.timer_calls("shop", "in-an-hour")), (2, 1));
    assert_eq!(caller.event_calls("flaky-event"), 2);
    let dead_row = storage.delivery_list(Some("shop"), 10).await.unwrap().into_iter().find(|d| d.key == "d-dead").unwrap();
    assert_eq!(dead_row.last_status, Some(500));
    assert!(dead_row.last_error.unwrap().starts_with("HTTP 500"));
}

async fn two_hosts_run_each_job_exactly_once(db: &TestDb) {
    let (s1, s2) = (db.open().await, db.open().await);
    let clock = HostClock::manual();
    let sink = Sink::start().await;
    let caller = Arc::new(FakeCaller::default());
    let now = clock.now_millis();
    for i in 0..40 {
        let s = if i % 2 == 0 { &s1 } else { &s2 };
        s.timer_upsert("shop", &format!("t{i}"), now, b"").await.unwrap();
    }
    for i in 0..30 {
        let s = if i % 2 == 0 { &s1 } else { &s2 };
        s.event_ingest("shop", &payment_event(&format!("pi_{i}"), "succeeded"), now).await.unwrap();
    }
    for i in 0..20 {
        let s = if i % 2 == 0 { &s1 } else { &s2 };
        s.delivery_enqueue("shop", &format!("d{i}"), &delivery(sink.url(&format!("/ok/{i}")), 0), now).await.unwrap();
    }

    let http = http_client();
    let hosts = [
        JobWorker::spawn(s1.clone(), clock.clone(), caller.clone(), http.clone(), test_job_config(3)),
        JobWorker::spawn(s2.clone(), clock.clone(), caller.clone(), http.clone(), test_job_config(3)),
    ];
    assert_ne!(hosts[0].owner(), hosts[1].owner());
    for h in &hosts {
        h.wake();
    }
    eventually("every job done", || async {
        s1.timer_list(None, 100).await.unwrap().is_empty()
            && s1.event_list(None, 100).await.unwrap().iter().all(|e| e.state == JobState::Done)
            && s2.delivery_list(None, 100).await.unwrap().iter().all(|d| d.state == JobState::Done)
    })
    .await;
    for h in &hosts {
        h.shutdown().await;
    }

    for i in 0..40 {
        assert_eq!(caller.timer_calls("shop", &format!("t{i}")), 1, "timer t{i}");
    }
    for i in 0..30 {
        assert_eq!(caller.event_calls(&format!("pi_{i}")), 1, "event pi_{i}");
    }
    let counts = sink.counts();
    assert_eq!(counts.len(), 20);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    assert!(s1.event_list(None, 100).await.unwrap().iter().all(|e| e.attempts == 1));
}

// ---------------------------------------------------------------- admin API

async fn admin_api_over_the_ledger_and_the_jobs(db: &TestDb) {
    use hyper::{Method, StatusCode};
    use payhost::admin::{accounts, jobs};
    use serde_json::json;

    let l = ledger(db).await;
    // `path` is what follows `/accounts/`, as the admin router splits it.
    let call = |method: Method, path: &str, query: &'static str, body: serde_json::Value| {
        let (l, path) = (l.clone(), path.to_string());
        async move {
            let rest: Vec<&str> = path.split('/').collect();
            accounts::handle(&l, &payhost::admin::in_flight::InFlightKeys::default(), &method, &rest, query, body.to_string().as_bytes()).await
        }
    };

    let (status, body) = call(Method::POST, "sub%2F1/credit", "", json!({"amount": "300.00", "currency": "RUB"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("idempotency_key is required"));
    let (status, _) = call(Method::POST, "sub%2F1/credit", "", json!({"amount": 300.0, "currency": "RUB", "idempotency_key": "k"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "JSON numbers are refused");
    assert_eq!(l.get_account("sub/1").await.unwrap(), None);

    // The operator's top-up opens the account (the id is percent-decoded from the path).
    let top_up = json!({"amount": "300.00", "currency": "RUB", "reference": "ticket 7", "idempotency_key": "t7"});
    for _ in 0..2 {
        let (status, body) = call(Method::POST, "sub%2F1/credit", "", top_up.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["account"]["balance"], "300.00");
        assert_eq!(body["entry"]["kind"], "credit");
    }
    let (status, body) = call(Method::POST, "sub%2F1/debit", "", json!({"amount": "500.00", "idempotency_key": "d1"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((body["code"].as_str(), body["balance"].as_str(), body["requested"].as_str()), (Some("insufficient-funds"), Some("300.00"), Some("500.00")));
    let (status, body) = call(Method::POST, "sub%2F1/debit", "", json!({"amount": "1.001", "idempotency_key": "d2"})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid-amount")));
    let (status, body) = call(Method::POST, "sub%2F1/credit", "", json!({"amount": "1.00", "currency": "RUB", "reference": "other", "idempotency_key": "t7"})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("idempotency-conflict")));

    let (status, body) = call(Method::PUT, "sub%2F1/overdraft", "", json!({"limit": "200.00"})).await;
    assert_eq!((status, body["account"]["overdraft_limit"].as_str()), (StatusCode::OK, Some("200.00")));
    let (status, body) = call(Method::POST, "sub%2F1/debit", "", json!({"amount": "500.00", "idempotency_key": "d1"})).await;
    assert_eq!((status, body["account"]["balance"].as_str()), (StatusCode::OK, Some("-200.00")));
    let debit_tx = body["entry"]["transaction_id"].as_str().unwrap().to_string();

    let (status, body) = call(Method::GET, "sub%2F1/transactions", "limit=1", json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["entries"].as_array().unwrap().len(), 1);
    assert_eq!(body["entries"][0]["amount"], "-500.00");

    let rest = format!("sub%2F1/transactions/{debit_tx}/reverse");
    let rest = rest.as_str();
    let (status, _) = call(Method::POST, rest, "", json!({"reference": "mistake"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a reversal needs a key too");
    let (status, body) = call(Method::POST, rest, "", json!({"reference": "mistake", "idempotency_key": "undo-1"})).await;
    assert_eq!((status, body["entries"][0]["balance_after"].as_str()), (StatusCode::OK, Some("300.00")));
    let (status, body) = call(Method::POST, rest, "", json!({"reference": "mistake", "idempotency_key": "undo-2"})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("not-reversible")));

    let (status, body) = call(Method::GET, "sub%2F1", "", json!(null)).await;
    assert_eq!((status, body["id"].as_str(), body["balance"].as_str()), (StatusCode::OK, Some("sub/1"), Some("300.00")));
    let (status, body) = call(Method::GET, "nobody", "", json!(null)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown-account")));
    let (status, _) = call(Method::DELETE, "sub%2F1", "", json!(null)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = call(Method::POST, "nobody/debit", "", json!({"amount": "1.00", "idempotency_key": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Job lists: attempts and state shown, signatures and card tokens not.
    let s = l.storage.clone();
    s.delivery_enqueue("shop", "k", &delivery("http://127.0.0.1:9/cb".into(), 0), 1_000).await.unwrap();
    s.timer_upsert("shop", "renew", 5_000, b"sub-1").await.unwrap();
    let mut saved = payment_event("pi_9", "succeeded");
    saved.saved_method = Some("pm_card_secret".into());
    s.event_ingest("shop", &saved, 1_000).await.unwrap();
    let (status, body) = jobs::handle(s.as_ref(), &Method::GET, "deliveries", &[], "instance=shop").await;
    assert_eq!((status, body["count"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(body["deliveries"][0]["headers"][1], json!(["X-Signature", "[redacted]"]));
    assert_eq!(body["deliveries"][0]["body"], r#"{"paid":true}"#);
    assert_eq!(body["deliveries"][0]["state"], "pending");
    let (_, body) = jobs::handle(s.as_ref(), &Method::GET, "events", &[], "provider=shop").await;
    assert_eq!(body["events"][0]["saved_method"], "[redacted]");
    assert!(!body.to_string().contains("pm_card_secret"));
    let (_, body) = jobs::handle(s.as_ref(), &Method::GET, "timers", &[], "").await;
    assert_eq!((body["timers"][0]["name"].as_str(), body["timers"][0]["state"].as_str()), (Some("renew"), Some("scheduled")));
    let (_, body) = jobs::handle(s.as_ref(), &Method::GET, "deliveries", &[], "instance=elsewhere").await;
    assert_eq!(body["count"], 0);
    let (status, _) = jobs::handle(s.as_ref(), &Method::POST, "timers", &[], "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// PostgreSQL alone: what only a shared database can do to a batch.
mod postgres_only {
    use super::*;

    /// A batch whose pipelined writes lose a race (a trigger here fails the first insert
    /// of each transaction with the unique violation that another host committing the
    /// same key first would cause) runs again and is answered. The statements after the
    /// failed one fail too, only with "transaction aborted", and whichever order their
    /// replies are polled in, the lost race is what the batch sees.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_that_loses_a_race_while_writing_runs_again() {
        let Some(db) = TestDb::postgres().await else { return };
        let (storage, l) = funded(&db, "race-1").await;
        let client = other_connection(&db).await;
        lose_every_other_insert(&client, "ledger_transactions", "NEW.idempotency_key LIKE 'batch:race-%'", "unique_violation").await;

        for i in 0..50 {
            let outcomes = storage.post_batch(&[posting(&format!("race-{i}"), "race-1", -100, "charge")]).await.unwrap();
            assert_eq!(outcomes[0].as_ref().unwrap()[0].balance_after, 10_000 - 100 * (i + 1), "batch {i}");
        }
        assert_eq!(insert_attempts(&client).await, 100, "every batch lost once and ran again once");
        assert_eq!(balance(&l, "race-1").await, "50.00");
        assert_eq!(l.history("race-1", 100).await.unwrap().len(), 51);
    }

    /// Makes inserts into `table` of rows meeting `condition` fail with `errcode` (the
    /// error a race lost to another host raises) every other time, counting them in a
    /// sequence, which unlike a table keeps counting across rolled-back attempts: each
    /// first attempt loses and its rerun wins.
    async fn lose_every_other_insert(client: &tokio_postgres::Client, table: &str, condition: &str, errcode: &str) {
        client
            .batch_execute(&format!(
                "CREATE SEQUENCE insert_attempts;
                 CREATE FUNCTION lose_every_other_insert() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF {condition} AND nextval('insert_attempts') % 2 = 1 THEN
                         RAISE EXCEPTION 'simulated lost race' USING ERRCODE = '{errcode}';
                     END IF;
                     RETURN NEW;
                 END $$;
                 CREATE TRIGGER lose_every_other_insert BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION lose_every_other_insert();"
            ))
            .await
            .unwrap();
    }

    /// The inserts `lose_every_other_insert` has seen.
    async fn insert_attempts(client: &tokio_postgres::Client) -> i64 {
        client.query_one("SELECT last_value FROM insert_attempts", &[]).await.unwrap().get(0)
    }

    /// A host's storage and ledger, with `account` holding 100.00.
    async fn funded(db: &TestDb, account: &str) -> (Arc<dyn Storage>, Ledger) {
        let storage = db.open().await;
        let l = Ledger::new(storage.clone(), HostClock::system());
        l.open_account(account, "RUB").await.unwrap();
        l.credit("test", "fund", account, "100.00", "RUB", "funding").await.unwrap();
        (storage, l)
    }

    /// A second connection on the test's schema, as another host or an operator's psql.
    async fn other_connection(db: &TestDb) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// The backends that wait for a lock `holder` (a backend's pid) has.
    async fn waiting_for(observer: &tokio_postgres::Client, holder: i32) -> Vec<i32> {
        let rows = observer.query("SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", &[&holder]).await.unwrap();
        rows.iter().map(|row| row.get(0)).collect()
    }

    async fn pid(client: &tokio_postgres::Client) -> i32 {
        client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
    }

    /// Another connection in a transaction it leaves open, as another host mid-write,
    /// and a connection to watch who waits for what it holds.
    struct Holder {
        other: tokio_postgres::Client,
        observer: tokio_postgres::Client,
        pid: i32,
    }

    /// Runs `statements` in order on a new connection; the last leaves its transaction open.
    async fn holding(db: &TestDb, statements: &[&str]) -> Holder {
        let other = other_connection(db).await;
        let observer = other_connection(db).await;
        for sql in statements {
            other.batch_execute(sql).await.unwrap();
        }
        let pid = pid(&other).await;
        Holder { other, observer, pid }
    }

    impl Holder {
        /// Waits until a backend waits for something this one holds (`what` names the
        /// wait when it never comes), and returns the statement it waits in.
        async fn statement_waiting(&self, what: &str) -> String {
            eventually(what, || async { !waiting_for(&self.observer, self.pid).await.is_empty() }).await;
            let waiting = waiting_for(&self.observer, self.pid).await[0];
            self.observer.query_one("SELECT query FROM pg_stat_activity WHERE pid = $1", &[&waiting]).await.unwrap().get(0)
        }
    }

    /// The statement a batch planned on what its host knew waits in: the check of the
    /// rows the plan assumed (see `storage/postgres/batch.rs`).
    const FAST_PATH_CHECK: &str = "payhost_ledger_plan_stale";

    /// A ledger transaction under `key`, as another host's batch writes it.
    async fn write_transaction(client: &tokio_postgres::Client, id: &str, key: &str, request_hash: &str) {
        client
            .execute(
                "INSERT INTO ledger_transactions (id, idempotency_key, request_hash, currency, reverses, at) VALUES ($1, $2, $3, 'RUB', NULL, 1)",
                &[&id, &key, &request_hash],
            )
            .await
            .unwrap();
    }

    /// A posting sent while another connection holds its account.
    struct Behind {
        ledger: Ledger,
        /// The holder, in its open transaction.
        other: tokio_postgres::Client,
        answered: tokio::task::JoinHandle<payhost::storage::StorageResult<Result<Vec<payhost::storage::EntryRow>, PostingRefusal>>>,
    }

    /// Funds `account` (100.00) through a host's ledger, runs `before` on another
    /// connection, has it `hold` the account in an open transaction, and sends `posting`
    /// from the host: the batch is planned on the 100.00 the host left and waits in its
    /// check (the one-round-trip path) when this returns.
    async fn posted_behind_a_lock(db: &TestDb, account: &str, before: &str, hold: &str, posting: &Posting) -> Behind {
        let (storage, ledger) = funded(db, account).await;
        let holder = holding(db, &[before, hold]).await;
        let answered = tokio::spawn({
            let posting = posting.clone();
            async move { storage.post(&posting).await }
        });
        let statement = holder.statement_waiting("a batch waits for the account").await;
        assert!(statement.contains(FAST_PATH_CHECK), "planned on the 100.00 this host left, then checked: {statement}");
        Behind { ledger, other: holder.other, answered }
    }

    /// A batch whose account another host holds waits for it and plans on what that host
    /// left: the other host's change is never written over, and the debit's entry shows
    /// the balance it really left.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_plans_on_what_another_host_left_on_its_account() {
        let Some(db) = TestDb::postgres().await else { return };
        let hold = "BEGIN; SELECT * FROM accounts WHERE id = 'moved-1' FOR UPDATE";
        let Behind { ledger: l, other, answered: debit } =
            posted_behind_a_lock(&db, "moved-1", "", hold, &posting("moved-a", "moved-1", -1_000, "charge")).await;
        other.batch_execute("UPDATE accounts SET balance = balance - 5000 WHERE id = 'moved-1'; COMMIT").await.unwrap();

        let entries = debit.await.unwrap().unwrap().unwrap();
        assert_eq!(entries[0].balance_after, 4_000, "planned on the 50.00 the other host left");
        assert_eq!(balance(&l, "moved-1").await, "40.00");
    }

    /// A retry that reaches a batch while the first attempt of the same posting is still
    /// committing elsewhere (another host, or this host's batch before) waits for the
    /// account and is answered as a replay of what that attempt did. Were the batch to
    /// look its keys up before it holds the account, it would not see the key, plan the
    /// debit afresh on the 20.00 left and answer "insufficient funds" for a debit that
    /// went through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retry_waiting_behind_its_first_attempt_is_answered_as_a_replay() {
        let Some(db) = TestDb::postgres().await else { return };
        let retry = posting("retry-a", "retry-1", -8_000, "charge");
        let hold = "BEGIN; SELECT * FROM accounts WHERE id = 'retry-1' FOR UPDATE";
        let Behind { ledger: l, other, answered } = posted_behind_a_lock(&db, "retry-1", "", hold, &retry).await;
        // The first attempt, as the batch before would write it.
        write_transaction(&other, "tx_first", &retry.idempotency_key, &retry.request_hash).await;
        other
            .batch_execute(
                "INSERT INTO ledger_entries (transaction_id, line_no, account, kind, delta, currency, balance_after, reference, at)
                 VALUES ('tx_first', 0, 'retry-1', 'debit', -8000, 'RUB', 2000, 'charge', 1);
                 UPDATE accounts SET balance = 2000 WHERE id = 'retry-1';
                 COMMIT",
            )
            .await
            .unwrap();

        let entries = answered.await.unwrap().unwrap().expect("a replay, not a refusal");
        assert_eq!((entries[0].transaction_id.as_str(), entries[0].balance_after), ("tx_first", 2_000));
        assert_eq!(balance(&l, "retry-1").await, "20.00", "debited once");
    }

    /// A batch planned on what this host knew is refused as the slow path would refuse it
    /// when its key was used meanwhile by another host: the key answers first, before
    /// the money rules (here the debit would also be more than the balance).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_used_elsewhere_meanwhile_answers_before_the_money_rules() {
        let Some(db) = TestDb::postgres().await else { return };
        let too_much = posting("keyed-a", "keyed-1", -50_000, "charge");
        let hold = "BEGIN; SELECT * FROM accounts WHERE id = 'keyed-1' FOR UPDATE";
        let Behind { ledger: l, other, answered } = posted_behind_a_lock(&db, "keyed-1", "", hold, &too_much).await;
        write_transaction(&other, "tx_elsewhere", &too_much.idempotency_key, "another request").await;
        other.batch_execute("COMMIT").await.unwrap();

        let refusal = answered.await.unwrap().unwrap().expect_err("refused");
        assert!(matches!(refusal, PostingRefusal::IdempotencyConflict(ref key) if *key == too_much.idempotency_key), "{refusal:?}");
        assert_eq!(balance(&l, "keyed-1").await, "100.00");
    }

    /// An overdraft an operator changed after this host's last batch on the account is
    /// the one the next debit is checked against.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_overdraft_changed_elsewhere_is_the_one_a_debit_meets() {
        let Some(db) = TestDb::postgres().await else { return };
        let (storage, l) = funded(&db, "limit-1").await;
        let other = other_connection(&db).await;
        other.batch_execute("UPDATE accounts SET overdraft = 5000 WHERE id = 'limit-1'").await.unwrap();

        let entries = storage.post(&posting("limit-a", "limit-1", -12_000, "charge")).await.unwrap().expect("within the new overdraft");
        assert_eq!(entries[0].balance_after, -2_000);
        other.batch_execute("UPDATE accounts SET overdraft = 0 WHERE id = 'limit-1'").await.unwrap();
        let refusal = storage.post(&posting("limit-b", "limit-1", -1_000, "charge")).await.unwrap().expect_err("no overdraft left");
        assert!(matches!(refusal, PostingRefusal::InsufficientFunds { .. }), "{refusal:?}");
        assert_eq!(balance(&l, "limit-1").await, "-20.00");
    }

    /// A batch planned on what the transaction holding its account will leave passes its
    /// check once that transaction commits: the rows are compared as the lock hands them
    /// over, not as they were when the check started. (Otherwise every batch planned on
    /// the one still committing before it, the usual case on a hot account, would fail
    /// its check and run again.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_planned_on_what_the_lock_holder_leaves_passes_its_check() {
        let Some(db) = TestDb::postgres().await else { return };
        // Every failed check counted, whatever rolls back.
        let before = "CREATE SEQUENCE failed_checks;
             CREATE OR REPLACE FUNCTION payhost_ledger_plan_stale() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
             BEGIN
                 PERFORM nextval('failed_checks');
                 RAISE EXCEPTION 'stale' USING ERRCODE = 'serialization_failure';
             END $$;
             UPDATE accounts SET balance = 7000 WHERE id = 'next-1';";
        // Another transaction puts back what this host last left, and holds the row.
        let hold = "BEGIN; UPDATE accounts SET balance = 10000 WHERE id = 'next-1'";
        let Behind { ledger: l, other, answered: debit } =
            posted_behind_a_lock(&db, "next-1", before, hold, &posting("next-a", "next-1", -1_000, "charge")).await;
        other.batch_execute("COMMIT").await.unwrap();

        let entries = debit.await.unwrap().unwrap().unwrap();
        assert_eq!(entries[0].balance_after, 9_000);
        assert_eq!(balance(&l, "next-1").await, "90.00");
        let failed: i64 = other.query_one("SELECT last_value FROM failed_checks", &[]).await.unwrap().get(0);
        let called: bool = other.query_one("SELECT is_called FROM failed_checks", &[]).await.unwrap().get(0);
        assert!(!called, "no check failed ({failed} counted)");
    }

    /// The statement a guarded write claims the keys it expects absent with (see
    /// `claim_absent` in `storage/postgres/kv.rs`).
    const CLAIM: &str = "ON CONFLICT (ns, key) DO NOTHING";

    /// A group that expects a key to be absent is refused when another host creates the
    /// key while the group runs: the other host's insert is not committed when the group
    /// looks (so nothing is there to lock), and a group that then wrote over it would
    /// have two creators both told they created the record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_expected_absent_and_created_meanwhile_refuses_the_group() {
        let Some(db) = TestDb::postgres().await else { return };
        let storage = db.open().await;
        let holder = holding(&db, &["BEGIN; INSERT INTO kv (ns, key, value) VALUES ('shop', 'profile/1', 'theirs')"]).await;

        let create = vec![
            KvWrite::Expect { key: "profile/1".into(), value: None },
            KvWrite::Put { key: "profile/1".into(), value: b"mine".to_vec() },
            KvWrite::Put { key: "due/1".into(), value: Vec::new() },
        ];
        let written = tokio::spawn({
            let (storage, create) = (storage.clone(), create.clone());
            async move { storage.kv_write_groups("shop", &[create]).await }
        });
        let statement = holder.statement_waiting("the group waits for the other insert").await;
        assert!(statement.contains(CLAIM), "the key's claim is what waits: {statement}");
        holder.other.batch_execute("COMMIT").await.unwrap();

        assert_eq!(written.await.unwrap().unwrap(), vec![false], "the key was there when the group committed");
        assert_eq!(storage.kv_get("shop", "profile/1").await.unwrap().as_deref(), Some(&b"theirs"[..]));
        assert_eq!(storage.kv_get("shop", "due/1").await.unwrap(), None, "nothing of the group written");
        // Absent again, the same group is written, and an expectation alone leaves no row.
        storage.kv_delete("shop", "profile/1").await.unwrap();
        let only_expect = vec![KvWrite::Expect { key: "other/1".into(), value: None }, KvWrite::Put { key: "due/2".into(), value: b"x".to_vec() }];
        assert_eq!(storage.kv_write_groups("shop", &[create, only_expect]).await.unwrap(), vec![true, true]);
        assert_eq!(storage.kv_get("shop", "profile/1").await.unwrap().as_deref(), Some(&b"mine"[..]));
        assert_eq!(storage.kv_get("shop", "other/1").await.unwrap(), None);
        assert_eq!(storage.kv_get("shop", "due/2").await.unwrap().as_deref(), Some(&b"x"[..]));
    }

    /// The same for the store writes a payment event's completion commits with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_completion_expecting_a_key_absent_is_refused_when_it_is_created_meanwhile() {
        let Some(db) = TestDb::postgres().await else { return };
        let storage = db.open().await;
        let (id, _) = storage.event_ingest("shop", &payment_event("pi_x", "succeeded"), 1_000).await.unwrap();
        let held = lease("host-a", 100_000);
        assert_eq!(storage.event_claim_due(5_000, &held, 10).await.unwrap().len(), 1);
        let holder = holding(&db, &["BEGIN; INSERT INTO kv (ns, key, value) VALUES ('shop', 'order/pi_x', 'theirs')"]).await;

        let writes = vec![
            KvWrite::Expect { key: "order/pi_x".into(), value: None },
            KvWrite::Put { key: "order/pi_x".into(), value: b"mine".to_vec() },
        ];
        let completed = tokio::spawn({
            let storage = storage.clone();
            async move { storage.event_complete(id, &held, "shop", &writes).await }
        });
        let statement = holder.statement_waiting("the completion waits for the other insert").await;
        assert!(statement.contains(CLAIM), "the key's claim is what waits: {statement}");
        holder.other.batch_execute("COMMIT").await.unwrap();

        assert!(!completed.await.unwrap().unwrap(), "the key was there when the completion committed");
        assert_eq!(storage.kv_get("shop", "order/pi_x").await.unwrap().as_deref(), Some(&b"theirs"[..]));
        assert_eq!(storage.event_list(Some("shop"), 10).await.unwrap()[0].state, JobState::Pending);
    }

    /// Guarded writes that lose a deadlock to another host run again, and are answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guarded_writes_that_lose_a_deadlock_run_again() {
        let Some(db) = TestDb::postgres().await else { return };
        let storage = db.open().await;
        let client = other_connection(&db).await;
        lose_every_other_insert(&client, "kv", "NEW.key LIKE 'race/%'", "deadlock_detected").await;

        let group = vec![KvWrite::Put { key: "race/1".into(), value: b"v".to_vec() }];
        assert_eq!(storage.kv_write_groups("shop", &[group]).await.unwrap(), vec![true]);
        assert_eq!(storage.kv_get("shop", "race/1").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(insert_attempts(&client).await, 2, "lost once, ran again once");
    }

    /// A batch stuck behind a lock someone else holds does not hold up this host's
    /// batches on other accounts, though the next batch waits for it to lock first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_stuck_on_a_lock_does_not_hold_up_other_accounts() {
        let Some(db) = TestDb::postgres().await else { return };
        let hold = "BEGIN; SELECT * FROM accounts WHERE id = 'stuck-1' FOR UPDATE";
        let Behind { ledger: l, other, answered: stuck } =
            posted_behind_a_lock(&db, "stuck-1", "", hold, &posting("stuck-a", "stuck-1", -1_000, "charge")).await;
        l.open_account("free-1", "RUB").await.unwrap();
        l.credit("test", "fund-free", "free-1", "10.00", "RUB", "funding").await.unwrap();

        // A guard against hanging, not a measure: without it a stall would never end.
        let free = tokio::time::timeout(Duration::from_secs(60), l.debit("test", "free-a", "free-1", "3.00", "RUB", "charge")).await;
        free.expect("the other account's debit is not held up").unwrap();
        assert_eq!(balance(&l, "free-1").await, "7.00");
        assert!(!stuck.is_finished(), "the stuck batch still waits");
        other.batch_execute("COMMIT").await.unwrap();
        stuck.await.unwrap().unwrap().unwrap();
        assert_eq!(balance(&l, "stuck-1").await, "90.00");
    }
}
