//! A recurring payment profile and how each charge result moves it on.
//!
//! Pure state: no host calls, so every transition is unit-tested. The charge for
//! period `next_index` after `failures` declines uses the reference
//! `ids::charge_reference(id, next_index, failures)`: a result is applied only to the
//! `(period, retry)` it was charged for, so a result seen twice (a timer retried by the
//! host, a payment event after the timer already saw the answer) changes nothing.

use crate::ids;
use crate::schedule::{self, Period};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProfileStatus {
    Active,
    Pending,
    Cancelled,
    Suspended,
    Expired,
}

impl ProfileStatus {
    /// The word WebTV expects.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileStatus::Active => "Active",
            ProfileStatus::Pending => "Pending",
            ProfileStatus::Cancelled => "Cancelled",
            ProfileStatus::Suspended => "Suspended",
            ProfileStatus::Expired => "Expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    pub id_gateway: String,
    pub id_order: String,
    pub sku: String,
    /// Decimal text, per charge.
    pub amount: String,
    pub currency: String,
    pub period: Period,
    pub frequency: u32,
    pub first_payment_date: i64,
    /// Ledger account / payment-system customer.
    pub customer: String,
    /// Payment system charged (`balance` or the one that saved the card).
    pub system: String,
    pub saved_method: Option<String>,
    pub status: ProfileStatus,
    /// Period of the next charge (0 = the first payment date).
    pub next_index: u32,
    /// Consecutive declined tries (of this period).
    pub failures: u32,
    /// Unix seconds of the last successful charge, 0 before the first.
    pub last_payment_date: i64,
    /// When the timer charges next (a due date, or a retry).
    pub next_attempt_at: i64,
    /// Bumped on every reschedule; part of the timer's name.
    pub timer_tick: u64,
    pub payments: u32,
    pub last_transaction: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// What one charge came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Paid { transaction: String },
    /// A definite refusal: counts towards suspension, the retry gets a new reference.
    Declined { message: String },
    /// No answer yet (pending, payment system down): try the same reference later.
    Retry { message: String },
}

/// Operator settings that govern retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_failures: u32,
    pub retry_after: i64,
}

impl Profile {
    pub fn key(&self) -> String {
        ids::profile_key(&self.id)
    }

    pub fn timer_name(&self) -> String {
        ids::timer_name(&self.id, self.timer_tick)
    }

    /// Reference of the charge the timer makes next.
    pub fn charge_reference(&self) -> String {
        ids::charge_reference(&self.id, self.next_index, self.failures)
    }

    /// What `rp_status` reports as the next payment date (0 when none will come).
    pub fn next_payment_date(&self) -> i64 {
        if self.status == ProfileStatus::Active {
            self.next_attempt_at
        } else {
            0
        }
    }

    /// True when the profile waits for a timer.
    pub fn needs_timer(&self) -> bool {
        self.status == ProfileStatus::Active
    }

    /// Applies the result of the charge made for `(period, retry)`. False (and no
    /// change) when the profile has already moved past that charge.
    pub fn apply(&mut self, period: u32, retry: u32, outcome: &ChargeOutcome, now: i64, policy: Policy) -> bool {
        if self.next_index != period || self.failures != retry {
            return false;
        }
        // Money taken while a cancellation raced the charge is still recorded.
        let active = self.status == ProfileStatus::Active;
        match outcome {
            ChargeOutcome::Paid { transaction } => {
                self.last_payment_date = now;
                self.last_transaction = Some(transaction.clone());
                self.last_error = None;
                self.payments += 1;
                self.failures = 0;
                self.next_index += 1;
                match schedule::due_at(self.first_payment_date, self.period, self.frequency, self.next_index) {
                    Some(at) => self.next_attempt_at = at,
                    None if active => self.status = ProfileStatus::Expired,
                    None => {}
                }
            }
            ChargeOutcome::Declined { message } => {
                self.failures += 1;
                self.last_error = Some(message.clone());
                if active && self.failures >= policy.max_failures {
                    self.status = ProfileStatus::Suspended;
                } else {
                    self.next_attempt_at = now + policy.retry_after;
                }
            }
            ChargeOutcome::Retry { message } => {
                self.last_error = Some(message.clone());
                self.next_attempt_at = now + policy.retry_after;
            }
        }
        self.timer_tick += 1;
        true
    }

