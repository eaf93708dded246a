//! One debit per purchase, however often Platform24 repeats the request.
//!
//! Platform24 waits about five seconds and may send the same `packet(s)` request again.
//! The ledger debits once per idempotency key, so identical requests within the window
//! must map to the same key. A key made only of the time bucket (`now / window`) would
//! split two requests straddling a bucket boundary, so the key is remembered in the
//! store: the first request of a purchase claims a record `{key, at}` by compare-and-
//! swap, and any identical request within `window` seconds of `at` reuses that key.
//! After the window a new key from the current bucket is claimed; it can never equal
//! the old one, because `now >= at + window` puts `now` in a later bucket.

use payhost_sdk::signing::{self, DigestAlgorithm, Part};
use payhost_sdk::{clock, store};
use serde::{Deserialize, Serialize};

/// The remembered first request of a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub key: String,
    pub at: i64,
    /// How many attempts of this purchase were refunded before this one.
    #[serde(default)]
    pub attempt: u32,
    /// The attempt under `key` was refunded: an identical request is a new attempt.
    #[serde(default)]
    pub released: bool,
}

/// What to do for a request at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An identical request is within the window: debit with its key (the ledger
    /// replays the first result).
    Reuse(String),
    /// A new purchase: claim this record, then debit with its key.
    Claim(Seen),
}

/// Canonical text of a purchase: the account and its packets' `id=price`, sorted, so
/// the same packets in another order are the same purchase.
pub fn fingerprint(account: &str, packets: &[(&str, &str)]) -> String {
    let mut lines: Vec<String> = packets.iter().map(|(id, price)| format!("{id}={price}")).collect();
    lines.sort_unstable();
    format!("{account}\n{}", lines.join("\n"))
}

pub fn bucket(now: i64, window: i64) -> i64 {
    now.div_euclid(window)
}

/// The ledger idempotency key of a purchase first seen in `bucket`.
pub fn ledger_key(account: &str, fingerprint_hash: &str, bucket: i64) -> String {
    format!("p24-purchase:{account}:{fingerprint_hash}:{bucket}")
}

pub fn decide(previous: Option<&Seen>, account: &str, fingerprint_hash: &str, now: i64, window: i64) -> Decision {
    let claim = |attempt: u32| {
        let base = ledger_key(account, fingerprint_hash, bucket(now, window));
        // Keys of a purchase's later attempts differ by their number: the ledger
        // must not replay a refunded debit for a new attempt.
        let key = if attempt == 0 { base } else { format!("{base}:{attempt}") };
        Decision::Claim(Seen { key, at: now, attempt, released: false })
    };
    match previous {
        // A clock slightly behind the record's (another host) still reuses: never debit twice.
        Some(seen) if now - seen.at < window && !seen.released => Decision::Reuse(seen.key.clone()),
        Some(seen) if now - seen.at < window => claim(seen.attempt + 1),
        _ => claim(0),
    }
}

/// Store key of a purchase's record.
fn record_key(account: &str, fingerprint_hash: &str) -> String {
    format!("dedup/{account}/{fingerprint_hash}")
}

/// Short hex hash of the fingerprint (keeps store and ledger keys small).
fn hash(fingerprint: &str) -> Result<String, String> {
    let digest = signing::digest(DigestAlgorithm::Sha256, &[Part::Text(fingerprint.into())])
        .map_err(|e| format!("digest failed: {e:?}"))?;
    Ok(signing::to_hex(&digest[..16]))
}

/// The idempotency key for this purchase now, claimed in the store so that concurrent
/// identical requests agree on it.
pub fn key_for(account: &str, packets: &[(&str, &str)], window: i64) -> Result<String, String> {
    let fp_hash = hash(&fingerprint(account, packets))?;
    let store_key = record_key(account, &fp_hash);
    // Each lost race means another request just wrote the record; re-reading it gives
    // a `Reuse`, so a handful of rounds is plenty.
    for _ in 0..8 {
        let now = clock::now().seconds;
        let current = store::get(&store_key).map_err(|e| format!("store get failed: {e:?}"))?;
        let previous: Option<Seen> = current.as_deref().and_then(|b| serde_json::from_slice(b).ok());
        match decide(previous.as_ref(), account, &fp_hash, now, window) {
            Decision::Reuse(key) => return Ok(key),
            Decision::Claim(seen) => {
                let bytes = serde_json::to_vec(&seen).map_err(|e| e.to_string())?;
                let won = store::compare_and_swap(&store_key, current.as_deref(), &bytes)
                    .map_err(|e| format!("store compare-and-swap failed: {e:?}"))?;
                if won {
                    return Ok(seen.key);
                }
            }
        }
    }
    Err(format!("purchase record {store_key} kept changing; giving up"))
}

