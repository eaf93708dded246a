//! Admin API for the subscriber ledger: look at an account, top it up, charge it, set its
//! overdraft, read its history and reverse a mistaken transaction. Money moves only with
//! an `idempotency_key` the operator chooses, so a retried admin call never moves money
//! twice; amounts are decimal strings, never JSON numbers (which would invite floats).

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::in_flight::InFlightKeys;
use super::{ok, AdminError};
use crate::identifiers::{self as ids};
use crate::ledger::{Account, Entry, Ledger, LedgerError, MAX_HISTORY};

/// Idempotency keys of admin calls live in their own scope, apart from every plugin's.
const SCOPE: &str = "admin";
const DEFAULT_HISTORY: u32 = 50;

/// Body of a credit or debit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveMoney {
    /// A decimal string such as `"300.00"` (a JSON number is refused).
    #[schema(value_type = String, example = "300.00")]
    amount: Value,
    /// Needed to open an account with a credit; otherwise the account's currency.
    #[schema(example = "RUB")]
    currency: Option<String>,
    #[serde(default)]
    reference: String,
    /// Unique per money movement: repeating the call with it moves money once.
    idempotency_key: Option<String>,
}

/// Body of `PUT /accounts/{id}/overdraft`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Overdraft {
    /// How far below zero the balance may go, a decimal string.
    #[schema(value_type = String, example = "500.00")]
    limit: Value,
}

/// Body of a reversal.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reverse {
    #[serde(default)]
    reference: String,
    idempotency_key: Option<String>,
}

/// A credit or debit that was carried out (or replayed).
#[derive(Serialize, ToSchema)]
pub struct Moved {
    pub entry: Entry,
    pub account: Option<Account>,
}

/// An account after its overdraft was set.
#[derive(Serialize, ToSchema)]
pub struct OverdraftSet {
    pub account: Account,
}

/// `GET /accounts/{id}/transactions`.
#[derive(Serialize, ToSchema)]
pub struct History {
    pub account: String,
    /// Newest first.
    pub entries: Vec<Entry>,
}

/// The entries a reversal wrote.
#[derive(Serialize, ToSchema)]
pub struct Reversed {
    pub entries: Vec<Entry>,
}

/// Routes `/accounts/...`; `rest` holds the path segments after `accounts`, still
/// percent-encoded.
pub async fn handle(ledger: &Ledger, keys: &InFlightKeys, method: &Method, rest: &[&str], query: &str, body: &[u8]) -> (StatusCode, Value) {
    let Some((raw_id, tail)) = rest.split_first() else {
        return bad(StatusCode::NOT_FOUND, "name the account: /accounts/{id}");
    };
    let id = match percent_encoding::percent_decode_str(raw_id).decode_utf8() {
        Ok(id) => id.into_owned(),
        Err(_) => return bad(StatusCode::BAD_REQUEST, "the account id in the path must be percent-encoded UTF-8"),
    };
    if let Err(invalid) = ids::check(ids::ACCOUNT_ID, &id) {
        return failure(invalid.into());
    }
    let m = method;
    match tail {
        [] if m == Method::GET => match ledger.get_account(&id).await {
            Ok(Some(account)) => ok(&account),
            Ok(None) => failure(LedgerError::UnknownAccount(id)),
            Err(e) => failure(e),
        },
        ["credit"] if m == Method::POST => move_money(ledger, keys, &id, true, body).await,
        ["debit"] if m == Method::POST => move_money(ledger, keys, &id, false, body).await,
        ["overdraft"] if m == Method::PUT => set_overdraft(ledger, &id, body).await,
        ["transactions"] if m == Method::GET => history(ledger, &id, query).await,
        ["transactions", tx, "reverse"] if m == Method::POST => reverse(ledger, keys, &id, tx, body).await,
        [] | ["credit" | "debit" | "overdraft" | "transactions"] | ["transactions", _, "reverse"] => {
            bad(StatusCode::METHOD_NOT_ALLOWED, &format!("{method} is not supported here"))
        }
        _ => bad(StatusCode::NOT_FOUND, "no such account route"),
    }
}

