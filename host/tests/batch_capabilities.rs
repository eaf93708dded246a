//! The batch calls of contracts 0.2.1 (`ledger.post-batch`, `store.set-many`) and 0.2.2
//! (`store.compare-and-swap-many`, `checkout.charge-many`) as a plugin's call reaches
//! them, without wasm: a `PluginState` on a real storage backend, driven through the WIT
//! `Host` traits the linker wires to the component. Each posting of a batch is its own
//! exactly-once call (own key, own refusal, own replay) inside one commit; a store batch
//! is all or nothing, a guarded group is written whole or skipped whole, and both are
//! held back with the other writes while a payment event is handled; each charge of a
//! balance batch is the charge its own call would make.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use payhost::call_failure::CallFailure;
use payhost::capabilities::state::{InstanceContext, PluginState};
use payhost::clock::HostClock;
use payhost::config::PluginConfig;
use payhost::jobs::JobWaker;
use payhost::payments::{PaymentSystems, ProcessorResult};
use payhost::secrets::Secrets;
use payhost::services::Services;
use payhost::storage::KvWrite;
use payhost::wit::ledger::{self, BatchPosting, DebitLine, Entry, Host as _, PostingKind};
use payhost::wit::payment_system::exports::payhost::gateway::processor::Webhook;
use payhost::wit::checkout::Host as _;
use payhost::wit::payments::{self, ChargeRequest, Checkout, CheckoutRequest, PaymentEvent, PaymentStatus, RefundResult};
use payhost::wit::store::{self, Expectation, GuardedWrite, Host as _};
use payhost::wit::types::Request;
use support::TestDb;

on_both_backends!(
    a_batch_answers_each_posting_and_commits_the_accepted_ones,
    postings_replay_in_a_batch_as_their_own_calls_would,
    a_store_batch_is_all_or_nothing,
    a_store_batch_is_held_back_with_a_payment_events_writes,
    guarded_groups_are_written_whole_or_skipped_whole,
    guarded_groups_are_held_back_with_a_payment_events_writes,
    a_balance_charge_batch_is_each_charge_as_its_own_call,
);

// ---------------------------------------------------------------- helpers

/// No payment systems: these tests never reach checkout.
struct NoPaymentSystems;

fn none<T>() -> ProcessorResult<T> {
    Err(CallFailure::PluginError("no payment systems in this suite".into()))
}

#[async_trait]
impl PaymentSystems for NoPaymentSystems {
    async fn start_checkout(self: Arc<Self>, _: &str, _: &str, _: CheckoutRequest) -> ProcessorResult<Checkout> {
        none()
    }
    async fn charge(self: Arc<Self>, _: &str, _: &str, _: ChargeRequest) -> ProcessorResult<PaymentEvent> {
        none()
    }
    async fn lookup(self: Arc<Self>, _: &str, _: &str, _: String) -> ProcessorResult<PaymentEvent> {
        none()
    }
    async fn refund(self: Arc<Self>, _: &str, _: &str, _: String, _: Option<String>) -> ProcessorResult<RefundResult> {
        none()
    }
    async fn parse_webhook(self: Arc<Self>, _: &str, _: Request) -> ProcessorResult<Webhook> {
        none()
    }
}

/// One call's state of instance `batchy`, as the runtime builds it for a plugin call.
async fn call(db: &TestDb) -> PluginState {
    let config: PluginConfig =
        toml::from_str("name = \"batchy\"\ncomponent = \"batchy.wasm\"\nmount = \"/batchy\"\npayment_systems = [\"balance\"]").expect("plugin config");
    let services = Services::new(db.open().await, HostClock::system(), reqwest::Client::new(), JobWaker::default());
    PluginState {
        ctx: Arc::new(InstanceContext::new(config, Secrets::default(), services)),
        request_id: "test-request".into(),
        deadline_at: std::time::Instant::now() + std::time::Duration::from_secs(600),
        started_at: std::time::Instant::now(),
        move_now: Default::default(),
        wasi: wasmtime_wasi::WasiCtx::builder().build(),
        table: wasmtime::component::ResourceTable::new(),
        limits: wasmtime::StoreLimits::default(),
        payment_systems: Arc::new(NoPaymentSystems),
        kv_buffer: None,
    }
}

