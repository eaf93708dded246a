//! The built-in `balance` payment method: pays from the subscriber's ledger account
//! named by `customer`, final at charge time, refunded by reversing the transaction.

use crate::ledger::{BatchKind, BatchPosting, DebitLine, Entry, Ledger, LedgerError};
use crate::wit::payments::{ChargeRequest, Error, PaymentEvent, PaymentStatus, RefundResult};

/// The method's name in `payment_systems` and in `checkout` calls.
pub const BALANCE: &str = "balance";

/// Debits the customer's ledger account once per reference.
pub async fn charge(ledger: &Ledger, provider: &str, req: ChargeRequest) -> Result<PaymentEvent, Error> {
    let result = ledger.debit(provider, &charge_key(&req.reference), &req.customer, &req.amount, &req.currency, &req.reference).await;
    answer(&req, result)
}

/// [`charge`] for many requests, their debits in one ledger batch (one durable commit);
/// a one-line batch debit is the same request as `debit`, so each key replays across
/// the two.
pub async fn charge_many(ledger: &Ledger, provider: &str, requests: Vec<ChargeRequest>) -> Vec<Result<PaymentEvent, Error>> {
    let postings: Vec<BatchPosting> = requests
        .iter()
        .map(|req| BatchPosting {
            key: charge_key(&req.reference),
            kind: BatchKind::Debit,
            currency: req.currency.clone(),
            lines: vec![DebitLine { account: req.customer.clone(), amount: req.amount.clone(), reference: req.reference.clone() }],
        })
        .collect();
    let results = ledger.post_batch(provider, &postings).await;
    requests
        .iter()
        .zip(results)
        .map(|(req, result)| answer(req, result.and_then(only_entry)))
        .collect()
}

/// The ledger idempotency key of the charge with this reference.
fn charge_key(reference: &str) -> String {
    format!("balance-charge:{reference}")
}

fn only_entry(entries: Vec<Entry>) -> Result<Entry, LedgerError> {
    entries.into_iter().next().ok_or_else(|| LedgerError::Backend("a one-line debit posted no entry".into()))
}

/// The payment event (or error) a debit's result comes to.
fn answer(req: &ChargeRequest, result: Result<Entry, LedgerError>) -> Result<PaymentEvent, Error> {
    let event = |status, external_id: String, message: Option<String>| PaymentEvent {
        system: BALANCE.into(),
        reference: req.reference.clone(),
        status,
        amount: req.amount.clone(),
        currency: req.currency.clone(),
        external_id,
        saved_method: None,
        message,
    };
    match result {
        Ok(entry) => Ok(event(PaymentStatus::Succeeded, entry.transaction_id, None)),
        Err(LedgerError::InsufficientFunds { balance, .. }) => Ok(event(
            PaymentStatus::Failed,
            String::new(),
            Some(format!("insufficient funds: balance {balance} {}", req.currency)),
        )),
        Err(LedgerError::UnknownAccount(a)) => Ok(event(PaymentStatus::Failed, String::new(), Some(format!("no ledger account `{a}`")))),
        Err(LedgerError::Backend(b)) => Err(Error::Unavailable(format!("ledger: {b}"))),
        Err(other) => Err(Error::Rejected(format!("{other}"))),
    }
}

/// Reverses a whole balance transaction once.
pub async fn refund(ledger: &Ledger, provider: &str, transaction_id: String, amount: Option<String>) -> Result<RefundResult, Error> {
    if amount.is_some() {
        return Err(Error::Rejected("the balance method refunds whole transactions only".into()));
    }
    let key = format!("balance-refund:{transaction_id}");
    let entries = ledger.reverse(provider, &key, &transaction_id, "refund").await.map_err(|e| match e {
        LedgerError::NotReversible(t) => Error::NotFound(t),
        LedgerError::Backend(b) => Error::Unavailable(b),
        other => Error::Rejected(other.to_string()),
    })?;
    let amount = entries.first().map(|e| e.amount.trim_start_matches('-').to_string()).unwrap_or_default();
    Ok(RefundResult { external_id: transaction_id, amount, status: PaymentStatus::Succeeded })
}
