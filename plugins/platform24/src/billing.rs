//! The "48 hours" billing requests Platform24 sends: `auth`, `packet`, `packets`,
//! `delete_subscription` and `balance`.
//!
//! Every answer is HTTP 200 with the JSON Platform24 reads (`status`/`errmsg`,
//! `balance`, or `result`): the platform shows `errmsg` on the TV, so a failure is an
//! answer, not an HTTP error. Purchases are in `purchase`; a cancellation stops the
//! renewal on the platform through the provider API, then here.

use crate::answer::{self, Failure};
use crate::api::Api;
use crate::config::Config;
use crate::subscriptions::{self, SubState};
use crate::time::now_ms;
use crate::wire::Inbound;
use crate::{renewal, users, wire};
use payhost_sdk::{clock, ledger, Request, Response};

fn inbound(req: &Request) -> Result<Inbound, Failure> {
    Inbound::parse(&req.query, req.header("content-type"), &req.body).map_err(Failure::Malformed)
}

/// Logs the billing outage detail for the operator and answers the generic failure.
pub fn unavailable(what: &str, detail: impl std::fmt::Display) -> Failure {
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

pub fn ledger_failure(e: ledger::Error) -> Failure {
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

/// `packet` and `packets`: debit all packets at once and connect them (see `purchase`).
pub fn purchase(config: &Config, req: &Request) -> Response {
    let received = now_ms();
    let mut user = None;
    let result = inbound(req)
        .and_then(|i| i.purchase().map_err(Failure::Malformed))
        .and_then(|p| {
            user = Some(p.user.clone());
            crate::purchase::buy(config, &p, received)
        });
    status_answer("purchase", user.as_deref(), result)
}

/// `delete_subscription`: stop the subscription's renewal on the platform, then here.
/// A failed platform call changes nothing and answers `status < -1`.
pub fn cancel(config: &Config, req: &Request) -> Response {
    let received = now_ms();
    let mut user = None;
    let result = inbound(req)
        .and_then(|i| i.cancellation().map_err(Failure::Malformed))
        .and_then(|c: wire::Cancellation| {
            user = Some(c.user.clone());
            stop(config, &c, received)
        });
    status_answer("delete_subscription", user.as_deref(), result)
}

fn stop(config: &Config, c: &wire::Cancellation, received_ms: i64) -> Result<(), Failure> {
    let account = subscriber(config, &c.user)?;
    let platform_user = users::platform_id(&c.user, c.platform_user_id.as_deref())
        .map_err(|e| unavailable("user-link", e))?
        .ok_or_else(|| Failure::NotOnPlatform(c.user.clone()))?;
    let sid = match &c.sub_id {
        Some(id) => id.clone(),
        // Only the packet named: the live subscription of it that the billing charges.
        None => subscriptions::of_account(&account.id)
            .map_err(|e| unavailable("subscriptions", e))?
            .into_iter()
            .find(|s| Some(&s.packet_id) == c.packet_id.as_ref() && s.state == SubState::Active)
            .map(|s| s.id)
            .ok_or_else(|| Failure::Malformed("подписка на этот пакет не найдена".into()))?,
    };
    let api = Api::until(config, received_ms + config.answer_budget_ms);
    match api.stop_renewal(&platform_user, &sid) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            payhost_sdk::warn("platform24 did not stop a renewal", &[("user", &c.user), ("subscription", &sid), ("error", &e.to_string())]);
            return Err(Failure::CancelFailed);
        }
    }
    let now = clock::now().seconds;
    subscriptions::update(&account.id, &sid, |s| subscriptions::SubRecord {
        state: SubState::Stopping,
        renew: false,
        reason: Some("Продление отключено абонентом".into()),
        ..s
    })
    .and_then(|()| renewal::cancel(&account.id, &sid))
    .and_then(|()| {
        subscriptions::record_cancellation(
            &account.id,
            &subscriptions::Cancellation {
                sub_id: sid.clone(),
                packet_id: c.packet_id.clone(),
                start_at: c.start_at.clone(),
                end_at: c.end_at.clone(),
                at: now,
            },
        )
    })
    .map_err(|e| unavailable("cancel", e))?;
    subscriptions::note(
        &account.id,
        &subscriptions::HistoryEntry {
            at: now,
            event: "renewal-stopped".into(),
            subscription: Some(sid.clone()),
            packet: c.packet_id.clone(),
            text: "Продление отключено абонентом (DELETE_SUBSCRIPTION)".into(),
        },
    );
    Ok(())
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
