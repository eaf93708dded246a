//! Contract evolution: components built against the frozen `payhost:gateway@0.1.0` (a
//! provider and a payment system) serve beside 0.2 plugins on one host, every import and
//! export adapted onto the current implementation; 0.2's secret query parameters reach
//! the counterpart and nothing else. A component built against an older patch of 0.2
//! (`0.2.0`, before the batch calls) loads unchanged on the current 0.2 linker.

use std::time::Duration;

use hmac::{Hmac, Mac};
use payhost_tests::sim::http::{SimResponse, SimServer};
use payhost_tests::{plugin_wasm, HostBuilder, TestHost};
use serde_json::Value;

const LEGACY_KEY: &str = "legacy-secret-key-1";
/// Characters that must be percent-encoded in a query.
const API_TOKEN: &str = "tok en&=/secret+42";

/// The template component as a plugin built against `payhost:gateway@0.2.0` would be:
/// every `payhost:gateway/...@0.2.2` name it imports and exports turned into `@0.2.0`.
/// It uses none of the additions of 0.2.1 and 0.2.2, so this is exactly what the 0.2.0
/// sdk built.
fn template_built_against_0_2_0(dir: &std::path::Path) -> std::path::PathBuf {
    let bytes = std::fs::read(plugin_wasm("template")).unwrap();
    let (from, to) = (format!("@{}", payhost_wit::VERSION), "@0.2.0");
    assert_eq!(from, "@0.2.2", "wit/ moved on: point this at the patch before the current one");
    let mut patched = bytes.clone();
    for i in 0..patched.len().saturating_sub(from.len()) {
        if patched[i..].starts_with(from.as_bytes()) {
            patched[i..i + from.len()].copy_from_slice(to.as_bytes());
        }
    }
    assert_ne!(bytes, patched);
    let path = dir.join("template-0_2_0.wasm");
    std::fs::write(&path, patched).unwrap();
    path
}

async fn start(sim: &SimServer, down_host: &str, older_patch: &std::path::Path) -> TestHost {
    let config = format!(
        r#"
[[plugins]]
name = "legacy"
component = {legacy:?}
mount = "/legacy"
allowed_hosts = [{sim:?}]
payment_systems = ["legacypay"]
[plugins.secrets]
legacy_key = {{ env = "LEGACY_KEY" }}
[plugins.settings]
greeting = "from 0.1"

[[plugins]]
name = "legacypay"
component = {legacy_pay:?}
mount = "/legacypay"

[[plugins]]
name = "template"
component = {template:?}
mount = "/template"
allowed_hosts = [{sim:?}, {down_host:?}]
[plugins.secrets]
api_token = {{ env = "API_TOKEN" }}

[[plugins]]
name = "template020"
component = {older_patch:?}
mount = "/template020"
"#,
        legacy = plugin_wasm("legacy-v0-1").display().to_string(),
        legacy_pay = plugin_wasm("legacy-pay-v0-1").display().to_string(),
        template = plugin_wasm("template").display().to_string(),
        older_patch = older_patch.display().to_string(),
        sim = sim.host_port(),
    );
    HostBuilder::new()
        .env("LEGACY_KEY", LEGACY_KEY)
        .env("API_TOKEN", API_TOKEN)
        // Every log line the host and its HTTP client write, to prove none shows a secret.
        .env("PAYHOST_LOG", "debug,wasmtime=warn,cranelift=warn")
        .config(&config)
        .start()
        .await
}

async fn json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json answer"))
}

/// The token as it could appear: plain, form-encoded, percent-encoded, or its tail.
fn secret_forms() -> Vec<String> {
    vec![API_TOKEN.into(), encoded(API_TOKEN), "tok%20en".into(), "secret%2B42".into(), "secret+42".into()]
}

