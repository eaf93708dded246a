//! Recurring profiles: set up when an order is paid, then charged by host timers.
//!
//! One timer per profile, named after its `timer_tick`. The record is always written
//! before the timer is set, so a timer can never fire ahead of the state it is for; a
//! timer that finds an older tick (replaced, or retried after a crash between the
//! write and the scheduling) sets the current one again instead of charging, which
//! repairs a lost schedule and is harmless otherwise.

use crate::config::{Config, BALANCE};
use crate::host::Host;
use crate::ids;
use crate::items;
use crate::order::{Item, ItemOutcome, ItemSpec, Order};
use crate::payment::{self, Answer, Payment};
use crate::profile::{ChargeOutcome, Policy, Profile, ProfileStatus};
use payhost_sdk::records::{self, Change};
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

/// Creates the profile unless it exists, then makes sure its timer is set.
fn ensure_profile(host: &dyn Host, fresh: Profile) -> Result<Profile, String> {
    let key = fresh.key();
    let profile = if records::create(host, &key, &fresh)? {
        host.log(
            Level::Info,
            "webtv recurring profile created",
            &[("profile_id", &fresh.id), ("first_payment_date", &fresh.first_payment_date.to_string())],
        );
        fresh
    } else {
        records::load::<Profile>(host, &key)?
            .map(|(existing, _)| existing)
            .ok_or_else(|| format!("profile `{}` exists but cannot be read", fresh.id))?
    };
    if profile.needs_timer() {
        crate::host::schedule(host, &profile.timer_name(), profile.next_attempt_at)?;
    }
    Ok(profile)
}

fn policy(cfg: &Config) -> Policy {
    Policy { max_failures: cfg.max_failures, retry_after: cfg.retry_after }
}

/// A profile timer fired: charge the period it is for.
pub fn on_timer(host: &dyn Host, cfg: &Config, name: &str) -> Result<(), String> {
    let Some((profile_id, tick)) = ids::parse_timer_name(name) else {
        host.log(Level::Warn, "webtv: ignoring a timer this plugin does not name", &[("timer", name)]);
        return Ok(());
    };
    let Some((profile, _)) = records::load::<Profile>(host, &ids::profile_key(&profile_id))? else {
        return Ok(());
    };
    if !profile.needs_timer() {
        return Ok(());
    }
    if profile.timer_tick != tick {
        return crate::host::schedule(host, &profile.timer_name(), profile.next_attempt_at);
    }
    if crate::host::now(host) < profile.next_attempt_at {
        return Err(format!("timer `{name}` fired before {}", profile.next_attempt_at));
    }
    let request = ChargeRequest {
        amount: profile.amount.clone(),
        currency: profile.currency.clone(),
        description: format!("WebTV subscription {}", profile.sku),
        reference: profile.charge_reference(),
        customer: profile.customer.clone(),
        saved_method: profile.saved_method.clone(),
    };
    let outcome = outcome(host.charge(&profile.system, &request));
    apply(host, cfg, &profile_id, profile.next_index, profile.failures, &outcome)
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

fn outcome(result: Result<PaymentEvent, PayError>) -> ChargeOutcome {
    match payment::answer(result) {
        Answer::Succeeded(event) => ChargeOutcome::Paid { transaction: event.external_id },
        Answer::Failed(message) => ChargeOutcome::Declined { message },
        Answer::Unknown(message) => ChargeOutcome::Retry { message },
    }
}

fn apply(host: &dyn Host, cfg: &Config, profile_id: &str, period: u32, retry: u32, outcome: &ChargeOutcome) -> Result<(), String> {
    let now = crate::host::now(host);
    let policy = policy(cfg);
    let updated = records::update(host, &ids::profile_key(profile_id), |current: Option<Profile>| {
        let Some(mut profile) = current else {
            return Ok((Change::Keep, None));
        };
        if !profile.apply(period, retry, outcome, now, policy) {
            return Ok((Change::Keep, None));
        }
        Ok((Change::Write(profile.clone()), Some(profile)))
    })?;
    let Some(profile) = updated else {
        return Ok(());
    };
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
            ("profile_id", profile_id),
            ("period", &period_text),
            ("detail", detail),
            ("status", profile.status.as_str()),
        ],
    );
    if profile.needs_timer() {
        crate::host::schedule(host, &profile.timer_name(), profile.next_attempt_at)?;
    }
    Ok(())
}

/// Cancels a profile (idempotent); `None` when unknown.
pub fn cancel(host: &dyn Host, profile_id: &str) -> Result<Option<Profile>, String> {
    let (profile, cancelled_tick) = records::update(host, &ids::profile_key(profile_id), |current: Option<Profile>| {
        let Some(mut profile) = current else {
            return Ok((Change::Keep, (None, None)));
        };
        let pending_tick = profile.timer_tick;
        if !profile.cancel() {
            return Ok((Change::Keep, (Some(profile), None)));
        }
        Ok((Change::Write(profile.clone()), (Some(profile), Some(pending_tick))))
    })?;
    if let Some(tick) = cancelled_tick {
        // A timer that escapes this still finds the profile cancelled and does nothing.
        crate::host::cancel(host, &ids::timer_name(profile_id, tick))?;
        host.log(Level::Info, "webtv recurring profile cancelled", &[("profile_id", profile_id)]);
    }
    Ok(profile)
}

/// Loads a profile by the id WebTV knows.
pub fn find(host: &dyn Host, profile_id: &str) -> Result<Option<Profile>, String> {
    Ok(records::load::<Profile>(host, &ids::profile_key(profile_id))?.map(|(p, _)| p))
}
