//! Issue: hot swap and plugin lifecycle. Versions are swapped under steady load with no
//! failed request; a broken component never serves; config reloads apply whole or not
//! at all; state carries over.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use payhost_tests::{plugin_wasm, HostBuilder, TestHost};
use serde_json::{json, Value};

/// Two versions of the instance `live`, told apart by the `plugin` field they answer.
struct Versions {
    template: PathBuf,
    faulty: PathBuf,
    broken: PathBuf,
}

fn versions(dir: &Path) -> Versions {
    let template = dir.join("v-template.wasm");
    let faulty = dir.join("v-faulty.wasm");
    let broken = dir.join("v-broken.wasm");
    std::fs::copy(plugin_wasm("template"), &template).unwrap();
    std::fs::copy(plugin_wasm("faulty"), &faulty).unwrap();
    // A truncated component: what a half-finished upload looks like.
    let bytes = std::fs::read(plugin_wasm("template")).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    Versions { template, faulty, broken }
}

fn live_config(component: &Path, greeting: &str, watch: bool) -> String {
    format!(
        r#"
[[plugins]]
name = "live"
component = {:?}
mount = "/live"
watch = {watch}
allowed_hosts = ["probe.invalid"]
[plugins.secrets]
probe_key = {{ env = "PROBE_KEY" }}
[plugins.settings]
greeting = "{greeting}"
"#,
        component.display().to_string()
    )
}

async fn start(component: &Path, watch: bool) -> TestHost {
    HostBuilder::new().env("PROBE_KEY", "k").config(&live_config(component, "one", watch)).start().await
}

