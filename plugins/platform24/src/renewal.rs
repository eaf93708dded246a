//! Renewals: Platform24 renews a subscription with `renew=true` by itself and sends
//! no PACKET for it, so the billing charges each one for its next period before the
//! current one ends.
//!
//! Each renewing subscription has a host timer `renew/{account}/{id}` due
//! `renew_ahead_seconds` before its `end_at`. The charge's ledger key is
//! `p24-renew:{account}:{id}:{end_at}`: one per subscription and period, so a timer
//! that fires twice (or after a crash) never charges a period twice. When the money
//! is short the subscription is left to end: its renewal is stopped on the platform,
//! the history says why, and nothing tells the platform it was paid.

use crate::api::Api;
use crate::config::Config;
use crate::followups::{self, Chore};
use crate::subscriptions::{self, HistoryEntry, SubRecord, SubState};
use crate::{balance_push, time};
use payhost_sdk::{clock, ledger, timers};
use serde::{Deserialize, Serialize};

pub const TIMER_PREFIX: &str = "renew/";
/// When a period was charged and the platform has not moved `end_at` yet, look again
/// this much later.
const RECHECK_SECONDS: i64 = 3600;

fn timer_name(account: &str, id: &str) -> String {
    format!("{TIMER_PREFIX}{account}/{id}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    account: String,
    subscription: String,
}

fn set_timer(account: &str, id: &str, at: i64) -> Result<(), String> {
    let payload = serde_json::to_vec(&Payload { account: account.into(), subscription: id.into() }).map_err(|e| e.to_string())?;
    timers::schedule(&timer_name(account, id), clock::Instant { seconds: at, nanoseconds: 0 }, &payload)
        .map_err(|e| format!("timer schedule failed: {e:?}"))
}

/// Starts (or moves) the renewal timer of a renewing subscription.
pub fn schedule(config: &Config, sub: &SubRecord) -> Result<(), String> {
    match (sub.renew, sub.end_at) {
        (true, Some(end)) => set_timer(&sub.account, &sub.id, end - config.renew_ahead_seconds),
        _ => Ok(()),
    }
}

pub fn cancel(account: &str, id: &str) -> Result<(), String> {
    timers::cancel(&timer_name(account, id)).map(|_| ()).map_err(|e| format!("timer cancel failed: {e:?}"))
}

/// What the renewal timer does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Too early for the period ending at `period_end`: wait until `at`.
    Wait { at: i64 },
    /// Charge the period that starts at `period_end`.
    Charge { period_end: i64 },
    /// That period is paid; look again at `at` for the platform's next `end_at`.
    Paid { at: i64 },
}

pub fn step(charged_through: Option<i64>, period_end: i64, now: i64, ahead: i64) -> Step {
    if charged_through.is_some_and(|c| c >= period_end) {
        Step::Paid { at: now.max(period_end) + RECHECK_SECONDS }
    } else if now < period_end - ahead {
        Step::Wait { at: period_end - ahead }
    } else {
        Step::Charge { period_end }
    }
}

/// The next period's end when the platform has not told us yet: as long as this one.
pub fn next_end(start_at: Option<i64>, end_at: i64) -> Option<i64> {
    start_at.filter(|s| *s < end_at).map(|s| end_at + (end_at - s))
}

pub fn charge_key(account: &str, id: &str, period_end: i64) -> String {
    format!("p24-renew:{account}:{id}:{period_end}")
}

fn note(sub: &SubRecord, event: &str, text: String) {
    let entry = HistoryEntry {
        at: clock::now().seconds,
        event: event.into(),
        subscription: Some(sub.id.clone()),
        packet: Some(sub.packet_id.clone()),
        text,
    };
    subscriptions::note(&sub.account, &entry);
}

