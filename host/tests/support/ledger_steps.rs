//! The sequential property's steps. Steps are generated up front and point at earlier
//! calls and transactions by `Index`, resolved when the step runs; each step goes to
//! the ledger and to the model, and the two answers must agree. At the end every
//! account's row and full history must be what the model holds.
//!
//! A case opens and funds three accounts first, so most calls get past validation; a
//! fourth id is opened only by the steps themselves (top-ups to a new account), and the
//! empty id never.

use std::sync::Mutex;

use payhost::ledger::{Account, DebitLine, Entry, Ledger, LedgerError, MAX_HISTORY};
use payhost::storage::Minor;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use crate::Tally;
use crate::model::{exponent, format, Amount, Body, Call, Line, Model, ModelAccount, ModelEntry, Posted, Refusal, Target};

/// Ids the steps use: the first three are opened by every case's setup.
pub const ACCOUNTS: [&str; 5] = ["a", "b", "c", "d", ""];
const SET_UP: usize = 3;
const SCOPES: [&str; 2] = ["shop", "admin"];
/// Spelled nowhere else; no transaction has it.
const NEVER_ISSUED: &str = "tx_00000000000000000000000000000000";

#[derive(Debug, Clone, Copy)]
pub enum Currency {
    Rub,
    /// Codes are case-insensitive, so this is RUB.
    RubLower,
    Jpy,
    Unknown,
}

impl Currency {
    fn code(self) -> &'static str {
        match self {
            Currency::Rub => "RUB",
            Currency::RubLower => "rub",
            Currency::Jpy => "JPY",
            Currency::Unknown => "XYZ",
        }
    }
}

/// Texts that are no amount in any currency.
const GARBAGE: [&str; 8] = ["abc", "", "1e3", " 1", "1,00", "+1", "1.", ".5"];

#[derive(Debug, Clone, Copy)]
pub enum AmountSpec {
    /// A positive amount in minor units; `trimmed` drops trailing zero decimals.
    Valid { minor: i64, trimmed: bool },
    Zero { trimmed: bool },
    Negative(i64),
    /// One decimal more than the currency has.
    TooPrecise,
    Garbage(usize),
    /// What takes the account exactly to its floor (minus the overdraft), plus the
    /// offset: where an off-by-one in the funds check shows.
    Edge(i64),
}

impl AmountSpec {
    /// `edge`: the amount an `Edge` is relative to.
    fn render(self, exponent: u32, edge: Minor) -> Amount {
        let spell = |minor: i64, trimmed: bool| {
            let text = format(minor, exponent);
            if trimmed && text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                text
            }
        };
        match self {
            AmountSpec::Valid { minor, trimmed } => Amount { text: spell(minor, trimmed), minor: Some(minor) },
            AmountSpec::Zero { trimmed } => Amount { text: spell(0, trimmed), minor: Some(0) },
            AmountSpec::Negative(minor) => Amount { text: format!("-{}", format(minor, exponent)), minor: None },
            AmountSpec::TooPrecise => Amount { text: format!("1.{}5", "0".repeat(exponent as usize)), minor: None },
            AmountSpec::Garbage(i) => Amount { text: GARBAGE[i].to_string(), minor: None },
            AmountSpec::Edge(offset) => match edge + offset {
                minor if minor >= 0 => Amount::of(minor, exponent),
                minor => Amount { text: format!("-{}", format(-minor, exponent)), minor: None },
            },
        }
    }
}

#[derive(Debug, Clone)]
pub enum Fresh {
    Open { account: usize, currency: Currency },
    SetOverdraft { account: usize, limit: AmountSpec },
    Credit { opening: bool, account: usize, amount: AmountSpec, currency: Currency, reference: u8 },
    Debit { account: usize, amount: AmountSpec, currency: Currency, reference: u8 },
    DebitMany { currency: Currency, lines: Vec<(usize, AmountSpec, u8)> },
    /// `None` names a transaction that does not exist.
    Reverse { target: Option<Index>, reference: u8 },
}

/// A near miss of an earlier call under its key: other arguments, or (for a top-up
/// versus a credit) the same request by another way.
#[derive(Debug, Clone, Copy)]
pub enum Tweak {
    Reference,
    Amount,
    Kind,
    Opening,
    /// To the id only steps open, a credit as a top-up: a used key must not open it.
    Elsewhere,
}

#[derive(Debug, Clone)]
pub enum Step {
    /// A call under a key of its own.
    Fresh { scope: usize, op: Fresh },
    /// An earlier keyed call again, verbatim.
    Replay(Index),
    Tweak(Index, Tweak),
    /// An earlier call's key for another, random call.
    Reuse(Index, Fresh),
    /// An earlier call under the other scope: a call of its own.
    OtherScope(Index),
}

