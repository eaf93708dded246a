//! Netflix's JSON bodies: what we send and how we read the answers. Field names follow
//! the partner document; reading is lenient about letter case (the document itself
//! writes `PlanType` and `Plantype`) and about numbers sent as strings.

use crate::event::{parse_amount, scalar_text};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const TOKEN_PATH: &str = "/mvpdapi/v4/subscription/token";
pub const STATUS_PATH: &str = "/mvpdapi/v5/subscription";
pub const CHARGE_PATH: &str = "/mvpdapi/v5/event/charge";
/// Response header of ReadCharge saying when to call again.
pub const NEXT_CALL_HEADER: &str = "Netflix-NextCallInSeconds";

type Fields = BTreeMap<String, Box<RawValue>>;

/// Token API request body.
#[derive(Debug, Serialize)]
pub struct TokenRequest<'a> {
    #[serde(rename = "Type")]
    pub kind: &'a str,
    #[serde(rename = "Channel")]
    pub channel: &'a str,
    #[serde(rename = "PromotionID", skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<&'a str>,
    #[serde(rename = "PartnerChargeCountry")]
    pub country: &'a str,
    #[serde(rename = "TokenErrorURL")]
    pub token_error_url: &'a str,
    #[serde(rename = "ValidityDurationInSeconds")]
    pub validity_seconds: u32,
}

impl TokenRequest<'_> {
    /// The exact bytes that are both signed and sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn fields(body: &[u8], what: &str) -> Result<Fields, String> {
    serde_json::from_slice(body).map_err(|e| format!("{what} answer is not a JSON object: {e}"))
}

fn lookup<'a>(fields: &'a Fields, name: &str) -> Option<&'a RawValue> {
    fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
}

fn text(fields: &Fields, name: &str) -> Option<String> {
    lookup(fields, name).and_then(scalar_text).filter(|v| !v.is_empty())
}

/// The activation token from a Token API answer.
pub fn parse_token(body: &[u8]) -> Result<String, String> {
    let fields = fields(body, "Token API")?;
    text(&fields, "Token").ok_or_else(|| "Token API answer has no Token".to_string())
}

/// The Status API answer in our own shape.
pub fn normalize_status(customer_id: &str, body: &[u8]) -> Result<Value, String> {
    let fields = fields(body, "Status API")?;
    let service: Option<Fields> = match lookup(&fields, "ServiceInfo") {
        Some(raw) if raw.get().trim() != "null" => Some(
            serde_json::from_str(raw.get()).map_err(|e| format!("ServiceInfo is not an object: {e}"))?,
        ),
        _ => None,
    };
    let promotions: Value = match lookup(&fields, "Promotions") {
        Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::Null) => json!([]),
            Ok(Value::Array(items)) => Value::Array(items),
            Ok(single) => json!([single]),
            Err(e) => return Err(format!("Promotions is not JSON: {e}")),
        },
        None => json!([]),
    };
    let Some(service) = service else {
        return Ok(json!({
            "customer_id": customer_id,
            "active": false,
            "plan": null,
            "paid_through": null,
            "price": null,
            "promotions": promotions,
        }));
    };
    let price = match (text(&service, "PlanPriceAmount"), text(&service, "PlanPriceCurrency")) {
        (Some(amount), currency) => {
            let decimal = parse_amount(&amount).ok_or_else(|| format!("PlanPriceAmount `{amount}` is not a decimal"))?;
            json!({ "amount": decimal.to_string(), "currency": currency })
        }
        (None, _) => Value::Null,
    };
    Ok(json!({
        "customer_id": customer_id,
        "active": true,
        "plan": text(&service, "PlanType"),
        "paid_through": text(&service, "PaidThroughDate"),
        "price": price,
        "promotions": promotions,
    }))
}

/// The raw JSON of each element of ReadCharge `Events`.
pub fn parse_events(body: &[u8]) -> Result<Vec<String>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let fields = fields(body, "ReadCharge")?;
    match lookup(&fields, "Events") {
        None => Ok(Vec::new()),
        Some(raw) if raw.get().trim() == "null" => Ok(Vec::new()),
        Some(raw) => {
            let events: Vec<Box<RawValue>> =
                serde_json::from_str(raw.get()).map_err(|e| format!("ReadCharge Events is not an array: {e}"))?;
            Ok(events.into_iter().map(|e| e.get().to_string()).collect())
        }
    }
}

/// SendCharge request body.
pub fn send_charge_body(results: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "Results": results })).unwrap_or_default()
}

