//! Reading payment-system answers: a successful payment as the order records it, and
//! failures in words a buyer (and WebTV's `status_msg`) can use.

use payhost_sdk::payments::{Error as PayError, PaymentEvent, PaymentStatus};

/// A successful payment of one order attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub attempt: u32,
    pub system: String,
    /// The payment system's id (`N/A` for a trial with nothing to pay).
    pub transaction: String,
    /// Card token for recurring charges, when the system saved one.
    pub saved_method: Option<String>,
}

/// The transaction id WebTV gets when nothing was charged (a trial).
pub const NO_TRANSACTION: &str = "N/A";

impl Payment {
    pub fn from_event(attempt: u32, fallback_system: &str, event: &PaymentEvent) -> Self {
        Self {
            attempt,
            system: if event.system.is_empty() { fallback_system.to_string() } else { event.system.clone() },
            transaction: event.external_id.clone(),
            saved_method: event.saved_method.clone(),
        }
    }
}

/// What a charge or lookup answered, reduced to what the flows decide on.
#[derive(Debug, Clone)]
pub enum Answer {
    Succeeded(PaymentEvent),
    /// A definite failure, with the reason.
    Failed(String),
    /// No outcome yet (pending, or the system could not be reached): ask again with the
    /// same reference.
    Unknown(String),
}

pub fn answer(result: Result<PaymentEvent, PayError>) -> Answer {
    match result {
        Ok(event) => match event.status {
            PaymentStatus::Succeeded => Answer::Succeeded(event),
            PaymentStatus::Failed => Answer::Failed(
                event.message.filter(|m| !m.trim().is_empty()).unwrap_or_else(|| "The payment was declined".into()),
            ),
            PaymentStatus::Pending => Answer::Unknown("The payment is pending".into()),
        },
        Err(PayError::Unavailable(detail)) => Answer::Unknown(format!("The payment system is unavailable: {detail}")),
        Err(e) => Answer::Failed(describe(&e)),
    }
}

/// A payment error in words.
pub fn describe(error: &PayError) -> String {
    match error {
        PayError::InsufficientFunds(detail) => format!("Not enough money on the account: {detail}"),
        PayError::UnknownSystem(name) => format!("Payment method `{name}` is not available"),
        PayError::Rejected(detail) => format!("The payment was refused: {detail}"),
        PayError::Unavailable(detail) => format!("The payment system is unavailable: {detail}"),
        PayError::NotFound(detail) => format!("The payment was not found: {detail}"),
        PayError::BadSignature(detail) => format!("The payment system's answer failed verification: {detail}"),
        PayError::Other(detail) => format!("The payment failed: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(status: PaymentStatus, message: Option<&str>) -> PaymentEvent {
        PaymentEvent {
            system: "balance".into(),
            reference: "r".into(),
            status,
            amount: "1".into(),
            currency: "USD".into(),
            external_id: "tx1".into(),
            saved_method: None,
            message: message.map(str::to_string),
        }
    }

    #[test]
    fn answers_are_classified() {
        assert!(matches!(answer(Ok(event(PaymentStatus::Succeeded, None))), Answer::Succeeded(e) if e.external_id == "tx1"));
        assert!(matches!(answer(Ok(event(PaymentStatus::Failed, Some("card expired")))), Answer::Failed(m) if m == "card expired"));
        assert!(matches!(answer(Ok(event(PaymentStatus::Failed, Some(" ")))), Answer::Failed(m) if m == "The payment was declined"));
        assert!(matches!(answer(Ok(event(PaymentStatus::Pending, None))), Answer::Unknown(_)));
        assert!(matches!(answer(Err(PayError::Unavailable("down".into()))), Answer::Unknown(m) if m.contains("down")));
        assert!(matches!(
            answer(Err(PayError::InsufficientFunds("balance 5.00, requested 10.50".into()))),
            Answer::Failed(m) if m == "Not enough money on the account: balance 5.00, requested 10.50"
        ));
    }

    #[test]
    fn a_payment_keeps_the_event_system() {
        let p = Payment::from_event(2, "stripe", &event(PaymentStatus::Succeeded, None));
        assert_eq!((p.attempt, p.system.as_str(), p.transaction.as_str()), (2, "balance", "tx1"));
        let mut e = event(PaymentStatus::Succeeded, None);
        e.system.clear();
        assert_eq!(Payment::from_event(1, "stripe", &e).system, "stripe");
    }
}