fn posting(key: &str, kind: PostingKind, lines: &[(&str, &str)]) -> BatchPosting {
    BatchPosting {
        idempotency_key: key.into(),
        kind,
        currency: "RUB".into(),
        lines: lines
            .iter()
            .map(|(account, amount)| DebitLine { account: account.to_string(), amount: amount.to_string(), reference: format!("ref-{key}") })
            .collect(),
    }
}

async fn balance(state: &mut PluginState, account: &str) -> String {
    state.get_account(account.into()).await.expect("get-account").expect("account exists").balance
}

/// Opens `account` and credits it `amount` (key `fund-{account}`).
async fn funded(state: &mut PluginState, account: &str, amount: &str) {
    state.open_account(account.into(), "RUB".into()).await.expect("open-account");
    if amount != "0" {
        state.credit(format!("fund-{account}"), account.into(), amount.into(), "RUB".into(), "funding".into()).await.expect("credit");
    }
}

fn one(result: &Result<Vec<Entry>, ledger::Error>) -> &Entry {
    match result {
        Ok(entries) if entries.len() == 1 => &entries[0],
        other => panic!("expected one entry, got {other:?}"),
    }
}

// ---------------------------------------------------------------- ledger

async fn a_batch_answers_each_posting_and_commits_the_accepted_ones(db: &TestDb) {
    let mut state = call(db).await;
    funded(&mut state, "alice", "10.00").await;
    funded(&mut state, "bob", "0").await;

    let results = state
        .post_batch(vec![
            posting("k1", PostingKind::Debit, &[("alice", "3.00")]),
            // More than alice has left after k1: refused on its own.
            posting("k2", PostingKind::Debit, &[("alice", "7.01")]),
            posting("k3", PostingKind::Credit, &[("bob", "1.50")]),
            posting("k4", PostingKind::Debit, &[("nobody", "1.00")]),
            // A key the host refuses (control character): refused before storage.
            posting("bad\u{1}key", PostingKind::Debit, &[("alice", "1.00")]),
            posting("k6", PostingKind::Debit, &[("alice", "2.00"), ("alice", "1.00")]),
        ])
        .await;

    assert_eq!(results.len(), 6, "{results:?}");
    assert_eq!(one(&results[0]).balance_after, "7.00");
    match &results[1] {
        Err(ledger::Error::InsufficientFunds(s)) => assert_eq!((s.account.as_str(), s.balance.as_str(), s.requested.as_str()), ("alice", "7.00", "7.01")),
        other => panic!("k2: {other:?}"),
    }
    assert_eq!(one(&results[2]).balance_after, "1.50");
    assert!(matches!(&results[3], Err(ledger::Error::UnknownAccount(_))), "k4: {:?}", results[3]);
    assert!(matches!(&results[4], Err(ledger::Error::InvalidAmount(m)) if m.contains("control")), "bad key: {:?}", results[4]);
    let k6 = results[5].as_ref().expect("k6");
    assert_eq!(k6.iter().map(|e| e.balance_after.as_str()).collect::<Vec<_>>(), ["5.00", "4.00"]);
    assert_eq!(k6[0].transaction_id, k6[1].transaction_id, "a multi-line posting is one transaction");

    // What was accepted is durable, what was refused left nothing.
    assert_eq!(balance(&mut state, "alice").await, "4.00");
    assert_eq!(balance(&mut state, "bob").await, "1.50");
    let history = state.history("alice".into(), 10).await.expect("history");
    assert_eq!(history.len(), 4, "funding, k1 and k6's two lines: {history:?}");
    assert!(state.get_account("nobody".into()).await.expect("get-account").is_none());
    // A refused posting's key is still free: the same key succeeds once the money is there.
    let retried = state.post_batch(vec![posting("k2", PostingKind::Debit, &[("alice", "4.00")])]).await;
    assert_eq!(one(&retried[0]).balance_after, "0.00");
}

