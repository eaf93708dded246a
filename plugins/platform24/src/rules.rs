//! The packet rules a purchase must follow, decided before any money moves.
//!
//! Packets are base or add-on. Base packets exclude each other: a dearer base than
//! the current one is connected now and the current base subscription ends; a
//! cheaper (or equally priced) one starts when the current one ends, and the current
//! one stops renewing. An add-on needs a base (in the same purchase or current) that
//! lists it among its `available` add-ons, unless the operator allows add-ons alone.
//! The catalog (`GET /packets?includes=availables`) says what is base and what goes
//! with what; a packet it does not list falls back to the request's `is_base`.
//!
//! Pure: the caller fetches the catalog and the subscriptions; tested natively.

use crate::amount;
use crate::api::wire::{CatalogPacket, ConnectEntry, PlatformSubscription};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// One requested packet as Platform24 described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub price: &'a str,
    pub is_base: Option<bool>,
}

/// What to do on the platform for a purchase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// One `POST /users/{id}/subscriptions` with all of these.
    pub connect: Vec<ConnectEntry>,
    /// Subscriptions to end after the connect (an upgrade replaces the base now).
    pub end: Vec<String>,
    /// Subscriptions to stop renewing after the connect (a downgrade waits for them).
    pub stop_renewal: Vec<String>,
}

/// Why a purchase breaks the rules (nothing is debited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TwoBases(String, String),
    AddonNeedsBase(String),
    AddonNotWithBase { addon: String, base: String },
    AlreadyConnected(String),
}

impl Refusal {
    /// A short Russian text for the TV screen.
    pub fn errmsg(&self) -> String {
        match self {
            Refusal::TwoBases(a, b) => format!("Можно подключить только один базовый пакет, а выбраны «{a}» и «{b}»"),
            Refusal::AddonNeedsBase(a) => format!("Пакет «{a}» дополнительный: сначала подключите базовый пакет"),
            Refusal::AddonNotWithBase { addon, base } => {
                format!("Пакет «{addon}» нельзя подключить к базовому пакету «{base}»")
            }
            Refusal::AlreadyConnected(p) => format!("Пакет «{p}» уже подключён"),
        }
    }
}

/// The rules' inputs besides the request.
pub struct Context<'a> {
    pub catalog: &'a [CatalogPacket],
    /// The user's active, current and planned subscriptions.
    pub subscriptions: &'a [PlatformSubscription],
    pub addons_without_base: bool,
    pub now: i64,
}

impl Context<'_> {
    fn packet(&self, id: &str) -> Option<&CatalogPacket> {
        self.catalog.iter().find(|p| p.id == id)
    }

    fn sub_is_base(&self, s: &PlatformSubscription) -> bool {
        self.packet(&s.packet_id).map(|p| p.base).or(s.base).unwrap_or(false)
    }

    fn live(&self, s: &PlatformSubscription) -> bool {
        s.end_at.is_none_or(|end| end > self.now)
    }

    fn started(&self, s: &PlatformSubscription) -> bool {
        s.start_at.is_none_or(|start| start <= self.now)
    }

    fn name_of(&self, id: &str, fallback: &str) -> String {
        match self.packet(id) {
            Some(p) if !p.name.is_empty() => p.name.clone(),
            _ if !fallback.is_empty() => fallback.to_owned(),
            _ => id.to_owned(),
        }
    }
}

fn display(w: &Wanted) -> String {
    if w.name.is_empty() { w.id.to_owned() } else { w.name.to_owned() }
}

