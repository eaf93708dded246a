//! An in-memory model of the ledger's rules, written from the rules and not from the
//! code, so the property tests in `ledger_model.rs` can hold storage to it: accounts with
//! a currency, a balance and an overdraft in minor units; credits; debits refused below
//! minus the overdraft; multi-line debits all or nothing on each account's net change;
//! a reversal once, never of a reversal, refused where it would overdraw; idempotency
//! keys that replay the first result for the same arguments and refuse other arguments
//! without any effect; a refused call uses no key up.
//!
//! The model knows two currencies (RUB with two decimals, JPY with none) and nothing else
//! of `payhost::money`: the amounts it is given say what they mean, so parsing is tested
//! too. Amounts stay small, so balance overflow is not modelled.

use std::collections::{BTreeMap, HashMap};

use payhost::ledger::LedgerError;
use payhost::storage::{EntryKind, Minor};

/// Decimals of the currencies the model knows, by canonical code.
pub fn canonical_currency(code: &str) -> Option<(&'static str, u32)> {
    match code.to_ascii_uppercase().as_str() {
        "RUB" => Some(("RUB", 2)),
        "JPY" => Some(("JPY", 0)),
        _ => None,
    }
}

/// Decimals used to spell an amount of `code`; an unknown code is spelled like RUB.
pub fn exponent(code: &str) -> u32 {
    canonical_currency(code).map_or(2, |(_, e)| e)
}

/// Minor units as the ledger prints them: `-5.10`, `150` (JPY).
pub fn format(minor: Minor, exponent: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{magnitude}");
    }
    let scale = 10u64.pow(exponent);
    format!("{sign}{}.{:0width$}", magnitude / scale, magnitude % scale, width = exponent as usize)
}

/// An amount as a caller spells it, with what it means in the call's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    pub text: String,
    /// `None`: `text` is no amount at all (sign, too many decimals, garbage).
    pub minor: Option<Minor>,
}

impl Amount {
    /// The canonical spelling of `minor` (>= 0).
    pub fn of(minor: Minor, exponent: u32) -> Amount {
        Amount { text: format(minor, exponent), minor: Some(minor) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub account: String,
    pub amount: Amount,
    pub reference: String,
}

/// Which transaction a reversal names: one the model holds (by index), or an id that
/// storage never issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Known(usize),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `opening`: the operator's top-up (`credit_opening`), which opens a new account.
    Credit { opening: bool, account: String, amount: Amount, currency: String, reference: String },
    Debit { account: String, amount: Amount, currency: String, reference: String },
    DebitMany { currency: String, lines: Vec<Line> },
    Reverse { target: Target, reference: String },
}

/// One keyed ledger call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub scope: &'static str,
    pub key: String,
    pub body: Body,
}

/// What a call asks for once its amounts and currency are read: two calls with equal
/// requests under one key are the same call (a top-up and a credit are the same request).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Single { debit: bool, account: String, minor: Minor, currency: &'static str, reference: String },
    Many { currency: &'static str, lines: Vec<(String, Minor, String)> },
    Reverse { target: usize, reference: String },
}

/// Why the model refuses a call. Texts of the ledger's messages are not modelled, only
/// the case and the values a caller acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    InsufficientFunds { account: String, balance: Minor, requested: Minor, exponent: u32 },
    /// `None`: the id itself is not usable (empty), whatever the message names.
    UnknownAccount(Option<String>),
    CurrencyMismatch,
    InvalidAmount,
    UnknownCurrency(String),
    IdempotencyConflict,
    NotReversible,
    /// An account id (or key, or reference) the host refuses before storage: the model's
    /// only such id is the empty one.
    InvalidInput,
}

