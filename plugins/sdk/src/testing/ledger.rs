//! The fake host's ledger: exact minor units per currency, idempotency keys with the
//! same conflict rule as the host's, reversals, an overdraft limit of zero.

use std::collections::BTreeMap;

use crate::host::{Account, DebitLine, Entry};
use crate::ledger::{EntryKind, Error, Shortfall};

#[derive(Default)]
pub(super) struct Ledger {
    accounts: BTreeMap<String, (String, i128)>,
    entries: Vec<Entry>,
    /// Idempotency key -> (what was asked, what was answered).
    done: BTreeMap<String, (String, Result<Vec<Entry>, Error>)>,
    reversed: Vec<String>,
    transactions: u64,
}

/// Decimals of a currency (ISO 4217 exponents of the common zero-decimal ones).
fn exponent(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" => 0,
        _ => 2,
    }
}

pub(super) fn parse_amount(amount: &str, currency: &str) -> Result<i128, Error> {
    let invalid = || Error::InvalidAmount(amount.to_string());
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let exp = exponent(currency);
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    if fraction.len() as u32 > exp || (amount.contains('.') && fraction.is_empty()) {
        return Err(invalid());
    }
    let padded = format!("{whole}{fraction:0<width$}", width = exp as usize);
    padded.parse().map_err(|_| invalid())
}

pub(super) fn format_amount(minor: i128, currency: &str) -> String {
    let exp = exponent(currency);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exp == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u128.pow(exp);
    format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = exp as usize)
}

impl Ledger {
    pub(super) fn open(&mut self, id: &str, currency: &str) -> Result<Account, Error> {
        let (existing, _) = self.accounts.entry(id.to_string()).or_insert_with(|| (currency.to_string(), 0));
        if existing != currency {
            return Err(Error::CurrencyMismatch(format!("{id}: {existing}")));
        }
        Ok(self.account(id).expect("just opened"))
    }

    pub(super) fn account(&self, id: &str) -> Option<Account> {
        self.accounts.get(id).map(|(currency, balance)| Account {
            id: id.to_string(),
            currency: currency.clone(),
            balance: format_amount(*balance, currency),
            overdraft_limit: "0".into(),
        })
    }

    pub(super) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Runs `moves` once per idempotency key: the same key with the same request answers
    /// the first result again; with another request it is a conflict.
    pub(super) fn once(
        &mut self,
        key: &str,
        request: String,
        moves: impl FnOnce(&mut Self) -> Result<Vec<Entry>, Error>,
    ) -> Result<Vec<Entry>, Error> {
        if let Some((asked, answer)) = self.done.get(key) {
            if *asked != request {
                return Err(Error::IdempotencyConflict(key.to_string()));
            }
            return answer.clone();
        }
        let answer = moves(self);
        // Failures that moved nothing may be retried with the same key.
        if answer.is_ok() {
            self.done.insert(key.to_string(), (request, answer.clone()));
        }
        answer
    }

    pub(super) fn post(&mut self, now: i64, kind: EntryKind, lines: &[DebitLine], currency: &str) -> Result<Vec<Entry>, Error> {
        let sign = if matches!(kind, EntryKind::Debit) { -1 } else { 1 };
        let mut changes: Vec<(String, i128, String)> = Vec::new();
        for line in lines {
            let amount = parse_amount(&line.amount, currency)?;
            if amount == 0 {
                return Err(Error::InvalidAmount(line.amount.clone()));
            }
            let (account_currency, _) = self.accounts.get(&line.account).ok_or_else(|| Error::UnknownAccount(line.account.clone()))?;
            if account_currency != currency {
                return Err(Error::CurrencyMismatch(format!("{}: {account_currency}", line.account)));
            }
            changes.push((line.account.clone(), sign * amount, line.reference.clone()));
        }
        if sign < 0 {
            let mut after: BTreeMap<&str, i128> = BTreeMap::new();
            for (account, change, _) in &changes {
                let balance = after.entry(account).or_insert(self.accounts[account].1);
                *balance += change;
                if *balance < 0 {
                    let requested: i128 = changes.iter().filter(|(a, _, _)| a == account).map(|(_, c, _)| -c).sum();
                    return Err(Error::InsufficientFunds(Shortfall {
                        account: account.clone(),
                        balance: format_amount(self.accounts[account].1, currency),
                        requested: format_amount(requested, currency),
                    }));
                }
            }
        }
        Ok(self.apply(now, kind, changes, currency))
    }

    fn apply(&mut self, now: i64, kind: EntryKind, changes: Vec<(String, i128, String)>, currency: &str) -> Vec<Entry> {
        self.transactions += 1;
        let transaction_id = format!("tx-{}", self.transactions);
        let mut out = Vec::new();
        for (account, change, reference) in changes {
            let balance = &mut self.accounts.get_mut(&account).expect("checked").1;
            *balance += change;
            let entry = Entry {
                transaction_id: transaction_id.clone(),
                account,
                kind,
                amount: format_amount(change, currency),
                currency: currency.to_string(),
                balance_after: format_amount(*balance, currency),
                reference,
                at: now,
            };
            self.entries.push(entry.clone());
            out.push(entry);
        }
        out
    }

    pub(super) fn reverse(&mut self, now: i64, transaction_id: &str, reference: &str) -> Result<Vec<Entry>, Error> {
        let lines: Vec<Entry> = self.entries.iter().filter(|e| e.transaction_id == transaction_id && !matches!(e.kind, EntryKind::Reversal)).cloned().collect();
        if lines.is_empty() || self.reversed.iter().any(|t| t == transaction_id) {
            return Err(Error::NotReversible(transaction_id.to_string()));
        }
        self.reversed.push(transaction_id.to_string());
        let currency = lines[0].currency.clone();
        let changes = lines
            .iter()
            .map(|e| (e.account.clone(), -parse_signed(&e.amount, &currency), reference.to_string()))
            .collect();
        Ok(self.apply(now, EntryKind::Reversal, changes, &currency))
    }
}

fn parse_signed(amount: &str, currency: &str) -> i128 {
    match amount.strip_prefix('-') {
        Some(abs) => -parse_amount(abs, currency).expect("stored amounts parse"),
        None => parse_amount(amount, currency).expect("stored amounts parse"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_minor_units() {
        assert_eq!(parse_amount("300.00", "RUB").unwrap(), 30_000);
        assert_eq!(parse_amount("3.5", "USD").unwrap(), 350);
        assert_eq!(parse_amount("300", "JPY").unwrap(), 300);
        assert!(parse_amount("1.234", "USD").is_err());
        assert!(parse_amount("1.5", "JPY").is_err());
        assert!(parse_amount("-1", "USD").is_err());
        assert!(parse_amount("1e3", "USD").is_err());
        assert_eq!(format_amount(-30_005, "RUB"), "-300.05");
        assert_eq!(format_amount(7, "JPY"), "7");
    }
}
