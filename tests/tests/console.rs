//! Issue: the operator console in the browser. Headless Chromium against a real
//! `payhost` on loopback: sign-in (and a wrong token refused), CSRF protection, crediting
//! an account with a confirmation step and seeing the entry in its history and in the
//! audit trail, admin API errors shown as the API gives them, reload and rollback of a
//! plugin with the history changing, retrying a failed delivery and seeing it delivered
//! and audited, live charts per instance that follow the metrics, and a screenshot of
//! every main page at desktop and phone size (in `target/test-artifacts/console/`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payhost_tests::browser::{Browser, DESKTOP, PHONE};
use payhost_tests::host::ADMIN_TOKEN;
use payhost_tests::sim::http::{SimResponse, SimServer};
use payhost_tests::{faulty_config, plugin_wasm, HostBuilder, TestHost};
use serde_json::{json, Value};

/// How long a test waits for the host itself (a delivery attempt) before failing.
const WAIT: Duration = Duration::from_secs(30);

/// One template instance `live` (the plugin every capability test uses), allowed to
/// reach `sim` for deliveries.
async fn start_host(sim: &SimServer) -> TestHost {
    host_with_live(sim).start().await
}

fn host_with_live(sim: &SimServer) -> HostBuilder {
    host_with_live_from(sim, &plugin_wasm("template"))
}

/// `live` served from `component`, a copy of the template plugin.
fn host_with_live_from(sim: &SimServer, component: &Path) -> HostBuilder {
    let config = format!(
        r#"
[[plugins]]
name = "live"
component = {:?}
mount = "/live"
allowed_hosts = ["probe.invalid", "{}"]
[plugins.secrets]
probe_key = {{ env = "PROBE_KEY" }}
[plugins.settings]
greeting = "console"
"#,
        component.display().to_string(),
        sim.host_port()
    );
    HostBuilder::new().env("PROBE_KEY", "k").config(&config)
}

async fn sim() -> SimServer {
    SimServer::start(|_| SimResponse::json(200, &json!({ "ok": true }))).await
}

async fn signed_in(host: &TestHost) -> Browser {
    let browser = Browser::start().await;
    browser.sign_in(&host.console_url(), ADMIN_TOKEN).await;
    browser.wait_text("main h1", "Plugins").await;
    browser
}

/// A copy of a plugin's component under `dir`, so a reload path names a file of its own.
fn copy_of(name: &str, dir: &Path) -> PathBuf {
    let path = dir.join(format!("{name}-copy.wasm"));
    std::fs::copy(plugin_wasm(name), &path).unwrap();
    path
}

