//! Store quotas, on both backends: the database counts every write into its
//! namespace's usage (keys, values and 64 bytes per key), whichever path made it (a
//! single write, compare-and-swap, a batch, a guarded group, a payment event's writes
//! committed with the event) and every timer of the instance (name, payload and 64
//! bytes), and refuses a write or timer that would take the namespace over its quota,
//! leaving everything as it was.

mod support;

use payhost::storage::{JobState, KvWrite, Lease, NewPaymentEvent, PaymentStatus, Storage, StorageError, StoreUsage, ROW_OVERHEAD_BYTES};
use support::TestDb;

on_both_backends!(
    usage_counts_what_every_kind_of_write_leaves,
    a_write_over_the_quota_is_refused_and_leaves_the_store_as_it_was,
    a_quota_lowered_under_the_usage_keeps_the_keys_and_refuses_only_growth,
    a_payment_events_writes_over_the_quota_are_not_committed_and_the_event_stays,
    timers_count_towards_the_quota_until_they_fire_or_are_cancelled,
);

/// What the namespace holds, counted as storage counts it, read key by key.
async fn counted(s: &dyn Storage, ns: &str) -> u64 {
    let mut total = 0;
    for key in s.kv_list(ns, "", None, 10_000).await.unwrap() {
        let value = s.kv_get(ns, &key).await.unwrap().unwrap();
        total += key.len() as u64 + value.len() as u64 + ROW_OVERHEAD_BYTES;
    }
    total
}

/// One namespace's usage and quota (nothing and none when it has neither).
async fn usage(s: &dyn Storage, ns: &str) -> StoreUsage {
    s.kv_usages().await.unwrap().remove(ns).unwrap_or(StoreUsage { bytes: 0, quota: None })
}

async fn assert_usage_matches(s: &dyn Storage, ns: &str, after: &str) {
    let stored = usage(s, ns).await;
    assert_eq!(stored.bytes, counted(s, ns).await, "usage after {after}");
}

fn is_quota(e: &StorageError) -> bool {
    matches!(e, StorageError::QuotaExceeded { .. })
}

async fn usage_counts_what_every_kind_of_write_leaves(db: &TestDb) {
    let s = db.open().await;
    let s = s.as_ref();
    assert_eq!(usage(s, "shop").await.bytes, 0, "an empty store uses nothing");
    s.kv_set("shop", "a", b"12345").await.unwrap();
    assert_usage_matches(s, "shop", "a first write").await;
    s.kv_set("shop", "a", &[7; 300]).await.unwrap();
    assert_usage_matches(s, "shop", "a larger value over it").await;
    s.kv_set("shop", "a", b"x").await.unwrap();
    assert_usage_matches(s, "shop", "a smaller value over it").await;
    s.kv_set("shop", "ключ", b"multibyte key").await.unwrap();
    assert_usage_matches(s, "shop", "a key of multibyte characters").await;
    assert!(s.kv_cas("shop", "c", None, b"created").await.unwrap());
    assert!(!s.kv_cas("shop", "c", None, b"again, refused").await.unwrap());
    assert!(s.kv_cas("shop", "c", Some(b"created"), b"swapped to a longer value").await.unwrap());
    assert_usage_matches(s, "shop", "compare-and-swap").await;
    s.kv_set_many("shop", &[("m1".into(), Some(vec![1; 40])), ("m1".into(), Some(vec![1; 4])), ("a".into(), None)]).await.unwrap();
    assert_usage_matches(s, "shop", "a batch that writes a key twice and deletes one").await;
    let groups = vec![
        vec![KvWrite::Expect { key: "g".into(), value: None }, KvWrite::Put { key: "g".into(), value: b"group".to_vec() }],
        vec![KvWrite::Expect { key: "absent".into(), value: Some(b"no".to_vec()) }, KvWrite::Put { key: "never".into(), value: vec![0; 99] }],
        vec![KvWrite::Expect { key: "claimed".into(), value: None }],
    ];
    assert_eq!(s.kv_write_groups("shop", &groups).await.unwrap(), vec![true, false, true]);
    assert_usage_matches(s, "shop", "guarded groups, one refused and one that only claims").await;
    assert!(s.kv_delete("shop", "c").await.unwrap());
    assert_usage_matches(s, "shop", "a delete").await;
    assert_eq!(usage(s, "other").await.bytes, 0, "namespaces are counted apart");
    for key in s.kv_list("shop", "", None, 100).await.unwrap() {
        s.kv_delete("shop", &key).await.unwrap();
    }
    assert_eq!(usage(s, "shop").await.bytes, 0, "an emptied store uses nothing again");
}