pub fn on_timer(config: &Config, payload: &[u8]) -> Result<(), String> {
    let p: Payload = serde_json::from_slice(payload).map_err(|e| format!("bad renewal payload: {e}"))?;
    let Some(mut sub) = subscriptions::load(&p.account, &p.subscription)? else { return Ok(()) };
    if sub.state != SubState::Active || !sub.renew {
        return Ok(());
    }
    let api = Api::background(config);
    // The platform's view first: it may have renewed, stopped or ended the subscription.
    match api.subscriptions(&sub.platform_user) {
        Ok(list) => match list.into_iter().find(|s| s.id == sub.id) {
            None => {
                let reason = "Подписка завершена на платформе".to_string();
                subscriptions::save(&SubRecord { state: SubState::Ended, renew: false, reason: Some(reason.clone()), ..sub.clone() })?;
                note(&sub, "ended", reason);
                return Ok(());
            }
            Some(s) if !s.renew => {
                let reason = "Продление отключено на платформе".to_string();
                subscriptions::save(&SubRecord { state: SubState::Stopping, renew: false, reason: Some(reason.clone()), ..sub.clone() })?;
                note(&sub, "renewal-stopped", reason);
                return Ok(());
            }
            Some(s) => {
                if s.end_at.is_some_and(|e| sub.end_at.is_none_or(|ours| e > ours)) {
                    sub.start_at = s.start_at.or(sub.end_at);
                    sub.end_at = s.end_at;
                }
            }
        },
        // Charging from what we know is safe (the key is per period); stopping is not.
        Err(e) => payhost_sdk::warn("platform24 renewal without the platform's view", &[("subscription", &sub.id), ("error", &e.to_string())]),
    }
    let Some(period_end) = sub.end_at else {
        payhost_sdk::warn("platform24 subscription without an end date is not renewed", &[("subscription", &sub.id)]);
        return Ok(());
    };
    let now = clock::now().seconds;
    match step(sub.charged_through, period_end, now, config.renew_ahead_seconds) {
        Step::Wait { at } | Step::Paid { at } => {
            subscriptions::save(&sub)?;
            set_timer(&sub.account, &sub.id, at)
        }
        Step::Charge { period_end } => charge(config, &api, sub, period_end),
    }
}

fn charge(config: &Config, api: &Api, sub: SubRecord, period_end: i64) -> Result<(), String> {
    let key = charge_key(&sub.account, &sub.id, period_end);
    let next = next_end(sub.start_at, period_end);
    let until = next.map(time::format).unwrap_or_else(|| "следующего периода".into());
    let reference = format!("Продление пакета 24часаТВ {} до {until}", sub.packet_id);
    match ledger::debit(&key, &sub.account, &sub.price, &sub.currency, &reference) {
        Ok(_) => {
            let renewed = SubRecord { charged_through: Some(period_end), start_at: Some(period_end), end_at: next, ..sub };
            subscriptions::save(&renewed)?;
            note(&renewed, "renewed", format!("Продление «{}»: списано {} {}", renewed.name, renewed.price, renewed.currency));
            payhost_sdk::info("platform24 renewal charged", &[("subscription", &renewed.id), ("period_end", &period_end.to_string())]);
            balance_push::after_change(config, &renewed.provider_uid);
            match next {
                Some(end) => set_timer(&renewed.account, &renewed.id, end - config.renew_ahead_seconds),
                None => set_timer(&renewed.account, &renewed.id, period_end + RECHECK_SECONDS),
            }
        }
        Err(ledger::Error::InsufficientFunds(short)) => {
            // Stopped here at once; on the platform now or by a retried follow-up.
            let reason = format!(
                "Недостаточно средств для продления «{}»: нужно {} {}, на балансе {}. Подписка закончится {}",
                sub.name, sub.price, sub.currency, short.balance, time::format(period_end)
            );
            followups::apply(api, &sub.account, &sub.platform_user, Chore::StopRenewal, &sub.id, &reason);
            payhost_sdk::info("platform24 renewal refused: not enough money", &[("subscription", &sub.id), ("user", &sub.provider_uid)]);
            Ok(())
        }
        Err(e) => Err(format!("renewal debit failed: {e:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn charges_once_the_period_is_near_and_never_twice() {
        let end = 100 * DAY;
        assert_eq!(step(None, end, end - 2 * DAY, DAY), Step::Wait { at: end - DAY });
        assert_eq!(step(None, end, end - DAY, DAY), Step::Charge { period_end: end });
        // Late (the host was down): still charged, the period has not been paid.
        assert_eq!(step(None, end, end + 10, DAY), Step::Charge { period_end: end });
        // Paid: no second charge, look again after the platform should have renewed.
        assert_eq!(step(Some(end), end, end - DAY + 5, DAY), Step::Paid { at: end + 3600 });
        // The platform moved end_at: the next period is a new one.
        assert_eq!(step(Some(end), end + 30 * DAY, end + 29 * DAY, DAY), Step::Charge { period_end: end + 30 * DAY });
    }

    #[test]
    fn the_next_period_is_as_long_as_this_one() {
        assert_eq!(next_end(Some(0), 30 * DAY), Some(60 * DAY));
        assert_eq!(next_end(None, 30 * DAY), None);
        assert_eq!(next_end(Some(30 * DAY), 30 * DAY), None);
    }

    #[test]
    fn one_key_per_subscription_and_period() {
        assert_eq!(charge_key("p24-u", "s1", 100), "p24-renew:p24-u:s1:100");
        assert_ne!(charge_key("p24-u", "s1", 100), charge_key("p24-u", "s1", 200));
        assert_ne!(charge_key("p24-u", "s1", 100), charge_key("p24-u", "s2", 100));
    }
}
