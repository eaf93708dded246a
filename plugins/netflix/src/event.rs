//! One ReadCharge event, parsed without losing the exact amount.
//!
//! Netflix may send numbers or strings; amounts are read from the raw JSON text into a
//! decimal (never through f64). An event we cannot bill still needs a result
//! (`BadRequest`), so a parse failure keeps whatever ids it could find.

use rust_decimal::Decimal;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::str::FromStr;

/// A charge event ready to bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeEvent {
    pub netflix_transaction_id: String,
    pub partner_customer_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub plan_type: Option<String>,
    pub paid_through_date: Option<String>,
    pub period_start_date: Option<String>,
    pub display_invoice_id: Option<String>,
    pub service_activated: Option<String>,
}

/// An event that cannot be billed, with what could be read of its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent {
    pub netflix_transaction_id: Option<String>,
    pub partner_customer_id: Option<String>,
    pub reason: String,
}

impl ChargeEvent {
    /// The amount as the ledger wants it: plain decimal text without trailing zeros.
    pub fn amount_text(&self) -> String {
        self.amount.normalize().to_string()
    }

    /// Ledger entry text; deterministic so a replayed debit has the same arguments.
    pub fn ledger_reference(&self) -> String {
        let mut reference = String::from("Netflix");
        for part in [&self.plan_type, &self.display_invoice_id].into_iter().flatten() {
            reference.push(' ');
            reference.push_str(part);
        }
        reference.push_str(" (");
        reference.push_str(&self.netflix_transaction_id);
        reference.push(')');
        reference
    }
}

/// Parses one element of `Events`.
pub fn parse_event(raw: &str) -> Result<ChargeEvent, BadEvent> {
    let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_str(raw).map_err(|e| BadEvent {
        netflix_transaction_id: None,
        partner_customer_id: None,
        reason: format!("event is not a JSON object: {e}"),
    })?;
    let field = |name: &str| fields.get(name).and_then(|v| scalar_text(v)).filter(|v| !v.is_empty());
    let ntid = field("NetflixTransactionID");
    let pai = field("PartnerCustomerID");
    let bad = |reason: String| BadEvent {
        netflix_transaction_id: ntid.clone(),
        partner_customer_id: pai.clone(),
        reason,
    };
    let Some(netflix_transaction_id) = ntid.clone() else {
        return Err(bad("NetflixTransactionID is missing".into()));
    };
    let Some(partner_customer_id) = pai.clone() else {
        return Err(bad("PartnerCustomerID is missing".into()));
    };
    let amount_text = field("Amount").ok_or_else(|| bad("Amount is missing".into()))?;
    let amount = parse_amount(&amount_text).ok_or_else(|| bad(format!("Amount `{amount_text}` is not a decimal")))?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(bad(format!("Amount `{amount_text}` is negative")));
    }
    let currency = field("Currency").ok_or_else(|| bad("Currency is missing".into()))?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(bad(format!("Currency `{currency}` is not an ISO 4217 code")));
    }
    Ok(ChargeEvent {
        netflix_transaction_id,
        partner_customer_id,
        amount,
        currency,
        plan_type: field("PlanType"),
        paid_through_date: field("PaidThroughDate"),
        period_start_date: field("PeriodStartDate"),
        display_invoice_id: field("DisplayInvoiceID"),
        service_activated: field("ServiceActivated"),
    })
}

/// The text of a JSON string, number or boolean; `None` for null, arrays and objects.
pub fn scalar_text(raw: &RawValue) -> Option<String> {
    let text = raw.get().trim();
    if let Ok(s) = serde_json::from_str::<String>(text) {
        return Some(s);
    }
    let first = text.chars().next()?;
    (first == '-' || first.is_ascii_digit() || text == "true" || text == "false").then(|| text.to_string())
}

/// A decimal from `7.99`, `8`, `"7.99"` or `7.99e0` style text. The decimal type rounds
/// what it cannot hold (past 28 digits) instead of failing; a rounded amount is not the
/// one Netflix asked for, so text with more digits than that is no amount (`None`).
pub fn parse_amount(text: &str) -> Option<Decimal> {
    let text = text.trim();
    let amount = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()?
    } else {
        Decimal::from_str(text).ok()?
    };
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    (significant_digits(mantissa) == significant_digits(&amount.to_string())).then_some(amount)
}