async fn history_rows(browser: &Browser) -> Vec<String> {
    let rows = browser.run("return [...document.querySelectorAll('[data-instance=\"live\"] table.history tbody tr')].map(r => r.innerText)").await;
    rows.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_refused_and_the_right_one_signs_in_without_exposing_it() {
    let sim = sim().await;
    let host = start_host(&sim).await;
    let browser = Browser::start().await;

    browser.sign_in(&host.console_url(), "not-the-token").await;
    let refusal = browser.wait_text("[role=alert]", "wrong admin token").await;
    assert!(refusal.contains("HTTP 401"), "{refusal}");
    assert_eq!(browser.run("return document.cookie").await, json!(""));
    let (status, _) = console_call(&host, "GET", "/console/api/plugins", None, &[]).await;
    assert_eq!(status, 401, "the API answers a console call without a session");
    browser.screenshot("signin-refused").await;

    browser.fill("Admin token", ADMIN_TOKEN).await;
    browser.click("Sign in").await;
    browser.wait_text("main h1", "Plugins").await;
    browser.wait_text("[data-instance=live]", "/live").await;

    // The session cookie is HttpOnly and the token is kept nowhere the page can read.
    let kept = browser
        .run(&format!(
            "return {{cookie: document.cookie, local: localStorage.length, session: sessionStorage.length, \
             inPage: document.documentElement.outerHTML.includes({ADMIN_TOKEN:?})}}"
        ))
        .await;
    assert_eq!(kept, json!({ "cookie": "", "local": 0, "session": 0, "inPage": false }));

    // A state-changing call without the page's CSRF header is refused, session or not.
    let answer = browser
        .run_async(
            "const done = arguments[0]; fetch('/console/api/accounts/victim/credit', {method: 'POST', \
             headers: {'content-type': 'application/json'}, body: JSON.stringify({amount: '1.00', currency: 'RUB', \
             reference: 'x', idempotency_key: 'k1'})}).then(async r => done({status: r.status, body: await r.json()}))",
        )
        .await;
    assert_eq!(answer["status"], 403, "{answer}");
    assert!(answer["body"]["error"].as_str().unwrap().contains("x-payhost-csrf"), "{answer}");

    // Another site's page (another port on the same host) posting a form with the
    // browser's cookie: refused, and no money moved.
    let target = host.admin_url("/console/api/accounts/victim/credit");
    let evil = SimServer::start(move |_| {
        let page = format!(
            "<!doctype html><form id=f method=post enctype=text/plain action=\"{target}\">\
             <input name='{{\"amount\":\"5.00\",\"currency\":\"RUB\",\"reference\":\"csrf\",\"idempotency_key\":\"k' value='\"}}'>\
             </form><script>document.getElementById('f').submit()</script>"
        );
        SimResponse { status: 200, headers: vec![("content-type".into(), "text/html".into())], body: page.into_bytes() }
    })
    .await;
    browser.goto(&evil.base_url()).await;
    browser.wait_text("body", "\"error\"").await;
    let (status, body) = host.admin("GET", "/accounts/victim", None).await;
    assert_eq!(status, 404, "a cross-site form moved money: {body}");

    // Signing out ends the session on the host too.
    browser.goto(&host.console_url()).await;
    browser.click("Sign out").await;
    browser.wait_text("main", "Sign in with the admin token").await;
    let answer = browser.run_async("const done = arguments[0]; fetch('/console/api/plugins').then(r => done(r.status))").await;
    assert_eq!(answer, json!(401));
}

/// Calls the host's admin listener as a browser without a session would.
async fn console_call(host: &TestHost, method: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = host.client().request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), host.admin_url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn credit_an_account_after_confirming_and_see_it_in_the_history() {
    let sim = sim().await;
    let host = start_host(&sim).await;
    let browser = signed_in(&host).await;

    browser.click("Accounts").await;
    browser.fill("Account id", "acct-7").await;
    browser.click("Find").await;
    // The account does not exist yet: the page says what the API says.
    let (_, api_error) = host.admin("GET", "/accounts/acct-7", None).await;
    let shown = browser.wait_text("[role=alert]", api_error["error"].as_str().unwrap()).await;
    assert!(shown.contains("HTTP 404"), "{shown}");

    browser.fill("Amount", "300.00").await;
    browser.fill("Currency", "RUB").await;
    browser.fill("Reason", "ticket 4711: goodwill credit").await;
    let key = browser.labelled("Idempotency key").await.prop("value").await.unwrap().unwrap();
    assert!(key.starts_with("console-") && key.len() > 20, "{key}");
    browser.click("Review").await;
    let confirm = browser.wait_text(".confirm", "Credit 300.00 RUB to account acct-7?").await;
    assert!(confirm.contains(&key) && confirm.contains("ticket 4711"), "{confirm}");
    // Nothing moved before the confirmation.
    assert_eq!(host.admin("GET", "/accounts/acct-7", None).await.0, 404);

    // The confirm button has the focus: the keyboard confirms.
    let focused = browser.client().active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Confirm credit");
    focused.send_keys("\u{E007}").await.unwrap();
    browser.wait_text(".ok", "balance now 300.00 RUB").await;
    // The page named its call; the host kept that id.
    let credit_id = browser.find(".ok [data-testid=request-id]").await.text().await.unwrap();
    assert!(credit_id.starts_with("console-"), "{credit_id}");
    browser.wait_text("table.history", "ticket 4711: goodwill credit").await;
    let facts = browser.wait_text("[data-testid=account-facts]", "300.00 RUB").await;
    assert!(facts.contains("Balance"), "{facts}");

    // The page sent its generated key: the same call again is the same transaction.
    let (_, history) = host.admin("GET", "/accounts/acct-7/transactions", None).await;
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{history}");
    assert_eq!(entries[0]["reference"], "ticket 4711: goodwill credit");
    let replay = json!({ "amount": "300.00", "currency": "RUB", "reference": "ticket 4711: goodwill credit", "idempotency_key": key });
    let (status, again) = host.admin("POST", "/accounts/acct-7/credit", Some(replay)).await;
    assert_eq!(status, 200);
    assert_eq!(again["entry"]["transaction_id"], entries[0]["transaction_id"]);
    assert_eq!(again["account"]["balance"], "300.00");
    // A new key for the next movement.
    let next_key = browser.labelled("Idempotency key").await.prop("value").await.unwrap().unwrap();
    assert_ne!(next_key, key);

    // A debit the account cannot cover: refused, and shown exactly as the API says it.
    browser.labelled("Debit (take money)").await.click().await.unwrap();
    browser.fill("Amount", "500.00").await;
    browser.fill("Reason", "ticket 4712").await;
    browser.click("Review").await;
    browser.wait_text(".confirm", "Debit 500.00 RUB from account acct-7?").await;
    browser.click("Confirm debit").await;
    let probe = json!({ "amount": "500.00", "reference": "probe", "idempotency_key": "probe-key" });
    let (status, api_error) = host.admin("POST", "/accounts/acct-7/debit", Some(probe)).await;
    assert_eq!(status, 422);
    let shown = browser.wait_text("[role=alert]", api_error["error"].as_str().unwrap()).await;
    assert!(shown.contains("HTTP 422") && shown.contains("insufficient-funds"), "{shown}");
    assert_eq!(host.admin("GET", "/accounts/acct-7", None).await.1["balance"], "300.00");
    let debit_id = browser.find(".result [role=alert] .request-id code").await.text().await.unwrap();
    assert!(debit_id.starts_with("console-") && debit_id != credit_id, "{debit_id}");
    browser.screenshot("accounts-refused-debit").await;

    // The audit trail has both, under the ids the page showed (beside this test's own
    // calls to the API), and its page says so.
    let (_, trail) = host.admin("GET", "/audit", None).await;
    let audited: Vec<(&str, &str, &str, &str)> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["target"].as_str().unwrap(), e["outcome"].as_str().unwrap(), e["request_id"].as_str().unwrap()))
        .filter(|(_, _, _, id)| id.starts_with("console-"))
        .collect();
    assert_eq!(audited, vec![("credit", "acct-7", "ok", credit_id.as_str()), ("debit", "acct-7", "refused", debit_id.as_str())]);
    browser.click("Audit trail").await;
    browser.wait_text("table.audit", &credit_id).await;
    let credit_row = row_containing(&browser, "table.audit", &credit_id).await;
    for part in ["credit", "acct-7", "ok (200)", "ticket 4711: goodwill credit", "127.0.0.1:"] {
        assert!(credit_row.contains(part), "{part:?} missing from the audit row: {credit_row}");
    }
    let debit_row = row_containing(&browser, "table.audit", &debit_id).await;
    assert!(debit_row.contains("debit") && debit_row.contains("refused (422)") && debit_row.contains("ticket 4712"), "{debit_row}");

    // Filtered by kind on the host: only the credit.
    browser.labelled("Kind").await.select_by_value("credit").await.unwrap();
    browser.click("Show").await;
    browser.wait_text("table.audit caption", "(2)").await;
    let rows = browser.run("return [...document.querySelectorAll('table.audit tbody tr')].map(r => r.innerText)").await;
    let rows: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(rows.len(), 2, "the page's credit and this test's replay: {rows:?}");
    assert!(rows[0].contains(&credit_id) && rows.iter().all(|r| r.contains("credit") && !r.contains("debit")), "{rows:?}");
    browser.screenshot("audit-credit").await;

    // One entry a page: a full page links to the entries after it, the trail's order.
    let ids: Vec<&str> = trail["entries"].as_array().unwrap().iter().map(|e| e["request_id"].as_str().unwrap()).collect();
    browser.goto(&format!("{}#/audit/limit=1", host.console_url())).await;
    for (i, id) in ids.iter().enumerate() {
        browser.wait_text("table.audit tbody", id).await;
        let shown = browser.run("return document.querySelectorAll('table.audit tbody tr').length").await;
        assert_eq!(shown, 1, "page {i}");
        if i + 1 < ids.len() {
            browser.find("a[href*='after=']").await.click().await.unwrap();
        }
    }
}

