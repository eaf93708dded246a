//! The optional balance push: `POST /users/{id}/provider/account` `{"id","amount"}`
//! after each change of the subscriber's balance, so the TV app shows it. Off unless
//! `push_balance = true`, because what the platform means by `id` is not verified (we
//! send the provider uid, the billing's id of the account).
//!
//! The push is a timer `push/{provider_uid}` due at once: it runs after the answer,
//! several changes in a row collapse into one push of the latest balance, and the host
//! retries it with backoff while the platform is down.

use crate::api::Api;
use crate::config::Config;
use crate::users;
use payhost_sdk::{clock, ledger, timers};

pub const TIMER_PREFIX: &str = "push/";

pub fn after_change(config: &Config, provider_uid: &str) {
    if !config.push_balance {
        return;
    }
    let at = clock::Instant { seconds: clock::now().seconds, nanoseconds: 0 };
    if let Err(e) = timers::schedule(&format!("{TIMER_PREFIX}{provider_uid}"), at, provider_uid.as_bytes()) {
        payhost_sdk::warn("platform24 could not schedule a balance push", &[("user", provider_uid), ("error", &format!("{e:?}"))]);
    }
}

pub fn on_timer(config: &Config, payload: &[u8]) -> Result<(), String> {
    if !config.push_balance {
        return Ok(());
    }
    let uid = String::from_utf8_lossy(payload).into_owned();
    let Some(link) = users::link(&uid)? else {
        payhost_sdk::warn("platform24 balance push for a subscriber without a platform user", &[("user", &uid)]);
        return Ok(());
    };
    let Some(account) = ledger::get_account(&config.account(&uid)).map_err(|e| format!("ledger: {e:?}"))? else {
        return Ok(());
    };
    Api::background(config).push_balance(&link.platform_user, &uid, &account.balance).map_err(|e| e.to_string())?;
    payhost_sdk::info("platform24 balance pushed", &[("user", &uid)]);
    Ok(())
}
