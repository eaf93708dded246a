//! The durable record of one purchase attempt, written before the debit, so a crash
//! between the debit and the platform's connect is finished after a restart with one
//! outcome: connected, or refunded, never both and never neither.
//!
//! States, in order: `Debiting` (written before the ledger call: the money may or may
//! not have moved; nothing was sent to the platform), `Connecting` (debited; the
//! connect may or may not have reached the platform), then `Connected` or `Refunded`.
//! Whoever resolves a record left open (a timer, the start hook, a repeat of the
//! request) decides from what it observes; the decisions are pure and tested here.

use crate::api::wire::PlatformSubscription;
use crate::rules::Plan;
use serde::{Deserialize, Serialize};

/// One debited packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub packet_id: String,
    pub name: String,
    pub price: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Debiting,
    Connecting { transaction: Option<String> },
    Connected { transaction: Option<String>, subscriptions: Vec<String> },
    /// `checked`: the platform was seen without any subscription of this purchase
    /// (after an ambiguous failure a late connect is ended before it is set).
    Refunded { transaction: Option<String>, reason: String, checked: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseRecord {
    /// The ledger idempotency key of the debit; also names the record.
    pub key: String,
    pub account: String,
    pub provider_uid: String,
    pub platform_user: String,
    pub currency: String,
    /// Every packet of the purchase (free ones too); `price` as debited.
    pub lines: Vec<Line>,
    pub plan: Plan,
    /// The user's subscription ids on the platform before the connect.
    pub before: Vec<String>,
    pub created_at: i64,
    /// Until then the request that wrote the record may still be working on it.
    pub owner_until: i64,
    /// A resolver working on the record until then (others keep off).
    #[serde(default)]
    pub resolving_until: Option<i64>,
    #[serde(flatten)]
    pub state: State,
}

impl PurchaseRecord {
    pub fn is_open(&self) -> bool {
        match &self.state {
            State::Debiting | State::Connecting { .. } => true,
            State::Connected { .. } => false,
            State::Refunded { checked, .. } => !checked,
        }
    }

    /// Whether a resolver may work on it at `now`.
    pub fn resolvable(&self, now: i64) -> bool {
        self.is_open() && now >= self.owner_until && self.resolving_until.is_none_or(|t| now >= t)
    }

    pub fn transaction(&self) -> Option<&str> {
        match &self.state {
            State::Debiting => None,
            State::Connecting { transaction } | State::Connected { transaction, .. } | State::Refunded { transaction, .. } => {
                transaction.as_deref()
            }
        }
    }

    /// Lines that move money (free packets do not).
    pub fn paid_lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| !crate::amount::Amount::parse(&l.price).is_ok_and(|a| a.is_zero()))
    }

    /// Subscriptions on the platform that this purchase's connect created: of one of
    /// its packets and not there before.
    pub fn created<'a>(&self, now_on_platform: &'a [PlatformSubscription]) -> Vec<&'a PlatformSubscription> {
        now_on_platform
            .iter()
            .filter(|s| !self.before.contains(&s.id) && self.plan.connect.iter().any(|c| c.packet_id == s.packet_id))
            .collect()
    }
}

/// What a resolver does with an open record, given what the platform shows (only
/// needed once the connect may have been sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The money may have moved but nothing reached the platform: replay the debit
    /// (idempotent: it returns the first one, or moves the money now) and reverse it.
    RefundUnsent,
    /// Every packet is on the platform: the purchase is done.
    Connected(Vec<String>),
    /// None (or only some) arrived: end those that did, then refund.
    EndThenRefund(Vec<String>),
    /// Refunded already; end whatever arrived late, then mark it checked.
    EndLate(Vec<String>),
}

