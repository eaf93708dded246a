//! Tracing through the real host: the request id travels into a plugin's outbound
//! calls in the header the operator names, and with `[tracing.otlp]` configured the
//! request spans reach the (stand-in) collector over OTLP/HTTP. What a client sent
//! cannot start a log line of its own, even when a plugin repeats it; a plugin's lines
//! are cut and limited in rate, and what was dropped is counted and told.

use std::time::Duration;

use payhost_tests::sim::http::{SimResponse, SimServer};
use payhost_tests::host::ADMIN_TOKEN;
use payhost_tests::{faulty_config, plugin_wasm, HostBuilder};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_go_into_outbound_calls_and_spans_reach_the_collector() {
    let counterpart = SimServer::start(|_| SimResponse::json(200, &json!({ "ok": true }))).await;
    let collector = SimServer::start(|_| SimResponse::empty(200)).await;
    let mut host = HostBuilder::new()
        .config(&format!(
            "\n[[plugins]]\nname = \"tpl\"\ncomponent = {:?}\nmount = \"/tpl\"\nallowed_hosts = [{:?}]\n\n\
             [tracing]\nrequest_id_header = \"x-correlation-id\"\n[tracing.otlp]\nendpoint = \"{}/v1/traces\"\nservice_name = \"payhost-under-test\"\n",
            plugin_wasm("template").display().to_string(),
            counterpart.host_port(),
            collector.base_url(),
        ))
        .start()
        .await;

    let resp = host.get(&format!("/tpl/fetch?url={}/echo", counterpart.base_url())).await;
    assert_eq!(resp.status().as_u16(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let outbound = counterpart.requests();
    assert_eq!(outbound.len(), 1);
    assert_eq!(outbound[0].header("x-correlation-id"), Some(request_id.as_str()), "the request id travels with the call");

    // A graceful stop flushes the batch of spans to the collector.
    host.stop().await;
    let exports: Vec<_> = collector.requests().into_iter().filter(|r| r.method == "POST" && r.path == "/v1/traces").collect();
    assert!(!exports.is_empty(), "no spans were exported:\n{}", host.logs());
    assert!(exports.iter().all(|r| r.header("content-type") == Some("application/x-protobuf")));
    let body: Vec<u8> = exports.iter().flat_map(|r| r.body.clone()).collect();
    let contains = |needle: &str| body.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains("payhost-under-test"), "the service name is in the export");
    assert!(contains("request"), "the request span is in the export");
    assert!(contains(&request_id), "the span carries the request id");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_otlp_section_nothing_is_exported_and_the_default_header_is_x_request_id() {
    let counterpart = SimServer::start(|_| SimResponse::json(200, &json!({ "ok": true }))).await;
    let mut host = HostBuilder::new()
        .config(&format!(
            "\n[[plugins]]\nname = \"tpl\"\ncomponent = {:?}\nmount = \"/tpl\"\nallowed_hosts = [{:?}]\n",
            plugin_wasm("template").display().to_string(),
            counterpart.host_port(),
        ))
        .start()
        .await;
    let resp = host.get(&format!("/tpl/fetch?url={}/echo", counterpart.base_url())).await;
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(counterpart.requests()[0].header("x-request-id"), Some(request_id.as_str()));

    // A durable delivery is sent later by the job worker, still under the id of the
    // request that enqueued it.
    let resp = host.post(&format!("/tpl/deliver?url={}/later&key=d1", counterpart.base_url()), "text/plain", "x").await;
    assert_eq!(resp.status().as_u16(), 202);
    let enqueued_by = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let sent = host
        .wait_until(std::time::Duration::from_secs(30), || async { counterpart.requests().iter().any(|r| r.path == "/later") })
        .await;
    assert!(sent, "the delivery was not sent:\n{}", host.logs());
    let delivery = counterpart.requests().into_iter().find(|r| r.path == "/later").unwrap();
    assert_eq!(delivery.header("x-request-id"), Some(enqueued_by.as_str()), "the delivery carries its enqueuing request's id");
    host.stop().await;
    assert!(!host.logs().contains("exporting spans over OTLP"), "no exporter without [tracing.otlp]");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_break_a_client_sent_cannot_start_a_log_line_of_its_own() {
    let host = HostBuilder::new().env("PROBE_KEY", "k").config(&faulty_config("faulty", "/faulty", "")).start().await;
    // The faulty plugin repeats the body in a log line and in its error, which the host
    // logs as the call's cause.
    let forged = "FORGED payhost::server: payment captured amount=1000.00";
    let resp = host.post("/faulty/echo", "text/plain", format!("order 7\n{forged}\r\n{forged}")).await;
    assert_eq!(resp.status().as_u16(), 500);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();

    let both_logged = host
        .wait_until(Duration::from_secs(60), || async {
            let logs = host.logs();
            logs.contains("client sent order 7") && logs.contains(&format!("request={request_id}")) && logs.contains("could not handle order 7")
        })
        .await;
    let logs = host.logs();
    assert!(both_logged, "the plugin's log line and the failed call were not logged:\n{logs}");
    assert!(!logs.lines().any(|line| line.starts_with("FORGED")), "a client's text started a log line:\n{logs}");
    for line in logs.lines().filter(|line| line.contains("order 7")) {
        assert!(line.contains(&format!("order 7\\n{forged}\\r\\n{forged}")), "the client's text is not whole on its line: {line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_logs_too_much_or_too_long_is_cut_and_the_drops_are_counted_and_told() {
    // One line a second, so a burst of ten seconds' worth: ten lines.
    let host = HostBuilder::new().env("PROBE_KEY", "k").config(&faulty_config("faulty", "/faulty", "log_lines_per_second = 1")).start().await;
    let metric = || async {
        let metrics = host.client().get(host.admin_url("/metrics")).bearer_auth(ADMIN_TOKEN).send().await.unwrap().text().await.unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(r#"payhost_plugin_log_lines_dropped_total{instance="faulty"} "#))
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };

    // A line over 8 KiB is kept cut, saying by how much; the plugin's error likewise.
    let long = "x".repeat(20_000);
    assert_eq!(host.post("/faulty/echo", "text/plain", long).await.status().as_u16(), 500);
    // Then far more lines than the burst, as fast as the plugin can be called.
    let sent = 60u64;
    for i in 0..sent {
        assert_eq!(host.post("/faulty/echo", "text/plain", format!("flood {i}")).await.status().as_u16(), 500);
    }
    let logged_lines = || host.logs().lines().filter(|l| l.contains("client sent flood")).count() as u64;
    let dropped = metric().await;
    assert!(dropped > 0, "nothing was dropped:\n{}", host.logs());
    // Every line is either in the log or counted as dropped, never both, never neither
    // (the first line, the long one, took one of the burst).
    assert_eq!(logged_lines() + dropped, sent, "{}", host.logs());

    // Each line let through tells the drops since the one before, so once the budget
    // refills and a line gets through, the lines told add up to every drop (those while
    // waiting for the refill too; a refill during the flood told some already).
    let told_in = |logs: &str| -> u64 {
        logs.lines()
            .filter(|l| l.contains("plugin log lines dropped"))
            .filter_map(|l| l.split("dropped=").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    let all_told = host
        .wait_until(Duration::from_secs(60), || async {
            host.post("/faulty/echo", "text/plain", "after the flood").await;
            told_in(&host.logs()) == metric().await
        })
        .await;
    let logs = host.logs();
    assert!(all_told, "the drops were never all told ({} of {}):\n{logs}", told_in(&logs), metric().await);
    assert!(told_in(&logs) >= dropped);
    let cut_line = logs.lines().find(|l| l.contains("client sent xxx")).expect("the long line is logged");
    assert!(cut_line.contains("… [11820 bytes cut]"), "{cut_line}");
    let error_line = logs.lines().find(|l| l.contains("could not handle xxx")).expect("the long error is logged");
    assert!(error_line.contains("bytes cut]"), "{error_line}");
    assert!(error_line.len() < 10_000, "{} bytes", error_line.len());
}
