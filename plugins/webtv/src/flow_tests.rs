//! The plugin's flows end to end against the in-memory host: payments, replays,
//! recurring schedules, the hosted checkout's return and events.

use crate::events::on_payment_event;
use crate::testing::*;
use payhost_sdk::Host;
use payhost_sdk::payments::PaymentStatus;

fn balance_host() -> TestHost {
    test_host(&[("max_failures", "3"), ("retry_after_seconds", "3600")])
}

fn card_host() -> TestHost {
    test_host(&[("payment_method", "card"), ("public_url", "https://pay.example.com/webtv")])
}

#[test]
fn balance_payment_succeeds_once_and_replays_the_same_redirect() {
    let host = balance_host();
    host.fund_wallet("7", "20.00");
    let order = WebTvOrder::new("99", "10.50");
    let first = host.get("/", &order.query());
    let r = webtv_return(&first);
    assert_eq!((r.get("iq"), r.get("tp"), r.get("status"), r.get("status_msg")), ("99", "gid_3-step_2", "SUCCESS", ""));
    assert!(r.get("transaction").starts_with("ltx_"));
    assert_eq!(host.wallet("7"), "9.50");

    let replay = host.get("/", &order.query());
    assert_eq!(replay.headers, first.headers, "a replay answers the same redirect");
    assert_eq!(host.wallet("7"), "9.50");
    assert_eq!(host.payments().charge_calls.borrow().len(), 1);
}

#[test]
fn not_enough_money_is_an_error_and_a_later_attempt_can_pay() {
    let host = balance_host();
    host.fund_wallet("7", "5.00");
    let order = WebTvOrder::new("100", "10.50");
    let r = webtv_return(&host.get("/", &order.query()));
    assert_eq!(r.get("status"), "ERROR");
    assert_eq!(r.get("status_msg"), "insufficient funds: balance 5.00 USD");
    assert_eq!(r.get("transaction"), "");
    assert_eq!(host.wallet("7"), "5.00");

    host.fund_wallet("7", "10.00");
    let r = webtv_return(&host.get("/", &order.query()));
    assert_eq!(r.get("status"), "SUCCESS");
    assert_eq!(host.wallet("7"), "4.50");
    let references: Vec<String> = host.payments().charge_calls.borrow().iter().map(|(_, r, _)| r.clone()).collect();
    assert_eq!(references, vec!["webtv-3-100-a1", "webtv-3-100-a2"]);
}

#[test]
fn a_bad_or_missing_signature_gets_a_page_not_a_redirect() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let order = WebTvOrder::new("101", "10.50");
    let tampered = order.query().replace("amount=10.50", "amount=0.50");
    let page = host.get("/", &tampered);
    assert_eq!(page.status, 403);
    assert!(body(&page).contains("signature"));

    let unsigned: String = order.query().split('&').filter(|p| !p.starts_with("signature=")).collect::<Vec<_>>().join("&");
    let page = host.get("/", &unsigned);
    assert_eq!(page.status, 400);
    assert!(body(&page).contains("signature"));

    let page = host.get("/", "id_gateway=3");
    assert_eq!(page.status, 400);
    assert!(body(&page).contains("id_order, amount, currency_code, order_number, signature, id_user"));
    assert!(host.payments().charge_calls.borrow().is_empty());
    assert_eq!(host.wallet("7"), "100");
}

#[test]
fn unicode_and_slashes_are_signed_like_php() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("7/8", "1");
    order.order_number = "Заказ №5/7 😀".into();
    order.items = vec![WebTvItem::monthly("Пакет/ÄÖÜ", "9.99", START + DAY)];
    let r = webtv_return(&host.get("/", &order.query()));
    assert_eq!(r.get("status"), "SUCCESS");
    assert_eq!(r.get("iq"), "7/8");
    assert_eq!(r.get("rp_0_status"), "Active");
    assert_eq!(r.get("rp_0_profile_id"), "rp-3-7_2F8-0");
}

