//! The admin API against its own OpenAPI document: schemathesis generates requests for
//! every documented route from `GET /openapi.json` (valid and invalid ones; the document
//! is handed over as a file, since schemathesis leaves out the operation its schema was
//! loaded from, `GET /openapi.json` itself, when it loads it by URL) and fails
//! on any 5xx answer or any answer whose body does not match the documented schema.
//! The run is bounded by a fixed number of examples per route and a fixed seed.

use payhost_tests::host::ADMIN_TOKEN;
use payhost_tests::sim::stripe::StripeSim;
use payhost_tests::{plugin_wasm, HostBuilder};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_answers_as_its_openapi_document_says() {
    let schemathesis = tokio::task::spawn_blocking(payhost_tests::schemathesis::executable).await.unwrap();
    let sim = StripeSim::start("sk_test_51SimulatedKeyForPayhostTests", "whsec_SimulatedSigningSecretForTests").await;
    let host = sim
        .grant(HostBuilder::new())
        .config(&sim.shop_config())
        .config(&format!(
            "\n[[plugins]]\nname = \"tpl\"\ncomponent = {:?}\nmount = \"/tpl\"\n",
            plugin_wasm("template").display().to_string()
        ))
        .system_clock()
        .start()
        .await;

    // Some data for the generated requests to find: an account, a delivery, a timer.
    let credit = json!({"amount": "100.00", "currency": "RUB", "reference": "seed", "idempotency_key": "seed-1"});
    assert_eq!(host.admin("POST", "/accounts/seed/credit", Some(credit)).await.0, 200);
    host.post("/tpl/deliver?url=http://127.0.0.1:9/nowhere", "text/plain", "x").await;
    host.post("/tpl/timer?name=later&in=86400", "application/octet-stream", "").await;

    let (status, doc) = host.admin("GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let routes = doc["paths"].as_object().unwrap().len();
    assert!(routes >= 28, "{routes} routes documented");
    let operations: usize = doc["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();

    let report = host.dir().join("schemathesis.json");
    let document = host.dir().join("openapi.json");
    std::fs::write(&document, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = tokio::task::spawn_blocking({
        let document = document.clone();
        let base = host.admin_url("");
        let report = report.clone();
        move || {
            std::process::Command::new(schemathesis)
                .arg("run")
                .arg(&document)
                .args(["--url", &base])
                .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
                .args(["--checks", "not_a_server_error,response_schema_conformance"])
                .args(["--phases", "examples,coverage,fuzzing"])
                .args(["--max-examples", "25", "--seed", "20261201", "--workers", "1", "--request-timeout", "30"])
                .args(["--report", "json", "--report-json-path"])
                .arg(&report)
                .env("NO_COLOR", "1")
                .output()
                .expect("run schemathesis")
        }
    })
    .await
    .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found answers that break the document:\n{printed}\n--- host log ---\n{}", host.logs());
    // Every documented operation was loaded and selected (none filtered out), then run
    // through each phase.
    let line = printed.lines().find(|l| l.trim_start().starts_with("Operations:")).unwrap_or_default();
    let counts: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(counts, vec![operations, operations], "{operations} operations documented; {line}\n{printed}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report).expect("schemathesis wrote its report")).expect("the report is JSON");
    assert!(report.is_object(), "{report}");
}
