//! Keeps the charge loop alive on host timers.
//!
//! One durable timer (`charge-poll`) runs an iteration and schedules itself again, after
//! Netflix's `Netflix-NextCallInSeconds` or an error backoff. The loop starts on its own:
//! every request and the host's `start` timer make sure a poll is scheduled, and a loop
//! whose timer is long overdue (lost) is scheduled again.

use crate::charge_loop;
use crate::config::Config;
use crate::repo::{self, LoopState};
use payhost_sdk::{clock, timers};

/// Timer that runs one charge-loop iteration.
pub const POLL_TIMER: &str = "charge-poll";
/// Timer (or host signal) that only makes sure the loop is running.
pub const START_TIMER: &str = "start";

/// How long past its due time a poll may be before we consider the timer lost.
const OVERDUE_SECONDS: i64 = 60;

/// Schedules a poll now unless one is already due or running.
pub fn ensure_running() -> Result<(), String> {
    let now = clock::now().seconds;
    match repo::loop_state()? {
        Some(state) if state.next_at + OVERDUE_SECONDS >= now => Ok(()),
        state => schedule(state.unwrap_or_default(), now),
    }
}

/// Polls as soon as the host's scheduler runs (operator's "poll now").
pub fn poll_now() -> Result<LoopState, String> {
    let state = repo::loop_state()?.unwrap_or_default();
    let now = clock::now().seconds;
    schedule(state, now)?;
    repo::loop_state().map(Option::unwrap_or_default)
}

/// The poll timer fired: run an iteration and schedule the next one.
pub fn on_poll() -> Result<(), String> {
    let config = Config::load()?;
    let started = clock::now().seconds;
    // Tell `ensure_running` the loop is alive while this iteration runs.
    let mut state = repo::loop_state()?.unwrap_or_default();
    state.next_at = started;
    repo::save_loop_state(&state)?;

    let outcome = charge_loop::run(&config);

    let now = clock::now().seconds;
    let mut state = repo::loop_state()?.unwrap_or_default();
    state.last_run_at = Some(now);
    state.last_events = outcome.events;
    state.last_results_sent = outcome.results_sent;
    let delay = match outcome.failure {
        None => {
            state.failures = 0;
            state.last_error = None;
            config.poll.after_success(outcome.next_call.as_deref())
        }
        Some(problem) => {
            state.failures = state.failures.saturating_add(1);
            state.last_error = Some(problem);
            config.poll.after_failure(state.failures)
        }
    };
    schedule(state, now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX / 2)))
}

fn schedule(mut state: LoopState, at: i64) -> Result<(), String> {
    timers::schedule(POLL_TIMER, clock::Instant { seconds: at, nanoseconds: 0 }, &[]).map_err(|e| match e {
        timers::Error::Invalid(m) => format!("poll timer refused: {m}"),
        timers::Error::Backend(m) => format!("poll timer not stored: {m}"),
    })?;
    state.next_at = at;
    repo::save_loop_state(&state)
}
