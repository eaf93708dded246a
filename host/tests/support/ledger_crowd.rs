//! The concurrent property: several tasks post at once through one `Ledger` (so group
//! commit batches them) random credits and debits on a few shared accounts, and repeat
//! each other's requests (replays) or reuse their keys with other arguments (conflicts).
//! Storage picks the order; afterwards the model, fed the accepted postings in the order
//! each account's history recorded them, must accept every one of them and end where
//! storage ends, every caller of one key must have been told the same entry, and every
//! refusal must be one the history explains.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use payhost::ledger::{Entry, Ledger, LedgerError, MAX_HISTORY};
use payhost::storage::Minor;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use crate::model::{format, Amount, Body, Call, Model};
use crate::Tally;

const SCOPE: &str = "crowd";

/// A credit or debit the tasks may send; requests that share `key` conflict.
#[derive(Debug, Clone)]
pub struct Request {
    key: u8,
    debit: bool,
    account: Index,
    minor: Minor,
}

#[derive(Debug, Clone)]
pub struct Crowd {
    /// Per account: funding before the tasks start, and overdraft limit (kopecks).
    accounts: Vec<(Minor, Minor)>,
    requests: Vec<Request>,
    /// Per task, the requests it sends one after another.
    tasks: Vec<Vec<Index>>,
}

/// Balances, limits and amounts of a few kopecks, so that postings often meet an
/// account's floor exactly (where an off-by-one in the funds check shows), and now and
/// then one of some roubles.
pub fn crowds() -> impl Strategy<Value = Crowd> {
    let account = (prop_oneof![3 => 0..=60i64, 1 => 1000..=3000i64], prop_oneof![Just(0i64), 1..=30i64]);
    let minor = prop_oneof![4 => 1..=20i64, 1 => 100..=1500i64];
    let request = (0..6u8, proptest::bool::weighted(0.7), any::<Index>(), minor)
        .prop_map(|(key, debit, account, minor)| Request { key, debit, account, minor });
    (vec(account, 1..=3), vec(request, 2..=10), vec(vec(any::<Index>(), 1..=10), 2..=5))
        .prop_map(|(accounts, requests, tasks)| Crowd { accounts, requests, tasks })
}

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

fn account_id(n: usize) -> String {
    format!("acc{n}")
}

fn credit_or_debit(key: String, debit: bool, account: String, minor: Minor, reference: String) -> Call {
    let (amount, currency) = (Amount::of(minor, 2), "RUB".to_string());
    let body = if debit {
        Body::Debit { account, amount, currency, reference }
    } else {
        Body::Credit { opening: false, account, amount, currency, reference }
    };
    Call { scope: SCOPE, key, body }
}

async fn send(ledger: &Ledger, call: &Call) -> Result<Entry, LedgerError> {
    match &call.body {
        Body::Credit { account, amount, currency, reference, .. } => {
            ledger.credit(call.scope, &call.key, account, &amount.text, currency, reference).await
        }
        Body::Debit { account, amount, currency, reference } => {
            ledger.debit(call.scope, &call.key, account, &amount.text, currency, reference).await
        }
        other => unreachable!("the crowd sends credits and debits only, not {other:?}"),
    }
}

