//! What this host last planned for each account it posted to: the balance, currency and
//! overdraft its latest batch left (or will leave, once that batch commits). A batch
//! whose accounts are all known can be planned before it reaches the server and sent in
//! one round trip, with the server checking, under the accounts' locks, that the rows
//! are still what the plan assumed (`batch`). Nothing here is trusted: a wrong entry
//! (another host posted, an operator changed an overdraft, the batch that recorded it
//! rolled back) costs one rerun on the slow path, never a wrong answer. An account whose
//! batch failed is then left to the slow path for a while (`PAUSE`): when several hosts
//! post to it at once, each one's memory of it is usually stale, and every fast-path
//! batch would fail its check before running again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::storage::AccountRow;

/// Accounts remembered at most; past it the memory starts over (a full Netflix run
/// touches one account per customer, and a forgotten account costs one slow batch).
const CAPACITY: usize = 65_536;

/// How long a batch waits for the one planned before it to hold its locks (about a
/// round trip, as a rule).
const PATIENCE: Duration = Duration::from_millis(50);

/// Batches on an account that go the slow path (and are not remembered) after a batch on
/// it failed.
const PAUSE: u32 = 32;

#[derive(Default)]
pub(super) struct KnownAccounts(Mutex<Known>);

#[derive(Default)]
struct Known {
    rows: HashMap<String, AccountRow>,
    /// Accounts left to the slow path, with how many more of their batches go that way.
    paused: HashMap<String, u32>,
    /// When the batch planned last has its accounts locked (see `Held::take_turn`).
    last_locked: Option<watch::Receiver<bool>>,
}

/// The known accounts, held: a batch planned on them remembers what it leaves before
/// the next batch can look, so of two batches planned at once the second plans on the
/// first's rows (two batches run at once, and both usually touch the hot account).
pub(super) struct Held<'a>(MutexGuard<'a, Known>);

/// A planned batch's place in line: it sends nothing before the batch planned before it
/// holds its locks (`wait`), and says when it holds its own (`locked`, or dropped).
pub(super) struct Turn {
    before: Option<watch::Receiver<bool>>,
    mine: watch::Sender<bool>,
}

impl Turn {
    /// Waits until the batch planned before holds its accounts' locks, has ended, or has
    /// been waited for `PATIENCE`.
    pub(super) async fn wait(&mut self) {
        if let Some(before) = self.before.as_mut() {
            // An error is the sender dropped: that batch ended, locked or not. Past the
            // patience the order is not worth more: a batch stuck on a lock someone else
            // holds must not hold up this host's batches on other accounts, and one
            // that goes first by mistake only fails its check and runs again.
            let _ = tokio::time::timeout(PATIENCE, before.wait_for(|locked| *locked)).await;
        }
    }

    /// This batch holds its accounts' locks (or failed to take them): the next may send.
    pub(super) fn locked(&self) {
        self.mine.send_replace(true);
    }
}

impl KnownAccounts {
    pub(super) fn hold(&self) -> Held<'_> {
        // A panic while holding this lock leaves at worst a stale entry, which the
        // server's check catches.
        Held(self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Remembers rows as a planned batch leaves them.
    pub(super) fn remember<'a>(&self, rows: impl IntoIterator<Item = &'a AccountRow>) {
        self.hold().remember(rows);
    }

    /// Forgets the accounts of a batch that did not commit (what it recorded may never
    /// have happened), and pauses them.
    pub(super) fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        let mut known = self.hold();
        for id in ids {
            known.0.rows.remove(id);
            if known.0.paused.len() >= CAPACITY && !known.0.paused.contains_key(id) {
                known.0.paused.clear();
            }
            known.0.paused.insert(id.clone(), PAUSE);
        }
    }
}

impl Held<'_> {
    /// The rows of `ids`, or `None` unless every one is known.
    pub(super) fn rows_of(&self, ids: &[String]) -> Option<HashMap<String, AccountRow>> {
        ids.iter().map(|id| self.0.rows.get(id).map(|row| (id.clone(), row.clone()))).collect()
    }

    pub(super) fn remember<'a>(&mut self, rows: impl IntoIterator<Item = &'a AccountRow>) {
        let Known { rows: known, paused, .. } = &mut *self.0;
        for row in rows {
            if let Some(left) = paused.get_mut(&row.id) {
                *left -= 1;
                if *left == 0 {
                    paused.remove(&row.id);
                }
                continue;
            }
            if known.len() >= CAPACITY && !known.contains_key(&row.id) {
                known.clear();
            }
            known.insert(row.id.clone(), row.clone());
        }
    }

    /// The line of batches planned here. A batch planned on the rows the one before will
    /// leave must reach the accounts' locks after it: sent at once, on another
    /// connection, it could get there first, find the rows as they were and fail its
    /// check. So each waits until the one before holds the locks (its check has
    /// answered), which costs nothing while that one's writes and commit are under way.
    pub(super) fn take_turn(&mut self) -> Turn {
        let (mine, locked) = watch::channel(false);
        Turn { before: self.0.last_locked.replace(locked), mine }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, balance: i64) -> AccountRow {
        AccountRow { id: id.into(), currency: "RUB".into(), balance, overdraft: 0, created_at: 1 }
    }

    #[test]
    fn rows_of_answers_only_when_every_account_is_known() {
        let known = KnownAccounts::default();
        known.remember([&row("a", 1), &row("b", 2)]);
        let both = known.hold().rows_of(&["a".into(), "b".into()]).expect("both known");
        assert_eq!((both["a"].balance, both["b"].balance), (1, 2));
        assert!(known.hold().rows_of(&["a".into(), "c".into()]).is_none());
    }

    #[test]
    fn the_latest_plan_wins_and_a_forgotten_account_is_unknown() {
        let known = KnownAccounts::default();
        known.remember([&row("a", 1)]);
        known.remember([&row("a", 5)]);
        assert_eq!(known.hold().rows_of(&["a".into()]).unwrap()["a"].balance, 5);
        known.forget([&"a".to_string()]);
        assert!(known.hold().rows_of(&["a".into()]).is_none());
    }

    #[test]
    fn an_account_whose_batch_failed_is_left_to_the_slow_path_for_a_while() {
        let known = KnownAccounts::default();
        known.remember([&row("a", 1), &row("b", 1)]);
        known.forget([&"a".to_string()]);
        for balance in 0..PAUSE {
            known.remember([&row("a", i64::from(balance)), &row("b", 2)]);
            assert!(known.hold().rows_of(&["a".into()]).is_none(), "paused after {balance} batches");
        }
        assert_eq!(known.hold().rows_of(&["b".into()]).unwrap()["b"].balance, 2, "other accounts carry on");
        known.remember([&row("a", 7)]);
        assert_eq!(known.hold().rows_of(&["a".into()]).unwrap()["a"].balance, 7);
    }

    #[tokio::test]
    async fn a_turn_waits_for_the_one_before_to_lock_or_end() {
        use futures::FutureExt;
        let known = KnownAccounts::default();
        let first = known.hold().take_turn();
        let mut second = known.hold().take_turn();
        let mut third = known.hold().take_turn();
        assert!(second.wait().now_or_never().is_none(), "the first has not locked yet");
        first.locked();
        assert!(second.wait().now_or_never().is_some());
        assert!(third.wait().now_or_never().is_none());
        drop(second);
        assert!(third.wait().now_or_never().is_some(), "the second ended without locking");
    }
}