#[test]
fn recurring_items_one_bad_one_good() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("102", "10");
    let mut bad = WebTvItem::monthly("SILVER", "4.99", START + DAY);
    bad.signed_amount = Some("0.99".into());
    order.items = vec![bad, WebTvItem::monthly("GOLD", "9.99", START + 30 * DAY)];
    let r = webtv_return(&host.get("/", &order.query()));
    assert_eq!(r.get("status"), "SUCCESS");
    assert_eq!(r.get("tp"), "gid_3-step_2-rp_1");
    assert_eq!(r.get("rp_0_error"), crate::items::SIGNATURE_ERROR);
    assert_eq!((r.get("rp_0_profile_id"), r.get("rp_0_status"), r.get("rp_0_first_payment_date")), ("", "Perfil inválido", "0"));
    assert!(r.params.get("rp_1_error").is_none());
    assert_eq!(r.get("rp_1_status"), "Active");
    assert_eq!(r.get("rp_1_first_payment_date"), (START + 30 * DAY).to_string());
    let status = host.get("/", &action_query("rp_status", r.get("rp_1_profile_id")));
    assert_eq!(
        body(&status),
        format!(r#"{{"status":"Active","last_payment_date":0,"next_payment_date":{}}}"#, START + 30 * DAY)
    );
}

#[test]
fn the_floatval_amount_is_what_gets_signed_and_charged() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("103", "1");
    // 14 significant digits: PHP signs both as "9.99"; the signed text is what we charge.
    let mut item = WebTvItem::monthly("G", "9.989999999999999", START);
    item.signed_amount = Some("9.99".into());
    order.items = vec![item];
    let r = webtv_return(&host.get("/", &order.query()));
    assert_eq!(r.get("rp_0_status"), "Active");
    host.fire_due_timers();
    assert_eq!(host.payments().charge_calls.borrow().last().unwrap().2, "9.99");
}

#[test]
fn trial_has_no_transaction_and_charges_later() {
    let host = balance_host();
    host.fund_wallet("7", "30");
    let mut order = WebTvOrder::new("104", "0");
    order.items = vec![WebTvItem::monthly("GOLD", "10", START + 14 * DAY)];
    let r = webtv_return(&host.get("/", &order.query()));
    assert_eq!((r.get("status"), r.get("transaction")), ("SUCCESS", "N/A"));
    assert!(host.payments().charge_calls.borrow().is_empty());
    host.run_days(13);
    assert_eq!(host.wallet("7"), "30");
    host.run_days(1);
    assert_eq!(host.wallet("7"), "20");
}

#[test]
fn zero_amount_without_recurring_items_is_refused() {
    let host = balance_host();
    let r = webtv_return(&host.get("/", &WebTvOrder::new("105", "0").query()));
    assert_eq!(r.get("status"), "ERROR");
    assert!(r.get("status_msg").contains("Nothing to pay"));
}

#[test]
fn schedule_charges_every_period_and_rp_status_follows() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("106", "10");
    order.items = vec![WebTvItem::monthly("GOLD", "10", START + DAY)];
    let r = webtv_return(&host.get("/", &order.query()));
    let profile = r.get("rp_0_profile_id").to_string();
    assert_eq!(host.wallet("7"), "90");
    host.run_days(1);
    assert_eq!(host.wallet("7"), "80");
    let paid_at = host.now().seconds;
    host.run_days(29);
    assert_eq!(host.wallet("7"), "80", "the second period is not due yet");
    host.run_days(3);
    assert_eq!(host.wallet("7"), "70");
    let references: Vec<String> = host.payments().charge_calls.borrow().iter().map(|(_, r, _)| r.clone()).collect();
    assert_eq!(references[1..], [format!("{profile}-p0"), format!("{profile}-p1")]);
    let status = body(&host.get("/", &action_query("rp_status", &profile)));
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["status"], "Active");
    assert!(v["last_payment_date"].as_i64().unwrap() > paid_at);
    // Nov 15 2023 + 2 months.
    assert_eq!(v["next_payment_date"].as_i64().unwrap(), crate::schedule::due_at(START + DAY, crate::schedule::Period::Month, 1, 2).unwrap());
}

