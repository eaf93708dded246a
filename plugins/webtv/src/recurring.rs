//! Recurring profiles: set up when an order is paid, then charged when due.
//!
//! Each active profile has an entry in the due index (`due`), written with it, and a
//! run timer for its due instant; the run (`charge_run`) charges every profile due by
//! then in batches. The record is always written before the timer is set, so a timer
//! can never fire ahead of the state it is for, and a run that fires without a timer
//! for what is left sets one, which repairs a schedule lost in a crash.
//!
//! Profiles made by plugin versions before the due index have a timer of their own,
//! named after the profile's `timer_tick`. Such a timer still charges its profile once;
//! from then on the profile is in the index. One that finds an older tick (replaced, or
//! retried after a crash) only puts the profile in the index.

use crate::config::{Config, BALANCE};
use crate::due;
use crate::host::Host;
use crate::ids;
use crate::items;
use crate::order::{Item, ItemOutcome, ItemSpec, Order};
use crate::payment::{self, Answer, Payment};
use crate::profile::{ChargeOutcome, Policy, Profile, ProfileStatus};
use payhost_sdk::log::Level;
use payhost_sdk::payments::{ChargeRequest, Error as PayError, PaymentEvent};

/// `rp_n_error` when the card was paid but not kept for later charges.
pub const NO_SAVED_METHOD: &str = "The payment method was not saved for recurring charges";

/// Sets up a profile for every valid item of a paid order (idempotent) and returns
/// what the return URL reports for each item.
pub fn create_profiles(host: &dyn Host, order: &Order, payment: &Payment) -> Result<Vec<ItemOutcome>, String> {
    let now = crate::host::now(host);
    order
        .items
        .iter()
        .map(|item| match item {
            Item::Invalid { index, error } => Ok(items::failed_outcome(*index, error)),
            Item::Valid(spec) => {
                if payment.system != BALANCE && payment.saved_method.is_none() {
                    return Ok(items::failed_outcome(spec.index, NO_SAVED_METHOD));
                }
                let profile = ensure_profile(host, new_profile(order, spec, payment, now))?;
                Ok(ItemOutcome {
                    index: spec.index,
                    error: None,
                    profile_id: profile.id.clone(),
                    status: profile.status.as_str().to_string(),
                    first_payment_date: spec.first_payment_date,
                })
            }
        })
        .collect()
}

fn new_profile(order: &Order, spec: &ItemSpec, payment: &Payment, now: i64) -> Profile {
    Profile {
        id: ids::profile_id(&order.slug(), spec.index),
        id_gateway: order.id_gateway.clone(),
        id_order: order.id_order.clone(),
        sku: spec.sku.clone(),
        amount: spec.amount.clone(),
        currency: order.currency.clone(),
        period: spec.period,
        frequency: spec.frequency,
        first_payment_date: spec.first_payment_date,
        customer: order.customer.clone(),
        system: payment.system.clone(),
        saved_method: payment.saved_method.clone(),
        status: ProfileStatus::Active,
        next_index: 0,
        failures: 0,
        last_payment_date: 0,
        next_attempt_at: spec.first_payment_date,
        timer_tick: 0,
        payments: 0,
        last_transaction: None,
        last_error: None,
        created_at: now,
    }
}

/// Creates the profile unless it exists, then makes sure it is in the due index and
/// its run timer is set.
fn ensure_profile(host: &dyn Host, fresh: Profile) -> Result<Profile, String> {
    let profile = if due::create(host, &fresh)? {
        host.log(
            Level::Info,
            "webtv recurring profile created",
            &[("profile_id", &fresh.id), ("first_payment_date", &fresh.first_payment_date.to_string())],
        );
        fresh
    } else {
        index(host, &fresh.id)?.ok_or_else(|| format!("profile `{}` exists but cannot be read", fresh.id))?
    };
    if profile.needs_timer() {
        due::schedule_run(host, profile.next_attempt_at)?;
    }
    Ok(profile)
}

/// Makes sure an active profile has its due-index entry (a profile of an older plugin
/// version has only a timer of its own); returns the profile, `None` when unknown.
fn index(host: &dyn Host, profile_id: &str) -> Result<Option<Profile>, String> {
    due::update(host, profile_id, |p| (p.needs_timer().then(|| p.clone()), p.clone()))
}

pub fn policy(cfg: &Config) -> Policy {
    Policy { max_failures: cfg.max_failures, retry_after: cfg.retry_after }
}

