//! The due index: one store key per active profile, named by when it is charged next
//! (`due/<at, 12 digits>/<profile id>`), so a charge run lists what is due in time order
//! and charges it in batches, and one host timer per due instant (`run/<at>`) starts the
//! run. A profile and its entry only ever change together, in one guarded write group
//! (`compare-and-swap-many`), so a crash cannot leave an active profile without an entry.
//!
//! Entries are hints; the profile record decides. An entry that no longer matches its
//! profile (another run or an older plugin moved it on) is dropped when a run meets it.

use payhost_sdk::host::{Expectation, GuardedWrite};
use payhost_sdk::records::store_error;

use crate::host::Host;
use crate::ids;
use crate::profile::Profile;

/// Every entry's key starts with this.
pub const PREFIX: &str = "due/";

/// Tries before giving up on a profile that keeps changing under us.
const MAX_TRIES: usize = 16;

/// The entry of profile `profile_id` due at `at` (Unix seconds).
pub fn key(at: i64, profile_id: &str) -> String {
    // Zero-padded so the store's byte order is time order.
    format!("{PREFIX}{:012}/{profile_id}", at.max(0))
}

/// `(at, profile id)` of an entry key.
pub fn parse_key(key: &str) -> Option<(i64, String)> {
    let (at, profile_id) = key.strip_prefix(PREFIX)?.split_once('/')?;
    if at.len() != 12 || !at.bytes().all(|b| b.is_ascii_digit()) || !profile_id.starts_with("rp-") {
        return None;
    }
    Some((at.parse().ok()?, profile_id.to_string()))
}

/// The timer that starts a charge run at `at`.
pub fn run_timer(at: i64) -> String {
    format!("run/{at}")
}

/// The instant of a [`run_timer`] name.
pub fn parse_run_timer(name: &str) -> Option<i64> {
    let at = name.strip_prefix("run/")?;
    (!at.is_empty() && at.bytes().all(|b| b.is_ascii_digit())).then(|| at.parse().ok()).flatten()
}

/// Sets the run timer for `at` (idempotent: one timer per instant, however many
/// profiles fall due then).
pub fn schedule_run(host: &dyn Host, at: i64) -> Result<(), String> {
    crate::host::schedule(host, &run_timer(at), at)
}

/// The stored profile, with the exact bytes it was read from.
pub struct Stored {
    pub profile: Profile,
    pub bytes: Vec<u8>,
}

pub fn load(host: &dyn Host, profile_id: &str) -> Result<Option<Stored>, String> {
    Ok(payhost_sdk::records::load::<Profile>(host, &ids::profile_key(profile_id))?.map(|(profile, bytes)| Stored { profile, bytes }))
}

/// The writes that replace `old` (`None`: create) by `new`, and move its entry with it:
/// the record only if it still holds `old`'s bytes, the entry at `new`'s next attempt
/// while it is active, and none at `old`'s once it is not or has moved.
pub fn group(old: Option<&Stored>, new: &Profile) -> Result<Vec<GuardedWrite>, String> {
    let bytes = serde_json::to_vec(new).map_err(|e| format!("profile `{}` cannot be encoded: {e}", new.id))?;
    let expect = match old {
        Some(old) => Expectation::Equals(old.bytes.clone()),
        None => Expectation::Absent,
    };
    let mut writes = vec![GuardedWrite { key: new.key(), expect, value: Some(bytes) }];
    if let Some(old) = old.map(|o| &o.profile) {
        if old.needs_timer() && !(new.needs_timer() && new.next_attempt_at == old.next_attempt_at) {
            writes.push(GuardedWrite { key: key(old.next_attempt_at, &old.id), expect: Expectation::Any, value: None });
        }
    }
    if new.needs_timer() {
        writes.push(GuardedWrite { key: key(new.next_attempt_at, &new.id), expect: Expectation::Any, value: Some(Vec::new()) });
    }
    Ok(writes)
}

/// Writes the groups in one transaction; whether each was written.
pub fn write(host: &dyn Host, groups: &[Vec<GuardedWrite>]) -> Result<Vec<bool>, String> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    host.store_compare_and_swap_many(groups).map_err(|e| store_error(PREFIX, e))
}

/// Creates `fresh` with its entry unless the profile exists; `true` when it wrote.
pub fn create(host: &dyn Host, fresh: &Profile) -> Result<bool, String> {
    Ok(write(host, &[group(None, fresh)?])? == [true])
}

/// Reads the profile, lets `step` decide (`None`: leave it), and writes the new profile
/// and its entry together; when another writer got there first, `step` runs again on
/// the fresh record. `None` when the profile does not exist; otherwise the result of
/// the step whose decision stuck.
pub fn update<R>(
    host: &dyn Host,
    profile_id: &str,
    mut step: impl FnMut(&Profile) -> (Option<Profile>, R),
) -> Result<Option<R>, String> {
    for _ in 0..MAX_TRIES {
        let Some(stored) = load(host, profile_id)? else {
            return Ok(None);
        };
        let (change, result) = step(&stored.profile);
        let Some(new) = change else {
            return Ok(Some(result));
        };
        if write(host, &[group(Some(&stored), &new)?])? == [true] {
            return Ok(Some(result));
        }
    }
    Err(format!("profile `{profile_id}` kept changing; gave up after {MAX_TRIES} tries"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_and_round_trip() {
        let (early, late) = (key(999, "rp-3-99-0"), key(1_000, "rp-3-9-0"));
        assert_eq!(early, "due/000000000999/rp-3-99-0");
        assert!(early < late);
        assert_eq!(parse_key(&late), Some((1_000, "rp-3-9-0".to_string())));
        assert_eq!(parse_key("due/1000/rp-3-9-0"), None);
        assert_eq!(parse_key("due/000000001000/other"), None);
        assert_eq!(parse_key("rp-3-9-0"), None);
    }

    #[test]
    fn run_timers_round_trip() {
        assert_eq!(run_timer(1_700_000_000), "run/1700000000");
        assert_eq!(parse_run_timer("run/1700000000"), Some(1_700_000_000));
        assert_eq!(parse_run_timer("run/"), None);
        assert_eq!(parse_run_timer("run/-5"), None);
        assert_eq!(parse_run_timer("rp-3-99-0/t1"), None);
    }
}