impl Refusal {
    pub fn matches(&self, error: &LedgerError) -> bool {
        match (self, error) {
            (
                Refusal::InsufficientFunds { account, balance, requested, exponent },
                LedgerError::InsufficientFunds { account: a, balance: b, requested: r },
            ) => account == a && format(*balance, *exponent) == *b && format(*requested, *exponent) == *r,
            (Refusal::UnknownAccount(Some(id)), LedgerError::UnknownAccount(a)) => id == a,
            (Refusal::UnknownAccount(None), LedgerError::UnknownAccount(_)) => true,
            (Refusal::UnknownCurrency(code), LedgerError::UnknownCurrency(c)) => code == c,
            (Refusal::CurrencyMismatch, LedgerError::CurrencyMismatch(_))
            | (Refusal::InvalidAmount, LedgerError::InvalidAmount(_))
            | (Refusal::IdempotencyConflict, LedgerError::IdempotencyConflict(_))
            | (Refusal::NotReversible, LedgerError::NotReversible(_))
            | (Refusal::InvalidInput, LedgerError::InvalidInput(_)) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    pub tx: usize,
    pub account: String,
    pub kind: EntryKind,
    pub delta: Minor,
    pub currency: &'static str,
    pub balance_after: Minor,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAccount {
    pub currency: &'static str,
    pub balance: Minor,
    pub overdraft: Minor,
    /// Oldest first, as (transaction, line) pairs.
    pub entries: Vec<(usize, usize)>,
}

/// An accepted call: `fresh` when it moved money now, not when it replayed `tx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub tx: usize,
    pub fresh: bool,
    pub entries: Vec<ModelEntry>,
}

#[derive(Debug)]
struct Transaction {
    entries: Vec<ModelEntry>,
    currency: &'static str,
    is_reversal: bool,
    reversed: bool,
}

/// A call after validation: the request it hashes to and the lines it would post.
struct Prepared {
    request: Request,
    currency: &'static str,
    lines: Vec<(String, Minor, EntryKind, String)>,
    reverses: Option<usize>,
    /// A top-up opens this account when it does not exist yet.
    opens: Option<String>,
    /// Refusals of a top-up's account that the ledger may report instead of an
    /// idempotency conflict: which wins when both apply is not a rule, only that
    /// neither changes anything.
    opening_refusal: Option<Refusal>,
}

#[derive(Debug, Default)]
pub struct Model {
    accounts: BTreeMap<String, ModelAccount>,
    /// Scoped key -> the request it was first accepted for, and its transaction.
    keys: HashMap<String, (Request, usize)>,
    transactions: Vec<Transaction>,
}

impl Model {
    pub fn account(&self, id: &str) -> Option<&ModelAccount> {
        self.accounts.get(id)
    }

    pub fn transaction_count(&self) -> usize {
        self.transactions.len()
    }

    /// Opens the account if it does not exist; an existing one must have this currency.
    pub fn open(&mut self, id: &str, currency: &str) -> Result<ModelAccount, Refusal> {
        if id.is_empty() {
            return Err(Refusal::InvalidInput);
        }
        let (code, _) = canonical_currency(currency).ok_or_else(|| Refusal::UnknownCurrency(currency.to_string()))?;
        let account = self
            .accounts
            .entry(id.to_string())
            .or_insert_with(|| ModelAccount { currency: code, balance: 0, overdraft: 0, entries: Vec::new() });
        if account.currency != code {
            return Err(Refusal::CurrencyMismatch);
        }
        Ok(account.clone())
    }

    /// `limit` is spelled in the account's currency; zero is a limit, signs are not.
    pub fn set_overdraft(&mut self, id: &str, limit: &Amount) -> Result<ModelAccount, Refusal> {
        if id.is_empty() {
            return Err(Refusal::InvalidInput);
        }
        let account = self.accounts.get_mut(id).ok_or_else(|| Refusal::UnknownAccount(Some(id.to_string())))?;
        account.overdraft = limit.minor.ok_or(Refusal::InvalidAmount)?;
        Ok(account.clone())
    }

    /// A keyed call: `Err` lists the refusals any one of which is right.
    pub fn call(&mut self, call: &Call) -> Result<Posted, Vec<Refusal>> {
        let prepared = self.prepare(&call.body).map_err(|r| vec![r])?;
        let scoped = format!("{}:{}", call.scope, call.key);
        if let Some((request, tx)) = self.keys.get(&scoped) {
            if *request == prepared.request {
                return Ok(Posted { tx: *tx, fresh: false, entries: self.transactions[*tx].entries.clone() });
            }
            return Err(std::iter::once(Refusal::IdempotencyConflict).chain(prepared.opening_refusal).collect());
        }
        if let Some(refusal) = prepared.opening_refusal {
            return Err(vec![refusal]);
        }
        if let Some(target) = prepared.reverses {
            let original = &self.transactions[target];
            if original.is_reversal || original.reversed {
                return Err(vec![Refusal::NotReversible]);
            }
        }
        self.check_funds(&prepared).map_err(|r| vec![r])?;
        Ok(self.apply(scoped, prepared))
    }

    /// Everything the ledger checks before it looks at the key: currency, amounts, the
    /// reversal's target, and a top-up's account.
    fn prepare(&self, body: &Body) -> Result<Prepared, Refusal> {
        let known = |code: &str| canonical_currency(code).map(|(c, _)| c).ok_or_else(|| Refusal::UnknownCurrency(code.to_string()));
        let positive = |amount: &Amount| amount.minor.filter(|m| *m > 0).ok_or(Refusal::InvalidAmount);
        match body {
            Body::Credit { account, amount, currency, reference, .. } | Body::Debit { account, amount, currency, reference } => {
                let debit = matches!(body, Body::Debit { .. });
                // Identifiers are checked first, before the currency and the amount.
                if account.is_empty() {
                    return Err(Refusal::InvalidInput);
                }
                let code = known(currency)?;
                let minor = positive(amount)?;
                let (kind, delta) = if debit { (EntryKind::Debit, -minor) } else { (EntryKind::Credit, minor) };
                let mut prepared = Prepared {
                    request: Request::Single { debit, account: account.clone(), minor, currency: code, reference: reference.clone() },
                    currency: code,
                    lines: vec![(account.clone(), delta, kind, reference.clone())],
                    reverses: None,
                    opens: None,
                    opening_refusal: None,
                };
                if matches!(body, Body::Credit { opening: true, .. }) {
                    match self.accounts.get(account) {
                        Some(existing) if existing.currency != code => prepared.opening_refusal = Some(Refusal::CurrencyMismatch),
                        Some(_) => {}
                        None => prepared.opens = Some(account.clone()),
                    }
                }
                Ok(prepared)
            }
            Body::DebitMany { currency, lines } => {
                let code = known(currency)?;
                if lines.is_empty() {
                    return Err(Refusal::InvalidAmount);
                }
                if lines.iter().any(|line| line.account.is_empty()) {
                    return Err(Refusal::InvalidInput);
                }
                let mut canonical = Vec::with_capacity(lines.len());
                let mut posting = Vec::with_capacity(lines.len());
                for line in lines {
                    let minor = positive(&line.amount)?;
                    canonical.push((line.account.clone(), minor, line.reference.clone()));
                    posting.push((line.account.clone(), -minor, EntryKind::Debit, line.reference.clone()));
                }
                Ok(Prepared {
                    request: Request::Many { currency: code, lines: canonical },
                    currency: code,
                    lines: posting,
                    reverses: None,
                    opens: None,
                    opening_refusal: None,
                })
            }
            Body::Reverse { target, reference } => {
                let Target::Known(target) = *target else { return Err(Refusal::NotReversible) };
                let original = &self.transactions[target];
                Ok(Prepared {
                    request: Request::Reverse { target, reference: reference.clone() },
                    currency: original.currency,
                    lines: original.entries.iter().map(|e| (e.account.clone(), -e.delta, EntryKind::Reversal, reference.clone())).collect(),
                    reverses: Some(target),
                    opens: None,
                    opening_refusal: None,
                })
            }
        }
    }

    /// Accounts exist and hold the currency (line by line), then each account's net
    /// change (in order of first appearance) keeps it at or above minus its overdraft
    /// when it takes money; a net credit always passes.
    fn check_funds(&self, prepared: &Prepared) -> Result<(), Refusal> {
        for (account, ..) in &prepared.lines {
            match self.accounts.get(account) {
                Some(a) if a.currency != prepared.currency => return Err(Refusal::CurrencyMismatch),
                Some(_) => {}
                None if prepared.opens.as_ref() == Some(account) => {}
                None => return Err(Refusal::UnknownAccount(Some(account.clone()))),
            }
        }
        let mut net: Vec<(&str, Minor)> = Vec::new();
        for (account, delta, ..) in &prepared.lines {
            match net.iter_mut().find(|(a, _)| *a == account.as_str()) {
                Some((_, sum)) => *sum += delta,
                None => net.push((account.as_str(), *delta)),
            }
        }
        for (account, change) in net {
            let Some(a) = self.accounts.get(account) else { continue };
            if change < 0 && a.balance + change < -a.overdraft {
                return Err(Refusal::InsufficientFunds {
                    account: account.to_string(),
                    balance: a.balance,
                    requested: -change,
                    exponent: exponent(a.currency),
                });
            }
        }
        Ok(())
    }

    fn apply(&mut self, scoped: String, prepared: Prepared) -> Posted {
        let tx = self.transactions.len();
        if let Some(id) = prepared.opens {
            self.accounts.insert(id, ModelAccount { currency: prepared.currency, balance: 0, overdraft: 0, entries: Vec::new() });
        }
        let mut entries = Vec::with_capacity(prepared.lines.len());
        for (line, (account, delta, kind, reference)) in prepared.lines.into_iter().enumerate() {
            let a = self.accounts.get_mut(&account).expect("checked above");
            a.balance += delta;
            a.entries.push((tx, line));
            entries.push(ModelEntry { tx, account, kind, delta, currency: prepared.currency, balance_after: a.balance, reference });
        }
        if let Some(target) = prepared.reverses {
            self.transactions[target].reversed = true;
        }
        self.transactions.push(Transaction {
            entries: entries.clone(),
            currency: prepared.currency,
            is_reversal: prepared.reverses.is_some(),
            reversed: false,
        });
        self.keys.insert(scoped, (prepared.request, tx));
        Posted { tx, fresh: true, entries }
    }
}