/// The text of the first row of `table` that contains `needle`.
async fn row_containing(browser: &Browser, table: &str, needle: &str) -> String {
    let script = format!("return [...document.querySelectorAll({:?})].map(r => r.innerText).find(t => t.includes({needle:?})) || null", format!("{table} tbody tr"));
    let row = browser.wait_for(&format!("a row of {table} with {needle}"), &script, |v| v.is_string()).await;
    row.as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_and_roll_back_a_plugin_and_see_the_history_change() {
    let sim = sim().await;
    let host = start_host(&sim).await;
    let browser = signed_in(&host).await;
    let faulty = copy_of("faulty", host.dir());

    browser.wait_text("[data-instance=live] table.history", "serving").await;
    assert_eq!(history_rows(&browser).await.len(), 1);
    let (_, plugins) = host.admin("GET", "/plugins", None).await;
    let template_hash = plugins["plugins"][0]["component_hash"].as_str().unwrap().to_string();

    // Reload from another component.
    browser.fill("Component path (optional)", &faulty.display().to_string()).await;
    browser.click("Reload").await;
    browser.wait_text("[data-instance=live] .ok", "Reload of live done.").await;
    let (_, plugins) = host.admin("GET", "/plugins", None).await;
    let faulty_hash = plugins["plugins"][0]["component_hash"].as_str().unwrap().to_string();
    assert_ne!(faulty_hash, template_hash);
    browser.wait_text("[data-instance=live] .ok", &faulty_hash).await;
    browser.wait_text("[data-instance=live] table.history", &faulty_hash[..16]).await;
    let rows = history_rows(&browser).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].contains("serving") && rows[0].contains(&faulty_hash[..16]) && rows[0].contains("admin reload"), "{rows:?}");

    // Roll back: the template serves again, and the history says so.
    browser.click("Roll back").await;
    browser.wait_text("[data-instance=live] .ok", "Rollback of live done.").await;
    let (_, plugins) = host.admin("GET", "/plugins", None).await;
    assert_eq!(plugins["plugins"][0]["component_hash"], template_hash.as_str());
    let text = browser.wait_text("[data-instance=live] table.history", "rollback").await;
    let rows = history_rows(&browser).await;
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[0].contains("serving") && rows[0].contains(&template_hash[..16]) && rows[0].contains("rollback"), "{rows:?}");
    let version: Value = host.get("/live/").await.json().await.unwrap();
    assert_eq!(version["plugin"], "template");

    // A component that does not load: refused with the API's own reason, old one serving.
    let broken = host.dir().join("broken.wasm");
    std::fs::write(&broken, b"not a component").unwrap();
    browser.fill("Component path (optional)", &broken.display().to_string()).await;
    browser.click("Reload").await;
    let (status, api_error) = host.admin("POST", "/plugins/live/reload", Some(json!({ "path": broken }))).await;
    assert_eq!(status, 422);
    let shown = browser.wait_text("[data-instance=live] .result [role=alert]", "HTTP 422").await;
    // The message spans lines; compare it word for word.
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words(&shown).contains(&words(api_error["error"].as_str().unwrap())) && shown.contains("previous version"), "{shown}\n{api_error}");
    assert_eq!(history_rows(&browser).await.len(), 3);
}

