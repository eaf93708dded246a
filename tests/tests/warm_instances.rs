//! Warm instances (`limits.reuse`): what a reused instance keeps, when it is retired,
//! and that it is never shared. The faulty plugin counts its `/count` calls in a static,
//! so the count it answers tells which instance served the request and what it kept.

use payhost_tests::{faulty_config, HostBuilder, TestHost};
use serde_json::Value;

fn faulty(name: &str, mount: &str, reuse: u32) -> String {
    faulty_config(name, mount, &format!("reuse = {reuse}\ndeadline_ms = 1000\nmemory_mb = 16"))
}

async fn count(host: &TestHost, mount: &str) -> u64 {
    let resp = host.get(&format!("{mount}/count")).await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json body");
    body["count"].as_u64().expect("a count")
}

async fn status(host: &TestHost, path: &str) -> u16 {
    host.get(path).await.status().as_u16()
}

async fn start(config: &str) -> TestHost {
    HostBuilder::new().env("PROBE_KEY", "probe").config(config).start().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_persists_under_reuse_and_starts_over_after_a_failure() {
    let host = start(&faulty("warm", "/warm", 100)).await;
    // Requests one after another reuse the one idle instance.
    for expected in 1..=3 {
        assert_eq!(count(&host, "/warm").await, expected);
    }
    // A trap retires the instance: the next request gets a fresh one.
    assert_eq!(status(&host, "/warm/trap").await, 500);
    assert_eq!(count(&host, "/warm").await, 1);
    assert_eq!(count(&host, "/warm").await, 2);
    // So does an error result, a deadline and a memory error.
    assert_eq!(status(&host, "/warm/error").await, 500);
    assert_eq!(count(&host, "/warm").await, 1);
    assert_eq!(count(&host, "/warm").await, 2);
    assert!(status(&host, "/warm/loop").await >= 500);
    assert_eq!(count(&host, "/warm").await, 1);
    assert!(status(&host, "/warm/alloc").await >= 500);
    assert_eq!(count(&host, "/warm").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_is_retired_after_reuse_calls_and_the_default_is_fresh() {
    let config = format!("{}{}", faulty("three", "/three", 3), faulty("fresh", "/fresh", 1));
    let host = start(&config).await;
    let counts: Vec<u64> = {
        let mut counts = Vec::new();
        for _ in 0..7 {
            counts.push(count(&host, "/three").await);
        }
        counts
    };
    assert_eq!(counts, vec![1, 2, 3, 1, 2, 3, 1]);
    for _ in 0..3 {
        assert_eq!(count(&host, "/fresh").await, 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_of_one_component_never_share_a_warm_instance() {
    let config = format!("{}{}", faulty("left", "/left", 100), faulty("right", "/right", 100));
    let host = start(&config).await;
    assert_eq!(count(&host, "/left").await, 1);
    assert_eq!(count(&host, "/left").await, 2);
    assert_eq!(count(&host, "/right").await, 1);
    assert_eq!(count(&host, "/left").await, 3);
    assert_eq!(count(&host, "/right").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swap_never_carries_a_warm_instance_over() {
    let mut host = start(&faulty("swapped", "/swapped", 100)).await;
    assert_eq!(count(&host, "/swapped").await, 1);
    assert_eq!(count(&host, "/swapped").await, 2);
    // A config change (here the deadline) loads a new version and swaps it in.
    let changed = faulty("swapped", "/swapped", 100).replace("deadline_ms = 1000", "deadline_ms = 2000");
    host.rewrite_config(&changed);
    let (code, body) = host.admin("POST", "/config/reload", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(count(&host, "/swapped").await, 1);
    assert_eq!(count(&host, "/swapped").await, 2);
    // Rolling back to the first version does not bring back its instance from before.
    let (code, body) = host.admin("POST", "/plugins/swapped/rollback", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(count(&host, "/swapped").await, 1);
}
