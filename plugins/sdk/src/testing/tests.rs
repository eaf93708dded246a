use super::*;

fn get(url: &str) -> http::Request {
    http::Request {
        method: "GET".into(),
        url: url.into(),
        headers: vec![],
        secret_headers: vec![("authorization".into(), "Bearer {api}".into())],
        secret_query: vec![("token".into(), "{api}".into())],
        body: vec![],
        timeout_ms: None,
    }
}

#[test]
fn outbound_requests_are_recorded_with_secrets_filled_in_and_answered_by_the_test() {
    let host = FakeHost::new().with_secret("api", b"t o&k");
    host.on_http(|sent| Ok(http::Response { status: 201, headers: vec![], body: sent.url.clone().into_bytes() }));
    let answer = host.send(&get("https://api.example.com/v1?a=1")).unwrap();
    assert_eq!(answer.status, 201);
    let sent = &host.sent()[0];
    assert_eq!(sent.url, "https://api.example.com/v1?a=1&token=t+o%26k");
    assert_eq!(sent.header("authorization"), Some("Bearer t o&k"));
    assert_eq!(sent.request.secret_query[0].1, "{api}", "the plugin's own request keeps the template");

    let ungranted = FakeHost::new();
    assert!(matches!(ungranted.send(&get("https://x/")), Err(http::Error::InvalidRequest(m)) if m.contains("`api`")));
}

#[test]
fn the_ledger_is_exact_and_idempotent() {
    let host = FakeHost::new();
    host.fund("alice", "RUB", "100.00");
    let first = host.debit("k1", "alice", "30.50", "RUB", "order 1").unwrap();
    let again = host.debit("k1", "alice", "30.50", "RUB", "order 1").unwrap();
    assert_eq!((first.balance_after.as_str(), again.transaction_id.as_str()), ("69.50", first.transaction_id.as_str()));
    assert!(matches!(host.debit("k1", "alice", "1.00", "RUB", "order 1"), Err(crate::ledger::Error::IdempotencyConflict(_))));
    assert!(matches!(host.debit("k2", "alice", "70.00", "RUB", "x"), Err(crate::ledger::Error::InsufficientFunds(s)) if s.balance == "69.50"));
    assert!(matches!(host.debit("k3", "alice", "1.001", "RUB", "x"), Err(crate::ledger::Error::InvalidAmount(_))));
    let reversed = host.reverse("k4", &first.transaction_id, "refund").unwrap();
    assert_eq!(reversed[0].balance_after, "100.00");
    assert!(matches!(host.reverse("k5", &first.transaction_id, "again"), Err(crate::ledger::Error::NotReversible(_))));
    assert_eq!(host.balance("alice").as_deref(), Some("100.00"));
    assert_eq!(host.history("alice", 10).unwrap().len(), 3);
}

#[test]
fn timers_fire_when_the_clock_reaches_them() {
    let host = FakeHost::new();
    host.set_now(1_000);
    host.schedule_timer("late", Instant { seconds: 1_100, nanoseconds: 0 }, b"2").unwrap();
    host.schedule_timer("soon", Instant { seconds: 1_010, nanoseconds: 0 }, b"1").unwrap();
    assert!(host.take_due_timers().is_empty());
    host.advance(200);
    assert_eq!(host.take_due_timers(), vec![("soon".to_string(), b"1".to_vec()), ("late".to_string(), b"2".to_vec())]);
    assert!(host.timers().is_empty());
}

#[test]
fn deliveries_are_enqueued_once_per_key() {
    let host = FakeHost::new();
    let delivery = Delivery { method: "POST".into(), url: "https://cb/".into(), headers: vec![], body: b"x".to_vec(), max_attempts: 0 };
    let id = host.enqueue_delivery("k", &delivery).unwrap();
    assert_eq!(host.enqueue_delivery("k", &delivery).unwrap(), id);
    assert_eq!(host.deliveries().len(), 1);
}

