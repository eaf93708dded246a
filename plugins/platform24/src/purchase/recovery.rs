//! Finishing purchases whose request did not: refunds, and the resolver that a timer,
//! the start hook or a repeat of the request runs on a record left open.
//!
//! A resolver first claims the record (`resolving_until`, by compare-and-swap) so two
//! of them never act at once, then decides with `record::resolve` from what the
//! platform shows. Every money step is idempotent: the debit replays under its key and
//! the reversal has its own (`{key}:refund`), so a resolver that dies half-way is
//! simply run again.

use super::record::{self, PurchaseRecord, Resolution, State};
use super::{connected, debit_lines, definite, store};
use crate::api::Api;
use crate::config::Config;
use crate::dedup;
use crate::subscriptions::{self, HistoryEntry};
use payhost_sdk::{clock, ledger};

/// How long a resolver keeps others off a record.
const RESOLVE_LEASE_SECONDS: i64 = 60;
/// After an ambiguous connect failure, how long to wait for a late connect to land on
/// the platform before looking for it.
const LATE_CONNECT_SECONDS: i64 = 30;

/// Reverses the purchase's debit (if any), marks it refunded and lets an identical
/// request start a new attempt. `checked`: nothing of it can be on the platform.
pub fn refund(record: &PurchaseRecord, reason: &str, checked: bool) -> Result<(), String> {
    if let Some(transaction) = record.transaction() {
        ledger::reverse(&format!("{}:refund", record.key), transaction, "Возврат: пакеты не подключены")
            .map_err(|e| format!("reversal failed: {e:?}"))?;
    }
    let look_again = clock::now().seconds + LATE_CONNECT_SECONDS;
    let refunded = PurchaseRecord {
        state: State::Refunded { transaction: record.transaction().map(str::to_owned), reason: reason.to_owned(), checked },
        resolving_until: None,
        // Nobody looks for a late connect before it would have landed.
        owner_until: if checked { record.owner_until } else { record.owner_until.max(look_again) },
        ..record.clone()
    };
    store::save(&refunded)?;
    if !checked {
        store::schedule(&record.key, look_again)?;
    }
    let priced: Vec<(&str, &str)> = record.lines.iter().map(|l| (l.packet_id.as_str(), l.price.as_str())).collect();
    dedup::release(&record.account, &priced, &record.key)?;
    subscriptions::note(
        &record.account,
        &HistoryEntry {
            at: clock::now().seconds,
            event: "refunded".into(),
            subscription: None,
            packet: Some(record.lines.iter().map(|l| l.packet_id.as_str()).collect::<Vec<_>>().join(",")),
            text: "Пакеты не подключены на платформе, деньги возвращены".into(),
        },
    );
    payhost_sdk::info("platform24 purchase refunded", &[("user", &record.provider_uid), ("key", &record.key), ("reason", reason)]);
    Ok(())
}

/// Resolves the record under `key` if it is open and nobody else is on it.
pub fn resolve(config: &Config, api: &Api, key: &str) -> Result<(), String> {
    let now = clock::now().seconds;
    let Some((bytes, current)) = store::load(key)? else { return Ok(()) };
    if !current.is_open() {
        return Ok(());
    }
    if !current.resolvable(now) {
        let at = current.resolving_until.unwrap_or(0).max(current.owner_until);
        return store::schedule(key, at);
    }
    let claimed = PurchaseRecord { resolving_until: Some(now + RESOLVE_LEASE_SECONDS), ..current };
    if !store::replace(&bytes, &claimed)? {
        return Ok(());
    }
    let platform = match claimed.state {
        State::Debiting => Vec::new(),
        _ => api.subscriptions(&claimed.platform_user).map_err(|e| e.to_string())?,
    };
    let resolution = record::resolve(&claimed, &platform);
    payhost_sdk::info("platform24 resolving a purchase", &[("key", key), ("resolution", &format!("{resolution:?}"))]);
    match resolution {
        Resolution::RefundUnsent => {
            let lines = debit_lines(&claimed);
            if lines.is_empty() {
                return refund(&claimed, "the request ended before the connect", true);
            }
            match ledger::debit_many(&claimed.key, &claimed.currency, &lines) {
                Ok(entries) => {
                    let transaction = entries.first().map(|e| e.transaction_id.clone());
                    let debited = PurchaseRecord { state: State::Connecting { transaction }, ..claimed };
                    refund(&debited, "the request ended before the connect", true)
                }
                // Refused now, so it was never debited: nothing to undo.
                Err(e) if definite(&e) => store::discard(key),
                Err(e) => Err(format!("debit replay failed: {e:?}")),
            }
        }
        Resolution::Connected(_) => connected::finish(config, &claimed, &platform, api),
        Resolution::EndThenRefund(ids) => {
            for id in &ids {
                api.end_subscription(&claimed.platform_user, id).map_err(|e| e.to_string())?;
            }
            refund(&claimed, "the connect did not finish", true)
        }
        Resolution::EndLate(ids) => {
            for id in &ids {
                api.end_subscription(&claimed.platform_user, id).map_err(|e| e.to_string())?;
            }
            let State::Refunded { transaction, reason, .. } = claimed.state.clone() else {
                return Err(format!("purchase {key} changed state while being resolved"));
            };
            store::save(&PurchaseRecord {
                state: State::Refunded { transaction, reason, checked: true },
                resolving_until: None,
                ..claimed
            })
        }
    }
}

/// The purchase timer: resolve its record.
pub fn on_timer(config: &Config, key: &str) -> Result<(), String> {
    resolve(config, &Api::background(config), key)
}

/// The start hook: every record left open by a host that stopped.
pub fn on_start(config: &Config) -> Result<(), String> {
    let api = Api::background(config);
    for key in store::open_keys()? {
        if let Err(e) = resolve(config, &api, &key) {
            // Its own timer tries again.
            payhost_sdk::warn("platform24 could not resolve a purchase at start", &[("key", &key), ("error", &e)]);
        }
    }
    Ok(())
}
