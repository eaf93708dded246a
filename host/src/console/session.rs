//! Console sign-in sessions. The browser never holds the admin token after signing in:
//! it holds a random session id in an HttpOnly cookie, and the page holds (in memory
//! only) a second random value that state-changing calls must echo in a header, which
//! a cross-site form or image cannot do. Sessions live in memory: a restart signs
//! everyone out, which is the safe direction.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::capabilities::signing::constant_time_eq;

/// A session not used for this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// A session is gone this long after sign-in, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at once; signing in beyond this drops the least recently used.
const MAX_SESSIONS: usize = 256;

/// What a signed-in browser gets: the cookie value and the header value.
#[derive(Debug, Clone)]
pub struct Issued {
    pub id: String,
    pub csrf: String,
}

struct Session {
    csrf: String,
    signed_in: Instant,
    last_used: Instant,
}

#[derive(Default)]
pub struct Sessions {
    /// Keyed by the SHA-256 of the session id, so a lookup's timing says nothing about
    /// how much of a guessed id was right.
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn issue(&self, now: Instant) -> Issued {
        let issued = Issued { id: random_hex(), csrf: random_hex() };
        let mut map = self.by_hash.lock().expect("sessions lock");
        map.retain(|_, s| alive(s, now));
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(hash(&issued.id), Session { csrf: issued.csrf.clone(), signed_in: now, last_used: now });
        issued
    }

    /// The session's CSRF value when `id` names a live session (and marks it used).
    pub fn csrf(&self, id: &str, now: Instant) -> Option<String> {
        let mut map = self.by_hash.lock().expect("sessions lock");
        let key = hash(id);
        let session = map.get_mut(&key)?;
        if !alive(session, now) {
            map.remove(&key);
            return None;
        }
        session.last_used = now;
        Some(session.csrf.clone())
    }

    /// Whether `id` names a live session whose CSRF value is `csrf`.
    pub fn check(&self, id: &str, csrf: &str, now: Instant) -> bool {
        self.csrf(id, now).is_some_and(|expected| constant_time_eq(expected.as_bytes(), csrf.as_bytes()))
    }

    pub fn end(&self, id: &str) {
        self.by_hash.lock().expect("sessions lock").remove(&hash(id));
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.saturating_duration_since(s.last_used) < IDLE_TIMEOUT && now.saturating_duration_since(s.signed_in) < MAX_AGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_answers_with_its_own_csrf_value_only() {
        let sessions = Sessions::new();
        let now = Instant::now();
        let a = sessions.issue(now);
        let b = sessions.issue(now);
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, a.id);
        assert!(sessions.check(&a.id, &a.csrf, now));
        assert!(!sessions.check(&a.id, &b.csrf, now));
        assert!(!sessions.check("not-a-session", &a.csrf, now));
        assert!(!sessions.check(&a.id, "", now));
    }

    #[test]
    fn idle_and_old_sessions_expire_and_ended_ones_are_gone() {
        let sessions = Sessions::new();
        let start = Instant::now();
        let a = sessions.issue(start);
        assert!(sessions.csrf(&a.id, start + IDLE_TIMEOUT - Duration::from_secs(1)).is_some());
        // Used just now, so idle time restarts; the absolute age still ends it.
        let mut t = start;
        while t + IDLE_TIMEOUT / 2 < start + MAX_AGE {
            t += IDLE_TIMEOUT / 2;
            assert!(sessions.csrf(&a.id, t).is_some());
        }
        assert!(sessions.csrf(&a.id, start + MAX_AGE).is_none());

        let b = sessions.issue(start);
        assert!(sessions.csrf(&b.id, start + IDLE_TIMEOUT).is_none());

        let c = sessions.issue(start);
        sessions.end(&c.id);
        assert!(sessions.csrf(&c.id, start).is_none());
    }

    #[test]
    fn the_number_of_sessions_is_bounded() {
        let sessions = Sessions::new();
        let start = Instant::now();
        let first = sessions.issue(start);
        for i in 1..=MAX_SESSIONS {
            sessions.issue(start + Duration::from_millis(i as u64));
        }
        assert!(sessions.csrf(&first.id, start + Duration::from_secs(1)).is_none());
        assert_eq!(sessions.by_hash.lock().unwrap().len(), MAX_SESSIONS);
    }
}
