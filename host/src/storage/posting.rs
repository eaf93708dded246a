//! The money rules of a posting, shared by both backends so SQLite and PostgreSQL refuse
//! and write exactly the same things: given the accounts as they are inside the
//! backend's transaction, decide the refusal or the entries and new balances.

use std::collections::HashMap;

use super::{AccountRow, EntryRow, Minor, Posting, PostingRefusal};

/// What a backend writes when the posting is accepted.
#[derive(Debug)]
pub(crate) struct Plan {
    /// In line order, with running `balance_after` values.
    pub entries: Vec<EntryRow>,
    /// Final balance of every touched account.
    pub balances: Vec<(String, Minor)>,
}

/// Accounts a posting touches, sorted and deduplicated: backends lock them in this
/// order so concurrent postings cannot deadlock.
pub(crate) fn touched_accounts(posting: &Posting) -> Vec<String> {
    let mut ids: Vec<String> = posting.lines.iter().map(|l| l.account.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Checks every line against `accounts` (the rows of `touched_accounts`).
pub(crate) fn plan(posting: &Posting, transaction_id: &str, accounts: &HashMap<String, AccountRow>) -> Result<Plan, PostingRefusal> {
    for line in &posting.lines {
        let account = accounts
            .get(&line.account)
            .ok_or_else(|| PostingRefusal::UnknownAccount(line.account.clone()))?;
        if account.currency != posting.currency {
            return Err(PostingRefusal::CurrencyMismatch { account: account.id.clone(), currency: posting.currency.clone() });
        }
    }

    // Lines of one posting apply together, so only each account's net change matters.
    let mut order: Vec<&str> = Vec::new();
    let mut net: HashMap<&str, Minor> = HashMap::new();
    for line in &posting.lines {
        let sum = net.entry(line.account.as_str()).or_insert_with(|| {
            order.push(line.account.as_str());
            0
        });
        *sum = sum.checked_add(line.delta).ok_or_else(|| PostingRefusal::BalanceOverflow(line.account.clone()))?;
    }
    let mut balances = Vec::with_capacity(order.len());
    for id in order {
        let account = &accounts[id];
        let change = net[id];
        let after = account.balance.checked_add(change).ok_or_else(|| PostingRefusal::BalanceOverflow(id.to_string()))?;
        if change < 0 && after < -account.overdraft {
            return Err(PostingRefusal::InsufficientFunds {
                account: id.to_string(),
                balance: account.balance,
                requested: change.checked_neg().ok_or_else(|| PostingRefusal::BalanceOverflow(id.to_string()))?,
            });
        }
        balances.push((id.to_string(), after));
    }

    let mut running: HashMap<&str, Minor> = accounts.iter().map(|(id, a)| (id.as_str(), a.balance)).collect();
    let mut entries = Vec::with_capacity(posting.lines.len());
    for line in &posting.lines {
        let balance = running.get_mut(line.account.as_str()).expect("account checked above");
        // A running sum can overflow even where the net change did not (alternating
        // signs), so each step is checked too.
        *balance = balance.checked_add(line.delta).ok_or_else(|| PostingRefusal::BalanceOverflow(line.account.clone()))?;
        entries.push(EntryRow {
            transaction_id: transaction_id.to_string(),
            account: line.account.clone(),
            kind: line.kind,
            delta: line.delta,
            currency: posting.currency.clone(),
            balance_after: *balance,
            reference: line.reference.clone(),
            at: posting.at,
        });
    }
    Ok(Plan { entries, balances })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{EntryKind, PostingLine};

    fn account(id: &str, balance: Minor, overdraft: Minor) -> (String, AccountRow) {
        (id.to_string(), AccountRow { id: id.to_string(), currency: "RUB".into(), balance, overdraft, created_at: 0 })
    }

    fn posting(lines: &[(&str, Minor)]) -> Posting {
        Posting {
            idempotency_key: "k".into(),
            request_hash: "h".into(),
            currency: "RUB".into(),
            lines: lines
                .iter()
                .map(|(a, d)| PostingLine {
                    account: a.to_string(),
                    delta: *d,
                    kind: if *d < 0 { EntryKind::Debit } else { EntryKind::Credit },
                    reference: "r".into(),
                })
                .collect(),
            reverses: None,
            opens: false,
            at: 7,
        }
    }

    #[test]
    fn lines_on_one_account_are_checked_together() {
        let accounts: HashMap<_, _> = [account("a", 100, 0)].into();
        let refused = plan(&posting(&[("a", -60), ("a", -60)]), "t", &accounts).unwrap_err();
        assert_eq!(refused, PostingRefusal::InsufficientFunds { account: "a".into(), balance: 100, requested: 120 });
        let ok = plan(&posting(&[("a", -60), ("a", -40)]), "t", &accounts).unwrap();
        assert_eq!(ok.entries.iter().map(|e| e.balance_after).collect::<Vec<_>>(), vec![40, 0]);
        assert_eq!(ok.balances, vec![("a".to_string(), 0)]);
    }

    #[test]
    fn overdraft_allows_going_below_zero_up_to_the_limit() {
        let accounts: HashMap<_, _> = [account("a", 10, 50)].into();
        assert!(plan(&posting(&[("a", -60)]), "t", &accounts).is_ok());
        assert!(matches!(plan(&posting(&[("a", -61)]), "t", &accounts), Err(PostingRefusal::InsufficientFunds { .. })));
    }

    #[test]
    fn credits_pass_even_on_an_overdrawn_account() {
        let accounts: HashMap<_, _> = [account("a", -500, 0)].into();
        assert_eq!(plan(&posting(&[("a", 100)]), "t", &accounts).unwrap().balances, vec![("a".to_string(), -400)]);
    }

    #[test]
    fn unknown_account_and_currency_mismatch_are_refused() {
        let accounts: HashMap<_, _> = [account("a", 100, 0)].into();
        assert_eq!(plan(&posting(&[("b", -1)]), "t", &accounts).unwrap_err(), PostingRefusal::UnknownAccount("b".into()));
        let mut usd = posting(&[("a", -1)]);
        usd.currency = "USD".into();
        assert_eq!(
            plan(&usd, "t", &accounts).unwrap_err(),
            PostingRefusal::CurrencyMismatch { account: "a".into(), currency: "USD".into() }
        );
    }

    #[test]
    fn overflow_is_refused_not_wrapped() {
        let accounts: HashMap<_, _> = [account("a", i64::MAX - 1, 0)].into();
        assert_eq!(plan(&posting(&[("a", 2)]), "t", &accounts).unwrap_err(), PostingRefusal::BalanceOverflow("a".into()));
    }

    #[test]
    fn touched_accounts_are_sorted_and_unique() {
        assert_eq!(touched_accounts(&posting(&[("b", -1), ("a", -1), ("b", -2)])), vec!["a", "b"]);
    }
}
