//! Issue: the operator console in the browser. Headless Chromium against a real
//! `payhost` on loopback: sign-in (and a wrong token refused), CSRF protection, crediting
//! an account with a confirmation step and seeing the entry in its history and in the
//! audit trail, admin API errors shown as the API gives them, reload and rollback of a
//! plugin with the history changing, retrying a failed delivery, and a screenshot of
//! every main page at desktop and phone size (in `target/test-artifacts/console/`).

use std::path::{Path, PathBuf};

use payhost_tests::browser::{Browser, DESKTOP, PHONE};
use payhost_tests::host::ADMIN_TOKEN;
use payhost_tests::sim::http::{SimResponse, SimServer};
use payhost_tests::{plugin_wasm, HostBuilder, TestHost};
use serde_json::{json, Value};

/// One template instance `live` (the plugin every capability test uses), allowed to
/// reach `sim` for deliveries.
async fn start_host(sim: &SimServer) -> TestHost {
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
        plugin_wasm("template").display().to_string(),
        sim.host_port()
    );
    HostBuilder::new().env("PROBE_KEY", "k").config(&config).start().await
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
    browser.screenshot("accounts-refused-debit").await;
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
        ("audit", Some(("#/audit", "main h1"))),
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
