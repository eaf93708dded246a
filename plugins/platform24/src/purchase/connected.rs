//! A purchase whose packets are on the platform: close its record, remember each new
//! subscription with its price (renewals charge it), start the renewal timers, apply
//! the base-packet follow-ups, write the history and push the balance.

use super::record::{PurchaseRecord, State};
use super::store;
use crate::api::{wire::PlatformSubscription, Api};
use crate::config::Config;
use crate::followups::{self, Chore};
use crate::subscriptions::{self, HistoryEntry, SubRecord, SubState};
use crate::{balance_push, renewal};
use payhost_sdk::clock;

pub fn finish(config: &Config, record: &PurchaseRecord, created: &[PlatformSubscription], api: &Api) -> Result<(), String> {
    let mine: Vec<&PlatformSubscription> = created
        .iter()
        .filter(|s| record.plan.connect.iter().any(|c| c.packet_id == s.packet_id) && !record.before.contains(&s.id))
        .collect();
    let done = PurchaseRecord {
        state: State::Connected {
            transaction: record.transaction().map(str::to_owned),
            subscriptions: mine.iter().map(|s| s.id.clone()).collect(),
        },
        resolving_until: None,
        ..record.clone()
    };
    store::save(&done)?;
    let now = clock::now().seconds;
    for s in &mine {
        let line = record.lines.iter().find(|l| l.packet_id == s.packet_id);
        let sub = SubRecord {
            id: s.id.clone(),
            account: record.account.clone(),
            provider_uid: record.provider_uid.clone(),
            platform_user: record.platform_user.clone(),
            packet_id: s.packet_id.clone(),
            name: line.map(|l| l.name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| s.packet_name.clone()),
            price: line.map(|l| l.price.clone()).unwrap_or_else(|| "0".into()),
            currency: record.currency.clone(),
            start_at: s.start_at,
            end_at: s.end_at,
            renew: s.renew,
            state: SubState::Active,
            reason: None,
            purchase: record.key.clone(),
            charged_through: None,
        };
        subscriptions::save(&sub)?;
        if let Err(e) = renewal::schedule(config, &sub) {
            payhost_sdk::error("platform24 could not schedule a renewal", &[("subscription", &sub.id), ("error", &e)]);
        }
        subscriptions::note(
            &record.account,
            &HistoryEntry {
                at: now,
                event: "connected".into(),
                subscription: Some(sub.id.clone()),
                packet: Some(sub.packet_id.clone()),
                text: format!("Пакет «{}» подключён, списано {} {}", sub.name, sub.price, sub.currency),
            },
        );
    }
    for sid in &record.plan.end {
        followups::apply(api, &record.account, &record.platform_user, Chore::End, sid, "Заменён более дорогим базовым пакетом");
    }
    for sid in &record.plan.stop_renewal {
        followups::apply(api, &record.account, &record.platform_user, Chore::StopRenewal, sid, "Новый базовый пакет начнётся после окончания этого");
    }
    balance_push::after_change(config, &record.provider_uid);
    payhost_sdk::info(
        "platform24 packets connected",
        &[("user", &record.provider_uid), ("key", &record.key), ("subscriptions", &mine.len().to_string())],
    );
    Ok(())
}