/// The digits that carry value: no sign, dot, leading or trailing zeros.
fn significant_digits(text: &str) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_event_with_a_numeric_amount() {
        let raw = r#"{"Amount": 15.49, "Currency": "USD", "PlanType": "Standard",
            "PaidThroughDate": "2026-12-22", "PeriodStartDate": "2026-11-22",
            "DisplayInvoiceID": "INV-1", "ServiceActivated": "Y",
            "PartnerCustomerID": "cust-1", "NetflixTransactionID": "ntx-1"}"#;
        let event = parse_event(raw).unwrap();
        assert_eq!(event.amount_text(), "15.49");
        assert_eq!(event.currency, "USD");
        assert_eq!(event.plan_type.as_deref(), Some("Standard"));
        assert_eq!(event.ledger_reference(), "Netflix Standard INV-1 (ntx-1)");
    }

    #[test]
    fn keeps_amount_text_exact_and_accepts_strings_and_numeric_ids() {
        let raw = r#"{"Amount":"0.10","Currency":"INR","PartnerCustomerID":1234567,"NetflixTransactionID":"t"}"#;
        let event = parse_event(raw).unwrap();
        assert_eq!(event.amount_text(), "0.1");
        assert_eq!(event.partner_customer_id, "1234567");
        // 0.1 + 0.2 is the classic f64 trap; the decimal path has none.
        let raw = r#"{"Amount":0.30000000000000004,"Currency":"USD","PartnerCustomerID":"c","NetflixTransactionID":"t"}"#;
        assert_eq!(parse_event(raw).unwrap().amount_text(), "0.30000000000000004");
        let raw = r#"{"Amount":1.5e1,"Currency":"USD","PartnerCustomerID":"c","NetflixTransactionID":"t"}"#;
        assert_eq!(parse_event(raw).unwrap().amount_text(), "15");
    }

    /// Found by fuzzing `parse_event`: 33 significant digits used to be charged rounded
    /// to 28 (`0.3000...04` as `0.3`).
    #[test]
    fn an_amount_is_never_rounded() {
        for amount in ["0.30000000000000000000000000000004", "\"8729535838683.8548597243507529275\"", "1.00000000000000000000000000001e0"] {
            let raw = format!(r#"{{"Amount":{amount},"Currency":"USD","PartnerCustomerID":"c","NetflixTransactionID":"t"}}"#);
            assert!(parse_event(&raw).unwrap_err().reason.contains("not a decimal"), "{amount}");
        }
        assert_eq!(parse_amount("0.3000000000000000000000000001").unwrap().to_string(), "0.3000000000000000000000000001");
        assert_eq!(parse_amount("150e-1").unwrap().to_string(), "15.0");
        assert_eq!(parse_amount("-0.00").unwrap().to_string(), "0.00");
    }

    #[test]
    fn zero_is_zero_in_any_spelling() {
        for amount in ["0", "0.00", "\"0.0\"", "-0"] {
            let raw = format!(r#"{{"Amount":{amount},"Currency":"USD","PartnerCustomerID":"c","NetflixTransactionID":"t"}}"#);
            assert!(parse_event(&raw).unwrap().amount.is_zero(), "{amount}");
        }
    }

    #[test]
    fn bad_events_keep_their_ids() {
        let raw = r#"{"Amount":"lots","Currency":"USD","PartnerCustomerID":"c","NetflixTransactionID":"t"}"#;
        let bad = parse_event(raw).unwrap_err();
        assert_eq!(bad.netflix_transaction_id.as_deref(), Some("t"));
        assert_eq!(bad.partner_customer_id.as_deref(), Some("c"));
        assert!(bad.reason.contains("lots"));

        let cases = [
            (r#"{"Amount":"-1.00","Currency":"USD","PartnerCustomerID":"c","NetflixTransactionID":"t"}"#, "negative"),
            (r#"{"Amount":"1.00","Currency":"usd","PartnerCustomerID":"c","NetflixTransactionID":"t"}"#, "ISO 4217"),
            (r#"{"Amount":"1.00","PartnerCustomerID":"c","NetflixTransactionID":"t"}"#, "Currency is missing"),
            (r#"{"Amount":null,"Currency":"USD","PartnerCustomerID":"c","NetflixTransactionID":"t"}"#, "Amount is missing"),
            (r#"{"Amount":"1.00","Currency":"USD","NetflixTransactionID":"t"}"#, "PartnerCustomerID"),
            (r#"{"Amount":"1.00","Currency":"USD","PartnerCustomerID":"c"}"#, "NetflixTransactionID"),
            (r#"[1,2]"#, "not a JSON object"),
        ];
        for (raw, expected) in cases {
            let reason = parse_event(raw).unwrap_err().reason;
            assert!(reason.contains(expected), "{raw}: {reason}");
        }
    }
}
