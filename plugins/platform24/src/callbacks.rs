//! A card payment's outcome: credit the subscriber and tell Platform24.
//!
//! The host delivers the payment system's event until this returns `Ok`, possibly twice
//! after a crash, so every step is idempotent: the credit's ledger key is the payment's
//! external id, and the confirm/fail callback is a durable delivery keyed by the
//! TransactionID (stored, sent and retried by the host until Platform24 answers 2xx,
//! once per key even across restarts).

use crate::config::Config;
use crate::records::{self, Outcome, Transaction};
use crate::security::{self, CallbackFields};
use payhost_sdk::payments::{PaymentEvent, PaymentStatus};
use payhost_sdk::{deliveries, ledger, query};

/// Attempts before the host gives up on a callback: with the host's backoff (doubling,
/// capped at an hour) this outlasts a Platform24 outage of more than a day; after that
/// an operator sees a failed delivery in the admin API.
const CALLBACK_ATTEMPTS: u32 = 50;

/// The form body of a confirm or fail callback.
pub fn callback_body(fields: &CallbackFields, security_key: &str) -> String {
    query::encode(&[
        ("TransactionID", fields.transaction_id),
        ("Amount", fields.amount),
        ("Currency", fields.currency),
        ("ExternalTransactionID", fields.external_transaction_id),
        ("SecurityKey", security_key),
    ])
}

/// Delivery key: one `confirm` and at most one `fail` per Platform24 transaction.
pub fn delivery_key(outcome: &str, transaction_id: &str) -> String {
    format!("{outcome}/{transaction_id}")
}

fn enqueue(config: &Config, outcome: &str, fields: &CallbackFields) -> Result<(), String> {
    let security_key = security::sign_callback(fields)?;
    let delivery = deliveries::Delivery {
        method: "POST".into(),
        url: config.callback_url(outcome),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body: callback_body(fields, &security_key).into_bytes(),
        max_attempts: CALLBACK_ATTEMPTS,
    };
    let key = delivery_key(outcome, fields.transaction_id);
    deliveries::enqueue(&key, &delivery)
        .map(|_| ())
        .map_err(|e| format!("cannot enqueue the {outcome} callback {key}: {e:?}"))
}

pub fn on_payment_event(event: PaymentEvent) -> Result<(), String> {
    let config = Config::load()?;
    let transaction_id = event.reference.clone();
    // Unknown means we never issued this checkout: keep the event (the host retries and
    // lists it) so an operator sees money that has nowhere to go.
    let txn = records::load_transaction(&transaction_id)?
        .ok_or_else(|| format!("payment event for unknown Platform24 transaction `{transaction_id}`"))?;
    match event.status {
        PaymentStatus::Pending => {
            payhost_sdk::info("platform24 card payment pending", &[("transaction", &transaction_id)]);
            Ok(())
        }
        PaymentStatus::Succeeded => confirm(&config, &transaction_id, &txn, &event),
        PaymentStatus::Failed => fail(&config, &transaction_id, &txn, &event),
    }
}

fn or<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.trim().is_empty() { fallback } else { value }
}

fn confirm(config: &Config, transaction_id: &str, txn: &Transaction, event: &PaymentEvent) -> Result<(), String> {
    let amount = or(&event.amount, &txn.amount);
    let currency = or(&event.currency, &txn.currency);
    let key = format!("card:{}:{}", event.system, or(&event.external_id, transaction_id));
    let reference = format!("Оплата картой, транзакция Платформы24 {transaction_id}");
    let entry = ledger::credit(&key, &txn.account, amount, currency, &reference)
        .map_err(|e| format!("cannot credit {} for transaction {transaction_id}: {e:?}", txn.account))?;
    // ExternalTransactionID is "the id of the operation in the billing": our ledger
    // transaction, the same on every replay of the credit.
    let fields = CallbackFields {
        transaction_id,
        amount,
        external_transaction_id: &entry.transaction_id,
        currency,
    };
    enqueue(config, "confirm", &fields)?;
    records::update_transaction(transaction_id, |t| Transaction { outcome: Some(Outcome::Confirmed), ..t })?;
    crate::balance_push::after_change(config, &txn.user);
    payhost_sdk::info(
        "platform24 card payment credited",
        &[("transaction", transaction_id), ("user", &txn.user), ("amount", amount), ("currency", currency)],
    );
    Ok(())
}

fn fail(config: &Config, transaction_id: &str, txn: &Transaction, event: &PaymentEvent) -> Result<(), String> {
    if txn.outcome == Some(Outcome::Confirmed) {
        // Platform24 already marked it paid and the money is on the balance.
        payhost_sdk::warn("platform24 failure after a confirmed payment ignored", &[("transaction", transaction_id)]);
        return Ok(());
    }
    // No money moved, so the only id of the attempt is the payment system's.
    let fields = CallbackFields {
        transaction_id,
        amount: or(&event.amount, &txn.amount),
        external_transaction_id: or(&event.external_id, transaction_id),
        currency: or(&event.currency, &txn.currency),
    };
    enqueue(config, "fail", &fields)?;
    records::update_transaction(transaction_id, |t| match t.outcome {
        Some(Outcome::Confirmed) => t,
        _ => Transaction { outcome: Some(Outcome::Failed), ..t },
    })?;
    let reason = event.message.clone().unwrap_or_default();
    payhost_sdk::info(
        "platform24 card payment failed",
        &[("transaction", transaction_id), ("user", &txn.user), ("reason", &reason)],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use payhost_sdk::query::Params;

    #[test]
    fn callback_body_carries_the_five_fields() {
        let fields = CallbackFields {
            transaction_id: "tx-777",
            amount: "150.50",
            external_transaction_id: "ext-42",
            currency: "RUB",
        };
        let body = callback_body(&fields, "f3e853d38102bd45ff63dabe0339e807c7498829");
        assert_eq!(
            body,
            "TransactionID=tx-777&Amount=150.50&Currency=RUB&ExternalTransactionID=ext-42&SecurityKey=f3e853d38102bd45ff63dabe0339e807c7498829"
        );
        let p = Params::parse(&body);
        assert_eq!(p.get("ExternalTransactionID"), Some("ext-42"));
    }

    #[test]
    fn values_are_form_encoded() {
        let fields = CallbackFields {
            transaction_id: "a&b=c",
            amount: "1.00",
            external_transaction_id: "x y",
            currency: "RUB",
        };
        let p = Params::parse(&callback_body(&fields, "k"));
        assert_eq!(p.get("TransactionID"), Some("a&b=c"));
        assert_eq!(p.get("ExternalTransactionID"), Some("x y"));
    }

    #[test]
    fn one_delivery_per_outcome_and_transaction() {
        assert_eq!(delivery_key("confirm", "tx-1"), "confirm/tx-1");
        assert_ne!(delivery_key("confirm", "tx-1"), delivery_key("fail", "tx-1"));
    }
}
