//! Issue: host runtime and WIT contract. The template plugin drives every capability
//! through a real component on a real host; the faulty plugin proves that a plugin that
//! loops, balloons or traps fails only its own request.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use payhost_tests::sim::http::{SimResponse, SimServer};
use payhost_tests::{faulty_config, plugin_wasm, HostBuilder, TestHost};
use serde_json::Value;
use sha1::{Digest, Sha1};

fn template_config(extra: &str) -> String {
    format!(
        r#"
[[plugins]]
name = "template"
component = {:?}
mount = "/template"
payment_systems = ["balance"]
{extra}
[plugins.secrets]
rfc_key1 = {{ env = "RFC_KEY1", encoding = "hex" }}
rfc_key2 = {{ env = "RFC_KEY2" }}
[plugins.settings]
greeting = "hi"
"#,
        plugin_wasm("template").display().to_string()
    )
}

async fn start_template(extra: &str) -> TestHost {
    HostBuilder::new()
        .env("RFC_KEY1", &"0b".repeat(20))
        .env("RFC_KEY2", "Jefe")
        .config(&template_config(extra))
        .start()
        .await
}

async fn text(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_matches_rfc4231_and_independent_digests() {
    let host = start_template("").await;
    // RFC 4231 test cases 1 and 2.
    let (s, body) = text(host.post("/template/hmac/sha256?key=rfc_key1", "text/plain", "Hi There").await).await;
    assert_eq!((s, body.as_str()), (200, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
    let (s, body) = text(host.post("/template/hmac/sha256?key=rfc_key2", "text/plain", "what do ya want for nothing?").await).await;
    assert_eq!((s, body.as_str()), (200, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    // FIPS 180 and RFC 1321 "abc" vectors, and base64.
    let (_, body) = text(host.post("/template/digest/sha1", "text/plain", "abc").await).await;
    assert_eq!(body, "a9993e364706816aba3e25717850c26c9cd0d89d");
    let (_, body) = text(host.post("/template/digest/md5", "text/plain", "abc").await).await;
    assert_eq!(body, "900150983cd24fb0d6963f7d28e17f72");
    let (_, body) = text(host.post("/template/digest/sha256", "text/plain", "abc").await).await;
    assert_eq!(body, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let (_, body) = text(host.post("/template/base64", "text/plain", "hello/world?").await).await;
    assert_eq!(body, "aGVsbG8vd29ybGQ/");
    // A digest with a secret part, computed here with the key we gave the host.
    let (_, body) = text(host.post("/template/digest-with-secret/sha1?key=rfc_key2", "text/plain", "Amount=10&Key=").await).await;
    assert_eq!(body, hex::encode(Sha1::digest(b"Amount=10&Key=Jefe")));
    // HMAC-SHA1 checked against the hmac crate.
    let mut mac = Hmac::<Sha1>::new_from_slice(b"Jefe").unwrap();
    mac.update(b"payload");
    let (_, body) = text(host.post("/template/hmac/sha1?key=rfc_key2", "text/plain", "payload").await).await;
    assert_eq!(body, hex::encode(mac.finalize().into_bytes()));
    // Constant-time verify: right and wrong signatures.
    let good = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    let resp: Value = host.post(&format!("/template/verify/sha256?key=rfc_key1&sig={good}"), "text/plain", "Hi There").await.json().await.unwrap();
    assert_eq!(resp["valid"], true);
    let bad = good.replace("b0", "b1");
    let resp: Value = host.post(&format!("/template/verify/sha256?key=rfc_key1&sig={bad}"), "text/plain", "Hi There").await.json().await.unwrap();
    assert_eq!(resp["valid"], false);
    // A secret the instance was not granted is a typed error, not a trap.
    let (s, body) = text(host.post("/template/hmac/sha256?key=other_key", "text/plain", "x").await).await;
    assert_eq!(s, 403, "{body}");
    let refused: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((refused["error"].as_str(), refused["detail"].as_str()), (Some("not-granted"), Some("other_key")), "{body}");
    // Secrets never reach the log.
    let logs = host.logs();
    assert!(!logs.contains("Jefe"), "secret in log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clients_mistake_is_answered_400_saying_what_is_wrong_and_moves_nothing() {
    let host = start_template("").await;
    let credit = serde_json::json!({"key": "c1", "account": "acc-9", "amount": "10.00", "currency": "USD"});
    assert_eq!(host.post_json("/template/credit", &credit).await.status().as_u16(), 200);

    // Each mistake is answered 400 with its cause, not 500 "the plugin reported an error".
    let cases: Vec<(&str, reqwest::Response, &str)> = vec![
        ("a body that is not JSON", host.post("/template/debit", "application/json", "{bad").await, "invalid JSON body"),
        (
            "a missing field",
            host.post_json("/template/debit", &serde_json::json!({"key": "d1", "account": "acc-9", "currency": "USD"})).await,
            "missing `amount`",
        ),
        (
            "a malformed amount",
            host.post_json("/template/debit", &serde_json::json!({"key": "d2", "account": "acc-9", "amount": "1.5x", "currency": "USD"})).await,
            "invalid-amount",
        ),
        ("a missing query parameter", host.get("/template/balance").await, "missing parameter `account`"),
        ("a timer delay that is not a number", host.post("/template/timer?name=t&in=soon", "text/plain", "").await, "`in` must be seconds"),
        (
            "a store key over the host's limit",
            host.client().put(host.url(&format!("/template/store/{}", "k".repeat(5_000)))).body("v").send().await.unwrap(),
            "too large for the store",
        ),
    ];
    for (what, response, cause) in cases {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 400, "{what}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
        assert!(error["error"].as_str().is_some_and(|e| e.contains(cause)), "{what}: {body}");
    }
    // The ledger's refusals name their case and say why in the ledger's own words.
    let malformed = serde_json::json!({"key": "d2", "account": "acc-9", "amount": "1e400", "currency": "USD"});
    let refused: Value = host.post_json("/template/debit", &malformed).await.json().await.unwrap();
    assert_eq!(refused["error"], "invalid-amount", "{refused}");
    assert!(refused["detail"].as_str().is_some_and(|d| d.starts_with("amount `1e400` is not a plain decimal")), "{refused}");
    // A debit in another currency clashes with the account: 409.
    let other = serde_json::json!({"key": "d3", "account": "acc-9", "amount": "1.00", "currency": "EUR"});
    let clash = host.post_json("/template/debit", &other).await;
    assert_eq!(clash.status().as_u16(), 409);
    assert_eq!(clash.json::<Value>().await.unwrap()["error"], "currency-mismatch");

    // None of them moved money.
    let balance: Value = host.get("/template/balance?account=acc-9").await.json().await.unwrap();
    assert_eq!(balance["balance"], "10.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn store_clock_settings_and_ledger_work_and_store_survives_restart() {
    let mut host = start_template("").await;
    let (s, _) = text(host.client().put(host.url("/template/store/greeting")).body("hello").send().await.unwrap()).await;
    assert_eq!(s, 200);
    let (s, _) = text(host.client().put(host.url("/template/store/other")).body("x").send().await.unwrap()).await;
    assert_eq!(s, 200);
    // CAS: wrong expectation refused, right one applied.
    let resp: Value = host.post("/template/cas/greeting?expect=nope", "text/plain", "new").await.json().await.unwrap();
    assert_eq!(resp["swapped"], false);
    let resp: Value = host.post("/template/cas/greeting?expect=hello", "text/plain", "hello again").await.json().await.unwrap();
    assert_eq!(resp["swapped"], true);
    let keys: Value = host.get("/template/store?prefix=gr").await.json().await.unwrap();
    assert_eq!(keys, serde_json::json!(["greeting"]));
    let settings: Value = host.get("/template/settings").await.json().await.unwrap();
    assert_eq!(settings["greeting"], "hi");

    // The plugin's clock is the host clock.
    let before: Value = host.get("/template/now").await.json().await.unwrap();
    host.advance_clock(3600).await;
    let after: Value = host.get("/template/now").await.json().await.unwrap();
    assert!(after["seconds"].as_i64().unwrap() - before["seconds"].as_i64().unwrap() >= 3600);

    // Ledger through the plugin: credit, overdraw refused, idempotent debit.
    let credit = serde_json::json!({"key": "c1", "account": "acc-1", "amount": "10.00", "currency": "USD"});
    let resp: Value = host.post_json("/template/credit", &credit).await.json().await.unwrap();
    assert_eq!(resp["balance"], "10.00");
    let debit = serde_json::json!({"key": "d1", "account": "acc-1", "amount": "20.00", "currency": "USD"});
    let resp = host.post_json("/template/debit", &debit).await;
    assert_eq!(resp.status().as_u16(), 402);
    let debit = serde_json::json!({"key": "d2", "account": "acc-1", "amount": "4.50", "currency": "USD"});
    for _ in 0..3 {
        let resp: Value = host.post_json("/template/debit", &debit).await.json().await.unwrap();
        assert_eq!(resp["balance"], "5.50");
    }

    host.restart().await;
    let (s, body) = text(host.get("/template/store/greeting").await).await;
    assert_eq!((s, body.as_str()), (200, "hello again"));
    let (s, body) = host.admin("GET", "/accounts/acc-1", None).await;
    assert_eq!(s, 200);
    assert_eq!(body["balance"], "5.50");
}

#[tokio::test(flavor = "multi_thread")]
async fn timers_fire_once_on_the_host_clock_and_survive_restart() {
    let mut host = start_template("").await;
    let resp = host.post("/template/timer?name=t1&in=600", "text/plain", "payload-1").await;
    assert_eq!(resp.status().as_u16(), 200);
    host.restart().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, fired) = text(host.get("/template/timer-fired").await).await;
    assert_eq!(fired, "", "fired before its time");
    host.advance_clock(601).await;
    let fired_once = host
        .wait_until(Duration::from_secs(10), || async { host.get("/template/timer-fired").await.text().await.unwrap() == "t1:payload-1;" })
        .await;
    assert!(fired_once, "timer did not fire:\n{}", host.logs());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, fired) = text(host.get("/template/timer-fired").await).await;
    assert_eq!(fired, "t1:payload-1;", "fired more than once");
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_http_is_limited_to_the_allow_list() {
    let sim = SimServer::start(|_| SimResponse::json(200, &serde_json::json!({"pong": true}))).await;
    let denied = SimServer::start(|_| SimResponse::json(200, &serde_json::json!({"leak": true}))).await;
    let host = start_template(&format!("allowed_hosts = [{:?}]", sim.host_port())).await;
    let resp: Value = host.get(&format!("/template/fetch?url={}/ping", sim.base_url())).await.json().await.unwrap();
    assert_eq!(resp["status"], 200);
    assert!(resp["body"].as_str().unwrap().contains("pong"));
    let resp = host.get(&format!("/template/fetch?url={}/ping", denied.base_url())).await;
    assert_eq!(resp.status().as_u16(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "denied");
    assert_eq!(body["host"], denied.host_port());
    assert!(denied.requests().is_empty(), "a denied host was contacted");
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_hides_environment_files_and_secret_bytes() {
    let host = HostBuilder::new()
        .env("PROBE_KEY", "very-secret-probe-key")
        .env("SOME_HOST_VAR", "visible?")
        .config(&faulty_config("faulty", "/faulty", ""))
        .start()
        .await;
    let env: Value = host.get("/faulty/env").await.json().await.unwrap();
    assert_eq!(env["vars"], serde_json::json!([]), "the plugin sees host environment variables");
    let file: Value = host.get("/faulty/file").await.json().await.unwrap();
    assert!(file["outcome"].as_str().unwrap().starts_with("refused"), "{file}");
    assert!(!host.logs().contains("very-secret-probe-key"));
}

#[tokio::test(flavor = "multi_thread")]
async fn faulty_plugins_fail_alone() {
    let config = format!(
        "{}{}",
        faulty_config("faulty", "/faulty", "deadline_ms = 400\nmemory_mb = 16"),
        template_config("")
    );
    let host = HostBuilder::new()
        .env("PROBE_KEY", "k")
        .env("RFC_KEY1", &"0b".repeat(20))
        .env("RFC_KEY2", "Jefe")
        .config(&config)
        .start()
        .await;

    // While the faulty instance loops, the template keeps answering.
    let looping = tokio::spawn({
        let url = host.url("/faulty/loop");
        let client = host.client().clone();
        async move {
            let started = Instant::now();
            let resp = client.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap(), started.elapsed())
        }
    });
    for _ in 0..20 {
        let (s, body) = text(host.get("/template/").await).await;
        assert_eq!(s, 200, "{body}");
    }
    let (status, body, _elapsed) = looping.await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));

    let resp = host.get("/faulty/alloc").await;
    assert_eq!(resp.status().as_u16(), 500);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "the payment plugin ran out of memory");

    let resp = host.get("/faulty/trap").await;
    assert_eq!(resp.status().as_u16(), 500);
    let body: Value = resp.json().await.unwrap();
    let request_id = body["request_id"].as_str().unwrap().to_string();
    assert!(!body.to_string().contains("deliberate"), "plugin internals leaked to the client: {body}");

    // Both instances still serve, and the log names plugin, request and cause.
    let (s, _) = text(host.get("/faulty/").await).await;
    assert_eq!(s, 200);
    let (s, _) = text(host.get("/template/").await).await;
    assert_eq!(s, 200);
    let logs = host.logs();
    assert!(logs.contains("kind=\"deadline\""), "{logs}");
    assert!(logs.contains("kind=\"memory\""), "{logs}");
    let trap_line = logs.lines().find(|l| l.contains(&request_id)).expect("trap logged with its request id");
    assert!(trap_line.contains("instance=faulty") && trap_line.contains("trap"), "{trap_line}");

    let (_, plugins) = host.admin("GET", "/plugins", None).await;
    let faulty = plugins["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "faulty").unwrap().clone();
    assert_eq!(faulty["errors"], 3);
    assert_eq!(faulty["wit_version"], "0.2.2");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_component_runs_as_two_instances_with_their_own_keys_and_mounts() {
    let second = template_config("")
        .replace("name = \"template\"", "name = \"second\"")
        .replace("mount = \"/template\"", "mount = \"/second\"")
        .replace("RFC_KEY2", "OTHER_KEY2");
    let host = HostBuilder::new()
        .env("RFC_KEY1", &"0b".repeat(20))
        .env("RFC_KEY2", "Jefe")
        .env("OTHER_KEY2", "another key")
        .config(&template_config(""))
        .config(&second)
        .start()
        .await;
    let (_, first) = text(host.post("/template/hmac/sha256?key=rfc_key2", "text/plain", "what do ya want for nothing?").await).await;
    let (_, other) = text(host.post("/second/hmac/sha256?key=rfc_key2", "text/plain", "what do ya want for nothing?").await).await;
    assert_eq!(first, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"another key").unwrap();
    mac.update(b"what do ya want for nothing?");
    assert_eq!(other, hex::encode(mac.finalize().into_bytes()));
    // Stores are per instance.
    host.client().put(host.url("/template/store/k")).body("first").send().await.unwrap();
    let (status, _) = text(host.get("/second/store/k").await).await;
    assert_eq!(status, 404);
}
