//! The stored result of one charge event: what we decided, what money moved, and how far
//! the result got with Netflix. It is written before the result is sent, so a restart
//! resends exactly the same result instead of deciding (or charging) again.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeStatus {
    Approved,
    Declined,
    BadRequest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeclineReason {
    CustomerRequestedCancel,
    PaymentInstrumentFailure,
    NoPaymentInstrument,
}

/// Where the result is in its life with Netflix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Stored, not yet acknowledged by a SendCharge answer.
    Pending,
    /// Netflix took it.
    Sent,
    /// Netflix listed it in `RejectedEvents`; never sent again.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRecord {
    pub netflix_transaction_id: String,
    pub partner_customer_id: String,
    /// Our ledger transaction id, or a generated id when no money moved.
    pub partner_reference_id: String,
    pub charge_status: ChargeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_invoice_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_through_date: Option<String>,
    /// The ledger account debited (when one was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Ledger transaction of the debit, when money moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_transaction_id: Option<String>,
    /// Why it was declined or refused, for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub delivery: Delivery,
    /// Ledger transaction that put a rejected debit back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal_transaction_id: Option<String>,
    /// Why a rejected debit could not be reversed (e.g. the operator already did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal_error: Option<String>,
    pub decided_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_at: Option<i64>,
    /// How many SendCharge calls carried it and were answered.
    #[serde(default)]
    pub times_sent: u32,
}

impl ChargeRecord {
    /// The element of SendCharge `Results`.
    pub fn to_wire(&self) -> Value {
        let mut result = json!({
            "ChargeStatus": self.charge_status,
            "PartnerCustomerID": self.partner_customer_id,
            "PartnerReferenceID": self.partner_reference_id,
            "NetflixTransactionID": self.netflix_transaction_id,
        });
        if let Some(reason) = self.decline_reason {
            result["DeclineReason"] = json!(reason);
        }
        result
    }

    /// A rejected debit still has to be put back.
    pub fn needs_reversal(&self) -> bool {
        self.delivery == Delivery::Rejected && self.ledger_transaction_id.is_some() && self.reversal_transaction_id.is_none()
            && self.reversal_error.is_none()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("stored charge record is unreadable: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ChargeRecord {
        ChargeRecord {
            netflix_transaction_id: "ntx-1".into(),
            partner_customer_id: "c1".into(),
            partner_reference_id: "nfx-abc".into(),
            charge_status: ChargeStatus::Declined,
            decline_reason: Some(DeclineReason::NoPaymentInstrument),
            amount: Some("9.99".into()),
            currency: Some("USD".into()),
            plan_type: None,
            display_invoice_id: None,
            paid_through_date: None,
            account: None,
            ledger_transaction_id: None,
            detail: None,
            delivery: Delivery::Pending,
            reversal_transaction_id: None,
            reversal_error: None,
            decided_at: 1,
            sent_at: None,
            rejected_at: None,
            times_sent: 0,
        }
    }

    #[test]
    fn wire_result_uses_netflix_names() {
        assert_eq!(
            record().to_wire(),
            json!({
                "ChargeStatus": "Declined",
                "DeclineReason": "NoPaymentInstrument",
                "PartnerCustomerID": "c1",
                "PartnerReferenceID": "nfx-abc",
                "NetflixTransactionID": "ntx-1",
            })
        );
        let mut approved = record();
        approved.charge_status = ChargeStatus::Approved;
        approved.decline_reason = None;
        assert!(approved.to_wire().get("DeclineReason").is_none());
    }

    #[test]
    fn round_trips_through_the_store_encoding() {
        let r = record();
        assert_eq!(ChargeRecord::from_bytes(&r.to_bytes()).unwrap(), r);
    }

    #[test]
    fn only_rejected_debits_need_reversal() {
        let mut r = record();
        assert!(!r.needs_reversal());
        r.delivery = Delivery::Rejected;
        assert!(!r.needs_reversal(), "nothing was debited");
        r.ledger_transaction_id = Some("tx".into());
        assert!(r.needs_reversal());
        r.reversal_transaction_id = Some("rev".into());
        assert!(!r.needs_reversal());
        r.reversal_transaction_id = None;
        r.reversal_error = Some("already reversed".into());
        assert!(!r.needs_reversal());
    }
}
