//! Property tests of the ledger against the in-memory model of its rules
//! (`support/ledger_model.rs`), on SQLite (a temp file per case) and on PostgreSQL (a
//! fresh schema per case, dropped afterwards; without a reachable server the test says
//! `SKIPPED postgres: <reason>` and passes):
//! - `sequential`: random calls one after another (`support/ledger_steps.rs`); each
//!   answer must be the model's, and so must every account and history at the end.
//! - `concurrent`: tasks posting at once through one ledger (`support/ledger_crowd.rs`);
//!   storage must equal the model fed the accepted postings in storage's order.
//! - pinned tests: the smallest form of each rule a property found broken.
//!
//! A failure prints the smallest case proptest shrank it to. `PROPTEST_CASES` sets the
//! number of cases of every property here, for a deeper run than the default.

mod support;

#[path = "support/ledger_model.rs"]
mod model;

#[path = "support/ledger_steps.rs"]
mod steps;

#[path = "support/ledger_crowd.rs"]
mod crowd;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use payhost::clock::HostClock;
use payhost::ledger::{Ledger, LedgerError};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestCaseResult, TestRunner};
use support::TestDb;

/// Cases of one property on each backend.
struct Cases {
    sqlite: u32,
    postgres: u32,
}

// Case counts keep the whole file well under a minute per backend in a debug build on a
// 2-core machine. A sequential case is a setup of 6 calls and up to 40 random ones, a
// concurrent case up to 5 tasks of 10 calls. Every case gets a database of its own: a
// SQLite file costs a few milliseconds, a PostgreSQL schema with its migrations about
// 0.4 s, hence fewer PostgreSQL cases. Measured on a busy machine (load 6 to 9), one
// test at a time, all cases passing: sequential 11 s (SQLite, 192 cases) and 17 s
// (PostgreSQL, 40), concurrent 4 s (96) and 9 s (24). Shrinking a failure runs more
// cases, so it is bounded too.
const SEQUENTIAL_CASES: Cases = Cases { sqlite: 192, postgres: 40 };
const SEQUENTIAL_STEPS: usize = 40;
const CONCURRENT_CASES: Cases = Cases { sqlite: 96, postgres: 24 };
const MAX_SHRINK_ITERS: u32 = 100;

/// Answers by kind of call, summed over a property's cases: shows what the generated
/// cases reached (a kind of call that is never accepted tests little).
pub type Tally = BTreeMap<String, usize>;

pub fn add_up(total: &Mutex<Tally>, case: Tally) {
    let mut total = total.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for (kind, count) in case {
        *total.entry(kind).or_default() += count;
    }
}