async fn move_money(ledger: &Ledger, keys: &InFlightKeys, id: &str, credit: bool, body: &[u8]) -> (StatusCode, Value) {
    let req: MoveMoney = match parse(body, r#"{"amount": "300.00", "currency": "RUB", "reference": "...", "idempotency_key": "..."}"#) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let Some(key) = req.idempotency_key.filter(|k| !k.is_empty()) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "idempotency_key is required: choose a unique key per money movement (e.g. a ticket number), \
             so that repeating this call does not move money twice",
        );
    };
    let Some(_claim) = keys.claim(&key) else {
        return still_running(&key);
    };
    let amount = match decimal(&req.amount, "amount") {
        Ok(a) => a,
        Err(answer) => return answer,
    };
    let currency = match req.currency {
        Some(c) => c,
        None => match ledger.get_account(id).await {
            Ok(Some(account)) => account.currency,
            Ok(None) if credit => {
                return bad(StatusCode::BAD_REQUEST, &format!("account {id} does not exist yet: give its currency to open it"))
            }
            Ok(None) => return failure(LedgerError::UnknownAccount(id.to_string())),
            Err(e) => return failure(e),
        },
    };
    let result = if credit {
        ledger.credit_opening(SCOPE, &key, id, &amount, &currency, &req.reference).await
    } else {
        ledger.debit(SCOPE, &key, id, &amount, &currency, &req.reference).await
    };
    match result {
        // The account as this entry left it, so a replay answers exactly what the first
        // call did.
        Ok(entry) => match ledger.get_account(id).await {
            Ok(account) => {
                let account = account.map(|a| Account { balance: entry.balance_after.clone(), ..a });
                ok(&Moved { entry, account })
            }
            Err(e) => failure(e),
        },
        Err(e) => failure(e),
    }
}

/// 409 for a call whose key is held by one still running.
fn still_running(key: &str) -> (StatusCode, Value) {
    AdminError::new(
        StatusCode::CONFLICT,
        "request-in-progress",
        &format!("a call with idempotency key `{key}` is still being carried out; repeat this one once it has answered"),
    )
    .answer()
}

async fn set_overdraft(ledger: &Ledger, id: &str, body: &[u8]) -> (StatusCode, Value) {
    let req: Overdraft = match parse(body, r#"{"limit": "500.00"}"#) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let limit = match decimal(&req.limit, "limit") {
        Ok(l) => l,
        Err(answer) => return answer,
    };
    match ledger.set_overdraft(id, &limit).await {
        Ok(account) => ok(&OverdraftSet { account }),
        Err(e) => failure(e),
    }
}

async fn history(ledger: &Ledger, id: &str, query: &str) -> (StatusCode, Value) {
    let mut limit = DEFAULT_HISTORY;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "limit" {
            match value.parse::<u32>() {
                Ok(n) if (1..=MAX_HISTORY).contains(&n) => limit = n,
                _ => return bad(StatusCode::BAD_REQUEST, &format!("limit must be a whole number from 1 to {MAX_HISTORY}")),
            }
        }
    }
    match ledger.history(id, limit).await {
        Ok(entries) => ok(&History { account: id.to_string(), entries }),
        Err(e) => failure(e),
    }
}

async fn reverse(ledger: &Ledger, keys: &InFlightKeys, id: &str, raw_tx: &str, body: &[u8]) -> (StatusCode, Value) {
    let req: Reverse = match parse(body, r#"{"reference": "...", "idempotency_key": "..."}"#) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let Some(key) = req.idempotency_key.filter(|k| !k.is_empty()) else {
        return bad(StatusCode::BAD_REQUEST, "idempotency_key is required, so that repeating this call does not reverse twice");
    };
    let Some(_claim) = keys.claim(&key) else {
        return still_running(&key);
    };
    let tx = percent_encoding::percent_decode_str(raw_tx).decode_utf8_lossy().into_owned();
    if let Err(invalid) = ids::check(ids::TRANSACTION_ID, &tx) {
        return failure(invalid.into());
    }
    // The path names the account so an operator cannot reverse a transaction they did
    // not look at; the reversal still puts back every line of it.
    match ledger.storage.transaction_entries(&tx).await {
        Ok(entries) if entries.iter().any(|e| e.account == id) => {}
        Ok(_) => return bad(StatusCode::NOT_FOUND, &format!("account {id} has no transaction {tx}")),
        Err(e) => return failure(e.into()),
    }
    match ledger.reverse(SCOPE, &key, &tx, &req.reference).await {
        Ok(entries) => ok(&Reversed { entries }),
        Err(e) => failure(e),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], example: &str) -> Result<T, (StatusCode, Value)> {
    serde_json::from_slice(body).map_err(|e| bad(StatusCode::BAD_REQUEST, &format!("body must be JSON like {example}: {e}")))
}

/// Amounts must be JSON strings: a JSON number has already been through a float in
/// many clients, and `0.1 + 0.2` is not money.
fn decimal(value: &Value, field: &str) -> Result<String, (StatusCode, Value)> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad(StatusCode::BAD_REQUEST, &format!("{field} must be a decimal string such as \"300.00\", not a JSON number"))),
    }
}

fn bad(status: StatusCode, message: &str) -> (StatusCode, Value) {
    AdminError::new(status, "bad-request", message).answer()
}