#[test]
fn failures_retry_then_suspend() {
    let host = balance_host();
    host.fund_wallet("7", "10");
    let mut order = WebTvOrder::new("107", "10");
    order.items = vec![WebTvItem::monthly("GOLD", "10", START + DAY)];
    let profile = webtv_return(&host.get("/", &order.query())).get("rp_0_profile_id").to_string();
    assert_eq!(host.wallet("7"), "0");
    host.advance(DAY);
    host.fire_due_timers();
    host.advance(3600);
    host.fire_due_timers();
    let v: serde_json::Value = serde_json::from_str(&body(&host.get("/", &action_query("rp_status", &profile)))).unwrap();
    assert_eq!(v["status"], "Active");
    host.advance(3600);
    host.fire_due_timers();
    let v: serde_json::Value = serde_json::from_str(&body(&host.get("/", &action_query("rp_status", &profile)))).unwrap();
    assert_eq!((v["status"].as_str(), v["next_payment_date"].as_i64()), (Some("Suspended"), Some(0)));
    let references: Vec<String> = host.payments().charge_calls.borrow().iter().map(|(_, r, _)| r.clone()).collect();
    assert_eq!(references[1..], [format!("{profile}-p0"), format!("{profile}-p0-r1"), format!("{profile}-p0-r2")]);
    host.fund_wallet("7", "100");
    host.run_days(60);
    assert_eq!(host.wallet("7"), "100", "a suspended profile is not charged");
}