pub async fn run(ledger: Arc<Ledger>, crowd: Crowd, tally: &Mutex<Tally>) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    // Every posting's reference names the call that made it, so the history tells.
    let mut by_reference: HashMap<String, Call> = HashMap::new();
    for (n, (funding, overdraft)) in crowd.accounts.iter().enumerate() {
        let id = account_id(n);
        ledger.open_account(&id, "RUB").await.map_err(fail)?;
        model.open(&id, "RUB").map_err(|r| fail(format!("{r:?}")))?;
        let limit = Amount::of(*overdraft, 2);
        ledger.set_overdraft(&id, &limit.text).await.map_err(fail)?;
        model.set_overdraft(&id, &limit).map_err(|r| fail(format!("{r:?}")))?;
        if *funding > 0 {
            let call = credit_or_debit(format!("fund-{n}"), false, id, *funding, format!("fund-{n}"));
            send(&ledger, &call).await.map_err(fail)?;
            by_reference.insert(format!("fund-{n}"), call);
        }
    }
    let calls: Arc<Vec<Call>> = Arc::new(
        crowd
            .requests
            .iter()
            .enumerate()
            .map(|(n, r)| {
                let account = account_id(r.account.index(crowd.accounts.len()));
                credit_or_debit(format!("k{}", r.key), r.debit, account, r.minor, format!("r{n}"))
            })
            .collect(),
    );
    for call in calls.iter() {
        by_reference.insert(reference_of(call).to_string(), call.clone());
    }

    let start = Arc::new(tokio::sync::Barrier::new(crowd.tasks.len()));
    let tasks: Vec<_> = crowd
        .tasks
        .iter()
        .map(|picks| {
            let picks: Vec<usize> = picks.iter().map(|i| i.index(calls.len())).collect();
            let (ledger, calls, start) = (ledger.clone(), calls.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let mut answers = Vec::with_capacity(picks.len());
                for n in picks {
                    answers.push((n, send(&ledger, &calls[n]).await));
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.map_err(fail)?);
    }

    // Every caller of one key was told the same entry, made by that caller's request.
    let mut told: HashMap<&str, (usize, &Entry)> = HashMap::new();
    let mut counts = Tally::new();
    for (n, answer) in &answers {
        let call = &calls[*n];
        let kind = match (answer, told.contains_key(call.key.as_str())) {
            (Ok(_), true) => "replayed",
            (Ok(_), false) => "posted",
            (Err(e), _) => e.code(),
        };
        *counts.entry(kind.to_string()).or_default() += 1;
        match answer {
            Ok(entry) => {
                if entry.reference != reference_of(call) {
                    return Err(fail(format!("request r{n} was answered with {entry:?}")));
                }
                if let Some((first, earlier)) = told.insert(&call.key, (*n, entry)) {
                    if first != *n || earlier != entry {
                        return Err(fail(format!("key {} answered r{first} with {earlier:?} and r{n} with {entry:?}", call.key)));
                    }
                }
            }
            Err(LedgerError::InsufficientFunds { .. } | LedgerError::IdempotencyConflict(_)) => {}
            Err(other) => return Err(fail(format!("request r{n}: unexpected {other}"))),
        }
    }
    crate::add_up(tally, counts);

    // The model takes the history's postings in its order, each as new, and agrees on
    // every balance; a key recorded twice comes back from the model as a replay or a
    // conflict. The balances each account went through explain the refusals below.
    let mut histories = Vec::new();
    let mut balances_seen: HashMap<String, Vec<Minor>> = HashMap::new();
    let mut recorded: HashSet<&str> = HashSet::new();
    for n in 0..crowd.accounts.len() {
        let id = account_id(n);
        let mut history = ledger.history(&id, MAX_HISTORY).await.map_err(fail)?;
        if history.len() >= MAX_HISTORY as usize {
            return Err(fail("the history is longer than one page; the case is too big"));
        }
        history.reverse();
        histories.push((id, history));
    }
    for (id, history) in &histories {
        let mut seen = vec![0];
        for entry in history {
            let call = by_reference.get(&entry.reference).ok_or_else(|| fail(format!("storage holds a stray entry {entry:?}")))?;
            let posted = model
                .call(call)
                .map_err(|r| fail(format!("storage recorded {entry:?}, which the model refuses after the entries before it: {r:?}")))?;
            if !posted.fresh {
                return Err(fail(format!("key {} moved money twice: {entry:?}", call.key)));
            }
            let m = &posted.entries[0];
            if (entry.kind, entry.amount.clone(), entry.balance_after.clone()) != (m.kind, format(m.delta, 2), format(m.balance_after, 2)) {
                return Err(fail(format!("storage recorded {entry:?}, the model {m:?}")));
            }
            if !recorded.insert(entry.transaction_id.as_str()) {
                return Err(fail(format!("transaction {} has two entries", entry.transaction_id)));
            }
            if entry.reference.starts_with('r') && told.get(call.key.as_str()).map(|(_, e)| *e) != Some(entry) {
                return Err(fail(format!("storage recorded {entry:?}, but its callers were told {:?}", told.get(call.key.as_str()))));
            }
            seen.push(m.balance_after);
        }
        let row = ledger.get_account(id).await.map_err(fail)?.ok_or_else(|| fail(format!("account {id} is gone")))?;
        let balance = model.account(id).map(|a| a.balance).unwrap_or_default();
        if row.balance != format(balance, 2) {
            return Err(fail(format!("account {id} holds {}, its history adds up to {}", row.balance, format(balance, 2))));
        }
        balances_seen.insert(id.clone(), seen);
    }
    for (_, entry) in told.values() {
        if !recorded.contains(entry.transaction_id.as_str()) {
            return Err(fail(format!("a caller was told {entry:?}, which no history holds")));
        }
    }

    for (n, answer) in &answers {
        let call = &calls[*n];
        let request = &crowd.requests[*n];
        match answer {
            Err(LedgerError::InsufficientFunds { account, balance, requested }) => {
                let id = account_id(request.account.index(crowd.accounts.len()));
                let overdraft = crowd.accounts[request.account.index(crowd.accounts.len())].1;
                let explained = request.debit
                    && *account == id
                    && *requested == format(request.minor, 2)
                    && balances_seen[&id].iter().any(|b| format(*b, 2) == *balance && b - request.minor < -overdraft);
                if !explained {
                    return Err(fail(format!("r{n} {request:?} was refused for funds ({balance}), which its history does not explain")));
                }
            }
            Err(LedgerError::IdempotencyConflict(_)) => match told.get(call.key.as_str()) {
                Some((first, _)) if first != n => {}
                other => return Err(fail(format!("r{n} was refused as a conflict on {}, whose accepted request is {other:?}", call.key))),
            },
            _ => {}
        }
    }
    Ok(())
}

fn reference_of(call: &Call) -> &str {
    match &call.body {
        Body::Credit { reference, .. } | Body::Debit { reference, .. } => reference,
        _ => "",
    }
}
