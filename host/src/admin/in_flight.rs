//! Idempotency keys of admin calls still being carried out. A second call with a key
//! whose first call has not answered yet is refused with 409 at once (as the IETF
//! Idempotency-Key draft and Stripe do) instead of racing it; once the first has
//! answered, the same key with the same request replays that answer (the ledger keeps
//! it), and with another request is a conflict.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
pub struct InFlightKeys {
    keys: Arc<Mutex<HashSet<String>>>,
}

/// Holds a key until dropped.
pub struct Claim {
    keys: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl InFlightKeys {
    /// The key, unless a call holding it is still running.
    pub fn claim(&self, key: &str) -> Option<Claim> {
        let fresh = self.keys.lock().expect("in-flight keys lock").insert(key.to_string());
        fresh.then(|| Claim { keys: self.keys.clone(), key: key.to_string() })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.keys.lock().expect("in-flight keys lock").remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_until_its_call_ends() {
        let keys = InFlightKeys::default();
        let first = keys.claim("k").expect("free");
        assert!(keys.claim("k").is_none(), "a duplicate while the first runs");
        assert!(keys.claim("other").is_some());
        drop(first);
        assert!(keys.claim("k").is_some(), "free again once the first answered");
    }
}