#[test]
fn cancel_stops_charges_and_answers_like_php() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("108", "10");
    order.items = vec![WebTvItem::monthly("GOLD", "10", START + DAY)];
    let profile = webtv_return(&host.get("/", &order.query())).get("rp_0_profile_id").to_string();
    host.run_days(2);
    assert_eq!(host.wallet("7"), "80");
    assert_eq!(body(&host.get("/", &action_query("rp_cancel", &profile))), r#"{"status":"Cancelled"}"#);
    assert_eq!(body(&host.get("/", &action_query("rp_cancel", &profile))), r#"{"status":"Cancelled"}"#);
    host.run_days(90);
    assert_eq!(host.wallet("7"), "80");
    let v: serde_json::Value = serde_json::from_str(&body(&host.get("/", &action_query("rp_status", &profile)))).unwrap();
    assert_eq!(v["status"], "Cancelled");
    assert_eq!(v["next_payment_date"], 0);
    assert!(v["last_payment_date"].as_i64().unwrap() > START);
}

#[test]
fn rp_actions_check_signatures() {
    let host = balance_host();
    let forged = action_query("rp_cancel", "rp-3-1-0").replace("rp_cancel", "rp_status");
    assert_eq!(body(&host.get("/", &forged)), r#"{"error":"Invalid signature"}"#);
    assert_eq!(body(&host.get("/", &action_query("rp_status", "rp-3-1-0"))), r#"{"error":"Unknown recurring payment profile"}"#);
    assert_eq!(body(&host.get("/", "action=rp_status&profile_id=x")), r#"{"error":"Missing signature"}"#);
}

#[test]
fn a_retried_timer_does_not_charge_twice() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("109", "10");
    order.items = vec![WebTvItem::monthly("GOLD", "10", START + DAY)];
    webtv_return(&host.get("/", &order.query()));
    let timer = host.timers().keys().next().unwrap().clone();
    assert_eq!(timer, format!("run/{}", START + DAY), "one run timer for the due instant");
    host.advance(DAY);
    let cfg = host.cfg();
    crate::recurring::on_timer(&host, &cfg, &timer).unwrap();
    // The host fires the same timer again: the profile has moved on, so the run finds
    // nothing due and only sets the timer of the next period again.
    crate::recurring::on_timer(&host, &cfg, &timer).unwrap();
    assert_eq!(host.wallet("7"), "80");
    assert_eq!(host.payments().charge_calls.borrow().len(), 2);
    let next = crate::recurring::find(&host, "rp-3-109-0").unwrap().unwrap().next_attempt_at;
    assert!(next > START + DAY);
    assert!(host.timers().contains_key(&format!("run/{next}")), "{:?}", host.timers());
}

/// A profile made by a plugin version before the due index: no entry, a timer of its
/// own. The timer charges it once and puts it in the index; fired again, it charges
/// nothing.
#[test]
fn a_profile_with_its_own_timer_is_charged_once_and_joins_the_index() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("110", "10");
    order.items = vec![WebTvItem::monthly("GOLD", "10", START + DAY)];
    webtv_return(&host.get("/", &order.query()));
    for key in host.store_keys().into_iter().filter(|k| k.starts_with(crate::due::PREFIX)) {
        host.store_delete(&key).unwrap();
    }
    host.clear_timers();
    host.schedule_timer("rp-3-110-0/t0", payhost_sdk::host::Instant { seconds: START + DAY, nanoseconds: 0 }, &[]).unwrap();
    host.advance(DAY);
    let cfg = host.cfg();
    crate::recurring::on_timer(&host, &cfg, "rp-3-110-0/t0").unwrap();
    crate::recurring::on_timer(&host, &cfg, "rp-3-110-0/t0").unwrap();
    assert_eq!(host.wallet("7"), "80");
    let profile = crate::recurring::find(&host, "rp-3-110-0").unwrap().unwrap();
    assert_eq!(profile.payments, 1);
    let entries: Vec<String> = host.store_keys().into_iter().filter(|k| k.starts_with(crate::due::PREFIX)).collect();
    assert_eq!(entries, vec![crate::due::key(profile.next_attempt_at, &profile.id)]);
    assert!(host.timers().contains_key(&format!("run/{}", profile.next_attempt_at)), "{:?}", host.timers());
    // From now on the run charges it.
    host.advance(profile.next_attempt_at - START - DAY);
    host.fire_due_timers();
    assert_eq!(host.wallet("7"), "70");
}

#[test]
fn a_charge_whose_result_was_lost_is_asked_again_with_its_reference() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("112", "10");
    order.items = vec![WebTvItem::monthly("GOLD", "10", START + DAY)];
    webtv_return(&host.get("/", &order.query()));
    host.advance(DAY);
    // The system took the money but its answer never arrived.
    let profile: crate::profile::Profile =
        serde_json::from_slice(&host.stored("profile/rp-3-112-0").unwrap()).unwrap();
    let reference = profile.charge_reference();
    crate::host::Host::charge(&host, "balance", &payhost_sdk::payments::ChargeRequest {
        amount: "10".into(),
        currency: "USD".into(),
        description: "lost".into(),
        reference: reference.clone(),
        customer: "7".into(),
        saved_method: None,
    })
    .unwrap();
    assert_eq!(host.wallet("7"), "80");
    host.fire_due_timers();
    assert_eq!(host.wallet("7"), "80", "the timer's charge is the same payment");
    let calls: Vec<String> = host.payments().charge_calls.borrow().iter().map(|(_, r, _)| r.clone()).collect();
    assert_eq!(calls[1..], [reference.clone(), reference]);
}

#[test]
fn an_unavailable_system_keeps_the_attempt_open() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let order = WebTvOrder::new("110", "10");
    host.payments().unavailable.set(true);
    let page = host.get("/", &order.query());
    assert_eq!(page.status, 200);
    assert!(body(&page).contains("refresh"));
    host.payments().unavailable.set(false);
    let r = webtv_return(&host.get("/", &order.query()));
    assert_eq!(r.get("status"), "SUCCESS");
    let references: Vec<String> = host.payments().charge_calls.borrow().iter().map(|(_, r, _)| r.clone()).collect();
    assert_eq!(references, vec!["webtv-3-110-a1", "webtv-3-110-a1"], "the same reference is re-driven");
    assert_eq!(host.wallet("7"), "90");
}

#[test]
fn a_replay_with_another_amount_is_a_conflict() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    webtv_return(&host.get("/", &WebTvOrder::new("111", "10").query()));
    let page = host.get("/", &WebTvOrder::new("111", "1").query());
    assert_eq!(page.status, 409);
    assert_eq!(host.wallet("7"), "90");
}