fn account() -> impl Strategy<Value = usize> {
    prop_oneof![12 => 0..SET_UP, 2 => Just(SET_UP), 1 => Just(SET_UP + 1)]
}

fn currency() -> impl Strategy<Value = Currency> {
    prop_oneof![8 => Just(Currency::Rub), 1 => Just(Currency::RubLower), 2 => Just(Currency::Jpy), 1 => Just(Currency::Unknown)]
}

fn amount() -> impl Strategy<Value = AmountSpec> {
    prop_oneof![
        40 => (1..=5000i64, any::<bool>()).prop_map(|(minor, trimmed)| AmountSpec::Valid { minor, trimmed }),
        1 => any::<bool>().prop_map(|trimmed| AmountSpec::Zero { trimmed }),
        1 => (1..=5000i64).prop_map(AmountSpec::Negative),
        1 => Just(AmountSpec::TooPrecise),
        1 => (0..GARBAGE.len()).prop_map(AmountSpec::Garbage),
        6 => (-1..=1i64).prop_map(AmountSpec::Edge),
    ]
}

fn reference() -> impl Strategy<Value = u8> {
    0..3u8
}

fn fresh() -> impl Strategy<Value = Fresh> {
    prop_oneof![
        2 => (account(), currency()).prop_map(|(account, currency)| Fresh::Open { account, currency }),
        1 => (account(), amount()).prop_map(|(account, limit)| Fresh::SetOverdraft { account, limit }),
        3 => (account(), amount(), currency(), reference())
            .prop_map(|(account, amount, currency, reference)| Fresh::Credit { opening: false, account, amount, currency, reference }),
        2 => (account(), amount(), currency(), reference())
            .prop_map(|(account, amount, currency, reference)| Fresh::Credit { opening: true, account, amount, currency, reference }),
        5 => (account(), amount(), currency(), reference())
            .prop_map(|(account, amount, currency, reference)| Fresh::Debit { account, amount, currency, reference }),
        // Few ids and up to three lines: one account in several lines is common.
        4 => (currency(), prop_oneof![9 => vec((account(), amount(), reference()), 1..=3), 1 => Just(Vec::new())])
            .prop_map(|(currency, lines)| Fresh::DebitMany { currency, lines }),
        2 => (proptest::option::weighted(0.9, any::<Index>()), reference())
            .prop_map(|(target, reference)| Fresh::Reverse { target, reference }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let tweak = prop_oneof![
        Just(Tweak::Reference),
        Just(Tweak::Amount),
        Just(Tweak::Kind),
        Just(Tweak::Opening),
        Just(Tweak::Elsewhere)
    ];
    prop_oneof![
        12 => (0..SCOPES.len(), fresh()).prop_map(|(scope, op)| Step::Fresh { scope, op }),
        3 => any::<Index>().prop_map(Step::Replay),
        3 => (any::<Index>(), tweak).prop_map(|(call, tweak)| Step::Tweak(call, tweak)),
        3 => (any::<Index>(), fresh()).prop_map(|(call, op)| Step::Reuse(call, op)),
        1 => any::<Index>().prop_map(Step::OtherScope),
    ]
}

/// Opens and funds the first accounts (mostly RUB), then up to `max` random steps.
pub fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    let funded = (prop_oneof![5 => Just(Currency::Rub), 1 => Just(Currency::Jpy)], 10_000..=50_000i64);
    (vec(funded, SET_UP), vec(step(), 1..=max)).prop_map(|(setup, random)| {
        let mut steps = Vec::with_capacity(2 * SET_UP + random.len());
        for (account, (currency, minor)) in setup.into_iter().enumerate() {
            steps.push(Step::Fresh { scope: 1, op: Fresh::Open { account, currency } });
            let amount = AmountSpec::Valid { minor, trimmed: false };
            steps.push(Step::Fresh { scope: 1, op: Fresh::Credit { opening: false, account, amount, currency, reference: 0 } });
        }
        steps.extend(random);
        steps
    })
}

/// Runs `steps` on `ledger` and on a fresh model, then compares every account.
pub async fn run(ledger: &Ledger, steps: &[Step], tally: &Mutex<Tally>) -> Result<(), TestCaseError> {
    let mut session = Session { ledger, model: Model::default(), calls: Vec::new(), posted: Vec::new(), keys: 0, tally: Tally::new() };
    let mut result = Ok(());
    for (n, step) in steps.iter().enumerate() {
        if let Err(e) = session.step(step).await {
            result = Err(TestCaseError::fail(format!("step {n} {step:?}: {e}")));
            break;
        }
    }
    if result.is_ok() {
        result = session.compare_accounts().await.map_err(|e| TestCaseError::fail(format!("after the last step: {e}")));
    }
    crate::add_up(tally, session.tally);
    result
}

struct Session<'a> {
    ledger: &'a Ledger,
    model: Model,
    /// Keyed calls made so far, for replays and reused keys.
    calls: Vec<Call>,
    /// The entries storage answered with when each model transaction was posted.
    posted: Vec<Vec<Entry>>,
    keys: usize,
    tally: Tally,
}

