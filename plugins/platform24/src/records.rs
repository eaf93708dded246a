//! What the plugin remembers in its store: subscriptions bought and cancelled, and the
//! card-payment transactions Platform24 asked a payment form for.
//!
//! Keys: `sub/{account}/{packet_id}`, `cancel/{account}/{sub_id or packet-id}`,
//! `txn/{TransactionID}`. Values are JSON so an operator can read them.

use payhost_sdk::records::{self, Change, HostStore};
use payhost_sdk::store;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

fn set<T: Serialize>(key: &str, value: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    store::set(key, &bytes).map_err(|e| records::store_error(key, e))
}

/// Read-modify-write by compare-and-swap, so two concurrent updates both land; `change`
/// returning `None` leaves the record as it is.
fn update<T: Serialize + DeserializeOwned>(key: &str, change: impl Fn(Option<T>) -> Option<T>) -> Result<(), String> {
    records::update(&HostStore, key, |current| Ok((change(current).map_or(Change::Keep, Change::Write), ())))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionState {
    Active,
    Cancelled,
}

/// The latest purchase of one packet by one subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub packet_id: String,
    pub name: String,
    pub price: String,
    pub currency: String,
    pub is_base: Option<bool>,
    pub state: SubscriptionState,
    pub purchased_at: i64,
    /// Ledger transaction of the debit (none for a free packet).
    pub ledger_transaction: Option<String>,
    pub cancelled_at: Option<i64>,
}

pub fn record_subscription(account: &str, sub: &Subscription) -> Result<(), String> {
    set(&format!("sub/{account}/{}", sub.packet_id), sub)
}

/// A `delete_subscription` Platform24 sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub sub_id: Option<String>,
    pub packet_id: Option<String>,
    pub start_at: Option<String>,
    pub end_at: Option<String>,
    pub at: i64,
}

/// Stores the cancellation and marks the packet's subscription cancelled.
pub fn record_cancellation(account: &str, c: &Cancellation) -> Result<(), String> {
    let name = match (&c.sub_id, &c.packet_id) {
        (Some(sub), _) => sub.clone(),
        (None, Some(packet)) => format!("packet-{packet}"),
        (None, None) => return Err("a cancellation names neither a subscription nor a packet".into()),
    };
    set(&format!("cancel/{account}/{name}"), c)?;
    if let Some(packet) = &c.packet_id {
        update(&format!("sub/{account}/{packet}"), |sub: Option<Subscription>| {
            sub.map(|s| Subscription { state: SubscriptionState::Cancelled, cancelled_at: Some(c.at), ..s })
        })?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Confirmed,
    Failed,
}

/// A Platform24 card-payment transaction (from the payment-form request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Provider uid (Platform24's `UserID`).
    pub user: String,
    pub account: String,
    pub amount: String,
    pub currency: String,
    pub description: String,
    pub created_at: i64,
    pub checkout_id: Option<String>,
    pub redirect_url: Option<String>,
    pub outcome: Option<Outcome>,
}

impl Transaction {
    /// Whether a repeated payment-form request asks for the same payment.
    pub fn same_payment(&self, other: &Transaction) -> bool {
        self.user == other.user && self.amount == other.amount && self.currency == other.currency
    }
}

fn txn_key(transaction_id: &str) -> String {
    format!("txn/{transaction_id}")
}

pub fn load_transaction(transaction_id: &str) -> Result<Option<Transaction>, String> {
    Ok(records::load(&HostStore, &txn_key(transaction_id))?.map(|(t, _)| t))
}

/// Creates the transaction record unless one exists; returns the stored one.
pub fn create_transaction(transaction_id: &str, txn: &Transaction) -> Result<Transaction, String> {
    records::create_or_load(&HostStore, &txn_key(transaction_id), txn)
}

/// Applies `change` to the stored transaction (no-op when it does not exist).
pub fn update_transaction(transaction_id: &str, change: impl Fn(Transaction) -> Transaction) -> Result<(), String> {
    update(&txn_key(transaction_id), |t: Option<Transaction>| t.map(&change))
}