async fn postings_replay_in_a_batch_as_their_own_calls_would(db: &TestDb) {
    let mut state = call(db).await;
    funded(&mut state, "carol", "20.00").await;

    // A key first used by a plain `debit` replays in a batch with the same arguments.
    let single = state.debit("d1".into(), "carol".into(), "2.00".into(), "RUB".into(), "ref-d1".into()).await.expect("debit");
    let batch = vec![
        posting("d1", PostingKind::Debit, &[("carol", "2.00")]),
        posting("d2", PostingKind::Debit, &[("carol", "3.00")]),
        // The same key twice in one batch: the second is a replay of the first.
        posting("d2", PostingKind::Debit, &[("carol", "3.00")]),
        posting("c1", PostingKind::Credit, &[("carol", "1.00")]),
    ];
    let first = state.post_batch(batch.clone()).await;
    assert_eq!(one(&first[0]).transaction_id, single.transaction_id);
    assert_eq!(one(&first[1]).transaction_id, one(&first[2]).transaction_id);
    assert_eq!(balance(&mut state, "carol").await, "16.00");

    // The whole batch again moves no money and answers the same entries.
    let again = state.post_batch(batch).await;
    for (a, b) in first.iter().zip(&again) {
        let seen = |e: &Entry| (e.transaction_id.clone(), e.amount.clone(), e.balance_after.clone(), e.at);
        assert_eq!(seen(one(a)), seen(one(b)));
    }
    assert_eq!(balance(&mut state, "carol").await, "16.00");

    // A replayed key with other terms is a conflict, alone in the batch.
    let conflict = state
        .post_batch(vec![posting("d2", PostingKind::Debit, &[("carol", "3.01")]), posting("d3", PostingKind::Debit, &[("carol", "1.00")])])
        .await;
    assert!(matches!(&conflict[0], Err(ledger::Error::IdempotencyConflict(_))), "{:?}", conflict[0]);
    assert_eq!(one(&conflict[1]).balance_after, "15.00");
    // And a batch posting's key replays through the plain call too.
    let plain = state.credit("c1".into(), "carol".into(), "1.00".into(), "RUB".into(), "ref-c1".into()).await.expect("credit replay");
    assert_eq!(plain.transaction_id, one(&first[3]).transaction_id);
    assert_eq!(balance(&mut state, "carol").await, "15.00");
}

// ---------------------------------------------------------------- store

async fn a_store_batch_is_all_or_nothing(db: &TestDb) {
    let mut state = call(db).await;
    state.set("kept".into(), b"1".to_vec()).await.expect("set");

    // One refused pair (a value over the limit) and nothing of the batch is written.
    let refused = state
        .set_many(vec![
            ("new".into(), Some(b"2".to_vec())),
            ("kept".into(), None),
            ("huge".into(), Some(vec![0u8; (1 << 20) + 1])),
        ])
        .await;
    assert!(matches!(refused, Err(store::Error::TooLarge(_))), "{refused:?}");
    let refused_key = state.set_many(vec![("new".into(), Some(b"2".to_vec())), ("bad\u{1}".into(), None)]).await;
    assert!(matches!(refused_key, Err(store::Error::TooLarge(_))), "{refused_key:?}");
    assert_eq!(state.get("kept".into()).await.expect("get"), Some(b"1".to_vec()));
    assert_eq!(state.get("new".into()).await.expect("get"), None);

    // Accepted: every pair lands, deletes included, and the last write of a key wins.
    state
        .set_many(vec![("new".into(), Some(b"2".to_vec())), ("kept".into(), None), ("new".into(), Some(b"3".to_vec()))])
        .await
        .expect("set-many");
    assert_eq!(state.get("new".into()).await.expect("get"), Some(b"3".to_vec()));
    assert_eq!(state.get("kept".into()).await.expect("get"), None);
    let storage = state.services().storage.clone();
    assert_eq!(storage.kv_get("batchy", "new").await.expect("kv_get"), Some(b"3".to_vec()));

    // Too many writes for one call is refused whole.
    let many: Vec<(String, Option<Vec<u8>>)> = (0..513).map(|i| (format!("k{i}"), Some(vec![1]))).collect();
    assert!(matches!(state.set_many(many).await, Err(store::Error::TooLarge(_))));
    assert_eq!(storage.kv_list("batchy", "k", None, 10).await.expect("kv_list"), Vec::<String>::new());
}

