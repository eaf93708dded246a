//! The batch calls of contract 0.2.1 (`ledger.post-batch`, `store.set-many`) as a
//! plugin's call reaches them, without wasm: a `PluginState` on a real storage backend,
//! driven through the WIT `Host` traits the linker wires to the component. Each posting
//! of a batch is its own exactly-once call (own key, own refusal, own replay) inside one
//! commit; a store batch is all or nothing, and held back with the other writes while a
//! payment event is handled.

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
use payhost::wit::payments::{ChargeRequest, Checkout, CheckoutRequest, PaymentEvent, RefundResult};
use payhost::wit::store::{self, Host as _};
use payhost::wit::types::Request;
use support::TestDb;

on_both_backends!(
    a_batch_answers_each_posting_and_commits_the_accepted_ones,
    postings_replay_in_a_batch_as_their_own_calls_would,
    a_store_batch_is_all_or_nothing,
    a_store_batch_is_held_back_with_a_payment_events_writes,
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
    let config: PluginConfig = toml::from_str("name = \"batchy\"\ncomponent = \"batchy.wasm\"\nmount = \"/batchy\"").expect("plugin config");
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