#[test]
fn hosted_checkout_event_then_return() {
    let host = card_host();
    let mut order = WebTvOrder::new("200", "10.50");
    order.items = vec![WebTvItem::monthly("GOLD", "9.99", START + 30 * DAY)];
    let page = host.get("/", &order.query());
    assert_eq!(page.status, 302);
    let location = page.headers.iter().find(|(k, _)| k == "location").unwrap().1.clone();
    assert_eq!(location, "https://pay.example/cs_1");
    let checkout = host.payments().checkouts.borrow()["cs_1"].clone();
    assert!(checkout.save_card);
    assert_eq!(checkout.reference, "webtv-3-200-a1");
    assert!(checkout.return_url.starts_with("https://pay.example.com/webtv/return?ref=webtv-3-200-a1&t="));

    // Replayed before paying: back to the same page, no second checkout.
    let again = host.get("/", &order.query());
    assert_eq!(again.headers.iter().find(|(k, _)| k == "location").unwrap().1, location);
    assert_eq!(host.payments().checkouts.borrow().len(), 1);

    let event = host.finish_checkout("cs_1", true);
    on_payment_event(&host, &host.cfg(), event.clone()).unwrap();
    on_payment_event(&host, &host.cfg(), event).unwrap();
    let query = checkout.return_url.split_once('?').unwrap().1.to_string();
    let r = webtv_return(&host.get("/return", &query));
    assert_eq!((r.get("status"), r.get("transaction")), ("SUCCESS", "pi_cs_1"));
    assert_eq!(r.get("rp_0_status"), "Active");

    // Recurring charges use the saved card.
    host.run_days(31);
    let calls = host.payments().charge_calls.borrow().clone();
    assert_eq!(calls, vec![("card".to_string(), "rp-3-200-0-p0".to_string(), "9.99".to_string())]);
    assert!(host.payments().refunds.borrow().is_empty());
}

#[test]
fn hosted_return_before_the_event_uses_lookup_or_waits() {
    let host = card_host();
    let order = WebTvOrder::new("201", "5");
    host.get("/", &order.query());
    let checkout = host.payments().checkouts.borrow()["cs_1"].clone();
    let query = checkout.return_url.split_once('?').unwrap().1.to_string();

    let page = host.get("/return", &query);
    assert_eq!(page.status, 200);
    let text = body(&page);
    assert!(text.contains("Payment pending") && text.contains("https://pay.example/cs_1") && text.contains("cancel=1"));

    host.finish_checkout("cs_1", true);
    let r = webtv_return(&host.get("/return", &query));
    assert_eq!(r.get("status"), "SUCCESS");
    assert_eq!(r.get("transaction"), "pi_cs_1");
}

#[test]
fn hosted_decline_then_a_new_attempt() {
    let host = card_host();
    let order = WebTvOrder::new("202", "5");
    host.get("/", &order.query());
    let event = host.finish_checkout("cs_1", false);
    assert_eq!(event.status, PaymentStatus::Failed);
    on_payment_event(&host, &host.cfg(), event).unwrap();
    let query = host.payments().checkouts.borrow()["cs_1"].return_url.split_once('?').unwrap().1.to_string();
    let r = webtv_return(&host.get("/return", &query));
    assert_eq!((r.get("status"), r.get("status_msg")), ("ERROR", "Your card was declined"));

    let page = host.get("/", &order.query());
    assert_eq!(page.headers.iter().find(|(k, _)| k == "location").unwrap().1, "https://pay.example/cs_2");
    assert_eq!(host.payments().checkouts.borrow()["cs_2"].reference, "webtv-3-202-a2");
}

#[test]
fn a_forged_return_link_is_refused() {
    let host = card_host();
    host.get("/", &WebTvOrder::new("203", "5").query());
    let page = host.get("/return", "ref=webtv-3-203-a1&t=00");
    assert_eq!(page.status, 403);
    let page = host.get("/return", "ref=webtv-3-203-a1");
    assert_eq!(page.status, 400);
}

#[test]
fn the_buyer_can_give_up_a_pending_checkout() {
    let host = card_host();
    host.get("/", &WebTvOrder::new("204", "5").query());
    let query = host.payments().checkouts.borrow()["cs_1"].return_url.split_once('?').unwrap().1.to_string();
    let r = webtv_return(&host.get("/return", &format!("{query}&cancel=1")));
    assert_eq!((r.get("status"), r.get("status_msg")), ("ERROR", crate::checkout_return::CANCELLED_BY_BUYER));
}

