//! A charge run: every profile due by now, charged in batches. Each batch reads up to
//! [`BATCH`] entries of the due index, charges their profiles with one `charge-many` per
//! payment system (on `balance`, one durable commit for all the debits), then writes
//! every profile with its moved entry in one `compare-and-swap-many`, each profile its
//! own group. A profile that changed while it was charged (an `rp_cancel`, another run)
//! keeps the other writer's work: its outcome is applied again on the fresh record, as
//! a single charge's would be; the charge's reference makes a second run's charge the
//! same payment, so nothing is taken twice.

use std::collections::BTreeMap;

use payhost_sdk::host::GuardedWrite;
use payhost_sdk::log::Level;

use crate::config::Config;
use crate::due::{self, Stored};
use crate::host::Host;
use crate::profile::ChargeOutcome;
use crate::recurring;

/// Profiles per batch: at most three writes each, within one `compare-and-swap-many`.
pub const BATCH: u32 = 128;

/// Batches one call runs before it hands the rest to a new run timer, so a long run
/// stays well inside one call's deadline.
const BATCHES_PER_CALL: usize = 8;

/// Runs the batches due by now; afterwards the run timer of the earliest entry left is
/// set (at once, when more is due already).
pub fn run(host: &dyn Host, cfg: &Config) -> Result<(), String> {
    let now = crate::host::now(host);
    for _ in 0..BATCHES_PER_CALL {
        if run_batch(host, cfg, now)? < BATCH as usize {
            break;
        }
    }
    let earliest = host.store_list_keys(due::PREFIX, None, 1).map_err(|e| payhost_sdk::records::store_error(due::PREFIX, e))?;
    if let Some((at, _)) = earliest.first().and_then(|k| due::parse_key(k)) {
        due::schedule_run(host, at)?;
    }
    Ok(())
}

/// A due profile and the charge made for it.
struct Charged {
    stored: Stored,
    outcome: ChargeOutcome,
}

/// One batch; returns how many entries it took from the index.
fn run_batch(host: &dyn Host, cfg: &Config, now: i64) -> Result<usize, String> {
    let keys = host.store_list_keys(due::PREFIX, None, BATCH).map_err(|e| payhost_sdk::records::store_error(due::PREFIX, e))?;
    let entries: Vec<(i64, String, String)> = keys
        .into_iter()
        .filter_map(|key| due::parse_key(&key).map(|(at, id)| (at, id, key)))
        .take_while(|(at, _, _)| *at <= now)
        .collect();
    let taken = entries.len();
    let mut groups: Vec<Vec<GuardedWrite>> = Vec::new();
    let mut due_now: Vec<Stored> = Vec::new();
    for (at, profile_id, key) in entries {
        let stored = due::load(host, &profile_id)?;
        match stored {
            Some(stored) if stored.profile.needs_timer() && stored.profile.next_attempt_at == at => due_now.push(stored),
            // A stale entry: drop it, keeping (or restoring) the one the profile needs.
            stale => {
                let mut group = vec![GuardedWrite { key, expect: payhost_sdk::host::Expectation::Any, value: None }];
                if let Some(stored) = stale.filter(|s| s.profile.needs_timer()) {
                    group.extend(due::group(Some(&stored), &stored.profile)?);
                }
                groups.push(group);
            }
        }
    }
    let charged = charge_all(host, due_now);
    let policy = recurring::policy(cfg);
    let mut applied = Vec::with_capacity(charged.len());
    for c in &charged {
        let mut profile = c.stored.profile.clone();
        profile.apply(profile.next_index, profile.failures, &c.outcome, now, policy);
        groups.push(due::group(Some(&c.stored), &profile)?);
        applied.push(profile);
    }
    let written = due::write(host, &groups)?;
    let first_charged = groups.len() - charged.len();
    for ((c, profile), wrote) in charged.iter().zip(&applied).zip(&written[first_charged..]) {
        let (period, retry) = (c.stored.profile.next_index, c.stored.profile.failures);
        if *wrote {
            recurring::log_outcome(host, profile, period, &c.outcome);
        } else {
            host.log(Level::Info, "webtv recurring profile changed during its charge; applying again", &[("profile_id", &profile.id)]);
            recurring::apply(host, cfg, &profile.id, period, retry, &c.outcome)?;
        }
    }
    Ok(taken)
}

/// Charges every profile, one `charge-many` per payment system, keeping their order.
fn charge_all(host: &dyn Host, due_now: Vec<Stored>) -> Vec<Charged> {
    let mut by_system: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, stored) in due_now.iter().enumerate() {
        by_system.entry(stored.profile.system.clone()).or_default().push(i);
    }
    let mut outcomes: Vec<Option<ChargeOutcome>> = vec![None; due_now.len()];
    for (system, indexes) in by_system {
        let requests: Vec<_> = indexes.iter().map(|&i| recurring::charge_request(&due_now[i].profile)).collect();
        let results = host.charge_many(&system, &requests);
        for (i, result) in indexes.into_iter().zip(results) {
            outcomes[i] = Some(recurring::outcome(result));
        }
    }
    due_now
        .into_iter()
        .zip(outcomes)
        .map(|(stored, outcome)| Charged {
            stored,
            // A host that answered fewer results than requests: try that charge again later.
            outcome: outcome.unwrap_or_else(|| ChargeOutcome::Retry { message: "the payment system gave no answer".into() }),
        })
        .collect()
}
