//! Which result a charge event gets. Pure, so every branch is tested natively; the charge
//! loop does the ledger call in between.

use crate::event::ChargeEvent;
use crate::record::{ChargeStatus, DeclineReason};
use payhost_sdk::ledger;

/// What to do before touching money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The operator marked the customer cancelled: decline without charging, even a free
    /// month, since the customer asked to stop.
    DeclineCancelled,
    /// A free period: approved, no ledger debit.
    ApproveFree,
    /// Debit the customer's ledger account.
    Debit,
}

pub fn plan(event: &ChargeEvent, cancelled: bool) -> Plan {
    if cancelled {
        Plan::DeclineCancelled
    } else if event.amount.is_zero() {
        Plan::ApproveFree
    } else {
        Plan::Debit
    }
}

/// The result of a failed debit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebitFailure {
    /// A final answer for Netflix.
    Result { status: ChargeStatus, reason: Option<DeclineReason>, detail: String },
    /// Our side is broken for now (storage): give no result, Netflix serves the event again.
    Retry(String),
}

pub fn after_debit_error(error: &ledger::Error) -> DebitFailure {
    let declined = |reason, detail: String| DebitFailure::Result {
        status: ChargeStatus::Declined,
        reason: Some(reason),
        detail,
    };
    let bad = |detail: String| DebitFailure::Result { status: ChargeStatus::BadRequest, reason: None, detail };
    match error {
        ledger::Error::InsufficientFunds(s) => declined(
            DeclineReason::PaymentInstrumentFailure,
            format!("insufficient funds: balance {} of {}, charge {}", s.balance, s.account, s.requested),
        ),
        ledger::Error::UnknownAccount(account) => {
            declined(DeclineReason::NoPaymentInstrument, format!("no ledger account `{account}`"))
        }
        // The account exists but cannot pay in Netflix's currency.
        ledger::Error::CurrencyMismatch(m) => {
            declined(DeclineReason::PaymentInstrumentFailure, format!("currency mismatch: {m}"))
        }
        ledger::Error::InvalidAmount(m) => bad(format!("amount refused by the ledger: {m}")),
        ledger::Error::UnknownCurrency(m) => bad(format!("currency unknown to the ledger: {m}")),
        // The same transaction id came with other terms than its first debit.
        ledger::Error::IdempotencyConflict(m) => bad(format!("event changed since it was first charged: {m}")),
        ledger::Error::NotReversible(m) => DebitFailure::Retry(format!("unexpected ledger answer: {m}")),
        ledger::Error::Backend(m) => DebitFailure::Retry(format!("ledger unavailable: {m}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    fn event(amount: &str) -> ChargeEvent {
        parse_event(&format!(
            r#"{{"Amount":"{amount}","Currency":"USD","PartnerCustomerID":"c","NetflixTransactionID":"t"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn cancelled_wins_then_free_then_debit() {
        assert_eq!(plan(&event("9.99"), true), Plan::DeclineCancelled);
        assert_eq!(plan(&event("0.00"), true), Plan::DeclineCancelled);
        assert_eq!(plan(&event("0.00"), false), Plan::ApproveFree);
        assert_eq!(plan(&event("9.99"), false), Plan::Debit);
    }

    fn reason(error: ledger::Error) -> (ChargeStatus, Option<DeclineReason>) {
        match after_debit_error(&error) {
            DebitFailure::Result { status, reason, .. } => (status, reason),
            DebitFailure::Retry(m) => panic!("unexpected retry: {m}"),
        }
    }

    #[test]
    fn ledger_errors_map_to_netflix_results() {
        let short = ledger::Shortfall { account: "c".into(), balance: "1.00".into(), requested: "9.99".into() };
        assert_eq!(
            reason(ledger::Error::InsufficientFunds(short)),
            (ChargeStatus::Declined, Some(DeclineReason::PaymentInstrumentFailure))
        );
        assert_eq!(
            reason(ledger::Error::UnknownAccount("c".into())),
            (ChargeStatus::Declined, Some(DeclineReason::NoPaymentInstrument))
        );
        assert_eq!(
            reason(ledger::Error::CurrencyMismatch("c RUB".into())),
            (ChargeStatus::Declined, Some(DeclineReason::PaymentInstrumentFailure))
        );
        assert_eq!(reason(ledger::Error::InvalidAmount("9.999".into())), (ChargeStatus::BadRequest, None));
        assert_eq!(reason(ledger::Error::UnknownCurrency("XXX".into())), (ChargeStatus::BadRequest, None));
    }

    #[test]
    fn backend_trouble_gives_no_result() {
        assert!(matches!(after_debit_error(&ledger::Error::Backend("db".into())), DebitFailure::Retry(_)));
    }
}