async fn a_store_batch_is_held_back_with_a_payment_events_writes(db: &TestDb) {
    let mut state = call(db).await;
    state.set("old".into(), b"1".to_vec()).await.expect("set");
    state.hold_store_writes();
    state.set_many(vec![("held".into(), Some(b"2".to_vec())), ("old".into(), None)]).await.expect("set-many");

    // The call sees its own writes; storage sees nothing until the event commits.
    assert_eq!(state.get("held".into()).await.expect("get"), Some(b"2".to_vec()));
    assert_eq!(state.get("old".into()).await.expect("get"), None);
    assert_eq!(state.list_keys(String::new(), None, 10).await.expect("list-keys"), vec!["held".to_string()]);
    let storage = state.services().storage.clone();
    assert_eq!(storage.kv_get("batchy", "held").await.expect("kv_get"), None);
    assert_eq!(storage.kv_get("batchy", "old").await.expect("kv_get"), Some(b"1".to_vec()));
    assert_eq!(
        state.take_held_writes(),
        vec![KvWrite::Put { key: "held".into(), value: b"2".to_vec() }, KvWrite::Delete { key: "old".into() }]
    );
}

fn guarded(key: &str, expect: Expectation, value: Option<&[u8]>) -> GuardedWrite {
    GuardedWrite { key: key.into(), expect, value: value.map(<[u8]>::to_vec) }
}

async fn guarded_groups_are_written_whole_or_skipped_whole(db: &TestDb) {
    let mut state = call(db).await;
    state.set("b".into(), b"1".to_vec()).await.expect("set");
    state.set("gone".into(), b"x".to_vec()).await.expect("set");

    let written = state
        .compare_and_swap_many(vec![
            vec![guarded("a", Expectation::Absent, Some(b"1"))],
            // One expectation fails: the unconditional write beside it is skipped too.
            vec![guarded("b", Expectation::Equals(b"2".to_vec()), Some(b"3")), guarded("c", Expectation::Any, Some(b"1"))],
            // A later group sees what an earlier one wrote.
            vec![guarded("a", Expectation::Equals(b"1".to_vec()), Some(b"2")), guarded("gone", Expectation::Any, None)],
            vec![guarded("b", Expectation::Equals(b"1".to_vec()), Some(b"4"))],
        ])
        .await
        .expect("compare-and-swap-many");
    assert_eq!(written, [true, false, true, true]);
    let storage = state.services().storage.clone();
    let stored = |key: &'static str| {
        let storage = storage.clone();
        async move { storage.kv_get("batchy", key).await.expect("kv_get") }
    };
    assert_eq!(stored("a").await, Some(b"2".to_vec()));
    assert_eq!(stored("b").await, Some(b"4".to_vec()));
    assert_eq!(stored("c").await, None, "the skipped group wrote nothing");
    assert_eq!(stored("gone").await, None);

    // A refused write (bad key, value over the limit, too many in all) refuses the call
    // whole: not even the groups that would hold are written.
    let bad = state
        .compare_and_swap_many(vec![vec![guarded("d", Expectation::Absent, Some(b"1"))], vec![guarded("bad\u{1}", Expectation::Any, None)]])
        .await;
    assert!(matches!(bad, Err(store::Error::TooLarge(_))), "{bad:?}");
    let huge = vec![0u8; (1 << 20) + 1];
    let too_big = state.compare_and_swap_many(vec![vec![guarded("d", Expectation::Absent, Some(&huge))]]).await;
    assert!(matches!(too_big, Err(store::Error::TooLarge(_))), "{too_big:?}");
    let many: Vec<Vec<GuardedWrite>> = (0..171).map(|i| (0..3).map(|j| guarded(&format!("m{i}-{j}"), Expectation::Any, Some(b"1"))).collect()).collect();
    assert!(matches!(state.compare_and_swap_many(many).await, Err(store::Error::TooLarge(_))));
    assert_eq!(stored("d").await, None);
    assert_eq!(storage.kv_list("batchy", "m", None, 10).await.expect("kv_list"), Vec::<String>::new());
}