/// PartnerReferenceIDs listed in a SendCharge answer's `RejectedEvents`.
pub fn parse_rejected(body: &[u8]) -> Result<Vec<String>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let fields = fields(body, "SendCharge")?;
    let Some(raw) = lookup(&fields, "RejectedEvents") else {
        return Ok(Vec::new());
    };
    let items: Option<Vec<Box<RawValue>>> =
        serde_json::from_str(raw.get()).map_err(|e| format!("RejectedEvents is not an array: {e}"))?;
    items
        .unwrap_or_default()
        .iter()
        .map(|item| {
            scalar_text(item)
                .or_else(|| {
                    serde_json::from_str::<Fields>(item.get())
                        .ok()
                        .and_then(|f| text(&f, "PartnerReferenceID"))
                })
                .ok_or_else(|| format!("RejectedEvents entry without PartnerReferenceID: {}", item.get()))
        })
        .collect()
}

/// A short human message from a Netflix error body.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(fields) = serde_json::from_slice::<Fields>(body) {
        for name in ["message", "errorMessage", "error_description", "description", "error", "reason"] {
            if let Some(message) = text(&fields, name) {
                return message;
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "no message".into();
    }
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_request_has_promotion_only_when_given() {
        let intpay = TokenRequest {
            kind: "IntPay",
            channel: "Web",
            promotion_id: None,
            country: "US",
            token_error_url: "https://op.example/error",
            validity_seconds: 3600,
        };
        assert_eq!(
            String::from_utf8(intpay.to_bytes()).unwrap(),
            r#"{"Type":"IntPay","Channel":"Web","PartnerChargeCountry":"US","TokenErrorURL":"https://op.example/error","ValidityDurationInSeconds":3600}"#
        );
        let promo = TokenRequest { kind: "Promo", promotion_id: Some("P1"), ..intpay };
        let value: Value = serde_json::from_slice(&promo.to_bytes()).unwrap();
        assert_eq!(value["PromotionID"], "P1");
    }

    #[test]
    fn reads_the_token() {
        assert_eq!(parse_token(br#"{"Token":"abc+/="}"#).unwrap(), "abc+/=");
        assert_eq!(parse_token(br#"{"token":"t"}"#).unwrap(), "t");
        assert!(parse_token(br#"{"Other":1}"#).is_err());
    }

    #[test]
    fn status_active_keeps_the_exact_price() {
        let body = br#"{"ServiceInfo":{"Plantype":"Premium","PaidthroughDate":"2026-12-22","PlanPriceAmount":22.99,"PlanPriceCurrency":"USD"},"Promotions":[{"PromotionID":"P1"}]}"#;
        assert_eq!(
            normalize_status("c1", body).unwrap(),
            json!({
                "customer_id": "c1",
                "active": true,
                "plan": "Premium",
                "paid_through": "2026-12-22",
                "price": {"amount": "22.99", "currency": "USD"},
                "promotions": [{"PromotionID": "P1"}],
            })
        );
    }

    #[test]
    fn status_without_service_is_inactive() {
        let value = normalize_status("c1", br#"{"Promotions":null}"#).unwrap();
        assert_eq!(value["active"], false);
        assert_eq!(value["promotions"], json!([]));
        assert_eq!(normalize_status("c1", br#"{"ServiceInfo":null}"#).unwrap()["active"], false);
    }

    #[test]
    fn events_stay_raw() {
        let events = parse_events(br#"{"Events":[{"Amount":9.90,"X":1},{"Amount":"1"}]}"#).unwrap();
        assert_eq!(events, vec![r#"{"Amount":9.90,"X":1}"#.to_string(), r#"{"Amount":"1"}"#.to_string()]);
        assert!(parse_events(br#"{"Events":null}"#).unwrap().is_empty());
        assert!(parse_events(b"").unwrap().is_empty());
        assert!(parse_events(b"<html>").is_err());
    }

    #[test]
    fn rejected_events_by_reference() {
        assert_eq!(
            parse_rejected(br#"{"RejectedEvents":[{"PartnerReferenceID":"r1"},"r2"]}"#).unwrap(),
            vec!["r1".to_string(), "r2".to_string()]
        );
        assert!(parse_rejected(br#"{"RejectedEvents":[]}"#).unwrap().is_empty());
        assert!(parse_rejected(br#"{}"#).unwrap().is_empty());
        assert!(parse_rejected(br#"{"RejectedEvents":[{"Other":1}]}"#).is_err());
    }

    #[test]
    fn send_charge_body_wraps_results() {
        let body = send_charge_body(&[json!({"ChargeStatus":"Approved"})]);
        assert_eq!(body, br#"{"Results":[{"ChargeStatus":"Approved"}]}"#.to_vec());
    }

    #[test]
    fn error_messages_are_short_and_readable() {
        assert_eq!(error_message(br#"{"message":"bad promotion"}"#), "bad promotion");
        assert_eq!(error_message(b"upstream down"), "upstream down");
        assert_eq!(error_message(b""), "no message");
        assert_eq!(error_message(&[b'x'; 1000]).len(), 300);
    }
}
