//! The subscriber's subscriptions as the billing knows them, and their history.
//!
//! Keys: `sub/{account}/{subscription id}` holds a [`SubRecord`] (one per platform
//! subscription the billing connected), `hist/{account}/{at}/{event}/{id}` an entry of
//! the subscriber's history (what happened and why, in Russian for the operator and
//! the subscriber alike), `cancel/{account}/{id}` each `delete_subscription` received.

use crate::records;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubState {
    /// Connected; renews when `renew` is set.
    Active,
    /// Renewal stopped (DELETE_SUBSCRIPTION, short money, a cheaper base waiting).
    Stopping,
    /// Ended on the platform (replaced, blocked).
    Ended,
}

/// One platform subscription the billing connected and charges for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubRecord {
    pub id: String,
    pub account: String,
    pub provider_uid: String,
    pub platform_user: String,
    pub packet_id: String,
    pub name: String,
    /// The price of one period, as Platform24 sent it in the purchase.
    pub price: String,
    pub currency: String,
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
    pub renew: bool,
    pub state: SubState,
    /// Why it stopped or ended.
    pub reason: Option<String>,
    /// The purchase that connected it (its ledger key).
    pub purchase: String,
    /// `end_at` of the last period whose renewal was charged.
    pub charged_through: Option<i64>,
}

fn key(account: &str, id: &str) -> String {
    format!("sub/{account}/{id}")
}

pub fn load(account: &str, id: &str) -> Result<Option<SubRecord>, String> {
    records::load(&key(account, id))
}

pub fn save(sub: &SubRecord) -> Result<(), String> {
    records::set(&key(&sub.account, &sub.id), sub)
}

/// Changes a stored record by compare-and-swap (no-op when it does not exist).
pub fn update(account: &str, id: &str, change: impl Fn(SubRecord) -> SubRecord) -> Result<(), String> {
    records::update(&key(account, id), |s: Option<SubRecord>| s.map(&change))
}

pub fn of_account(account: &str) -> Result<Vec<SubRecord>, String> {
    let mut subs = Vec::new();
    for k in records::keys_under(&format!("sub/{account}/"))? {
        if let Some(s) = records::load(&k)? {
            subs.push(s);
        }
    }
    Ok(subs)
}

/// One line of the subscriber's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub event: String,
    pub subscription: Option<String>,
    pub packet: Option<String>,
    pub text: String,
}

pub fn note(account: &str, entry: &HistoryEntry) {
    let id = entry.subscription.as_deref().or(entry.packet.as_deref()).unwrap_or("-");
    let k = format!("hist/{account}/{:012}/{}/{id}", entry.at, entry.event);
    // History is for people; losing a line must not fail the money path.
    if let Err(e) = records::set(&k, entry) {
        payhost_sdk::warn("platform24 could not write history", &[("account", account), ("error", &e)]);
    }
}

pub fn history(account: &str) -> Result<Vec<HistoryEntry>, String> {
    let mut entries = Vec::new();
    for k in records::keys_under(&format!("hist/{account}/"))? {
        if let Some(e) = records::load(&k)? {
            entries.push(e);
        }
    }
    Ok(entries)
}

/// A `delete_subscription` Platform24 sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub sub_id: String,
    pub packet_id: Option<String>,
    pub start_at: Option<String>,
    pub end_at: Option<String>,
    pub at: i64,
}

pub fn record_cancellation(account: &str, c: &Cancellation) -> Result<(), String> {
    records::set(&format!("cancel/{account}/{}", c.sub_id), c)
}