#[test]
fn a_second_paid_attempt_is_refunded() {
    let host = card_host();
    let order = WebTvOrder::new("205", "5");
    host.get("/", &order.query());
    let query = host.payments().checkouts.borrow()["cs_1"].return_url.split_once('?').unwrap().1.to_string();
    webtv_return(&host.get("/return", &format!("{query}&cancel=1")));
    host.get("/", &order.query());
    let second = host.finish_checkout("cs_2", true);
    on_payment_event(&host, &host.cfg(), second).unwrap();
    // The first page was paid after all, in another tab.
    let first = host.finish_checkout("cs_1", true);
    on_payment_event(&host, &host.cfg(), first).unwrap();
    assert_eq!(*host.payments().refunds.borrow(), vec!["pi_cs_1".to_string()]);
    let r = webtv_return(&host.get("/", &order.query()));
    assert_eq!(r.get("transaction"), "pi_cs_2");
}

#[test]
fn a_card_that_was_not_saved_fails_the_items_only() {
    let host = card_host();
    let mut order = WebTvOrder::new("206", "5");
    order.items = vec![WebTvItem::monthly("GOLD", "9.99", START + DAY)];
    host.get("/", &order.query());
    host.payments().checkouts.borrow_mut().get_mut("cs_1").unwrap().save_card = false;
    let event = host.finish_checkout("cs_1", true);
    on_payment_event(&host, &host.cfg(), event).unwrap();
    let r = webtv_return(&host.get("/", &order.query()));
    assert_eq!(r.get("status"), "SUCCESS");
    assert_eq!(r.get("rp_0_error"), crate::recurring::NO_SAVED_METHOD);
}

#[test]
fn recurring_card_declines_suspend_after_the_limit() {
    let host = card_host();
    let mut order = WebTvOrder::new("207", "5");
    order.items = vec![WebTvItem::monthly("GOLD", "9.99", START + DAY)];
    host.get("/", &order.query());
    let event = host.finish_checkout("cs_1", true);
    on_payment_event(&host, &host.cfg(), event).unwrap();
    host.payments().card_declines.set(true);
    host.run_days(4);
    let v: serde_json::Value = serde_json::from_str(&body(&host.get("/", &action_query("rp_status", "rp-3-207-0")))).unwrap();
    assert_eq!(v["status"], "Suspended");
    assert_eq!(host.payments().charge_calls.borrow().len(), 3);
}

#[test]
fn a_past_first_payment_date_fails_that_item() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("208", "1");
    order.items = vec![WebTvItem::monthly("GOLD", "9.99", START - 40 * DAY)];
    let r = webtv_return(&host.get("/", &order.query()));
    assert!(r.get("rp_0_error").contains("in the past"));
}

#[test]
fn currencies_outside_the_list_are_refused() {
    let host = test_host(&[("currency", "EUR")]);
    host.fund_wallet("7", "100");
    let r = webtv_return(&host.get("/", &WebTvOrder::new("209", "1").query()));
    assert_eq!((r.get("status"), r.get("status_msg")), ("ERROR", "Currency USD is not accepted"));
    assert_eq!(host.wallet("7"), "100");
}

#[test]
fn the_account_prefix_names_the_ledger_account() {
    let host = test_host(&[("account_prefix", "webtv-")]);
    host.fund_wallet("webtv-7", "100");
    let r = webtv_return(&host.get("/", &WebTvOrder::new("210", "1").query()));
    assert_eq!(r.get("status"), "SUCCESS");
    assert_eq!(host.wallet("webtv-7"), "99");
}

#[test]
fn a_lost_timer_is_set_again_by_a_retried_run() {
    let host = balance_host();
    host.fund_wallet("7", "100");
    let mut order = WebTvOrder::new("211", "1");
    order.items = vec![WebTvItem::monthly("GOLD", "10", START + DAY)];
    webtv_return(&host.get("/", &order.query()));
    host.run_days(1);
    // Simulate a crash between writing the profile and setting its next timer: the
    // host fires the run timer again, since it was never completed.
    host.clear_timers();
    let cfg = host.cfg();
    crate::recurring::on_timer(&host, &cfg, &format!("run/{}", START + DAY)).unwrap();
    let next = crate::recurring::find(&host, "rp-3-211-0").unwrap().unwrap().next_attempt_at;
    assert_eq!(host.timers().keys().cloned().collect::<Vec<_>>(), vec![format!("run/{next}")]);
    assert_eq!(host.wallet("7"), "89");
}

