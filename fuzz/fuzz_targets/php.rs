//! The PHP-exact encoders of `payhost_sdk::php` and WebTV's reading of what it signs
//! with them: amounts, recurring items and base64 signatures from a URL.
//!
//! Checks: `json_encode` output is ASCII JSON that decodes to the input; the URL
//! encoders' output decodes back; `floatval` agrees with Rust's reader on plain float
//! text; the float printer's output reads back as a float that prints the same text and
//! sits within 14 significant digits of the value; a WebTV amount keeps its digits; the
//! amount WebTV charges for an item is exactly the signed `floatval` text; a signature
//! survives URL mangling.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use payhost_plugin_webtv::{amount, request, signature};
use payhost_sdk::php;
use payhost_sdk::query::Params;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_json(&text);
    check_url_encoders(&text);
    check_floatval(&text);
    if let Some(bits) = data.get(..8) {
        check_printer(f64::from_le_bytes(bits.try_into().expect("eight bytes")));
    }
    check_printer(php::floatval(&text));
    check_webtv_amount(&text);
    check_webtv_signature(data, &text);
    check_webtv_request(&text);
});

fn check_json(text: &str) {
    let encoded = php::json_string(text);
    assert!(encoded.is_ascii(), "{encoded:?}");
    // PHP escapes every `/`; hex digits hold none, so each `/` follows a backslash.
    let bytes = encoded.as_bytes();
    assert!((1..bytes.len()).all(|i| bytes[i] != b'/' || bytes[i - 1] == b'\\'), "{encoded:?}");
    let decoded: String = serde_json::from_str(&encoded).expect("json_string writes a JSON string");
    assert_eq!(decoded, text);

    // Lines as alternating keys and values; a repeated key reads as its last value.
    let lines: Vec<&str> = text.split('\n').collect();
    let pairs: Vec<(&str, &str)> = lines.chunks(2).map(|c| (c[0], c.get(1).copied().unwrap_or(""))).collect();
    let object = php::json_object(&pairs);
    let decoded: BTreeMap<String, String> = serde_json::from_str(&object).expect("json_object writes a JSON object");
    let expected: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(decoded, expected);
}

fn check_url_encoders(text: &str) {
    let plus = php::urlencode(text);
    assert!(plus.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.%+".contains(&b)), "{plus:?}");
    let raw = php::rawurlencode(text);
    assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)), "{raw:?}");
    assert_eq!(php::rawurldecode(&raw), text);
    assert_eq!(php::rawurldecode(&plus.replace('+', "%20")), text);
    let form: Vec<(String, String)> = form_urlencoded::parse(format!("x={plus}").as_bytes()).into_owned().collect();
    assert_eq!(form, vec![("x".to_string(), text.to_string())]);
    let decoded = php::rawurldecode(text);
    if !text.contains('%') {
        assert_eq!(decoded, text);
    }
}

/// On text Rust's float reader takes whole (digits, one dot, an exponent; no `inf` or
/// `nan` words, no leading space), PHP's reader must give the same value.
fn check_floatval(text: &str) {
    let value = php::floatval(text);
    assert!(!value.is_nan(), "floatval never gives NaN: {text:?}");
    let plain = text.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if let (true, Ok(expected)) = (plain, text.parse::<f64>()) {
        assert_eq!(value.to_bits(), expected.to_bits(), "{text:?}");
    }
    assert_eq!(php::floatval_string(text), php::float_to_string(value));
}

/// `(string)$float` at precision 14, read back with `floatval`, is the same text again
/// and within half a unit of the 14th significant digit.
fn check_printer(value: f64) {
    let printed = php::float_to_string(value);
    if value.is_nan() {
        assert_eq!(printed, "NAN");
        return;
    }
    if value.is_infinite() {
        assert_eq!(printed, if value > 0.0 { "INF" } else { "-INF" });
        return;
    }
    assert_php_float_grammar(&printed);
    let back = php::floatval(&printed);
    assert_eq!(php::float_to_string(back), printed, "{value:e} printed as {printed}");
    assert_eq!(back.is_sign_negative(), value.is_sign_negative(), "{value:e} printed as {printed}");
    // Half a unit of the 14th digit is at most 5e-14 of the value; reading back rounds
    // once more, by half an ulp (the smallest subnormal below the normal range).
    let tolerance = value.abs() * 5.1e-14 + f64::from_bits(1);
    assert!((back - value).abs() <= tolerance, "{value:e} printed as {printed}, reads back as {back:e}");
}

/// `-?D+`, `-?D+.D+` or `-?D.D+E[+-]D+`, with at most 14 significant digits and no
/// trailing zero after a dot.
fn assert_php_float_grammar(printed: &str) {
    let unsigned = printed.strip_prefix('-').unwrap_or(printed);
    let (mantissa, exponent) = match unsigned.split_once('E') {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    assert!(digits(int), "{printed}");
    assert!(frac.is_empty() || digits(frac), "{printed}");
    if let Some(exponent) = exponent {
        assert!(int.len() == 1 && int != "0" && !frac.is_empty(), "{printed}");
        let e = exponent.strip_prefix(['+', '-']).expect("signed exponent");
        assert!(digits(e) && !e.starts_with('0'), "{printed}");
    } else {
        assert!(int == "0" || !int.starts_with('0'), "{printed}");
    }
    if frac.len() > 1 || exponent.is_none() {
        assert!(!frac.ends_with('0'), "{printed}");
    }
    let significant = format!("{int}{frac}");
    let significant = significant.trim_start_matches('0').trim_end_matches('0');
    assert!(significant.len() <= 14, "{printed} has more than 14 significant digits");
}

/// A WebTV amount is `digits[.digits]` and keeps its digits (`10.50` stays `10.50`).
fn check_webtv_amount(text: &str) {
    if let Ok(parsed) = amount::parse(text) {
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        assert!(int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit()));
        let int = int.trim_start_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let expected = if text.contains('.') { format!("{int}.{frac}") } else { int.to_string() };
        assert_eq!(amount::format(&parsed), expected, "WebTV amount {text:?}");
    }
    // An item's amount is signed as floatval text; when that text is a usable amount,
    // it is charged as written.
    let signed = php::floatval_string(text);
    if let Ok(charged) = amount::parse(&signed) {
        assert_eq!(amount::format(&charged), signed, "item amount {text:?}");
    }
}

fn check_webtv_signature(data: &[u8], text: &str) {
    let _ = signature::decode_signature(text);
    if data.is_empty() {
        return;
    }
    let b64 = STANDARD.encode(data);
    assert_eq!(signature::decode_signature(&b64).as_deref(), Some(data));
    assert_eq!(signature::decode_signature(&php::rawurlencode(&b64)).as_deref(), Some(data));
    assert_eq!(signature::decode_signature(&b64.replace('+', " ")).as_deref(), Some(data));
}

fn check_webtv_request(text: &str) {
    let params = Params::parse(text);
    if let Ok(pay) = request::PayRequest::parse(&params) {
        let message = signature::pay_message(&pay.fields());
        let fields: BTreeMap<String, String> = serde_json::from_str(&message).expect("pay message is JSON");
        assert_eq!(fields["amount"], pay.amount);
        assert_eq!(fields["order_number"], pay.order_number);
    }
    if let Ok(items) = request::parse_items(&params) {
        assert!(items.len() <= request::MAX_ITEMS);
        for (i, item) in items.iter().enumerate() {
            assert_eq!(item.index, i);
        }
    }
}
