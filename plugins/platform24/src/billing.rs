//! The "48 hours" billing requests Platform24 sends: `auth`, `packet`, `packets`,
//! `delete_subscription` and `balance`.
//!
//! Every answer is HTTP 200 with the JSON Platform24 reads (`status`/`errmsg`,
//! `balance`, or `result`): the platform shows `errmsg` on the TV, so a failure is an
//! answer, not an HTTP error. Money moves only through `ledger::debit_many`, once per
//! purchase (see `dedup`), all packets or none.

use crate::answer::{self, Failure};
use crate::config::Config;
use crate::records::{self, Subscription, SubscriptionState};
use crate::wire::{Inbound, Packet, Purchase};
use crate::{dedup, wire};
use payhost_sdk::{clock, ledger, Request, Response};

fn inbound(req: &Request) -> Result<Inbound, Failure> {
    Inbound::parse(&req.query, req.header("content-type"), &req.body).map_err(Failure::Malformed)
}

/// Logs the billing outage detail for the operator and answers the generic failure.
fn unavailable(what: &str, detail: impl std::fmt::Display) -> Failure {
    payhost_sdk::error("platform24 billing failed", &[("step", what), ("error", &detail.to_string())]);
    Failure::Unavailable
}

/// The subscriber's ledger account, which must exist and hold the configured currency.
pub fn subscriber(config: &Config, provider_uid: &str) -> Result<ledger::Account, Failure> {
    match ledger::get_account(&config.account(provider_uid)) {
        Ok(Some(account)) if account.currency == config.currency => Ok(account),
        Ok(Some(account)) => Err(Failure::Currency(format!(
            "счёт абонента ведётся в {}, а платформа работает в {}",
            account.currency, config.currency
        ))),
        Ok(None) => Err(Failure::UnknownUser(provider_uid.into())),
        Err(e) => Err(unavailable("get-account", format!("{e:?}"))),
    }
}

fn ledger_failure(e: ledger::Error) -> Failure {
    match e {
        ledger::Error::InsufficientFunds(_) => Failure::InsufficientFunds,
        ledger::Error::UnknownAccount(account) => Failure::UnknownUser(account),
        ledger::Error::CurrencyMismatch(detail) => Failure::Currency(detail),
        ledger::Error::UnknownCurrency(code) => Failure::Currency(format!("неизвестная валюта {code}")),
        ledger::Error::InvalidAmount(detail) => Failure::Malformed(format!("неверная стоимость ({detail})")),
        other => unavailable("debit", format!("{other:?}")),
    }
}

/// Answers a `status` request and logs its outcome (never secrets: there are none here).
fn status_answer(kind: &str, user: Option<&str>, result: Result<(), Failure>) -> Response {
    let user = user.unwrap_or("-");
    match result {
        Ok(()) => {
            payhost_sdk::info("platform24 request done", &[("request", kind), ("user", user), ("status", "1")]);
            Response::raw_json(200, answer::success())
        }
        Err(f) => {
            let status = f.status().to_string();
            payhost_sdk::info(
                "platform24 request refused",
                &[("request", kind), ("user", user), ("status", &status), ("reason", f.kind())],
            );
            Response::raw_json(200, answer::failure(&f))
        }
    }
}

/// `packet` and `packets`: debit the price of every packet at once, or nothing.
pub fn purchase(config: &Config, req: &Request) -> Response {
    let mut user = None;
    let result = inbound(req)
        .and_then(|i| i.purchase().map_err(Failure::Malformed))
        .and_then(|p| {
            user = Some(p.user.clone());
            debit(config, &p)
        });
    status_answer("purchase", user.as_deref(), result)
}