impl Session<'_> {
    async fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Fresh { scope, op } => {
                self.keys += 1;
                let key = format!("k{}", self.keys);
                self.fresh(SCOPES[*scope], key, op).await
            }
            Step::Replay(i) => match self.earlier(i) {
                Some(call) => self.keyed(call, false).await,
                None => Ok(()),
            },
            Step::Tweak(i, how) => match self.earlier(i) {
                Some(call) => self.keyed(tweak(call, *how), true).await,
                None => Ok(()),
            },
            Step::Reuse(i, op) => match self.earlier(i) {
                Some(call) => self.fresh(call.scope, call.key, op).await,
                None => Ok(()),
            },
            Step::OtherScope(i) => match self.earlier(i) {
                Some(mut call) => {
                    call.scope = if call.scope == SCOPES[0] { SCOPES[1] } else { SCOPES[0] };
                    self.keyed(call, true).await
                }
                None => Ok(()),
            },
        }
    }

    fn earlier(&self, i: &Index) -> Option<Call> {
        (!self.calls.is_empty()).then(|| i.get(&self.calls).clone())
    }

    async fn fresh(&mut self, scope: &'static str, key: String, op: &Fresh) -> Result<(), String> {
        let body = match op {
            Fresh::Open { account, currency } => {
                let (id, code) = (ACCOUNTS[*account], currency.code());
                let expected = self.model.open(id, code);
                return compare_account(id, expected, self.ledger.open_account(id, code).await);
            }
            Fresh::SetOverdraft { account, limit } => {
                let id = ACCOUNTS[*account];
                let (exp, balance) = self.model.account(id).map_or((2, 0), |a| (exponent(a.currency), a.balance));
                let limit = limit.render(exp, -balance);
                let expected = self.model.set_overdraft(id, &limit);
                return compare_account(id, expected, self.ledger.set_overdraft(id, &limit.text).await);
            }
            Fresh::Credit { opening, account, amount, currency, reference } => Body::Credit {
                opening: *opening,
                account: ACCOUNTS[*account].to_string(),
                amount: amount.render(exponent(currency.code()), self.room(ACCOUNTS[*account])),
                currency: currency.code().to_string(),
                reference: format!("ref{reference}"),
            },
            Fresh::Debit { account, amount, currency, reference } => Body::Debit {
                account: ACCOUNTS[*account].to_string(),
                amount: amount.render(exponent(currency.code()), self.room(ACCOUNTS[*account])),
                currency: currency.code().to_string(),
                reference: format!("ref{reference}"),
            },
            Fresh::DebitMany { currency, lines } => {
                // An account's room is shared among its lines, the first taking the rest,
                // so edges land on the account's net change.
                let edges: Vec<Minor> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, (account, ..))| {
                        let share = lines.iter().filter(|(a, ..)| a == account).count() as Minor;
                        let room = self.room(ACCOUNTS[*account]);
                        let first = !lines[..i].iter().any(|(a, ..)| a == account);
                        if first { room - (share - 1) * (room / share) } else { room / share }
                    })
                    .collect();
                Body::DebitMany {
                    currency: currency.code().to_string(),
                    lines: lines
                        .iter()
                        .zip(edges)
                        .map(|((account, amount, reference), edge)| Line {
                            account: ACCOUNTS[*account].to_string(),
                            amount: amount.render(exponent(currency.code()), edge),
                            reference: format!("line{reference}"),
                        })
                        .collect(),
                }
            }
            Fresh::Reverse { target, reference } => {
                let count = self.model.transaction_count();
                let target = match target {
                    Some(i) if count > 0 => Target::Known(i.index(count)),
                    _ => Target::Unknown,
                };
                Body::Reverse { target, reference: format!("back{reference}") }
            }
        };
        self.keyed(Call { scope, key, body }, true).await
    }

    async fn keyed(&mut self, call: Call, remember: bool) -> Result<(), String> {
        let kind = self.kind_of(&call.body);
        let expected = self.model.call(&call);
        let actual = self.execute(&call).await;
        let answer = match (&expected, &actual) {
            (Ok(posted), Ok(_)) if !posted.fresh => "replayed",
            (_, Ok(_)) => "posted",
            (_, Err(e)) => e.code(),
        };
        *self.tally.entry(format!("{kind}: {answer}")).or_default() += 1;
        let compared = self.compare_posted(expected, actual);
        if remember {
            self.calls.push(call);
        }
        compared
    }

    /// How much the account can give before it reaches its floor (1 for an unknown one).
    fn room(&self, id: &str) -> Minor {
        self.model.account(id).map_or(1, |a| a.balance + a.overdraft)
    }

    fn kind_of(&self, body: &Body) -> &'static str {
        match body {
            Body::Credit { opening: true, account, .. } if self.model.account(account).is_none() => "top-up of a new account",
            Body::Credit { opening: true, .. } => "top-up",
            Body::Credit { .. } => "credit",
            Body::Debit { .. } => "debit",
            Body::DebitMany { lines, .. } if lines.iter().enumerate().any(|(i, l)| lines[..i].iter().any(|m| m.account == l.account)) => {
                "debit-many, an account in several lines"
            }
            Body::DebitMany { .. } => "debit-many",
            Body::Reverse { .. } => "reverse",
        }
    }

    async fn execute(&self, call: &Call) -> Result<Vec<Entry>, LedgerError> {
        let (l, scope, key) = (self.ledger, call.scope, call.key.as_str());
        match &call.body {
            Body::Credit { opening: false, account, amount, currency, reference } => {
                l.credit(scope, key, account, &amount.text, currency, reference).await.map(|e| vec![e])
            }
            Body::Credit { opening: true, account, amount, currency, reference } => {
                l.credit_opening(scope, key, account, &amount.text, currency, reference).await.map(|e| vec![e])
            }
            Body::Debit { account, amount, currency, reference } => {
                l.debit(scope, key, account, &amount.text, currency, reference).await.map(|e| vec![e])
            }
            Body::DebitMany { currency, lines } => {
                let lines: Vec<DebitLine> = lines
                    .iter()
                    .map(|line| DebitLine { account: line.account.clone(), amount: line.amount.text.clone(), reference: line.reference.clone() })
                    .collect();
                l.debit_many(scope, key, currency, &lines).await
            }
            Body::Reverse { target, reference } => {
                let id = match target {
                    Target::Known(tx) => self.posted[*tx][0].transaction_id.as_str(),
                    Target::Unknown => NEVER_ISSUED,
                };
                l.reverse(scope, key, id, reference).await
            }
        }
    }

    fn compare_posted(&mut self, expected: Result<Posted, Vec<Refusal>>, actual: Result<Vec<Entry>, LedgerError>) -> Result<(), String> {
        match (expected, actual) {
            (Ok(posted), Ok(entries)) if posted.fresh => {
                let id = entries.first().map(|e| e.transaction_id.clone()).unwrap_or_default();
                let fits = entries.len() == posted.entries.len()
                    && posted.entries.iter().zip(&entries).all(|(m, e)| e.transaction_id == id && entry_is(m, e));
                if !fits {
                    return Err(format!("model posted {:?}, storage {entries:?}", posted.entries));
                }
                if self.posted.iter().any(|earlier| earlier[0].transaction_id == id) {
                    return Err(format!("storage answered a new posting with the earlier transaction {id}"));
                }
                self.posted.push(entries);
                Ok(())
            }
            (Ok(posted), Ok(entries)) if entries == self.posted[posted.tx] => Ok(()),
            (Ok(posted), Ok(entries)) => Err(format!("a replay returned {entries:?}, not the first result {:?}", self.posted[posted.tx])),
            (Err(refusals), Err(error)) if refusals.iter().any(|r| r.matches(&error)) => Ok(()),
            (expected, actual) => Err(format!("model {expected:?}, storage {actual:?}")),
        }
    }

    async fn compare_accounts(&self) -> Result<(), String> {
        for id in ACCOUNTS {
            if id.is_empty() {
                // Refused before storage, on every call that names it.
                let (row, history) = (self.ledger.get_account(id).await, self.ledger.history(id, MAX_HISTORY).await);
                if !matches!((&row, &history), (Err(LedgerError::InvalidInput(_)), Err(LedgerError::InvalidInput(_)))) {
                    return Err(format!("the empty account id was not refused: {row:?}, {history:?}"));
                }
                continue;
            }
            let row = self.ledger.get_account(id).await.map_err(|e| e.to_string())?;
            let history = self.ledger.history(id, MAX_HISTORY).await;
            let Some(model) = self.model.account(id) else {
                if row.is_none() && matches!(history, Err(LedgerError::UnknownAccount(_))) {
                    continue;
                }
                return Err(format!("account `{id}` should not exist, storage has {row:?}, history {history:?}"));
            };
            compare_account(id, Ok(model.clone()), row.ok_or_else(|| LedgerError::UnknownAccount(id.to_string())))?;
            let mut history = history.map_err(|e| format!("history of `{id}`: {e}"))?;
            history.reverse();
            let expected: Vec<&Entry> = model.entries.iter().map(|(tx, line)| &self.posted[*tx][*line]).collect();
            if history.iter().collect::<Vec<_>>() != expected {
                return Err(format!("history of `{id}` (oldest first) is {history:?}, the model's {expected:?}"));
            }
        }
        Ok(())
    }
}