async fn a_write_over_the_quota_is_refused_and_leaves_the_store_as_it_was(db: &TestDb) {
    let s = db.open().await;
    let s = s.as_ref();
    s.kv_set_quotas(&[("shop".into(), Some(1_000)), ("free".into(), None)]).await.unwrap();
    assert_eq!(usage(s, "shop").await.quota, Some(1_000));
    // 1 + 500 + 64 = 565 bytes.
    s.kv_set("shop", "a", &[1; 500]).await.unwrap();
    let e = s.kv_set("shop", "b", &[2; 500]).await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    assert!(!e.is_transient(), "trying again cannot help");
    assert_eq!(s.kv_get("shop", "b").await.unwrap(), None);
    assert_eq!(usage(s, "shop").await.bytes, 565);
    // Up to the quota exactly is allowed; one byte more is not.
    s.kv_set("shop", "a", &[1; 935]).await.unwrap();
    assert_eq!(usage(s, "shop").await.bytes, 1_000);
    let e = s.kv_set("shop", "a", &[3; 936]).await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    assert_eq!(s.kv_get("shop", "a").await.unwrap(), Some(vec![1; 935]), "the old value stays");
    // Every other way of writing is refused alike, and writes nothing.
    let e = s.kv_cas("shop", "c", None, b"x").await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    let e = s.kv_cas("shop", "a", Some(&[1; 935]), &[4; 936]).await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    let e = s.kv_set_many("shop", &[("a".into(), None), ("d".into(), Some(vec![5; 2_000]))]).await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    assert_eq!(s.kv_get("shop", "a").await.unwrap(), Some(vec![1; 935]), "a refused batch deletes nothing either");
    let e = s.kv_write_groups("shop", &[vec![KvWrite::Put { key: "e".into(), value: vec![6; 100] }]]).await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    assert_eq!(s.kv_list("shop", "", None, 10).await.unwrap(), vec!["a".to_string()]);
    assert_eq!(usage(s, "shop").await.bytes, 1_000);
    // Deleting makes room; a batch that frees before it grows fits.
    s.kv_set_many("shop", &[("a".into(), None), ("d".into(), Some(vec![5; 900]))]).await.unwrap();
    assert_eq!(usage(s, "shop").await.bytes, 1 + 900 + 64);
    // Without a quota a store grows as it needs; quotas are per namespace.
    s.kv_set("free", "big", &[0; 10_000]).await.unwrap();
    s.kv_set_quotas(&[("shop".into(), None)]).await.unwrap();
    s.kv_set("shop", "b", &[2; 5_000]).await.unwrap();
    assert_eq!(usage(s, "shop").await.quota, None);
    // Every namespace with keys or a quota is listed, one with only a quota too.
    s.kv_set_quotas(&[("idle".into(), Some(7))]).await.unwrap();
    let usages = s.kv_usages().await.unwrap();
    assert_eq!(usages.keys().map(String::as_str).collect::<Vec<_>>(), ["free", "idle", "shop"]);
    assert_eq!((usages["idle"].bytes, usages["idle"].quota), (0, Some(7)));
    assert_eq!((usages["free"].bytes, usages["free"].quota), (3 + 10_000 + 64, None));
}

async fn a_quota_lowered_under_the_usage_keeps_the_keys_and_refuses_only_growth(db: &TestDb) {
    let s = db.open().await;
    let s = s.as_ref();
    s.kv_set("shop", "a", &[1; 500]).await.unwrap();
    s.kv_set("shop", "b", &[2; 500]).await.unwrap();
    s.kv_set_quotas(&[("shop".into(), Some(600))]).await.unwrap();
    assert_eq!(usage(s, "shop").await.bytes, 1_130, "nothing is taken away");
    s.kv_set("shop", "a", &[1; 100]).await.expect("a write that shrinks the store is allowed over the quota");
    let e = s.kv_set("shop", "b", &[2; 501]).await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    assert!(s.kv_delete("shop", "b").await.unwrap());
    s.kv_set("shop", "b", &[2; 300]).await.expect("back under the quota, it grows again: 165 + 365 bytes");
    assert_usage_matches(s, "shop", "shrinking, deleting and growing").await;
}

