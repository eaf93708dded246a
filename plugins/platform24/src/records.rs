//! JSON records in the instance's store, and the card-payment transactions Platform24
//! asked a payment form for (`txn/{TransactionID}`).
//!
//! Values are JSON so an operator can read them. The other record kinds live with the
//! code that owns them (`subscriptions`, `users`, `purchase::store`) on the helpers
//! here.

use payhost_sdk::records::{self as sdk, Change, HostStore};
use payhost_sdk::store;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The record under `key` and the exact bytes it was read from (for `replace`).
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<(Vec<u8>, T)>, String> {
    Ok(sdk::load(&HostStore, key)?.map(|(value, bytes)| (bytes, value)))
}

pub fn set<T: Serialize>(key: &str, value: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|e| format!("record `{key}` cannot be encoded: {e}"))?;
    store::set(key, &bytes).map_err(|e| sdk::store_error(key, e))
}

/// The record under `key`, if any.
pub fn load<T: DeserializeOwned>(key: &str) -> Result<Option<T>, String> {
    Ok(sdk::load(&HostStore, key)?.map(|(value, _)| value))
}

/// Writes `value` only when `key` holds nothing; whether it wrote.
pub fn create<T: Serialize>(key: &str, value: &T) -> Result<bool, String> {
    sdk::create(&HostStore, key, value)
}

/// Writes `new` only when `key` still holds `old` (as read); whether it wrote.
pub fn replace<T: Serialize>(key: &str, old: &[u8], new: &T) -> Result<bool, String> {
    let bytes = serde_json::to_vec(new).map_err(|e| format!("record `{key}` cannot be encoded: {e}"))?;
    store::compare_and_swap(key, Some(old), &bytes).map_err(|e| sdk::store_error(key, e))
}

pub fn delete(key: &str) -> Result<(), String> {
    store::delete(key).map(|_| ()).map_err(|e| sdk::store_error(key, e))
}

/// Every key under `prefix`, page by page.
pub fn keys_under(prefix: &str) -> Result<Vec<String>, String> {
    const PAGE: u32 = 500;
    let mut keys: Vec<String> = Vec::new();
    loop {
        let page = store::list_keys(prefix, keys.last().map(String::as_str), PAGE).map_err(|e| sdk::store_error(prefix, e))?;
        let full = page.len() == PAGE as usize;
        keys.extend(page);
        if !full {
            return Ok(keys);
        }
    }
}

/// Read-modify-write by compare-and-swap, so two concurrent updates both land; `change`
/// returning `None` leaves the record as it is.
pub fn update<T: Serialize + DeserializeOwned>(key: &str, change: impl Fn(Option<T>) -> Option<T>) -> Result<(), String> {
    sdk::update(&HostStore, key, |current| Ok((change(current).map_or(Change::Keep, Change::Write), ())))
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
    Ok(get(&txn_key(transaction_id))?.map(|(_, t)| t))
}

/// Creates the transaction record unless one exists; returns the stored one.
pub fn create_transaction(transaction_id: &str, txn: &Transaction) -> Result<Transaction, String> {
    sdk::create_or_load(&HostStore, &txn_key(transaction_id), txn)
}

/// Applies `change` to the stored transaction (no-op when it does not exist).
pub fn update_transaction(transaction_id: &str, change: impl Fn(Transaction) -> Transaction) -> Result<(), String> {
    update(&txn_key(transaction_id), |t: Option<Transaction>| t.map(&change))
}
