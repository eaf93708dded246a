//! Issue "Fault containment", the operator's side: a rollback swaps code only (a rotated
//! secret and a revoked host stay so), a refused or conflicting idempotent call has no
//! side effect and a repeat replays the first answer, identifiers with NUL or control
//! characters are refused the same way on SQLite and PostgreSQL before storage is
//! touched, and the bearer scheme is case-insensitive.

use hmac::{Hmac, Mac};
use payhost_tests::postgres::Schema;
use payhost_tests::sim::http::{SimResponse, SimServer};
use payhost_tests::{plugin_wasm, HostBuilder, TestHost};
use serde_json::{json, Value};

fn hmac_hex(key: &str, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn signer_config(secret_file: &std::path::Path, hosts: &[String]) -> String {
    format!(
        r#"
[[plugins]]
name = "signer"
component = {component:?}
mount = "/signer"
allowed_hosts = {hosts:?}
[plugins.secrets]
shop_key = {{ file = {file:?} }}
"#,
        component = plugin_wasm("template").display().to_string(),
        file = secret_file.display().to_string(),
    )
}

async fn signature(host: &TestHost) -> String {
    let resp = host.post("/signer/hmac/sha256?key=shop_key", "text/plain", "order-1").await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.unwrap()
}

async fn fetch_status(host: &TestHost, sim: &SimServer) -> u16 {
    let url = format!("{}/ping", sim.base_url());
    let encoded: String = form_urlencoded::byte_serialize(url.as_bytes()).collect();
    host.get(&format!("/signer/fetch?url={encoded}")).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_keeps_a_rotated_secret_and_a_revoked_host() {
    let kept = SimServer::start(|_| SimResponse::json(200, &json!({"host": "kept"}))).await;
    let revoked = SimServer::start(|_| SimResponse::json(200, &json!({"host": "revoked"}))).await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("shop_key");
    std::fs::write(&secret_file, "old-secret").unwrap();
    let both = vec![kept.host_port(), revoked.host_port()];
    let mut host = HostBuilder::new().config(&signer_config(&secret_file, &both)).start().await;
    assert_eq!(signature(&host).await, hmac_hex("old-secret", "order-1"));
    assert_eq!(fetch_status(&host, &revoked).await, 200);

    // The operator rotates the secret and revokes a host; the config reload applies both.
    std::fs::write(&secret_file, "new-secret").unwrap();
    host.rewrite_config(&signer_config(&secret_file, &[kept.host_port()]));
    let (status, body) = host.admin("POST", "/config/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(signature(&host).await, hmac_hex("new-secret", "order-1"));
    assert_eq!(fetch_status(&host, &revoked).await, 403);

    // Rolling back returns to the earlier code, linked with the config in force.
    let (status, body) = host.admin("POST", "/plugins/signer/rollback", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config_generation"], 2, "{body}");
    assert_eq!(signature(&host).await, hmac_hex("new-secret", "order-1"), "the rollback brought the old secret back");
    assert_eq!(fetch_status(&host, &revoked).await, 403, "the rollback brought a revoked host back");
    assert_eq!(fetch_status(&host, &kept).await, 200);
    assert!(revoked.requests().len() == 1, "the revoked host was reached again: {:?}", revoked.requests().len());

    let (_, plugins) = host.admin("GET", "/plugins", None).await;
    let history: Vec<(String, u64)> = plugins["plugins"][0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["trigger"].as_str().unwrap().to_string(), h["config_generation"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        history,
        vec![("startup".to_string(), 1), ("admin config reload".to_string(), 2), ("admin rollback".to_string(), 2)],
        "history shows the config generation each version ran with"
    );
}

async fn admin_as(host: &TestHost, authorization: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = host.client().request(method, host.admin_url(path)).header("authorization", authorization);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bearer_scheme_is_case_insensitive() {
    let host = HostBuilder::new().start().await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let (status, _) = admin_as(&host, &format!("{scheme} {}", payhost_tests::host::ADMIN_TOKEN), "GET", "/plugins", None).await;
        assert_eq!(status, 200, "{scheme}");
    }
    let (status, body) = admin_as(&host, "bearer wrong-token", "GET", "/plugins", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = admin_as(&host, &format!("Basic {}", payhost_tests::host::ADMIN_TOKEN), "GET", "/plugins", None).await;
    assert_eq!(status, 401);
}

/// The idempotency rules and the identifier checks, on one host.
async fn idempotency_and_identifiers(host: &TestHost) {
    let credit = |account: &str, amount: &str, key: &str| {
        json!({ "amount": amount, "currency": "RUB", "reference": "top-up", "idempotency_key": key })
            .as_object()
            .map(|o| (format!("/accounts/{account}/credit"), Value::Object(o.clone())))
            .unwrap()
    };
    let (path, body) = credit("acct-a", "100.00", "k1");
    let (status, first) = host.admin("POST", &path, Some(body.clone())).await;
    assert_eq!(status, 200, "{first}");
    // The same key and request replays the first answer, moving nothing.
    let (status, replay) = host.admin("POST", &path, Some(body)).await;
    assert_eq!((status, &replay), (200, &first));
    // The same key for another account is a conflict that leaves nothing behind.
    let (path, body) = credit("acct-b", "100.00", "k1");
    let (status, conflict) = host.admin("POST", &path, Some(body)).await;
    assert_eq!((status, conflict["code"].as_str()), (409, Some("idempotency-conflict")), "{conflict}");
    let (status, missing) = host.admin("GET", "/accounts/acct-b", None).await;
    assert_eq!(status, 404, "the conflicting credit opened an account: {missing}");
    // A credit in another currency than the account's is refused without an entry.
    let (status, _) = host
        .admin("POST", "/accounts/acct-a/credit", Some(json!({ "amount": "1.00", "currency": "USD", "idempotency_key": "k2" })))
        .await;
    assert_eq!(status, 422);
    let (_, history) = host.admin("GET", "/accounts/acct-a/transactions", None).await;
    assert_eq!(history["entries"].as_array().unwrap().len(), 1, "{history}");
    let (_, account) = host.admin("GET", "/accounts/acct-a", None).await;
    assert_eq!(account["balance"], "100.00");
    // The key of the refused call is still free: a correct call with it goes through.
    let (status, _) = host
        .admin("POST", "/accounts/acct-a/credit", Some(json!({ "amount": "1.00", "currency": "RUB", "idempotency_key": "k2" })))
        .await;
    assert_eq!(status, 200);

    // Identifiers: the same 400 and message on both backends, nothing stored.
    let bad_ids = ["a%00b", "line%0Abreak", "del%7F"];
    for id in bad_ids {
        let (path, body) = credit(id, "5.00", &format!("key-{id}"));
        let (status, body) = host.admin("POST", &path, Some(body)).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid-input")), "{id}: {body}");
        assert!(body["error"].as_str().unwrap().contains("control character"), "{body}");
        let (status, _) = host.admin("GET", &format!("/accounts/{id}"), None).await;
        assert_eq!(status, 400, "{id}");
    }
    let long = "x".repeat(256);
    let (path, body) = credit(&long, "5.00", "key-long");
    let (status, body) = host.admin("POST", &path, Some(body)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid-input")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("256 bytes"), "{body}");
    for (field, value) in [("idempotency_key", "k\u{0}1"), ("reference", "ref\nsplit")] {
        let mut request = json!({ "amount": "5.00", "currency": "RUB", "reference": "r", "idempotency_key": "k-field" });
        request[field] = json!(value);
        let (status, body) = host.admin("POST", "/accounts/acct-c/credit", Some(request)).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid-input")), "{field}: {body}");
    }
    let (status, _) = host.admin("GET", "/accounts/acct-c", None).await;
    assert_eq!(status, 404, "a refused credit opened its account");
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_and_identifiers_on_sqlite() {
    let host = HostBuilder::new().start().await;
    idempotency_and_identifiers(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_and_identifiers_on_postgres() {
    let Some(schema) = Schema::create().await else { return };
    let host = HostBuilder::new().postgres(&schema.url()).start().await;
    idempotency_and_identifiers(&host).await;
    assert!(!host.logs().contains("storage failed"), "{}", host.logs());
}