#[test]
fn signing_uses_the_test_keys_and_secret_parts() {
    let host = FakeHost::new().with_secret("k", b"key");
    // RFC 4231-style check against an independently computed value.
    let mac = host.hmac(HmacAlgorithm::Sha256, "k", &[Part::Text("The quick brown fox jumps over the lazy dog".into())]).unwrap();
    assert_eq!(hex(&mac), "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    let md5 = host.digest(DigestAlgorithm::Md5, &[Part::Text("a".into()), Part::Secret("k".into())]).unwrap();
    assert_eq!(md5, host.digest(DigestAlgorithm::Md5, &[Part::Text("akey".into())]).unwrap());
    assert!(matches!(host.hmac(HmacAlgorithm::Sha1, "nope", &[]), Err(crate::signing::Error::NotGranted(n)) if n == "nope"));
}

#[test]
#[should_panic(expected = "logged secret `k`")]
fn a_log_line_with_a_secret_fails_the_test() {
    let host = FakeHost::new().with_secret("k", b"hunter22");
    host.log(log::Level::Info, "sent", &[("auth", "Bearer hunter22")]);
}

#[test]
fn the_store_compares_and_swaps_and_can_be_down() {
    let host = FakeHost::new();
    assert!(host.store_compare_and_swap("a", None, b"1").unwrap());
    assert!(!host.store_compare_and_swap("a", Some(b"0"), b"2").unwrap());
    assert!(host.store_compare_and_swap("a", Some(b"1"), b"2").unwrap());
    host.put("b", b"x");
    assert_eq!(host.store_list_keys("", Some("a"), 10).unwrap(), vec!["b".to_string()]);
    host.set_store_down(true);
    assert!(matches!(host.store_get("a"), Err(store::Error::Backend(_))));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_ledger_batch_answers_each_posting_and_keys_replay_across_calls() {
    let host = FakeHost::new();
    host.fund("alice", "RUB", "10.00");
    let single = host.debit("k1", "alice", "1.00", "RUB", "r").unwrap();
    let line = |amount: &str| DebitLine { account: "alice".into(), amount: amount.into(), reference: "r".into() };
    let posting = |key: &str, kind, amount: &str| BatchPosting { idempotency_key: key.into(), kind, currency: "RUB".into(), lines: vec![line(amount)] };
    let results = host.post_batch(&[
        posting("k1", PostingKind::Debit, "1.00"),
        posting("k2", PostingKind::Debit, "50.00"),
        posting("k3", PostingKind::Credit, "2.00"),
    ]);
    assert_eq!(results[0].as_ref().unwrap()[0].transaction_id, single.transaction_id, "a replay of the plain debit");
    assert!(matches!(&results[1], Err(crate::ledger::Error::InsufficientFunds(_))));
    assert_eq!(results[2].as_ref().unwrap()[0].balance_after, "11.00");
    assert_eq!(host.balance("alice").as_deref(), Some("11.00"));
}

#[test]
fn a_store_batch_writes_and_deletes_in_order() {
    let host = FakeHost::new();
    host.store_set("old", b"1").unwrap();
    host.store_set_many(&[("new".into(), Some(b"2".to_vec())), ("old".into(), None), ("new".into(), Some(b"3".to_vec()))]).unwrap();
    assert_eq!((host.stored("new"), host.stored("old")), (Some(b"3".to_vec()), None));
}

#[test]
fn guarded_groups_are_written_whole_or_skipped_and_a_racing_writer_can_be_staged() {
    let host = FakeHost::new();
    host.store_set("rec", b"v1").unwrap();
    let w = |key: &str, expect: Expectation, value: Option<&[u8]>| GuardedWrite { key: key.into(), expect, value: value.map(<[u8]>::to_vec) };
    let groups = vec![
        vec![w("rec", Expectation::Equals(b"v1".to_vec()), Some(b"v2")), w("idx", Expectation::Any, Some(b""))],
        vec![w("rec", Expectation::Equals(b"v1".to_vec()), Some(b"v3")), w("other", Expectation::Any, Some(b""))],
        vec![w("new", Expectation::Absent, Some(b"1"))],
    ];
    assert_eq!(host.store_compare_and_swap_many(&groups).unwrap(), [true, false, true]);
    assert_eq!((host.stored("rec"), host.stored("other")), (Some(b"v2".to_vec()), None));

    // A writer staged before the next batch makes its expectation fail.
    host.before_next_guarded_batch(|host| host.store_set("rec", b"theirs").unwrap());
    let mine = vec![vec![w("rec", Expectation::Equals(b"v2".to_vec()), Some(b"mine"))]];
    assert_eq!(host.store_compare_and_swap_many(&mine).unwrap(), [false]);
    assert_eq!(host.stored("rec"), Some(b"theirs".to_vec()));
    let too_many: Vec<Vec<GuardedWrite>> = (0..513).map(|i| vec![w(&format!("k{i}"), Expectation::Any, Some(b""))]).collect();
    assert!(matches!(host.store_compare_and_swap_many(&too_many), Err(store::Error::TooLarge(_))));
}
