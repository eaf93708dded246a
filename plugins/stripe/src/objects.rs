//! The slice of Stripe's API objects this plugin reads, as Stripe documents them.
//!
//! Only the fields we use are declared and most are optional, so additions in newer API
//! versions (or fields a given account never sets) do not break parsing. Expandable
//! references (`customer`, `payment_intent`, `payment_method`) arrive either as an id or
//! as the expanded object; `expandable_id` reads both.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// An event envelope as POSTed to the webhook endpoint.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: Value,
}

/// A Checkout Session (`cs_...`).
#[derive(Debug, Deserialize)]
pub struct Session {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    #[serde(default)]
    pub payment_status: Option<String>,
    /// `open`, `complete` or `expired`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub payment_intent: Value,
    #[serde(default)]
    pub customer: Value,
}

/// A PaymentIntent (`pi_...`).
#[derive(Debug, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`,
    /// `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub customer: Value,
    #[serde(default)]
    pub payment_method: Value,
    #[serde(default)]
    pub setup_future_usage: Option<String>,
    #[serde(default)]
    pub cancellation_reason: Option<String>,
    #[serde(default)]
    pub last_payment_error: Option<ApiError>,
}

/// A Refund (`re_...`).
#[derive(Debug, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
}

/// The `error` member of a non-2xx answer (and a PaymentIntent's `last_payment_error`).
#[derive(Debug, Default, Deserialize)]
pub struct ApiError {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// On card errors from confirming a PaymentIntent: the intent as it now stands.
    #[serde(default)]
    pub payment_intent: Option<Box<PaymentIntent>>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// The id of an expandable reference, whether it came as `"cus_1"` or `{"id": "cus_1"}`.
pub fn expandable_id(value: &Value) -> Option<String> {
    match value {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Object(obj) => obj.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

impl ApiError {
    /// `card_declined (insufficient_funds): Your card has insufficient funds.`
    pub fn describe(&self) -> String {
        let mut out = self.code.clone().or_else(|| self.kind.clone()).unwrap_or_else(|| "error".into());
        if let Some(decline) = &self.decline_code {
            out.push_str(&format!(" ({decline})"));
        }
        if let Some(message) = &self.message {
            out.push_str(": ");
            out.push_str(message);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expandable_ids() {
        assert_eq!(expandable_id(&json!("cus_1")), Some("cus_1".into()));
        assert_eq!(expandable_id(&json!({"id": "pm_2", "object": "payment_method"})), Some("pm_2".into()));
        assert_eq!(expandable_id(&json!(null)), None);
        assert_eq!(expandable_id(&json!("")), None);
    }

    #[test]
    fn describes_card_errors() {
        let body: ErrorBody = serde_json::from_value(json!({"error": {
            "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds."
        }}))
        .unwrap();
        assert_eq!(body.error.describe(), "card_declined (insufficient_funds): Your card has insufficient funds.");
        assert_eq!(ApiError::default().describe(), "error");
    }
}