async fn a_payment_events_writes_over_the_quota_are_not_committed_and_the_event_stays(db: &TestDb) {
    let s = db.open().await;
    let event = NewPaymentEvent {
        system: "stripe".into(),
        reference: "order-pi_q".into(),
        status: PaymentStatus::parse("succeeded").unwrap(),
        amount: "300.00".into(),
        currency: "RUB".into(),
        external_id: "pi_q".into(),
        saved_method: None,
        message: None,
    };
    let (id, _) = s.event_ingest("shop", &event, 1_000).await.unwrap();
    s.kv_set_quotas(&[("shop".into(), Some(1_000))]).await.unwrap();
    s.kv_set("shop", "counter", b"1").await.unwrap();
    let held = Lease { owner: "host-a".into(), until: 100_000 };
    assert_eq!(s.event_claim_due(5_000, &held, 10).await.unwrap().len(), 1);
    let writes = vec![
        KvWrite::Put { key: "counter".into(), value: b"2".to_vec() },
        KvWrite::Put { key: "order/pi_q".into(), value: vec![9; 2_000] },
    ];
    let e = s.event_complete(id, &held, "shop", &writes).await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    assert_eq!(s.kv_get("shop", "counter").await.unwrap().as_deref(), Some(&b"1"[..]), "none of the event's writes");
    assert_eq!(s.kv_get("shop", "order/pi_q").await.unwrap(), None);
    let row = s.event_list(Some("shop"), 10).await.unwrap().into_iter().find(|e| e.id == id).unwrap();
    assert_ne!(row.state, JobState::Done, "the event is not marked handled");
    // With room made (a larger quota), the same result commits with the event.
    s.kv_set_quotas(&[("shop".into(), Some(10_000))]).await.unwrap();
    assert!(s.event_complete(id, &held, "shop", &writes).await.unwrap());
    assert_eq!(s.kv_get("shop", "order/pi_q").await.unwrap(), Some(vec![9; 2_000]));
}

async fn timers_count_towards_the_quota_until_they_fire_or_are_cancelled(db: &TestDb) {
    let s = db.open().await;
    s.kv_set_quotas(&[("shop".into(), Some(1_000))]).await.unwrap();
    s.kv_set("shop", "a", &[1; 300]).await.unwrap();
    // 5 + 400 + 64 = 469 bytes, beside the key's 365.
    s.timer_upsert("shop", "renew", 10, &[7; 400]).await.unwrap();
    assert_eq!(usage(s.as_ref(), "shop").await.bytes, 365 + 469);
    // Rescheduled with a larger payload: only the difference counts, and over the quota
    // it is refused, the timer kept as it was.
    s.timer_upsert("shop", "renew", 20, &[7; 500]).await.unwrap();
    assert_eq!(usage(s.as_ref(), "shop").await.bytes, 365 + 569);
    let e = s.timer_upsert("shop", "renew", 30, &[7; 700]).await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    let e = s.timer_upsert("shop", "other", 30, &[7; 100]).await.unwrap_err();
    assert!(is_quota(&e), "{e}");
    let e = s.kv_set("shop", "b", &[2; 100]).await.unwrap_err();
    assert!(is_quota(&e), "timers and keys share the quota: {e}");
    assert_eq!(usage(s.as_ref(), "shop").await.bytes, 365 + 569);
    // Cancelled, its bytes are free again.
    assert!(s.timer_cancel("shop", "renew").await.unwrap());
    assert_eq!(usage(s.as_ref(), "shop").await.bytes, 365);
    // Fired (claimed and done), likewise.
    s.timer_upsert("shop", "once", 5, &[1; 10]).await.unwrap();
    let held = Lease { owner: "host-a".into(), until: 100_000 };
    let due = s.timer_claim_due(1_000, &held, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    s.timer_complete(&due[0], &held).await.unwrap();
    assert_eq!(usage(s.as_ref(), "shop").await.bytes, 365);
}