/// A counterpart that answers 500 to the first request on each path and 200 after,
/// counting the requests per path.
async fn fails_first_time() -> (SimServer, Arc<Mutex<HashMap<String, usize>>>) {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counts = seen.clone();
    let sim = SimServer::start(move |req| {
        let n = {
            let mut counts = counts.lock().unwrap();
            let n = counts.entry(req.path.clone()).or_default();
            *n += 1;
            *n
        };
        if n == 1 {
            SimResponse::json(500, &json!({ "error": "try later" }))
        } else {
            SimResponse::json(200, &json!({ "ok": true }))
        }
    })
    .await;
    (sim, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_a_failed_delivery_and_see_it_delivered_and_in_the_audit_trail() {
    let (sim, counts) = fails_first_time().await;
    // One attempt allowed: the first failure gives the delivery up.
    let host = host_with_live(&sim).runtime_option("delivery_max_attempts = 1").start().await;
    let resp = host.post(&format!("/live/deliver?url={}/hook/order-1&key=order-1", sim.base_url()), "text/plain", "paid").await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["delivery"].as_str().unwrap().to_string();
    let given_up = host.wait_until(WAIT, || async { host.admin("GET", "/deliveries/given-up", None).await.1["count"] == 1 }).await;
    assert!(given_up, "the delivery was never given up:\n{}", host.logs());
    let (_, listed) = host.admin("GET", "/deliveries/given-up", None).await;
    let delivery = &listed["deliveries"][0];
    assert_eq!((delivery["id"].as_str(), delivery["last_status"].as_u64()), (Some(id.as_str()), Some(500)), "{listed}");
    let last_error = delivery["last_error"].as_str().unwrap().to_string();
    assert!(last_error.contains("try later"), "{last_error}");

    let browser = signed_in(&host).await;
    browser.click("Jobs").await;
    // Listed apart as given up, with the error the host kept.
    let row = row_containing(&browser, "[data-list=given-up]", &id).await;
    assert!(row.contains("failed") && row.contains(&last_error) && row.contains("500"), "{row}");
    browser.screenshot("jobs-given-up").await;

    // The state filter goes to the API; a state it does not know is refused as it says.
    browser.labelled("State").await.select_by_value("pending").await.unwrap();
    browser.click("Show").await;
    browser.wait_text("[data-list=deliveries] caption", "Deliveries in state pending").await;
    browser.wait_text("[data-list=deliveries] tbody", "nothing to show").await;
    browser.goto(&format!("{}#/jobs/deliveries/state=bogus", host.console_url())).await;
    let (status, api_error) = host.admin("GET", "/deliveries?state=bogus", None).await;
    assert_eq!(status, 400);
    let shown = browser.wait_text("[role=alert]", api_error["error"].as_str().unwrap()).await;
    assert!(shown.contains("HTTP 400") && shown.contains("bad-request"), "{shown}");
    browser.click("Jobs").await;
    browser.wait_text("[data-list=given-up]", &id).await;

    // Retry: a confirmation that asks why, answered from the keyboard.
    let retry = browser.find(&format!("[data-list=given-up] button[aria-label='Retry delivery {id} now']")).await;
    retry.click().await.unwrap();
    let confirm = browser.wait_text(".confirm", &format!("Retry delivery {id} now?")).await;
    assert!(confirm.contains(&last_error), "{confirm}");
    let focused = browser.client().active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap(), browser.labelled("Reason").await.attr("id").await.unwrap(), "the reason has the focus");
    // No reason, no call.
    focused.send_keys("\u{E007}").await.unwrap();
    browser.wait_text(".confirm [role=alert]", "Give a reason.").await;
    assert_eq!(host.admin("GET", "/audit", None).await.1["count"], 0);
    focused.send_keys("endpoint fixed, ticket 4713\u{E007}").await.unwrap();
    browser.wait_text(".ok", &format!("Retry delivery {id} now: accepted, state now pending.")).await;
    let request_id = browser.find(".ok [data-testid=request-id]").await.text().await.unwrap();

    // Delivered: the page follows it from given up to done by itself.
    browser.wait_text("[data-list=given-up] tbody", "nothing to show").await;
    let done = browser
        .wait_for("the delivery done", &format!("return [...document.querySelectorAll('[data-list=deliveries] tbody tr')].map(r => [...r.cells].map(c => c.innerText)).find(c => c[0] === {id:?}) || null"), |row| {
            row[2] == "done"
        })
        .await;
    assert_eq!(done[3], "2", "two attempts: {done}");
    assert_eq!(done[6], "—", "no error left: {done}");
    assert_eq!(counts.lock().unwrap().get("/hook/order-1").copied(), Some(2));
    let (_, all) = host.admin("GET", "/deliveries", None).await;
    assert_eq!((all["deliveries"][0]["state"].as_str(), all["deliveries"][0]["attempts"].as_u64()), (Some("done"), Some(2)), "{all}");
    // Ended: nothing to retry or cancel any more.
    let disabled = browser.find(&format!("[data-list=deliveries] button[aria-label='Retry delivery {id} now']")).await.attr("disabled").await.unwrap();
    assert!(disabled.is_some(), "a done delivery offers a retry");
    browser.screenshot("jobs-retried").await;

    // The retry is in the audit trail with its reason, under the id the page showed.
    let (_, trail) = host.admin("GET", "/audit?kind=retry", None).await;
    assert_eq!(trail["count"], 1, "{trail}");
    let entry = &trail["entries"][0];
    assert_eq!((entry["request_id"].as_str(), entry["target"].as_str()), (Some(request_id.as_str()), Some(format!("deliveries/{id}").as_str())), "{entry}");
    browser.click("Audit trail").await;
    let row = row_containing(&browser, "table.audit", &request_id).await;
    for part in ["retry", &format!("deliveries/{id}"), "ok (200)", "endpoint fixed, ticket 4713"] {
        assert!(row.contains(part), "{part:?} missing from the audit row: {row}");
    }
    browser.screenshot("audit-retry").await;
}

/// What the chart of `series` for `instance` drew: `{total, points}`, or null before
/// the first sample.
fn chart_script(instance: &str, series: &str) -> String {
    format!(
        "const f = document.querySelector('[data-instance={instance}] figure[data-series={series}]');\
         return f ? {{total: Number(f.dataset.total), points: JSON.parse(f.dataset.points), \
         label: f.querySelector('svg').getAttribute('aria-label'), lines: f.querySelectorAll('polyline').length}} : null;"
    )
}

fn points(chart: &Value) -> Vec<Option<f64>> {
    chart["points"].as_array().unwrap().iter().map(Value::as_f64).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugins_page_charts_each_instance_from_the_metrics() {
    let sim = sim().await;
    // The components sit where a deployment would keep them, since the page (and the
    // README's screenshot of it) shows their paths.
    let deployment = tempfile::Builder::new().prefix("payhost-").tempdir().unwrap();
    std::fs::create_dir(deployment.path().join("plugins")).unwrap();
    let template = deployment.path().join("plugins/template.wasm");
    let faulty = deployment.path().join("plugins/faulty.wasm");
    std::fs::copy(plugin_wasm("template"), &template).unwrap();
    std::fs::copy(plugin_wasm("faulty"), &faulty).unwrap();
    // `trap` answers 500 on /trap/trap; it comes after `live` on the page.
    let trap_config = faulty_config("trap", "/trap", "deadline_ms = 2000")
        .replace(&format!("{:?}", plugin_wasm("faulty").display().to_string()), &format!("{:?}", faulty.display().to_string()));
    assert!(trap_config.contains("plugins/faulty.wasm"), "{trap_config}");
    let host = host_with_live_from(&sim, &template).config(&trap_config).start().await;
    let browser = signed_in(&host).await;

    // Charts for both instances from the first sample; nothing counted yet.
    for instance in ["live", "trap"] {
        for series in ["requests", "p99", "errors"] {
            let chart = browser.wait_for(&format!("the {series} chart of {instance}"), &chart_script(instance, series), |v| !v.is_null()).await;
            assert_eq!(chart["total"], 0, "{instance} {series}: {chart}");
        }
    }
    // Each instance's store against its quota (`limits.store_mb`, 1 GiB unless set).
    let store_fact = "const dd = [...document.querySelectorAll('[data-instance=live] dl.facts dt')]\
        .find(dt => dt.textContent === 'Store'); return dd ? dd.nextElementSibling.textContent : null;";
    let store = browser.wait_for("live's store fact", store_fact, |v| v.is_string()).await;
    assert!(store.as_str().unwrap().ends_with("of 1024.0 MiB (0%)"), "{store}");

    // A second sample gives the first point: a rate of nothing.
    let quiet = browser.wait_for("a first point", &chart_script("live", "requests"), |v| !points(v).is_empty()).await;
    assert!(points(&quiet).iter().all(|p| *p == Some(0.0)), "{quiet}");

    for i in 0..6 {
        assert_eq!(host.get(&format!("/live/?n={i}")).await.status(), 200);
    }
    for _ in 0..3 {
        assert_eq!(host.get("/trap/trap").await.status(), 500);
    }

    // Each instance's series moves with its own requests, and only with those.
    let moved = |v: &Value, total: i64| v["total"] == total && points(v).iter().any(|p| p.is_some_and(|p| p > 0.0));
    let live = browser.wait_for("live's requests counted", &chart_script("live", "requests"), |v| moved(v, 6)).await;
    assert!(live["label"].as_str().unwrap().contains("6 requests in all") && live["lines"] == 1, "{live}");
    let latency = browser.run(&chart_script("live", "p99")).await;
    assert_eq!(latency["total"], 6, "{latency}");
    assert!(points(&latency).iter().any(|p| p.is_some_and(|p| p > 0.0)), "a p99 for the interval with requests: {latency}");
    let live_errors = browser.run(&chart_script("live", "errors")).await;
    assert_eq!(live_errors["total"], 0, "{live_errors}");
    assert!(points(&live_errors).iter().all(|p| *p == Some(0.0)), "{live_errors}");

    let trap = browser.wait_for("trap's errors counted", &chart_script("trap", "errors"), |v| moved(v, 3)).await;
    assert!(trap["label"].as_str().unwrap().contains("3 errors in all"), "{trap}");
    let trap_requests = browser.run(&chart_script("trap", "requests")).await;
    assert_eq!(trap_requests["total"], 3, "{trap_requests}");

    // Uneven traffic over a few more samples: every burst is counted, one by one.
    let (mut requests, mut errors) = (6, 3);
    for burst in [3, 9, 5, 12, 4] {
        let seen = points(&browser.run(&chart_script("live", "requests")).await).len();
        browser.wait_for("the next sample", &chart_script("live", "requests"), |v| points(v).len() > seen).await;
        for i in 0..burst {
            assert_eq!(host.get(&format!("/live/?burst={i}")).await.status(), 200);
        }
        if burst > 8 {
            assert_eq!(host.get("/trap/trap").await.status(), 500);
            errors += 1;
        }
        requests += burst;
        browser.wait_for(&format!("{requests} requests counted"), &chart_script("live", "requests"), |v| v["total"] == requests).await;
    }
    browser.wait_for(&format!("{errors} errors counted"), &chart_script("trap", "errors"), |v| v["total"] == errors).await;

    // What the charts count is what the metrics say.
    let metrics = host.client().get(host.admin_url("/metrics")).bearer_auth(ADMIN_TOKEN).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(&format!(r#"payhost_requests_total{{instance="live",status="2xx"}} {requests}"#)), "{metrics}");
    assert!(metrics.contains(&format!(r#"payhost_requests_total{{instance="trap",status="5xx"}} {errors}"#)), "{metrics}");
    browser.screenshot("plugins-charts").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_main_page_at_desktop_and_phone_size_with_labelled_controls() {
    let sim = sim().await;
    let host = start_host(&sim).await;
    let (status, _) = host
        .admin("POST", "/accounts/acct-1/credit", Some(json!({ "amount": "1250.00", "currency": "RUB", "reference": "opening balance", "idempotency_key": "s1" })))
        .await;
    assert_eq!(status, 200);
    host.admin("POST", "/accounts/acct-1/debit", Some(json!({ "amount": "99.90", "reference": "packet 30 days", "idempotency_key": "s2" }))).await;
    for i in 0..5 {
        assert_eq!(host.get(&format!("/live/?n={i}")).await.status(), 200);
    }
    let resp = host.post(&format!("/live/deliver?url={}/hook&key=d1", sim.base_url()), "text/plain", "hello").await;
    assert_eq!(resp.status(), 202);

    let browser = Browser::start().await;
    let pages = [
        ("signin", None),
        ("plugins", Some(("#/plugins", "[data-instance=live] table.history"))),
        ("accounts", Some(("#/accounts/acct-1", "table.history"))),
        ("jobs", Some(("#/jobs/deliveries", "table.jobs"))),
        ("audit", Some(("#/audit", "table.audit"))),
    ];
    for size in [DESKTOP, PHONE] {
        browser.resize(size).await;
        let suffix = if size == DESKTOP { "desktop" } else { "phone" };
        for (name, route) in pages {
            match route {
                None => {
                    browser.goto(&host.console_url()).await;
                    browser.wait_text("main", "Sign in with the admin token").await;
                }
                Some((hash, ready)) => {
                    browser.goto(&format!("{}{hash}", host.console_url())).await;
                    browser.find(ready).await;
                }
            }
            assert_accessible(&browser, name).await;
            let fits = browser.run("return document.documentElement.scrollWidth <= window.innerWidth").await;
            assert_eq!(fits, json!(true), "{name} scrolls sideways at {size:?}");
            browser.screenshot(&format!("{name}-{suffix}")).await;
            if name == "signin" {
                browser.fill("Admin token", ADMIN_TOKEN).await;
                browser.click("Sign in").await;
                browser.wait_text("main h1", "Plugins").await;
            }
        }
        browser.click("Sign out").await;
        browser.wait_text("main", "Sign in with the admin token").await;
    }
}

/// Every control has a label (or an aria-label), every button a name, one h1 per page.
async fn assert_accessible(browser: &Browser, page: &str) {
    let problems = browser
        .run(
            "const bad = [];\
             for (const el of document.querySelectorAll('input, select, textarea')) {\
               if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label')) bad.push('unlabelled ' + (el.name || el.outerHTML));\
             }\
             for (const b of document.querySelectorAll('button')) {\
               if (!(b.innerText.trim() || b.getAttribute('aria-label'))) bad.push('nameless button');\
             }\
             if (document.querySelectorAll('h1').length !== 1) bad.push('h1 count ' + document.querySelectorAll('h1').length);\
             if (!document.documentElement.lang) bad.push('no lang');\
             return bad;",
        )
        .await;
    assert_eq!(problems, json!([]), "accessibility problems on {page}");
}