fn encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_0_1_component_serves_beside_0_2_plugins() {
    let sim = SimServer::start(|_| SimResponse::json(200, &serde_json::json!({"pong": true}))).await;
    let down = SimServer::start(|_| SimResponse::empty(200)).await;
    let down_host = down.host_port();
    drop(down);
    let dir = tempfile::tempdir().unwrap();
    let older_patch = template_built_against_0_2_0(dir.path());
    let mut host = start(&sim, &down_host, &older_patch).await;

    let (_, plugins) = host.admin("GET", "/plugins", None).await;
    let version = |name: &str| {
        plugins["plugins"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["wit_version"].clone()
    };
    assert_eq!(version("legacy"), "0.1.0");
    assert_eq!(version("legacypay"), "0.1.0");
    assert_eq!(version("template"), payhost_wit::VERSION);
    assert_eq!(version("template020"), "0.2.0");

    // The 0.2.0 component's imports resolve to the current definitions (a store round
    // trip) and its exports are found under their 0.2.0 names (`handle`).
    let put = host.client().put(host.url("/template020/store/k")).body("from 0.2.0").send().await.unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let got = host.get("/template020/store/k").await;
    assert_eq!((got.status().as_u16(), got.text().await.unwrap()), (200, "from 0.2.0".to_string()));

    // describe (an adapted export) and settings.
    let (status, body) = json(host.get("/legacy/").await).await;
    assert_eq!((status, body["contract"].as_str(), body["greeting"].as_str()), (200, Some("0.1.0"), Some("from 0.1")));

    // signing with a secret the 0.1 plugin names.
    let (_, body) = json(host.post("/legacy/hmac?key=legacy_key", "text/plain", "abc").await).await;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(LEGACY_KEY.as_bytes()).unwrap();
    mac.update(b"abc");
    assert_eq!(body["hmac"], hex::encode(mac.finalize().into_bytes()));

    // store: get + compare-and-swap.
    for expected in 1..=2 {
        let (_, body) = json(host.post("/legacy/count/a", "text/plain", "").await).await;
        assert_eq!(body["count"], expected);
    }

    // http with a secret header.
    let (status, body) = json(host.get(&format!("/legacy/fetch?url={}&secret=legacy_key", encoded(&format!("{}/ping", sim.base_url())))).await).await;
    assert_eq!((status, body["status"].as_u64()), (200, Some(200)), "{body}");
    assert_eq!(sim.requests().last().unwrap().header("x-key"), Some(LEGACY_KEY));

    // ledger, idempotent by key.
    for _ in 0..2 {
        let (status, body) = json(host.post("/legacy/credit?account=legacy-acct&amount=1.50&key=k1", "text/plain", "").await).await;
        assert_eq!((status, body["balance"].as_str(), body["kind"].as_str()), (200, Some("1.50"), Some("EntryKind::Credit")), "{body}");
    }

    // timers and the on-timer export.
    let (status, _) = json(host.post("/legacy/timer?in=60", "text/plain", "").await).await;
    assert_eq!(status, 200);
    host.advance_clock(61).await;
    let fired = host
        .wait_until(Duration::from_secs(10), || async {
            let (_, body) = json(host.get("/legacy/fired").await).await;
            body["fired"] == "legacy: from 0.1"
        })
        .await;
    assert!(fired, "the 0.1 timer did not fire:\n{}", host.logs());

    // checkout from a 0.1 provider into a 0.1 payment system: charge, then a hosted
    // checkout whose webhook event reaches the provider's on-payment-event.
    let (status, body) = json(host.post("/legacy/charge?system=legacypay&reference=r1&amount=2.00", "text/plain", "").await).await;
    assert_eq!((status, body["external_id"].as_str(), body["status"].as_str()), (200, Some("ch-r1"), Some("PaymentStatus::Succeeded")), "{body}");
    let (status, body) = json(host.post("/legacy/checkout?system=legacypay&reference=r2&amount=3.00", "text/plain", "").await).await;
    assert_eq!((status, body["redirect_url"].as_str()), (200, Some("https://pay.example/co-r2")), "{body}");
    let webhook = serde_json::json!({"reference": "r2", "status": "succeeded", "amount": "3.00", "currency": "RUB", "id": "pay-r2"});
    let resp = host.post("/legacypay/webhook", "application/json", webhook.to_string()).await;
    assert_eq!(resp.status().as_u16(), 200);
    let delivered = host
        .wait_until(Duration::from_secs(10), || async {
            let (_, body) = json(host.get("/legacy/event?reference=r2").await).await;
            body["external_id"] == "pay-r2"
        })
        .await;
    assert!(delivered, "the payment event did not reach the 0.1 provider:\n{}", host.logs());

    // The 0.2 plugin on the same host: a secret query parameter, percent-encoded, after
    // the URL's own query.
    let url = format!("{}/q?a=1", sim.base_url());
    let (status, body) = json(host.get(&format!("/template/fetch?url={}&token_secret=api_token", encoded(&url))).await).await;
    assert_eq!((status, body["status"].as_u64()), (200, Some(200)), "{body}");
    let seen = sim.requests().last().unwrap().clone();
    assert_eq!(seen.path, "/q");
    assert_eq!(seen.query_pairs(), vec![("a".to_string(), "1".to_string()), ("token".to_string(), API_TOKEN.to_string())]);
    assert!(!seen.query.contains(API_TOKEN), "the token travelled unencoded: {}", seen.query);

    // A failing call with a secret query: neither the plugin's error nor any log line
    // shows the URL with the secret.
    let (status, body) = json(host.get(&format!("/template/fetch?url={}&token_secret=api_token", encoded(&format!("http://{down_host}/q")))).await).await;
    assert_eq!(status, 502, "{body}");
    let shown = body.to_string();
    for secret in secret_forms() {
        assert!(!shown.contains(&secret), "the error shows a secret ({secret}): {shown}");
    }
    // A secret the plugin was not granted is refused by name.
    let (status, body) = json(host.get(&format!("/template/fetch?url={}&token_secret=legacy_key", encoded(&url))).await).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid-request")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("secret `legacy_key` is not granted"), "{body}");

    let logs = host.logs();
    for secret in secret_forms().into_iter().chain([LEGACY_KEY.to_string()]) {
        assert!(!logs.contains(&secret), "a log line shows a secret ({secret}):\n{logs}");
    }
}