pub fn resolve(record: &PurchaseRecord, platform: &[PlatformSubscription]) -> Resolution {
    let created: Vec<String> = record.created(platform).iter().map(|s| s.id.clone()).collect();
    match &record.state {
        State::Debiting => Resolution::RefundUnsent,
        State::Connecting { .. } => {
            let all = record.plan.connect.iter().all(|c| record.created(platform).iter().any(|s| s.packet_id == c.packet_id));
            if all && !record.plan.connect.is_empty() {
                Resolution::Connected(created)
            } else {
                Resolution::EndThenRefund(created)
            }
        }
        State::Refunded { .. } => Resolution::EndLate(created),
        State::Connected { subscriptions, .. } => Resolution::Connected(subscriptions.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::wire::ConnectEntry;

    fn record(state: State) -> PurchaseRecord {
        PurchaseRecord {
            key: "k".into(),
            account: "a".into(),
            provider_uid: "u".into(),
            platform_user: "981".into(),
            currency: "RUB".into(),
            lines: vec![
                Line { packet_id: "1".into(), name: "A".into(), price: "300.00".into() },
                Line { packet_id: "2".into(), name: "B".into(), price: "0.00".into() },
            ],
            plan: Plan {
                connect: vec![
                    ConnectEntry { packet_id: "1".into(), start_at: None },
                    ConnectEntry { packet_id: "2".into(), start_at: None },
                ],
                ..Plan::default()
            },
            before: vec!["old".into()],
            created_at: 100,
            owner_until: 130,
            resolving_until: None,
            state,
        }
    }

    fn sub(id: &str, packet: &str) -> PlatformSubscription {
        PlatformSubscription::fixture(id, packet, None, None)
    }

    #[test]
    fn nothing_sent_means_refund() {
        assert_eq!(resolve(&record(State::Debiting), &[]), Resolution::RefundUnsent);
    }

    #[test]
    fn all_packets_arrived_means_connected() {
        let r = record(State::Connecting { transaction: Some("t".into()) });
        // "old" was there before (same packet 1): it is not this purchase's.
        let platform = [sub("old", "1"), sub("n1", "1"), sub("n2", "2")];
        assert_eq!(resolve(&r, &platform), Resolution::Connected(vec!["n1".into(), "n2".into()]));
    }

    #[test]
    fn none_or_some_arrived_means_end_then_refund() {
        let r = record(State::Connecting { transaction: Some("t".into()) });
        assert_eq!(resolve(&r, &[sub("old", "1")]), Resolution::EndThenRefund(vec![]));
        assert_eq!(resolve(&r, &[sub("n2", "2"), sub("x", "9")]), Resolution::EndThenRefund(vec!["n2".into()]));
    }

    #[test]
    fn a_refund_ends_late_arrivals() {
        let r = record(State::Refunded { transaction: Some("t".into()), reason: "timeout".into(), checked: false });
        assert!(r.is_open());
        assert_eq!(resolve(&r, &[sub("n1", "1")]), Resolution::EndLate(vec!["n1".into()]));
    }

    #[test]
    fn leases_keep_resolvers_off() {
        let mut r = record(State::Connecting { transaction: None });
        assert!(!r.resolvable(129));
        assert!(r.resolvable(130));
        r.resolving_until = Some(150);
        assert!(!r.resolvable(140));
        assert!(r.resolvable(150));
        let done = record(State::Connected { transaction: None, subscriptions: vec![] });
        assert!(!done.resolvable(10_000));
        let checked = record(State::Refunded { transaction: None, reason: String::new(), checked: true });
        assert!(!checked.is_open());
    }

    #[test]
    fn free_lines_move_no_money_and_the_record_round_trips() {
        let r = record(State::Connecting { transaction: Some("t".into()) });
        assert_eq!(r.paid_lines().map(|l| l.packet_id.as_str()).collect::<Vec<_>>(), vec!["1"]);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""state":"connecting""#), "{json}");
        assert_eq!(serde_json::from_str::<PurchaseRecord>(&json).unwrap(), r);
        assert_eq!(r.transaction(), Some("t"));
    }
}