/// Prints what the cases reached (also when one failed), then fails on a failure.
fn conclude(name: &str, backend: Backend, tally: Mutex<Tally>, result: Result<(), String>) {
    let tally = tally.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !tally.is_empty() {
        let answers: Vec<String> = tally.iter().map(|(kind, count)| format!("{kind} {count}")).collect();
        println!("{name} on {backend:?} answered: {}", answers.join(", "));
    }
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    async fn db(self) -> Option<TestDb> {
        match self {
            Backend::Sqlite => Some(TestDb::sqlite()),
            Backend::Postgres => TestDb::postgres().await,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Runs `case` on `cases` values of `strategy`, each on a database of its own; `Err`
/// is the smallest failing case found.
fn property<S, F, Fut>(name: &str, backend: Backend, cases: Cases, strategy: S, case: F) -> Result<(), String>
where
    S: Strategy,
    F: Fn(Arc<Ledger>, S::Value) -> Fut,
    Fut: Future<Output = TestCaseResult>,
{
    let runtime = runtime();
    if runtime.block_on(backend.db()).is_none() {
        return Ok(());
    }
    let cases = match backend {
        Backend::Sqlite => cases.sqlite,
        Backend::Postgres => cases.postgres,
    };
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    let config = Config { cases, failure_persistence: None, max_shrink_iters: MAX_SHRINK_ITERS, ..Config::default() };
    let started = Instant::now();
    let result = TestRunner::new(config).run(&strategy, |value| {
        runtime.block_on(async {
            let db = backend.db().await.ok_or_else(|| TestCaseError::fail("the database went away"))?;
            let ledger = Arc::new(Ledger::new(db.open().await, HostClock::system()));
            case(ledger, value).await
        })
    });
    let outcome = if result.is_ok() { format!("{cases} cases passed") } else { "failed, shrinking included,".to_string() };
    println!("{name} on {backend:?}: {outcome} in {:.1} s", started.elapsed().as_secs_f64());
    result.map_err(|failure| format!("{name} on {backend:?}: {failure}"))
}

fn sequential(backend: Backend) {
    let tally = Mutex::new(Tally::new());
    let result = property("sequential", backend, SEQUENTIAL_CASES, steps::steps(SEQUENTIAL_STEPS), |ledger, case| {
        let tally = &tally;
        async move { steps::run(&ledger, &case, tally).await }
    });
    conclude("sequential", backend, tally, result);
}

fn concurrent(backend: Backend) {
    let tally = Mutex::new(Tally::new());
    let result = property("concurrent", backend, CONCURRENT_CASES, crowd::crowds(), |ledger, case| {
        let tally = &tally;
        async move { crowd::run(ledger, case, tally).await }
    });
    conclude("concurrent", backend, tally, result);
}

/// The smallest form of each rule a property found broken, as a plain test that fails
/// every time rather than by chance.
fn pinned<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(Arc<Ledger>) -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = runtime();
    let Some(db) = runtime.block_on(backend.db()) else { return };
    runtime.block_on(async {
        let ledger = Arc::new(Ledger::new(db.open().await, HostClock::system()));
        case(ledger).await;
    });
}

async fn a_top_up_under_a_used_key_opens_no_account(ledger: Arc<Ledger>) {
    ledger.open_account("a", "RUB").await.unwrap();
    ledger.credit("admin", "k1", "a", "100.00", "RUB", "fund").await.unwrap();
    let refused = ledger.credit_opening("admin", "k1", "new", "0.01", "RUB", "fund").await;
    assert!(matches!(refused, Err(LedgerError::IdempotencyConflict(_))), "{refused:?}");
    assert_eq!(ledger.get_account("new").await.unwrap(), None, "a conflicting top-up left an account behind");
}

async fn a_used_key_on_the_reversal_of_a_reversal_is_a_conflict(ledger: Arc<Ledger>) {
    ledger.open_account("a", "RUB").await.unwrap();
    ledger.credit("shop", "k1", "a", "100.00", "RUB", "fund").await.unwrap();
    let debit = ledger.debit("shop", "k2", "a", "1.00", "RUB", "charge").await.unwrap();
    let reversal = ledger.reverse("shop", "k3", &debit.transaction_id, "refund").await.unwrap();
    let refused = ledger.reverse("shop", "k1", &reversal[0].transaction_id, "undo").await;
    assert!(matches!(refused, Err(LedgerError::IdempotencyConflict(_))), "{refused:?}");
}

macro_rules! on_backend {
    ($name:ident, $backend:expr) => {
        mod $name {
            use super::*;

            // Among the rules: a top-up (`credit_opening`) that is refused, or whose
            // idempotency key conflicts, leaves no account behind.
            #[test]
            fn sequential_calls_match_the_model() {
                sequential($backend);
            }

            #[test]
            fn concurrent_postings_match_the_model_in_storage_order() {
                concurrent($backend);
            }

            // The top-up rule of the sequential property, pinned.
            #[test]
            fn a_top_up_under_a_used_key_opens_no_account() {
                pinned($backend, super::a_top_up_under_a_used_key_opens_no_account);
            }

            // Expected rule: both backends refuse a call alike, and the key is checked
            // before the reversal's target, as `LedgerStore::post` documents.
            #[test]
            fn a_used_key_on_the_reversal_of_a_reversal_is_a_conflict() {
                pinned($backend, super::a_used_key_on_the_reversal_of_a_reversal_is_a_conflict);
            }
        }
    };
}

on_backend!(sqlite, Backend::Sqlite);
on_backend!(postgres, Backend::Postgres);