/// More profiles due at once than one batch takes: every one is charged exactly once,
/// and each is left with one entry, for its next period.
#[test]
fn a_run_charges_due_profiles_in_batches() {
    let host = balance_host();
    let count = crate::charge_run::BATCH as usize + 5;
    for i in 0..count {
        host.fund_wallet(&format!("u{i}"), "30");
        let mut order = WebTvOrder::new(&format!("5{i:03}"), "1");
        order.id_user = format!("u{i}");
        order.items = vec![WebTvItem::monthly("GOLD", "10", START + DAY)];
        assert_eq!(webtv_return(&host.get("/", &order.query())).get("status"), "SUCCESS");
    }
    assert_eq!(host.timers().len(), 1, "one run timer for one due instant: {:?}", host.timers());
    let before = host.payments().charge_calls.borrow().len();
    host.run_days(1);
    assert_eq!(host.payments().charge_calls.borrow().len() - before, count);
    assert_eq!(host.charge_batches(), 2, "two batches (128 and 5), each one charge-many");
    for i in 0..count {
        assert_eq!(host.wallet(&format!("u{i}")), "19", "customer {i}");
        let profile = crate::recurring::find(&host, &format!("rp-3-5{i:03}-0")).unwrap().unwrap();
        assert_eq!((profile.payments, profile.next_index), (1, 1));
    }
    let entries = host.store_keys().into_iter().filter(|k| k.starts_with(crate::due::PREFIX)).count();
    assert_eq!(entries, count, "each profile has one entry, for its next period");
}

/// An `rp_cancel` that lands between a run's charge and its write: the run's write of
/// that profile is skipped, the cancellation stays, and the money taken is still
/// recorded on the profile; the other profile of the batch is charged as usual.
#[test]
fn a_cancel_racing_a_run_keeps_the_cancel_and_records_the_money() {
    let host = balance_host();
    for (user, order_id) in [("71", "601"), ("72", "602")] {
        host.fund_wallet(user, "30");
        let mut order = WebTvOrder::new(order_id, "1");
        order.id_user = user.into();
        order.items = vec![WebTvItem::monthly("GOLD", "10", START + DAY)];
        assert_eq!(webtv_return(&host.get("/", &order.query())).get("status"), "SUCCESS");
    }
    host.advance(DAY);
    // The profile's first guarded write after this is the run's batch.
    host.before_next_guarded_batch(|host| {
        crate::recurring::cancel(host, "rp-3-601-0").unwrap().unwrap();
    });
    host.fire_due_timers();

    assert_eq!((host.wallet("71"), host.wallet("72")), ("19".to_string(), "19".to_string()), "both were charged once");
    let raced = crate::recurring::find(&host, "rp-3-601-0").unwrap().unwrap();
    assert_eq!(raced.status, crate::profile::ProfileStatus::Cancelled);
    assert_eq!((raced.payments, raced.next_index), (1, 1), "the charge made during the cancel is recorded");
    let other = crate::recurring::find(&host, "rp-3-602-0").unwrap().unwrap();
    assert_eq!((other.status, other.payments), (crate::profile::ProfileStatus::Active, 1));
    let entries: Vec<String> = host.store_keys().into_iter().filter(|k| k.starts_with(crate::due::PREFIX)).collect();
    assert_eq!(entries, vec![crate::due::key(other.next_attempt_at, &other.id)], "a cancelled profile has no entry");
    assert!(host.logs().iter().any(|l| l.message.contains("changed during its charge")), "the fallback path ran");
    // Nothing charges the cancelled profile later.
    host.run_days(40);
    assert_eq!(host.wallet("71"), "19");
    assert_eq!(host.wallet("72"), "9");
}