/// Marks the attempt under `key` refunded, so an identical request is a new attempt
/// with a new key (no-op when the record already moved on).
pub fn release(account: &str, packets: &[(&str, &str)], key: &str) -> Result<(), String> {
    let store_key = record_key(account, &hash(&fingerprint(account, packets))?);
    for _ in 0..8 {
        let current = store::get(&store_key).map_err(|e| format!("store get failed: {e:?}"))?;
        let Some(mut seen) = current.as_deref().and_then(|b| serde_json::from_slice::<Seen>(b).ok()) else { return Ok(()) };
        if seen.key != key || seen.released {
            return Ok(());
        }
        seen.released = true;
        let bytes = serde_json::to_vec(&seen).map_err(|e| e.to_string())?;
        if store::compare_and_swap(&store_key, current.as_deref(), &bytes).map_err(|e| format!("store compare-and-swap failed: {e:?}"))? {
            return Ok(());
        }
    }
    Err(format!("purchase record {store_key} kept changing; giving up"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_packet_order() {
        let a = fingerprint("u1", &[("11", "300.00"), ("12", "150.00")]);
        let b = fingerprint("u1", &[("12", "150.00"), ("11", "300.00")]);
        assert_eq!(a, b);
        assert_ne!(a, fingerprint("u1", &[("11", "300.00"), ("12", "150.01")]));
        assert_ne!(a, fingerprint("u2", &[("11", "300.00"), ("12", "150.00")]));
        assert_ne!(a, fingerprint("u1", &[("11", "300.00")]));
    }

    #[test]
    fn first_request_claims_the_current_bucket() {
        assert_eq!(
            decide(None, "u1", "ff", 1_000, 300),
            Decision::Claim(Seen { key: "p24-purchase:u1:ff:3".into(), at: 1_000, attempt: 0, released: false })
        );
    }

    #[test]
    fn repeat_within_window_reuses_even_across_a_bucket_edge() {
        // First seen at 1199 (bucket 3), repeated at 1201 (bucket 4).
        let seen = Seen { key: ledger_key("u1", "ff", bucket(1_199, 300)), at: 1_199, attempt: 0, released: false };
        assert_eq!(decide(Some(&seen), "u1", "ff", 1_201, 300), Decision::Reuse(seen.key.clone()));
        assert_eq!(decide(Some(&seen), "u1", "ff", 1_498, 300), Decision::Reuse(seen.key.clone()));
    }

    #[test]
    fn after_the_window_a_new_distinct_key() {
        for at in [1_199, 1_200, 1_350] {
            let seen = Seen { key: ledger_key("u1", "ff", bucket(at, 300)), at, attempt: 0, released: false };
            match decide(Some(&seen), "u1", "ff", at + 300, 300) {
                Decision::Claim(new) => {
                    assert_ne!(new.key, seen.key, "at {at}");
                    assert_eq!(new.at, at + 300);
                }
                other => panic!("expected a new claim, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_clock_behind_the_record_reuses() {
        let seen = Seen { key: "k".into(), at: 5_000, attempt: 0, released: false };
        assert_eq!(decide(Some(&seen), "u1", "ff", 4_990, 300), Decision::Reuse("k".into()));
    }

    #[test]
    fn a_refunded_attempt_gives_the_next_one_a_new_key() {
        let first = Seen { key: ledger_key("u1", "ff", 3), at: 1_000, attempt: 0, released: true };
        let Decision::Claim(second) = decide(Some(&first), "u1", "ff", 1_010, 300) else { panic!("expected a claim") };
        assert_eq!(second.key, "p24-purchase:u1:ff:3:1");
        assert_eq!(second.attempt, 1);
        let again = Seen { released: true, ..second.clone() };
        let Decision::Claim(third) = decide(Some(&again), "u1", "ff", 1_020, 300) else { panic!("expected a claim") };
        assert_eq!(third.key, "p24-purchase:u1:ff:3:2");
        // Not refunded: the repeat reuses the attempt's key.
        assert_eq!(decide(Some(&second), "u1", "ff", 1_015, 300), Decision::Reuse(second.key.clone()));
        // After the window a new purchase starts again from attempt 0, in a later bucket.
        let Decision::Claim(later) = decide(Some(&again), "u1", "ff", 1_400, 300) else { panic!("expected a claim") };
        assert_eq!(later.key, "p24-purchase:u1:ff:4");
    }

    #[test]
    fn buckets_of_negative_time_floor() {
        assert_eq!(bucket(-1, 300), -1);
        assert_eq!(bucket(299, 300), 0);
        assert_eq!(bucket(300, 300), 1);
    }
}