/// A timer fired: a charge run, or the own timer of a profile from before the due index.
pub fn on_timer(host: &dyn Host, cfg: &Config, name: &str) -> Result<(), String> {
    if due::parse_run_timer(name).is_some() {
        return crate::charge_run::run(host, cfg);
    }
    let Some((profile_id, tick)) = ids::parse_timer_name(name) else {
        host.log(Level::Warn, "webtv: ignoring a timer this plugin does not name", &[("timer", name)]);
        return Ok(());
    };
    let Some(stored) = due::load(host, &profile_id)? else {
        return Ok(());
    };
    let profile = stored.profile;
    if !profile.needs_timer() {
        return Ok(());
    }
    if profile.timer_tick != tick {
        if let Some(profile) = index(host, &profile_id)? {
            due::schedule_run(host, profile.next_attempt_at)?;
        }
        return Ok(());
    }
    if crate::host::now(host) < profile.next_attempt_at {
        return Err(format!("timer `{name}` fired before {}", profile.next_attempt_at));
    }
    let outcome = outcome(host.charge(&profile.system, &charge_request(&profile)));
    apply(host, cfg, &profile_id, profile.next_index, profile.failures, &outcome)
}

/// The charge for the period (and retry) the profile is at.
pub fn charge_request(profile: &Profile) -> ChargeRequest {
    ChargeRequest {
        amount: profile.amount.clone(),
        currency: profile.currency.clone(),
        description: format!("WebTV subscription {}", profile.sku),
        reference: profile.charge_reference(),
        customer: profile.customer.clone(),
        saved_method: profile.saved_method.clone(),
    }
}

/// A payment event for a recurring charge (one that was pending when charged).
pub fn on_charge_event(
    host: &dyn Host,
    cfg: &Config,
    event: PaymentEvent,
    profile_id: &str,
    period: u32,
    retry: u32,
) -> Result<(), String> {
    match outcome(Ok(event)) {
        ChargeOutcome::Retry { .. } => Ok(()),
        outcome => apply(host, cfg, profile_id, period, retry, &outcome),
    }
}

pub fn outcome(result: Result<PaymentEvent, PayError>) -> ChargeOutcome {
    match payment::answer(result) {
        Answer::Succeeded(event) => ChargeOutcome::Paid { transaction: event.external_id },
        Answer::Failed(message) => ChargeOutcome::Declined { message },
        Answer::Unknown(message) => ChargeOutcome::Retry { message },
    }
}

/// Applies a charge's outcome to the profile it was for, re-reading it until the write
/// sticks; then logs it and sets the run timer of its next attempt.
pub fn apply(host: &dyn Host, cfg: &Config, profile_id: &str, period: u32, retry: u32, outcome: &ChargeOutcome) -> Result<(), String> {
    let now = crate::host::now(host);
    let policy = policy(cfg);
    let updated = due::update(host, profile_id, |current| {
        let mut profile = current.clone();
        if !profile.apply(period, retry, outcome, now, policy) {
            return (None, None);
        }
        (Some(profile.clone()), Some(profile))
    })?;
    let Some(profile) = updated.flatten() else {
        return Ok(());
    };
    log_outcome(host, &profile, period, outcome);
    if profile.needs_timer() {
        due::schedule_run(host, profile.next_attempt_at)?;
    }
    Ok(())
}

/// The log line of a charge outcome that was applied to `profile`.
pub fn log_outcome(host: &dyn Host, profile: &Profile, period: u32, outcome: &ChargeOutcome) {
    let period_text = period.to_string();
    let (level, message, detail) = match outcome {
        ChargeOutcome::Paid { transaction } => (Level::Info, "webtv recurring charge paid", transaction.as_str()),
        ChargeOutcome::Declined { message } => (Level::Warn, "webtv recurring charge declined", message.as_str()),
        ChargeOutcome::Retry { message } => (Level::Info, "webtv recurring charge to be retried", message.as_str()),
    };
    host.log(
        level,
        message,
        &[
            ("profile_id", &profile.id),
            ("period", &period_text),
            ("detail", detail),
            ("status", profile.status.as_str()),
        ],
    );
}

/// Cancels a profile (idempotent); `None` when unknown.
pub fn cancel(host: &dyn Host, profile_id: &str) -> Result<Option<Profile>, String> {
    let Some((profile, cancelled_tick)) = due::update(host, profile_id, |current| {
        let mut profile = current.clone();
        let pending_tick = profile.timer_tick;
        if !profile.cancel() {
            return (None, (profile, None));
        }
        (Some(profile.clone()), (profile, Some(pending_tick)))
    })?
    else {
        return Ok(None);
    };
    if let Some(tick) = cancelled_tick {
        // Its entry left the due index with the write. A profile from before the index
        // may still have a timer of its own; one that escapes this finds the profile
        // cancelled and does nothing.
        crate::host::cancel(host, &ids::timer_name(profile_id, tick))?;
        host.log(Level::Info, "webtv recurring profile cancelled", &[("profile_id", profile_id)]);
    }
    Ok(Some(profile))
}

/// Loads a profile by the id WebTV knows.
pub fn find(host: &dyn Host, profile_id: &str) -> Result<Option<Profile>, String> {
    Ok(due::load(host, profile_id)?.map(|stored| stored.profile))
}