fn debit(config: &Config, purchase: &Purchase) -> Result<(), Failure> {
    let account = subscriber(config, &purchase.user)?;
    let priced: Vec<(&str, &str)> =
        purchase.packets.iter().map(|p| (p.id.as_str(), p.price.as_str())).collect();
    let key = dedup::key_for(&account.id, &priced, config.dedup_window_seconds)
        .map_err(|e| unavailable("dedup", e))?;
    // Free packets move no money (the ledger refuses zero debits). Lines are sorted and
    // hold only what the idempotency key covers, so a repeat (packets in any order) is
    // the same ledger call, never a conflict.
    let mut paid: Vec<&Packet> = purchase.packets.iter().filter(|p| !p.price.is_zero()).collect();
    paid.sort_by(|a, b| (a.id.as_str(), a.price.as_str()).cmp(&(b.id.as_str(), b.price.as_str())));
    let lines: Vec<ledger::DebitLine> = paid
        .into_iter()
        .map(|p| ledger::DebitLine {
            account: account.id.clone(),
            amount: p.price.as_str().into(),
            reference: format!("Пакет 24часаТВ {}", p.id),
        })
        .collect();
    let transaction = if lines.is_empty() {
        None
    } else {
        let entries = ledger::debit_many(&key, &config.currency, &lines).map_err(ledger_failure)?;
        entries.first().map(|e| e.transaction_id.clone())
    };
    let now = clock::now().seconds;
    for p in &purchase.packets {
        let sub = Subscription {
            packet_id: p.id.clone(),
            name: p.name.clone(),
            price: p.price.as_str().into(),
            currency: config.currency.clone(),
            is_base: p.is_base,
            state: SubscriptionState::Active,
            purchased_at: now,
            ledger_transaction: transaction.clone(),
            cancelled_at: None,
        };
        // The money has moved and a repeat would replay it; a lost record must not
        // turn a paid purchase into a refusal, so it is only logged.
        if let Err(e) = records::record_subscription(&account.id, &sub) {
            payhost_sdk::error("platform24 could not record a subscription", &[("account", &account.id), ("packet", &p.id), ("error", &e)]);
        }
    }
    Ok(())
}

/// `delete_subscription`: remember the cancellation; no money moves.
pub fn cancel(config: &Config, req: &Request) -> Response {
    let mut user = None;
    let result = inbound(req)
        .and_then(|i| i.cancellation().map_err(Failure::Malformed))
        .and_then(|c: wire::Cancellation| {
            user = Some(c.user.clone());
            let account = subscriber(config, &c.user)?;
            let record = records::Cancellation {
                sub_id: c.sub_id,
                packet_id: c.packet_id,
                start_at: c.start_at,
                end_at: c.end_at,
                at: clock::now().seconds,
            };
            records::record_cancellation(&account.id, &record).map_err(|e| unavailable("cancel", e))
        });
    status_answer("delete_subscription", user.as_deref(), result)
}

/// `balance`: `{"balance":1234.56}`, the ledger's digits as a JSON number.
pub fn balance(config: &Config, req: &Request) -> Response {
    let mut user = None;
    let result = inbound(req).and_then(|i| i.user().map_err(Failure::Malformed)).and_then(|uid| {
        user = Some(uid.clone());
        let account = subscriber(config, &uid)?;
        answer::balance(&account.balance)
            .ok_or_else(|| unavailable("balance", format!("ledger balance `{}` is not a decimal", account.balance)))
    });
    match result {
        Ok(body) => {
            payhost_sdk::info("platform24 request done", &[("request", "balance"), ("user", user.as_deref().unwrap_or("-"))]);
            Response::raw_json(200, body)
        }
        Err(f) => status_answer("balance", user.as_deref(), Err(f)),
    }
}

/// `auth`: match a platform user to a billing account by provider uid.
pub fn auth(config: &Config, req: &Request) -> Response {
    let request = match inbound(req).and_then(|i| i.auth().map_err(Failure::Malformed)) {
        Ok(r) => r,
        Err(f) => return auth_answer(None, Err(f.errmsg())),
    };
    let Some(uid) = request.provider_uid.clone() else {
        return auth_answer(None, Err("Не указан provider_uid: сопоставление абонента возможно только по его идентификатору в биллинге".into()));
    };
    let result = match subscriber(config, &uid) {
        Ok(_) => Ok(()),
        Err(f) => Err(f.errmsg()),
    };
    auth_answer(Some(&uid), result)
}

fn auth_answer(uid: Option<&str>, result: Result<(), String>) -> Response {
    let user = uid.unwrap_or("-");
    match result {
        Ok(()) => {
            payhost_sdk::info("platform24 auth matched", &[("user", user)]);
            Response::raw_json(200, answer::auth_success(user))
        }
        Err(errmsg) => {
            payhost_sdk::info("platform24 auth refused", &[("user", user)]);
            Response::raw_json(200, answer::auth_error(&errmsg))
        }
    }
}