fn entry_is(m: &ModelEntry, e: &Entry) -> bool {
    let exp = exponent(m.currency);
    e.account == m.account
        && e.kind == m.kind
        && e.amount == format(m.delta, exp)
        && e.currency == m.currency
        && e.balance_after == format(m.balance_after, exp)
        && e.reference == m.reference
}

fn compare_account(id: &str, expected: Result<ModelAccount, Refusal>, actual: Result<Account, LedgerError>) -> Result<(), String> {
    match (expected, actual) {
        (Ok(m), Ok(a)) => {
            let exp = exponent(m.currency);
            let want = Account {
                id: id.to_string(),
                currency: m.currency.to_string(),
                balance: format(m.balance, exp),
                overdraft_limit: format(m.overdraft, exp),
            };
            if a == want { Ok(()) } else { Err(format!("account: model {want:?}, storage {a:?}")) }
        }
        (Err(refusal), Err(error)) if refusal.matches(&error) => Ok(()),
        (expected, actual) => Err(format!("account `{id}`: model {expected:?}, storage {actual:?}")),
    }
}

/// The call with other arguments under the same key (or, for `Opening`, the same
/// request as a top-up instead of a credit); where a tweak does not apply to the call,
/// its reference changes.
fn tweak(mut call: Call, how: Tweak) -> Call {
    let bump = |amount: &Amount, currency: &str| Amount::of(amount.minor.unwrap_or(0) + 1, exponent(currency));
    call.body = match (call.body, how) {
        (Body::Credit { account, amount, currency, reference, .. }, Tweak::Kind) => Body::Debit { account, amount, currency, reference },
        (Body::Debit { account, amount, currency, reference }, Tweak::Kind) => {
            Body::Credit { opening: false, account, amount, currency, reference }
        }
        (Body::DebitMany { currency, mut lines }, Tweak::Kind) if !lines.is_empty() => {
            let line = lines.swap_remove(0);
            Body::Debit { account: line.account, amount: line.amount, currency, reference: line.reference }
        }
        (Body::Credit { opening, account, amount, currency, reference }, Tweak::Opening) => {
            Body::Credit { opening: !opening, account, amount, currency, reference }
        }
        (Body::Credit { opening, account, amount, currency, reference }, Tweak::Amount) => {
            Body::Credit { opening, account, amount: bump(&amount, &currency), currency, reference }
        }
        (Body::Debit { account, amount, currency, reference }, Tweak::Amount) => {
            Body::Debit { account, amount: bump(&amount, &currency), currency, reference }
        }
        (Body::DebitMany { currency, mut lines }, Tweak::Amount) if !lines.is_empty() => {
            lines[0].amount = bump(&lines[0].amount, &currency);
            Body::DebitMany { currency, lines }
        }
        (Body::Credit { amount, currency, reference, .. }, Tweak::Elsewhere) => {
            Body::Credit { opening: true, account: ACCOUNTS[SET_UP].to_string(), amount, currency, reference }
        }
        (Body::Debit { amount, currency, reference, .. }, Tweak::Elsewhere) => {
            Body::Debit { account: ACCOUNTS[SET_UP].to_string(), amount, currency, reference }
        }
        (Body::DebitMany { currency, mut lines }, Tweak::Elsewhere) if !lines.is_empty() => {
            lines[0].account = ACCOUNTS[SET_UP].to_string();
            Body::DebitMany { currency, lines }
        }
        (mut body, _) => {
            match &mut body {
                Body::Credit { reference, .. } | Body::Debit { reference, .. } | Body::Reverse { reference, .. } => reference.push('+'),
                Body::DebitMany { lines, .. } => {
                    if let Some(line) = lines.first_mut() {
                        line.reference.push('+');
                    }
                }
            }
            body
        }
    };
    call
}