/// Which version answered: `template:<greeting>` or `faulty`.
async fn version(host: &TestHost) -> String {
    let body: Value = host.get("/live/").await.json().await.unwrap();
    match body["plugin"].as_str() {
        Some("template") => format!("template:{}", body["greeting"].as_str().unwrap_or("")),
        Some(other) => other.to_string(),
        None => panic!("unexpected answer {body}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_swaps_under_load_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let v = versions(dir.path());
    let mut host = start(&v.template, false).await;

    // Steady load: 8 connections, paced to a few hundred requests per second in all.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let total = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (client, url) = (host.client().clone(), host.url("/live/"));
        let (stop, failures, seen, total) = (stop.clone(), failures.clone(), seen.clone(), total.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let tick = Instant::now();
                match client.get(&url).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        let body: Value = resp.json().await.unwrap_or(Value::Null);
                        let version = match body["plugin"].as_str() {
                            Some("template") => format!("template:{}", body["greeting"].as_str().unwrap_or("")),
                            Some("faulty") => "faulty".to_string(),
                            _ => {
                                failures.lock().unwrap().push(format!("unexpected body {body}"));
                                continue;
                            }
                        };
                        *seen.lock().unwrap().entry(version).or_default() += 1;
                    }
                    Ok(resp) => failures.lock().unwrap().push(format!("status {}", resp.status())),
                    Err(e) => failures.lock().unwrap().push(format!("transport {e}")),
                }
                total.fetch_add(1, Ordering::Relaxed);
                // About 100 requests/s per connection.
                if let Some(rest) = Duration::from_millis(10).checked_sub(tick.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
            }
        }));
    }

    let load_started = Instant::now();
    let mut expected = "template:one".to_string();
    let mut swap_latencies = Vec::new();
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        match i {
            7 => {
                // A broken component is refused; the old version keeps serving.
                let (status, body) = host.admin("POST", "/plugins/live/reload", Some(json!({ "path": v.broken }))).await;
                assert_eq!(status, 422, "{body}");
                assert!(body["error"].as_str().unwrap().contains("plugin `live`"), "{body}");
            }
            13 => {
                // A config reload with a changed setting, same component as now serving.
                let current = if expected == "faulty" { &v.faulty } else { &v.template };
                host.rewrite_config(&live_config(current, "two", false));
                let (status, body) = host.admin("POST", "/config/reload", None).await;
                assert_eq!(status, 200, "{body}");
                if expected.starts_with("template") {
                    expected = "template:two".into();
                }
            }
            _ => {
                let (path, next) = if expected == "faulty" {
                    let greeting = if i > 13 { "two" } else { "one" };
                    (&v.template, format!("template:{greeting}"))
                } else {
                    (&v.faulty, "faulty".to_string())
                };
                let (status, body) = host.admin("POST", "/plugins/live/reload", Some(json!({ "path": path }))).await;
                assert_eq!(status, 200, "swap {i}: {body}");
                expected = next;
            }
        }
        // The new version is served promptly after the reload call returns.
        let started = Instant::now();
        let observed = host.wait_until(Duration::from_secs(2), || async { version(&host).await == expected }).await;
        assert!(observed, "swap {i}: {expected} not served");
        swap_latencies.push(started.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(10_000u64.saturating_sub(load_started.elapsed().as_millis() as u64))).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let elapsed = load_started.elapsed();
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} failed requests, first: {:?}", failures.len(), failures.first());
    let total = total.load(Ordering::Relaxed);
    assert!(elapsed >= Duration::from_secs(10));
    assert!(total as f64 / elapsed.as_secs_f64() >= 200.0, "load too light: {total} requests in {elapsed:?}");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains_key("template:one") && seen.contains_key("faulty") && seen.contains_key("template:two"), "{seen:?}");
    assert_eq!(seen.len(), 3, "an unknown version answered: {seen:?}");
    eprintln!("hot swap: {total} requests in {elapsed:?}, versions {seen:?}, swap-to-serving {swap_latencies:?}");

    // History lists every version with its trigger; the broken one never made it in.
    let (_, plugins) = host.admin("GET", "/plugins", None).await;
    let history = plugins["plugins"][0]["history"].as_array().unwrap().clone();
    let broken_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(std::fs::read(&v.broken).unwrap()));
    assert!(history.iter().all(|h| h["hash"] != broken_hash.as_str()), "the broken component entered the history");
    assert!(history.iter().any(|h| h["trigger"] == "admin reload"), "{history:?}");
    assert!(!host.logs().contains("panicked"), "host panicked");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_returns_to_the_previous_version_and_state_carries_over() {
    let dir = tempfile::tempdir().unwrap();
    let v = versions(dir.path());
    let mut host = start(&v.template, false).await;
    host.client().put(host.url("/live/store/kept")).body("across versions").send().await.unwrap();
    let resp = host.post("/live/timer?name=later&in=120", "text/plain", "p").await;
    assert_eq!(resp.status().as_u16(), 200);

    let (status, _) = host.admin("POST", "/plugins/live/reload", Some(json!({ "path": v.faulty }))).await;
    assert_eq!(status, 200);
    assert_eq!(version(&host).await, "faulty");
    let (status, body) = host.admin("POST", "/plugins/live/rollback", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(version(&host).await, "template:one");

    // The store and the pending timer belong to the instance, not to a version.
    assert_eq!(host.get("/live/store/kept").await.text().await.unwrap(), "across versions");
    host.advance_clock(121).await;
    let fired = host
        .wait_until(Duration::from_secs(10), || async { host.get("/live/timer-fired").await.text().await.unwrap() == "later:p;" })
        .await;
    assert!(fired, "timer scheduled before the swaps did not fire:\n{}", host.logs());

    let (_, plugins) = host.admin("GET", "/plugins", None).await;
    let triggers: Vec<String> =
        plugins["plugins"][0]["history"].as_array().unwrap().iter().map(|h| h["trigger"].as_str().unwrap().to_string()).collect();
    assert_eq!(triggers, vec!["startup", "admin reload", "admin rollback"]);

    // Swapping back to a known version needs no compile.
    let (status, body) = host.admin("POST", "/plugins/live/reload", Some(json!({ "path": v.faulty }))).await;
    assert_eq!(status, 200);
    assert_eq!(body["compiled"], false, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn file_changes_reload_watched_instances_and_bad_configs_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let v = versions(dir.path());
    let served = dir.path().join("served.wasm");
    std::fs::copy(&v.template, &served).unwrap();
    let mut host = start(&served, true).await;
    assert_eq!(version(&host).await, "template:one");

    // Written in two pieces with a pause: the half file must never be loaded.
    let bytes = std::fs::read(&v.faulty).unwrap();
    std::fs::write(&served, &bytes[..bytes.len() / 2]).unwrap();
    for _ in 0..5 {
        assert_eq!(version(&host).await, "template:one");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(&served, &bytes).unwrap();
    let swapped = host.wait_until(Duration::from_secs(10), || async { version(&host).await == "faulty" }).await;
    assert!(swapped, "watched file change not picked up:\n{}", host.logs());

    // A bad config (overlapping mounts) is refused whole; the running one stays.
    let good = live_config(&served, "one", true);
    let bad = format!("{good}\n{}", live_config(&v.template, "x", false).replace("name = \"live\"", "name = \"other\"").replace("/live", "/live/sub"));
    host.rewrite_config(&bad);
    let (status, body) = host.admin("POST", "/config/reload", None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("overlaps"), "{body}");
    assert_eq!(version(&host).await, "faulty");

    // SIGHUP applies a good config: a new instance appears, a setting changes.
    let added = format!("{}\n{}", live_config(&v.template, "three", false), live_config(&v.template, "four", false).replace("name = \"live\"", "name = \"added\"").replace("/live", "/added"));
    host.rewrite_config(&added);
    let pid = host.pid().unwrap();
    std::process::Command::new("kill").arg("-HUP").arg(pid.to_string()).status().unwrap();
    let applied = host.wait_until(Duration::from_secs(10), || async { version(&host).await == "template:three" }).await;
    assert!(applied, "SIGHUP reload not applied:\n{}", host.logs());
    let body: Value = host.get("/added/").await.json().await.unwrap();
    assert_eq!(body["greeting"], "four");
}

#[tokio::test(flavor = "multi_thread")]
async fn config_reload_picks_up_a_rotated_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "old key\n").unwrap();
    let config = format!(
        "[[plugins]]\nname = \"live\"\ncomponent = {:?}\nmount = \"/live\"\n[plugins.secrets]\nk = {{ file = {:?} }}\n",
        plugin_wasm("template").display().to_string(),
        key_file.display().to_string()
    );
    let host = HostBuilder::new().config(&config).start().await;
    let sign = || async { host.post("/live/hmac/sha256?key=k", "text/plain", "msg").await.text().await.unwrap() };
    let before = sign().await;
    std::fs::write(&key_file, "new key\n").unwrap();
    let (status, body) = host.admin("POST", "/config/reload", None).await;
    assert_eq!(status, 200, "{body}");
    let after = sign().await;
    assert_ne!(before, after, "the rotated secret was not picked up");
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"new key").unwrap();
    mac.update(b"msg");
    assert_eq!(after, hex::encode(mac.finalize().into_bytes()));
}