pub fn plan(wanted: &[Wanted], cx: &Context) -> Result<Plan, Refusal> {
    let is_base = |w: &Wanted| cx.packet(w.id).map(|p| p.base).or(w.is_base).unwrap_or(false);
    let live: Vec<&PlatformSubscription> = cx.subscriptions.iter().filter(|s| cx.live(s)).collect();
    if let Some(w) = wanted.iter().find(|w| live.iter().any(|s| s.packet_id == w.id)) {
        return Err(Refusal::AlreadyConnected(display(w)));
    }
    let bases: Vec<&Wanted> = wanted.iter().filter(|w| is_base(w)).collect();
    if let [a, b, ..] = bases.as_slice() {
        return Err(Refusal::TwoBases(display(a), display(b)));
    }
    let new_base = bases.first().copied();
    let current_base = live.iter().copied().find(|s| cx.sub_is_base(s) && cx.started(s));
    let planned_bases: Vec<&PlatformSubscription> =
        live.iter().copied().filter(|s| cx.sub_is_base(s) && !cx.started(s)).collect();

    let mut plan = Plan::default();
    let mut base_start = None;
    if let Some(new) = new_base {
        if let Some(current) = current_base {
            let current_price = cx.packet(&current.packet_id).and_then(|p| p.price.clone()).or(current.price.clone());
            let dearer = current_price
                .as_deref()
                .and_then(|c| amount::compare(new.price, c))
                .is_some_and(|o| o == Ordering::Greater);
            if dearer || current.end_at.is_none() {
                plan.end.push(current.id.clone());
            } else {
                base_start = current.end_at;
                plan.stop_renewal.push(current.id.clone());
            }
        }
        // A base planned earlier (an earlier downgrade) gives way to the new choice.
        plan.end.extend(planned_bases.iter().map(|s| s.id.clone()));
    }

    // The base each add-on attaches to: the one bought now, else the current one.
    let attach_to = new_base
        .map(|w| (w.id.to_owned(), display(w)))
        .or_else(|| current_base.map(|s| (s.packet_id.clone(), cx.name_of(&s.packet_id, &s.packet_name))));
    for addon in wanted.iter().filter(|w| !is_base(w)) {
        if cx.addons_without_base {
            continue;
        }
        let Some((base_id, base_name)) = &attach_to else {
            return Err(Refusal::AddonNeedsBase(display(addon)));
        };
        let allowed = cx.packet(base_id).is_none_or(|b| b.available.is_empty() || b.available.iter().any(|a| a == addon.id));
        if !allowed {
            return Err(Refusal::AddonNotWithBase { addon: display(addon), base: base_name.clone() });
        }
    }
    for w in wanted {
        let start_at = if is_base(w) { base_start } else { None };
        plan.connect.push(ConnectEntry { packet_id: w.id.to_owned(), start_at });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn packet(id: &str, price: &str, base: bool, available: &[&str]) -> CatalogPacket {
        CatalogPacket {
            id: id.into(),
            name: format!("P{id}"),
            price: Some(price.into()),
            base,
            available: available.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn catalog() -> Vec<CatalogPacket> {
        vec![
            packet("1", "300.00", true, &["10", "11"]),
            packet("2", "500.00", true, &["10"]),
            packet("3", "200.00", true, &[]),
            packet("10", "100.00", false, &[]),
            packet("11", "50.00", false, &[]),
        ]
    }

    fn sub(id: &str, packet: &str, start: i64, end: i64) -> PlatformSubscription {
        PlatformSubscription::fixture(id, packet, Some(start), Some(end))
    }

    fn want(id: &'static str, price: &'static str) -> Wanted<'static> {
        Wanted { id, name: "", price, is_base: None }
    }

    fn run(wanted: &[Wanted], subs: &[PlatformSubscription], alone: bool) -> Result<Plan, Refusal> {
        let catalog = catalog();
        plan(wanted, &Context { catalog: &catalog, subscriptions: subs, addons_without_base: alone, now: NOW })
    }

    fn now_entry(id: &str) -> ConnectEntry {
        ConnectEntry { packet_id: id.into(), start_at: None }
    }

    #[test]
    fn a_first_base_and_its_addon_connect_now() {
        let p = run(&[want("1", "300.00"), want("10", "100.00")], &[], false).unwrap();
        assert_eq!(p, Plan { connect: vec![now_entry("1"), now_entry("10")], ..Plan::default() });
    }

    #[test]
    fn a_dearer_base_replaces_the_current_one_now() {
        let p = run(&[want("2", "500.00")], &[sub("s1", "1", NOW - 10, NOW + 100)], false).unwrap();
        assert_eq!(p, Plan { connect: vec![now_entry("2")], end: vec!["s1".into()], stop_renewal: vec![] });
    }

    #[test]
    fn a_cheaper_base_waits_for_the_current_one_to_end() {
        let p = run(&[want("3", "200.00")], &[sub("s1", "1", NOW - 10, NOW + 100)], false).unwrap();
        assert_eq!(
            p,
            Plan {
                connect: vec![ConnectEntry { packet_id: "3".into(), start_at: Some(NOW + 100) }],
                end: vec![],
                stop_renewal: vec!["s1".into()],
            }
        );
        // Equal price counts as "not dearer": from the next period.
        let p = run(&[want("3", "300.00")], &[sub("s1", "1", NOW - 10, NOW + 100)], false).unwrap();
        assert_eq!(p.stop_renewal, vec!["s1".to_string()]);
    }

    #[test]
    fn a_new_base_cancels_a_planned_one() {
        let subs = [sub("s1", "1", NOW - 10, NOW + 100), sub("s2", "3", NOW + 100, NOW + 200)];
        let p = run(&[want("2", "500.00")], &subs, false).unwrap();
        assert_eq!(p.end, vec!["s1".to_string(), "s2".to_string()]);
    }

    #[test]
    fn base_packets_exclude_each_other() {
        assert!(matches!(run(&[want("1", "300.00"), want("2", "500.00")], &[], false), Err(Refusal::TwoBases(..))));
    }

    #[test]
    fn an_addon_needs_a_base_unless_allowed() {
        assert_eq!(run(&[want("10", "100.00")], &[], false), Err(Refusal::AddonNeedsBase("10".into())));
        assert!(run(&[want("10", "100.00")], &[], true).is_ok());
        // An ended base does not count; a current one does.
        assert!(run(&[want("10", "100.00")], &[sub("s0", "1", NOW - 100, NOW - 1)], false).is_err());
        assert_eq!(run(&[want("10", "100.00")], &[sub("s1", "1", NOW - 10, NOW + 100)], false).unwrap().connect, vec![now_entry("10")]);
    }

    #[test]
    fn an_addon_must_be_available_with_its_base() {
        let r = run(&[want("11", "50.00")], &[sub("s1", "2", NOW - 10, NOW + 100)], false);
        assert_eq!(r, Err(Refusal::AddonNotWithBase { addon: "11".into(), base: "P2".into() }));
        // A base whose catalog entry lists nothing allows any add-on.
        assert!(run(&[want("3", "200.00"), want("11", "50.00")], &[], false).is_ok());
        // Unknown packets fall back to the request's is_base, and obey the base's list.
        let unknown = Wanted { id: "99", name: "Новый", price: "10.00", is_base: Some(false) };
        assert!(run(&[unknown.clone()], &[sub("s3", "3", NOW - 10, NOW + 100)], false).is_ok());
        assert!(matches!(run(&[unknown], &[sub("s1", "1", NOW - 10, NOW + 100)], false), Err(Refusal::AddonNotWithBase { .. })));
    }

    #[test]
    fn a_live_packet_is_not_bought_again() {
        let r = run(&[want("10", "100.00")], &[sub("s1", "1", NOW - 10, NOW + 100), sub("s2", "10", NOW - 10, NOW + 100)], false);
        assert_eq!(r, Err(Refusal::AlreadyConnected("10".into())));
    }

    #[test]
    fn refusals_read_in_russian() {
        assert!(Refusal::AddonNeedsBase("Кино".into()).errmsg().contains("базовый пакет"));
        assert!(Refusal::AlreadyConnected("Кино".into()).errmsg().contains("уже подключён"));
    }
}