/// A ledger error as an admin answer: the WIT case as `code`, details as fields.
pub fn failure(e: LedgerError) -> (StatusCode, Value) {
    let status = match &e {
        LedgerError::UnknownAccount(_) => StatusCode::NOT_FOUND,
        LedgerError::IdempotencyConflict(_) | LedgerError::NotReversible(_) => StatusCode::CONFLICT,
        LedgerError::InsufficientFunds { .. }
        | LedgerError::CurrencyMismatch(_)
        | LedgerError::InvalidAmount(_)
        | LedgerError::UnknownCurrency(_) => StatusCode::UNPROCESSABLE_ENTITY,
        LedgerError::InvalidInput(_) => StatusCode::BAD_REQUEST,
        LedgerError::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut body = json!({ "error": e.to_string(), "code": e.code() });
    if let LedgerError::InsufficientFunds { account, balance, requested } = &e {
        body["account"] = json!(account);
        body["balance"] = json!(balance);
        body["requested"] = json!(requested);
    }
    (status, body)
}

const ID: &str = "Account id (percent-encoded)";

#[utoipa::path(get, path = "/accounts/{id}", tag = "ledger", params(("id" = String, Path, description = ID)),
    responses(
        (status = 200, description = "The account", body = Account),
        (status = 400, description = "The id is not valid", body = AdminError),
        (status = 404, description = "No such account (`unknown-account`)", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_account() {}

#[utoipa::path(post, path = "/accounts/{id}/credit", tag = "ledger", params(("id" = String, Path, description = ID)), request_body = MoveMoney,
    responses(
        (status = 200, description = "Credited (or the same credit replayed); opens the account in `currency` if new", body = Moved),
        (status = 400, description = "Malformed body, missing idempotency key, or a JSON number as amount", body = AdminError),
        (status = 404, description = "No such account", body = AdminError),
        (status = 409, description = "The idempotency key was used with other arguments", body = AdminError),
        (status = 422, description = "Invalid amount or currency, or another currency than the account's", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_credit() {}

#[utoipa::path(post, path = "/accounts/{id}/debit", tag = "ledger", params(("id" = String, Path, description = ID)), request_body = MoveMoney,
    responses(
        (status = 200, description = "Debited (or the same debit replayed)", body = Moved),
        (status = 400, description = "Malformed body, missing idempotency key, or a JSON number as amount", body = AdminError),
        (status = 404, description = "No such account", body = AdminError),
        (status = 409, description = "The idempotency key was used with other arguments", body = AdminError),
        (status = 422, description = "`insufficient-funds` (with `balance` and `requested`), invalid amount or currency", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_debit() {}

#[utoipa::path(put, path = "/accounts/{id}/overdraft", tag = "ledger", params(("id" = String, Path, description = ID)), request_body = Overdraft,
    responses(
        (status = 200, description = "The account with its new overdraft limit", body = OverdraftSet),
        (status = 400, description = "Malformed body", body = AdminError),
        (status = 404, description = "No such account", body = AdminError),
        (status = 422, description = "Invalid amount", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_overdraft() {}

#[utoipa::path(get, path = "/accounts/{id}/transactions", tag = "ledger",
    params(("id" = String, Path, description = ID),
        ("limit" = Option<u32>, Query, description = "At most this many entries (1 to 1000, default 50)", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "Entries, newest first", body = History),
        (status = 400, description = "The limit is not valid", body = AdminError),
        (status = 404, description = "No such account", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_history() {}

#[utoipa::path(post, path = "/accounts/{id}/transactions/{tx}/reverse", tag = "ledger",
    params(("id" = String, Path, description = ID), ("tx" = String, Path, description = "Transaction id (`tx_…`) of one of the account's entries")),
    request_body = Reverse,
    responses(
        (status = 200, description = "Every line of the transaction put back", body = Reversed),
        (status = 400, description = "Malformed body or missing idempotency key", body = AdminError),
        (status = 404, description = "The account has no such transaction", body = AdminError),
        (status = 409, description = "Already reversed, itself a reversal, or the key was used with other arguments", body = AdminError),
        (status = 422, description = "The reversal would overdraw an account", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_reverse() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_statuses_and_wit_codes() {
        let (status, body) =
            failure(LedgerError::InsufficientFunds { account: "a".into(), balance: "1.00".into(), requested: "2.00".into() });
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "insufficient-funds");
        assert_eq!(body["requested"], "2.00");
        assert_eq!(failure(LedgerError::UnknownAccount("a".into())).0, StatusCode::NOT_FOUND);
        assert_eq!(failure(LedgerError::IdempotencyConflict("k".into())).0, StatusCode::CONFLICT);
        assert_eq!(failure(LedgerError::Backend("down".into())).0, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn amounts_must_be_strings() {
        assert_eq!(decimal(&json!("1.50"), "amount").unwrap(), "1.50");
        let (status, body) = decimal(&json!(1.5), "amount").unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].as_str().unwrap().contains("decimal string"));
    }
}