    /// Stops future charges; true when the status changed.
    pub fn cancel(&mut self) -> bool {
        if self.status == ProfileStatus::Cancelled {
            return false;
        }
        self.status = ProfileStatus::Cancelled;
        self.timer_tick += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy { max_failures: 3, retry_after: 3600 };
    const DAY: i64 = 86_400;

    fn profile() -> Profile {
        Profile {
            id: "rp-3-99-0".into(),
            id_gateway: "3".into(),
            id_order: "99".into(),
            sku: "GOLD".into(),
            amount: "9.99".into(),
            currency: "USD".into(),
            period: Period::Day,
            frequency: 10,
            first_payment_date: 1_000 * DAY,
            customer: "7".into(),
            system: "balance".into(),
            saved_method: None,
            status: ProfileStatus::Active,
            next_index: 0,
            failures: 0,
            last_payment_date: 0,
            next_attempt_at: 1_000 * DAY,
            timer_tick: 0,
            payments: 0,
            last_transaction: None,
            last_error: None,
            created_at: 990 * DAY,
        }
    }

    fn paid() -> ChargeOutcome {
        ChargeOutcome::Paid { transaction: "tx".into() }
    }

    fn declined() -> ChargeOutcome {
        ChargeOutcome::Declined { message: "no money".into() }
    }

    #[test]
    fn a_payment_moves_to_the_next_period() {
        let mut p = profile();
        assert_eq!(p.charge_reference(), "rp-3-99-0-p0");
        assert!(p.apply(0, 0, &paid(), 1_000 * DAY + 5, POLICY));
        assert_eq!((p.next_index, p.payments, p.last_payment_date), (1, 1, 1_000 * DAY + 5));
        assert_eq!(p.next_attempt_at, 1_010 * DAY);
        assert_eq!(p.charge_reference(), "rp-3-99-0-p1");
        assert_eq!(p.timer_name(), "rp-3-99-0/t1");
    }

    #[test]
    fn a_result_applies_once() {
        let mut p = profile();
        assert!(p.apply(0, 0, &paid(), 1_000 * DAY, POLICY));
        let after = p.clone();
        assert!(!p.apply(0, 0, &paid(), 1_000 * DAY, POLICY));
        assert_eq!(p, after);
    }

    #[test]
    fn declines_retry_with_new_references_then_suspend() {
        let mut p = profile();
        let now = 1_000 * DAY;
        assert!(p.apply(0, 0, &declined(), now, POLICY));
        assert_eq!((p.failures, p.next_attempt_at), (1, now + 3600));
        assert_eq!(p.charge_reference(), "rp-3-99-0-p0-r1");
        assert!(p.apply(0, 1, &declined(), now + 3600, POLICY));
        assert_eq!(p.status, ProfileStatus::Active);
        assert!(p.apply(0, 2, &declined(), now + 7200, POLICY));
        assert_eq!(p.status, ProfileStatus::Suspended);
        assert_eq!(p.next_payment_date(), 0);
        assert!(!p.needs_timer());
    }

    #[test]
    fn success_resets_the_failure_count() {
        let mut p = profile();
        let now = 1_000 * DAY;
        p.apply(0, 0, &declined(), now, POLICY);
        p.apply(0, 1, &declined(), now + 3600, POLICY);
        assert!(p.apply(0, 2, &paid(), now + 7200, POLICY));
        assert_eq!((p.failures, p.next_index, p.status), (0, 1, ProfileStatus::Active));
        // The schedule keeps its anchor: the late payment does not shift period 1.
        assert_eq!(p.next_attempt_at, 1_010 * DAY);
    }

    #[test]
    fn pending_retries_the_same_reference() {
        let mut p = profile();
        let reference = p.charge_reference();
        assert!(p.apply(0, 0, &ChargeOutcome::Retry { message: "pending".into() }, 1_000 * DAY, POLICY));
        assert_eq!(p.charge_reference(), reference);
        assert_eq!(p.failures, 0);
        assert_eq!(p.next_attempt_at, 1_000 * DAY + 3600);
    }

    #[test]
    fn cancelling_stops_the_timer_but_keeps_raced_money() {
        let mut p = profile();
        assert!(p.cancel());
        assert!(!p.cancel());
        assert!(!p.needs_timer());
        assert_eq!(p.next_payment_date(), 0);
        assert!(p.apply(0, 0, &paid(), 1_000 * DAY, POLICY));
        assert_eq!((p.status, p.payments), (ProfileStatus::Cancelled, 1));
        assert!(p.apply(1, 0, &declined(), 1_000 * DAY, POLICY));
        assert_eq!(p.status, ProfileStatus::Cancelled);
    }

    #[test]
    fn the_end_of_the_calendar_expires() {
        let mut p = profile();
        p.period = Period::Year;
        p.frequency = 9000;
        assert!(p.apply(0, 0, &paid(), 1_000 * DAY, POLICY));
        assert_eq!(p.status, ProfileStatus::Expired);
    }
}