async fn guarded_groups_are_held_back_with_a_payment_events_writes(db: &TestDb) {
    let mut state = call(db).await;
    state.set("rec".into(), b"v1".to_vec()).await.expect("set");
    state.hold_store_writes();
    let written = state
        .compare_and_swap_many(vec![
            vec![guarded("rec", Expectation::Equals(b"v1".to_vec()), Some(b"v2")), guarded("idx", Expectation::Any, Some(b""))],
            vec![guarded("rec", Expectation::Equals(b"v1".to_vec()), Some(b"v3"))],
        ])
        .await
        .expect("compare-and-swap-many");
    // The second group sees the first one's buffered write and is skipped.
    assert_eq!(written, [true, false]);
    assert_eq!(state.get("rec".into()).await.expect("get"), Some(b"v2".to_vec()));
    let storage = state.services().storage.clone();
    assert_eq!(storage.kv_get("batchy", "rec").await.expect("kv_get"), Some(b"v1".to_vec()), "nothing reaches storage before the event commits");
    // The value read from storage is re-checked when the event commits.
    assert_eq!(
        state.take_held_writes(),
        vec![
            KvWrite::Expect { key: "rec".into(), value: Some(b"v1".to_vec()) },
            KvWrite::Put { key: "rec".into(), value: b"v2".to_vec() },
            KvWrite::Put { key: "idx".into(), value: Vec::new() },
        ]
    );
}

fn charge(reference: &str, customer: &str, amount: &str) -> ChargeRequest {
    ChargeRequest {
        amount: amount.into(),
        currency: "RUB".into(),
        description: "subscription".into(),
        reference: reference.into(),
        customer: customer.into(),
        saved_method: None,
    }
}

async fn a_balance_charge_batch_is_each_charge_as_its_own_call(db: &TestDb) {
    let mut state = call(db).await;
    funded(&mut state, "dave", "10.00").await;
    let first = state.charge("balance".into(), charge("r0", "dave", "1.00")).await.expect("charge");

    let requests = vec![
        // Charged before by a plain `charge`: the same payment, no second debit.
        charge("r0", "dave", "1.00"),
        charge("r1", "dave", "3.00"),
        // More than dave has left: a failed payment, alone.
        charge("r2", "dave", "6.01"),
        charge("r3", "nobody", "1.00"),
        charge("r4", "dave", "2.00"),
    ];
    let events = state.charge_many("balance".into(), requests.clone()).await;
    let statuses: Vec<PaymentStatus> = events.iter().map(|e| e.as_ref().expect("an answer").status).collect();
    assert_eq!(statuses, [PaymentStatus::Succeeded, PaymentStatus::Succeeded, PaymentStatus::Failed, PaymentStatus::Failed, PaymentStatus::Succeeded]);
    assert_eq!(events[0].as_ref().unwrap().external_id, first.external_id);
    assert!(events[2].as_ref().unwrap().message.as_deref().unwrap_or_default().contains("insufficient funds"), "{:?}", events[2]);
    assert_eq!(balance(&mut state, "dave").await, "4.00");

    // The batch again takes nothing more and answers the same payments; a plain charge
    // of a batch reference is that payment too.
    let again = state.charge_many("balance".into(), requests).await;
    for (a, b) in events.iter().zip(&again) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert_eq!((a.status, &a.external_id), (b.status, &b.external_id));
    }
    let plain = state.charge("balance".into(), charge("r4", "dave", "2.00")).await.expect("charge replay");
    assert_eq!(plain.external_id, events[4].as_ref().unwrap().external_id);
    assert_eq!(balance(&mut state, "dave").await, "4.00");

    // A system the instance is not granted: every request is refused, nothing moves.
    let refused = state.charge_many("card".into(), vec![charge("r5", "dave", "1.00")]).await;
    assert!(matches!(&refused[0], Err(payments::Error::UnknownSystem(_))), "{refused:?}");
    let too_many: Vec<ChargeRequest> = (0..513).map(|i| charge(&format!("m{i}"), "dave", "0.01")).collect();
    assert!(state.charge_many("balance".into(), too_many).await.iter().all(|r| matches!(r, Err(payments::Error::Rejected(_)))));
    assert_eq!(balance(&mut state, "dave").await, "4.00");
}
