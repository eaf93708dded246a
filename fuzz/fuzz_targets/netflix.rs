//! Netflix's answers as the plugin reads them (Token, Status, ReadCharge and SendCharge
//! bodies, error bodies, the `Netflix-NextCallInSeconds` header), plus the activation
//! request body and the UTC offset setting.
//!
//! Input: one body; each of its lines is also tried as a header value and an offset.
//! Checks: nothing panics; a charge event that parses has an exact non-negative amount
//! and an ISO currency, and the same event written back as JSON (amount as text) parses
//! to the same charge; a plain decimal amount is charged with every digit it was sent
//! with, never rounded; an unbillable event keeps only non-empty ids; the poll delay stays
//! inside its bounds; an accepted activation cannot inject a header; an offset prints
//! and reads back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payhost_plugin_netflix::activation::{self, ActivationInput};
use payhost_plugin_netflix::authtime::UtcOffset;
use payhost_plugin_netflix::event::{parse_event, scalar_text, ChargeEvent};
use payhost_plugin_netflix::schedule::PollBounds;
use payhost_plugin_netflix::wire;
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::str::FromStr;

const BOUNDS: PollBounds = PollBounds {
    min_seconds: 5,
    max_seconds: 3600,
    default_seconds: 60,
    backoff_base_seconds: 30,
    backoff_max_seconds: 1800,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = wire::parse_token(data) {
        assert!(!token.is_empty());
    }
    if let Ok(status) = wire::normalize_status("customer-1", data) {
        assert_eq!(status["customer_id"], "customer-1");
        assert!(status["active"].is_boolean() && status["promotions"].is_array(), "{status}");
        if let Some(amount) = status["price"]["amount"].as_str() {
            assert!(Decimal::from_str(amount).is_ok(), "{status}");
        }
    }
    if let Ok(events) = wire::parse_events(data) {
        for raw in &events {
            check_event(raw);
        }
    }
    check_event(&String::from_utf8_lossy(data));
    if let Ok(rejected) = wire::parse_rejected(data) {
        assert!(rejected.iter().all(|id| !id.is_empty()));
    }
    assert!(!wire::error_message(data).is_empty());
    check_activation(data);
    for line in String::from_utf8_lossy(data).lines() {
        let delay = BOUNDS.after_success(Some(line));
        assert!((BOUNDS.min_seconds..=BOUNDS.max_seconds).contains(&delay), "{line:?} gave {delay}");
        if let Ok(offset) = UtcOffset::parse(line) {
            assert!(offset.seconds().abs() <= 14 * 3600, "{line:?}");
            assert_eq!(UtcOffset::parse(&offset.to_php_o()), Ok(offset), "{line:?}");
        }
    }
});

fn check_event(raw: &str) {
    match parse_event(raw) {
        Ok(event) => {
            assert!(!event.amount.is_sign_negative() || event.amount.is_zero(), "{event:?}");
            assert!(event.currency.len() == 3 && event.currency.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(!event.netflix_transaction_id.is_empty() && !event.partner_customer_id.is_empty());
            let text = event.amount_text();
            assert_eq!(Decimal::from_str(&text), Ok(event.amount), "{raw}");
            if let Some(sent) = plain_amount(raw) {
                assert_eq!(significant(&event.amount.to_string()), significant(&sent), "{raw}: charged {text}");
            }
            assert_eq!(parse_event(&rewritten(&event).to_string()), Ok(event), "{raw}");
        }
        Err(bad) => {
            assert!(!bad.reason.is_empty());
            assert_ne!(bad.netflix_transaction_id.as_deref(), Some(""));
            assert_ne!(bad.partner_customer_id.as_deref(), Some(""));
        }
    }
}

/// The `Amount` as sent, when it is plain decimal text (no exponent).
fn plain_amount(raw: &str) -> Option<String> {
    let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_str(raw).ok()?;
    let text = scalar_text(fields.get("Amount")?)?;
    let text = text.trim();
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(int) && digits(frac)).then(|| text.to_string())
}

/// The digits that carry value: no sign, no dot, no leading or trailing zeros.
fn significant(text: &str) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').to_string()
}

/// The event as Netflix could have sent it, with the amount as decimal text.
fn rewritten(event: &ChargeEvent) -> Value {
    let mut value = json!({
        "NetflixTransactionID": event.netflix_transaction_id,
        "PartnerCustomerID": event.partner_customer_id,
        "Amount": event.amount.to_string(),
        "Currency": event.currency,
    });
    for (name, field) in [
        ("PlanType", &event.plan_type),
        ("PaidThroughDate", &event.paid_through_date),
        ("PeriodStartDate", &event.period_start_date),
        ("DisplayInvoiceID", &event.display_invoice_id),
        ("ServiceActivated", &event.service_activated),
    ] {
        if let Some(text) = field {
            value[name] = json!(text);
        }
    }
    value
}

fn check_activation(body: &[u8]) {
    let Ok(input) = serde_json::from_slice::<ActivationInput>(body) else { return };
    let Ok(checked) = input.check() else { return };
    for text in [Some(&checked.customer_id), Some(&checked.channel), checked.promotion_id.as_ref()].into_iter().flatten() {
        assert!(!text.is_empty() && !text.chars().any(char::is_control), "{checked:?}");
    }
    assert!(checked.customer_id.len() <= 128);
    assert!(checked.country.len() == 2 && checked.country.bytes().all(|b| b.is_ascii_uppercase()));
    assert!(matches!(checked.kind, "IntPay" | "Promo"));
    assert_eq!(checked.promotion_id.is_some(), checked.kind == "Promo");
    let url = activation::activation_url("https://netflix.example/activate?t={token}", &checked.customer_id);
    assert!(url.bytes().all(|b| b.is_ascii_graphic()), "{url:?}");
}
