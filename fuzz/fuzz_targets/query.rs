//! Query strings, form bodies and the other request helpers of `payhost-sdk` on
//! arbitrary bytes: what every plugin reads from a request before anything else.
//!
//! Input: `QUERY\nBODY` (the body may hold further newlines). Checks: parsing never
//! panics; decoded pairs re-encoded and parsed again are the same pairs; `get` is the
//! first value; a form body fills in only what the query lacks; percent, hex and bearer
//! round trips; escaped HTML holds no markup characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payhost_sdk::query::{encode, Params};
use payhost_sdk::types::Request;
use payhost_sdk::{auth, hex, http, pct};

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let query_text = String::from_utf8_lossy(query);

    let from_body = Params::parse_bytes(body);
    check_round_trip(&from_body);
    check_first_value_wins(&from_body);
    let from_query = Params::parse(&query_text);
    check_round_trip(&from_query);
    // One leading `?` is the query's own marker, never part of a name.
    assert_eq!(Params::parse(&format!("?{query_text}")), Params::parse_bytes(query_text.as_bytes()));
    check_merge(&from_query, &from_body);
    check_request_params(&query_text, body, &from_query, &from_body);

    let text = String::from_utf8_lossy(data);
    check_pct(&text);
    check_hex(data, &text);
    check_bearer(&text);
    check_html_escape(&text);
});

/// What `encode` writes, `parse` reads back pair for pair.
fn check_round_trip(params: &Params) {
    let pairs: Vec<(&str, &str)> = params.pairs().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let encoded = encode(&pairs);
    assert!(
        encoded.bytes().all(|b| b.is_ascii_graphic()),
        "encoded form has a byte a URL cannot carry: {encoded:?}"
    );
    let again = Params::parse(&encoded);
    assert_eq!(again.pairs(), params.pairs(), "re-encoded as {encoded:?}");
}

fn check_first_value_wins(params: &Params) {
    for (i, (k, _)) in params.pairs().iter().enumerate() {
        let first = params.pairs()[..=i].iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(params.get(k), first);
        assert_eq!(params.require(k).ok(), first);
    }
}

/// `merge` keeps every pair of the query and adds the first pair of each name it lacks.
fn check_merge(query: &Params, body: &Params) {
    let mut merged = query.clone();
    merged.merge(body.clone());
    let mut expected: Vec<(String, String)> = query.pairs().to_vec();
    for (k, v) in body.pairs() {
        if !expected.iter().any(|(key, _)| key == k) {
            expected.push((k.clone(), v.clone()));
        }
    }
    assert_eq!(merged.pairs(), expected.as_slice());
}

/// A form body counts only with a form content type, and never overrides the query.
fn check_request_params(query: &str, body: &[u8], from_query: &Params, from_body: &Params) {
    let request = |content_type: Option<&str>| Request {
        id: "fuzz".into(),
        method: "POST".into(),
        path: "/".into(),
        query: query.into(),
        headers: content_type.map(|ct| ("Content-Type".to_string(), ct.to_string())).into_iter().collect(),
        body: body.to_vec(),
        remote_addr: "127.0.0.1".into(),
    };
    assert_eq!(&request(None).params(), from_query);
    assert_eq!(&request(Some("application/json")).params(), from_query);
    let form = request(Some("application/x-www-form-urlencoded; charset=utf-8")).params();
    for (k, _) in from_query.pairs() {
        assert_eq!(form.get(k), from_query.get(k), "the query's `{k}` must win");
    }
    for (k, _) in from_body.pairs() {
        if from_query.get(k).is_none() {
            assert_eq!(form.get(k), from_body.get(k), "the body's `{k}` is missing");
        }
    }
}

fn check_pct(text: &str) {
    let encoded = pct::encode(text);
    assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{encoded:?}");
    assert_eq!(pct::decode(&encoded), text);
    let decoded = pct::decode(text);
    if !text.contains('%') {
        assert_eq!(decoded, text);
    }
}

fn check_hex(data: &[u8], text: &str) {
    let encoded = hex::encode(data);
    assert_eq!(encoded.len(), data.len() * 2);
    assert_eq!(hex::decode(&encoded).as_deref(), Some(data));
    if let Some(bytes) = hex::decode(text) {
        assert_eq!(hex::encode(&bytes), text.to_ascii_lowercase());
    }
}

fn check_bearer(header: &str) {
    if let Some(token) = auth::bearer_token(Some(header)) {
        assert!(!token.is_empty() && token == token.trim(), "{token:?}");
        assert!(header.contains(token));
        assert_eq!(auth::bearer_token(Some(&format!("Bearer {token}"))), Some(token));
    }
}

fn check_html_escape(text: &str) {
    let escaped = http::html_escape(text);
    assert!(!escaped.contains(['<', '>', '"', '\'']), "{escaped:?}");
    let unescaped = escaped
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    assert_eq!(unescaped, text);
}
