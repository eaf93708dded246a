//! Changes to other subscriptions a purchase or an operator asks for: end one
//! (`DELETE`), or stop its renewal (`PATCH renew=false`).
//!
//! The billing's side takes effect at once (the local record stops renewing, its
//! renewal timer is cancelled) so nothing is charged for it again; the platform's side
//! is tried now and, when the platform cannot be reached in time, by a durable timer
//! `chore/{kind}/{user}/{id}` that the host retries with backoff until it succeeds.

use crate::api::{Api, ApiError};
use crate::config::Config;
use crate::renewal;
use crate::subscriptions::{self, HistoryEntry, SubState};
use payhost_sdk::{clock, timers};
use serde::{Deserialize, Serialize};

pub const TIMER_PREFIX: &str = "chore/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chore {
    End,
    StopRenewal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    chore: Chore,
    user: String,
    subscription: String,
}

fn call(api: &Api, chore: Chore, user: &str, sid: &str) -> Result<(), ApiError> {
    match chore {
        Chore::End => api.end_subscription(user, sid),
        Chore::StopRenewal => match api.stop_renewal(user, sid) {
            // Gone already: it renews no more.
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        },
    }
}

/// Applies `chore` to subscription `sid` of `account` (platform user `user`).
pub fn apply(api: &Api, account: &str, user: &str, chore: Chore, sid: &str, reason: &str) {
    mark_local(account, chore, sid, reason);
    if let Err(e) = call(api, chore, user, sid) {
        payhost_sdk::warn("platform24 follow-up deferred", &[("subscription", sid), ("error", &e.to_string())]);
        let payload = Payload { chore, user: user.to_owned(), subscription: sid.to_owned() };
        let name = format!("{TIMER_PREFIX}{chore:?}/{user}/{sid}");
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        let now = clock::Instant { seconds: clock::now().seconds, nanoseconds: 0 };
        if let Err(t) = timers::schedule(&name, now, &bytes) {
            payhost_sdk::error("platform24 could not schedule a follow-up", &[("subscription", sid), ("error", &format!("{t:?}"))]);
        }
    }
}

/// The billing's side of `chore`: the record stops renewing (or is ended), its renewal
/// timer is cancelled, and the history says why.
pub fn mark_local(account: &str, chore: Chore, sid: &str, reason: &str) {
    let state = match chore {
        Chore::End => SubState::Ended,
        Chore::StopRenewal => SubState::Stopping,
    };
    let local = subscriptions::update(account, sid, |s| subscriptions::SubRecord {
        state,
        renew: false,
        reason: Some(reason.to_owned()),
        ..s
    });
    if let Err(e) = local.and_then(|()| renewal::cancel(account, sid)) {
        payhost_sdk::error("platform24 could not stop a local subscription", &[("subscription", sid), ("error", &e)]);
    }
    subscriptions::note(
        account,
        &HistoryEntry {
            at: clock::now().seconds,
            event: match chore {
                Chore::End => "ended".into(),
                Chore::StopRenewal => "renewal-stopped".into(),
            },
            subscription: Some(sid.to_owned()),
            packet: None,
            text: reason.to_owned(),
        },
    );
}

/// The deferred platform call; an error makes the host retry later.
pub fn on_timer(config: &Config, payload: &[u8]) -> Result<(), String> {
    let p: Payload = serde_json::from_slice(payload).map_err(|e| format!("bad follow-up payload: {e}"))?;
    call(&Api::background(config), p.chore, &p.user, &p.subscription).map_err(|e| e.to_string())
}
