//! Stripe's webhook: the `Stripe-Signature` header and the event JSON, then the
//! payment events the plugin makes of it, and its amount conversion.
//!
//! Input: `HEADER\nBODY`; the same bytes also drive a header built from known parts.
//! Checks: nothing panics; a parsed header has a timestamp equal to its text and 1..=8
//! signatures; a header built from a timestamp and signatures (with `v0` and junk
//! entries mixed in) parses back to exactly them; the signed payload is
//! `{t}.{body}`; freshness matches the window computed without overflow; an event's
//! amount converts back to Stripe's minor units; saved-card tokens read back.
#![no_main]

use libfuzzer_sys::arbitrary::{Result as ArbitraryResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use payhost_plugin_stripe::amount;
use payhost_plugin_stripe::events::{self, Action};
use payhost_plugin_stripe::objects::Event;
use payhost_plugin_stripe::signature;
use payhost_sdk::payments::PaymentEvent;
use payhost_sdk::signing::Part;
use rust_decimal::Decimal;
use std::str::FromStr;

const CURRENCIES: [&str; 6] = ["usd", "JPY", "kwd", "eur", "bhd", "xof"];

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let header = String::from_utf8_lossy(header);
    if let Ok(parsed) = signature::parse_header(&header) {
        assert!((1..=8).contains(&parsed.v1.len()), "{parsed:?}");
        assert!(parsed.v1.iter().all(|sig| !sig.is_empty()));
        assert_eq!(parsed.timestamp_text.parse::<i64>(), Ok(parsed.timestamp));
        assert_eq!(signed_payload(&parsed.timestamp_text, body), [parsed.timestamp_text.as_bytes(), b".", body].concat());
    }
    let _ = header_from_parts(&mut Unstructured::new(data));
    check_event(body);
    for currency in CURRENCIES {
        check_to_minor(&header, currency);
    }
});

fn signed_payload(timestamp_text: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in signature::signed_parts(timestamp_text, body) {
        match part {
            Part::Text(t) => out.extend_from_slice(t.as_bytes()),
            Part::Bytes(b) => out.extend_from_slice(&b),
            Part::Secret(_) => panic!("the signed payload holds no secret"),
        }
    }
    out
}

/// A header as Stripe writes it, from parts the fuzzer picks, must parse back to them.
fn header_from_parts(u: &mut Unstructured) -> ArbitraryResult<()> {
    let timestamp: i64 = u.arbitrary()?;
    let count = u.int_in_range(1..=8)?;
    let mut signatures = Vec::new();
    let mut entries = Vec::new();
    for _ in 0..count {
        let len = u.int_in_range(1..=32)?;
        let sig = u.bytes(len)?.to_vec();
        entries.push(format!("v1={}", payhost_sdk::hex::encode(&sig)));
        signatures.push(sig);
        if u.arbitrary()? {
            entries.push(format!("v0={}", payhost_sdk::hex::encode(u.bytes(4)?)));
        }
        if u.arbitrary()? {
            entries.push(if u.arbitrary()? { "v1=not-hex".into() } else { "junk".into() });
        }
    }
    // Where `t` goes and how much space surrounds the entries is Stripe's choice.
    let at = u.int_in_range(0..=entries.len())?;
    entries.insert(at, format!("t={timestamp}"));
    let spaced = u.arbitrary::<bool>()?;
    let header = entries.join(if spaced { " , " } else { "," });
    let parsed = signature::parse_header(&header).unwrap_or_else(|e| panic!("{header:?}: {e}"));
    assert_eq!(parsed.timestamp, timestamp, "{header:?}");
    assert_eq!(parsed.timestamp_text, timestamp.to_string());
    assert_eq!(parsed.v1, signatures, "{header:?}");

    let now: i64 = u.arbitrary()?;
    // At i64::MAX the window is every instant the clock can name: the difference itself
    // saturates there, so that setting means "no check" and is left out.
    let tolerance = u.int_in_range(0..=i64::MAX - 1)?;
    let fresh = (i128::from(now) - i128::from(timestamp)).abs() <= i128::from(tolerance);
    assert_eq!(signature::check_freshness(timestamp, now, tolerance).is_ok(), fresh, "t={timestamp} now={now} tolerance={tolerance}");

    let minor: i64 = u.arbitrary()?;
    let currency = *u.choose(&CURRENCIES)?;
    check_from_minor(minor, currency);
    Ok(())
}

fn check_event(body: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Event>(body) else { return };
    let Ok(action) = events::classify(&event) else { return };
    match action {
        Action::Ignore(_) => {}
        Action::Session(session, outcome) => {
            // The saved card needs a call to Stripe, which the fuzzer does not make.
            if let Ok(Some(e)) = events::session_event(&session, outcome, None) {
                let total = session.amount_total.expect("an event has an amount");
                check_payment_event(&e, total);
            }
        }
        Action::Intent(intent) => {
            if let Some(e) = events::intent_event(&intent, events::intent_outcome(&intent)) {
                check_payment_event(&e, intent.amount);
                // A saved card goes back to Stripe in later charges: it reads back
                // whenever its two ids are ids Stripe could have issued.
                if let Some(token) = &e.saved_method {
                    let (customer, method) = token.split_once(':').expect("customer:method");
                    let readable = is_id(customer) && is_id(method);
                    assert_eq!(events::parse_saved_method(token).is_ok(), readable, "{token:?}");
                }
            }
        }
    }
}

/// Stripe's id alphabet, as the plugin accepts ids back in a saved-card token.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_payment_event(e: &PaymentEvent, minor: i64) {
    assert!(!e.reference.is_empty());
    assert_eq!(e.currency, e.currency.to_ascii_uppercase());
    assert_eq!(e.amount, amount::from_minor(minor, &e.currency));
    check_from_minor(minor, &e.currency);
}

/// Minor units to our decimal text and back are exact wherever Stripe could charge them.
fn check_from_minor(minor: i64, currency: &str) {
    let text = amount::from_minor(minor, currency);
    let decimal = Decimal::from_str(&text).unwrap_or_else(|e| panic!("{minor} {currency} gave {text:?}: {e}"));
    assert_eq!(decimal.mantissa(), i128::from(minor), "{minor} {currency} gave {text:?}");
    let Ok(code) = amount::stripe_currency(currency) else { return };
    let three = amount::exponent(&code) == 3;
    if minor > 0 && !(three && minor % 10 != 0) {
        assert_eq!(amount::to_minor(&text, currency), Ok(minor), "{text:?} {currency}");
    }
}

/// What `to_minor` accepts is a positive plain decimal whose value it keeps exactly.
fn check_to_minor(text: &str, currency: &str) {
    let Ok(minor) = amount::to_minor(text, currency) else { return };
    assert!(minor > 0);
    let back = Decimal::from_str(&amount::from_minor(minor, currency)).expect("from_minor prints a decimal");
    assert_eq!(Decimal::from_str(text).ok(), Some(back), "{text:?} {currency} became {minor}");
}
