//! Platform24's requests (billing calls and the payment-form request) and its provider
//! API's answers, as the plugin reads them.
//!
//! Input: `QUERY\nCONTENT-TYPE\nBODY` (an empty second line is no content type). Checks:
//! nothing panics; a purchase names a user and only plain decimal prices, whose zero
//! test and ordering agree with a decimal library; a cancellation names what to cancel;
//! a payment-form request has every field it requires; dates read from the body print
//! and read back to the same instant; the subscriptions read from an answer go out in
//! the connect call's body unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payhost_plugin_platform24::amount::{self, Amount};
use payhost_plugin_platform24::api::wire as api;
use payhost_plugin_platform24::time;
use payhost_plugin_platform24::wire::{FormRequest, Inbound};
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::str::FromStr;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let query = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let content_type = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let body = lines.next().unwrap_or_default();
    let content_type = Some(content_type.as_ref()).filter(|ct| !ct.is_empty());

    check_billing_request(&query, content_type, body);
    if let Ok(form) = FormRequest::parse(&query, content_type, body) {
        for required in [&form.user_id, &form.transaction_id, &form.amount, &form.currency, &form.security_key] {
            assert!(!required.is_empty(), "{form:?}");
        }
    }
    check_amounts(&query, content_type.unwrap_or(""));
    for line in String::from_utf8_lossy(data).lines() {
        check_time(line);
        check_json_decimal(line);
    }
    check_api_answers(body);
});

fn check_billing_request(query: &str, content_type: Option<&str>, body: &[u8]) {
    let Ok(inbound) = Inbound::parse(query, content_type, body) else { return };
    if let Ok(purchase) = inbound.purchase() {
        assert!(!purchase.user.trim().is_empty(), "{purchase:?}");
        assert!(!purchase.packets.is_empty(), "{purchase:?}");
        for packet in &purchase.packets {
            let price = packet.price.as_str();
            assert_eq!(Amount::parse(price).as_ref(), Ok(&packet.price), "price {price:?} reads back");
            assert_eq!(packet.price.is_zero(), amount::compare(price, "0") == Some(Ordering::Equal), "{price:?}");
            assert!(!packet.id.trim().is_empty(), "{packet:?}");
        }
        for a in &purchase.packets {
            for b in &purchase.packets {
                check_compare(a.price.as_str(), b.price.as_str());
            }
        }
    }
    if let Ok(cancellation) = inbound.cancellation() {
        assert!(cancellation.sub_id.is_some() || cancellation.packet_id.is_some(), "{cancellation:?}");
    }
    let _ = inbound.auth();
}

fn check_amounts(a: &str, b: &str) {
    for text in [a, b] {
        if let Ok(parsed) = Amount::parse(text) {
            assert_eq!(parsed.as_str(), text.trim());
            if let Some(decimal) = exact_decimal(parsed.as_str()) {
                assert_eq!(parsed.is_zero(), decimal.is_zero(), "{text:?}");
            }
        }
    }
    check_compare(a, b);
}

/// `compare` is an order on plain decimals: reflexive, antisymmetric, and the same as a
/// decimal library's wherever that one holds both numbers exactly.
fn check_compare(a: &str, b: &str) {
    let ab = amount::compare(a, b);
    assert_eq!(ab.map(Ordering::reverse), amount::compare(b, a), "{a:?} vs {b:?}");
    let (Ok(x), Ok(y)) = (Amount::parse(a), Amount::parse(b)) else {
        assert_eq!(ab, None, "{a:?} vs {b:?}");
        return;
    };
    assert_eq!(amount::compare(a, a), Some(Ordering::Equal));
    let ab = ab.expect("two plain decimals compare");
    if let (Some(dx), Some(dy)) = (exact_decimal(x.as_str()), exact_decimal(y.as_str())) {
        assert_eq!(ab, dx.cmp(&dy), "{a:?} vs {b:?}");
    }
}

/// The decimal library's value of a plain decimal, when it keeps every digit (it rounds
/// past 28 of them, where it is no reference).
fn exact_decimal(text: &str) -> Option<Decimal> {
    Decimal::from_str(text).ok().filter(|d| d.to_string() == canonical(text))
}

/// A plain decimal as a decimal library prints it: no leading zeros.
fn canonical(text: &str) -> String {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if text.contains('.') { format!("{int}.{frac}") } else { int.to_string() }
}

fn check_time(text: &str) {
    if let Some(seconds) = time::parse(text) {
        let printed = time::format(seconds);
        assert_eq!(time::parse(&printed), Some(seconds), "{text:?} read as {seconds}, printed as {printed}");
    }
}

/// A balance is written into JSON digit for digit only when it is a JSON number.
fn check_json_decimal(text: &str) {
    // Read as raw JSON: serde_json checks the number's syntax there without converting it
    // (a 400-digit integer is valid JSON that no f64 holds).
    let is_number = serde_json::from_str::<Box<serde_json::value::RawValue>>(text).is_ok()
        && !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    assert_eq!(amount::is_json_decimal(text), is_number, "{text:?}");
}

fn check_api_answers(body: &[u8]) {
    if let Ok(catalog) = api::catalog(body) {
        assert!(catalog.iter().all(|p| !p.id.is_empty()));
    }
    if let Ok(users) = api::users(body) {
        assert!(users.iter().all(|u| !u.id.is_empty()));
    }
    let _ = api::user(body);
    let message = api::error_message(body);
    if serde_json::from_slice::<serde_json::Value>(body).is_err() {
        assert!(message.chars().count() <= 200);
    }
    let Ok(subscriptions) = api::subscriptions(body) else { return };
    let entries: Vec<api::ConnectEntry> = subscriptions
        .iter()
        .map(|s| api::ConnectEntry { packet_id: s.packet_id.clone(), start_at: s.start_at })
        .collect();
    let sent: Vec<serde_json::Value> =
        serde_json::from_slice(&api::connect_body(&entries)).expect("the connect body is a JSON array");
    assert_eq!(sent.len(), entries.len());
    for (value, entry) in sent.iter().zip(&entries) {
        let id = match &value["packet_id"] {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => panic!("packet_id sent as {other}"),
        };
        assert_eq!(id, entry.packet_id);
        let start = value["start_at"].as_str().map(|s| time::parse(s).expect("we read what we write"));
        assert_eq!(start, entry.start_at);
    }
}
