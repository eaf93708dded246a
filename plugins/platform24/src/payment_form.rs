//! The payment-form URL request: Platform24 asks where to send a subscriber to pay by
//! card, and gets `{"redirect_url": ...}` of a hosted checkout on our payment system.
//!
//! The request is signed (`SecurityKey`, see `security`); the TransactionID is
//! remembered with the subscriber so the payment event can credit the right account
//! and be reported back. Platform24 gives up after 10 seconds, so a slow payment
//! system (its plugin's outbound calls carry their own deadline) ends in a clear error
//! answer rather than a wait. A repeated request for the same transaction gets the
//! same checkout.

use crate::amount::Amount;
use crate::answer::{self, Failure};
use crate::billing::subscriber;
use crate::config::Config;
use crate::records::{self, Outcome, Transaction};
use crate::security::{self, FormFields, VerifyError};
use crate::wire::FormRequest;
use payhost_sdk::{checkout, clock, payments, Request, Response};

/// At most this many characters of the order description are shown on the payment
/// page: a TV shows one short line.
const DESCRIPTION_CHARS: usize = 60;
const DEFAULT_DESCRIPTION: &str = "Оплата подписки 24часаТВ";

/// One short printable line for a TV payment page.
pub fn tv_description(order: &str) -> String {
    let line = order
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if line.is_empty() {
        return DEFAULT_DESCRIPTION.into();
    }
    if line.chars().count() <= DESCRIPTION_CHARS {
        return line;
    }
    let cut: String = line.chars().take(DESCRIPTION_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

fn refuse(status: u16, errmsg: &str) -> Response {
    payhost_sdk::info("platform24 payment form refused", &[("http_status", &status.to_string()), ("reason", errmsg)]);
    Response::raw_json(status, answer::form_error(errmsg))
}

pub fn handle(config: &Config, req: &Request) -> Response {
    let form = match FormRequest::parse(&req.query, req.header("content-type"), &req.body) {
        Ok(f) => f,
        Err(e) => return refuse(400, &format!("Неверный запрос: {e}")),
    };
    let fields = FormFields {
        user_id: &form.user_id,
        amount: &form.amount,
        currency: &form.currency,
        order_description: &form.order_description,
        transaction_id: &form.transaction_id,
    };
    match security::verify_form(&fields, &form.security_key) {
        Ok(()) => {}
        Err(VerifyError::Malformed | VerifyError::Mismatch) => {
            payhost_sdk::warn(
                "platform24 payment form with a bad SecurityKey",
                &[("user", &form.user_id), ("transaction", &form.transaction_id)],
            );
            return refuse(403, "Неверная подпись запроса (SecurityKey)");
        }
        Err(VerifyError::NotGranted(detail)) => {
            payhost_sdk::error(
                "platform24 cannot verify payment forms: the private key secret is not granted",
                &[("secret", security::SECRET), ("error", &detail)],
            );
            return refuse(500, "Биллинг провайдера не настроен для оплаты картой");
        }
    }
    let amount = match Amount::parse(&form.amount) {
        Ok(a) if !a.is_zero() => a,
        Ok(_) => return refuse(400, "Сумма платежа должна быть больше нуля"),
        Err(e) => return refuse(400, &format!("Неверная сумма платежа: {e}")),
    };
    if !form.currency.eq_ignore_ascii_case(&config.currency) {
        return refuse(400, &format!("Валюта {} не поддерживается, ожидается {}", form.currency, config.currency));
    }
    let account = match subscriber(config, &form.user_id) {
        Ok(a) => a,
        Err(f @ Failure::UnknownUser(_)) => return refuse(404, &f.errmsg()),
        Err(f @ Failure::Unavailable) => return refuse(503, &f.errmsg()),
        Err(f) => return refuse(400, &f.errmsg()),
    };
    let wanted = Transaction {
        user: form.user_id.clone(),
        account: account.id.clone(),
        amount: amount.as_str().into(),
        currency: config.currency.clone(),
        description: form.order_description.clone(),
        created_at: clock::now().seconds,
        checkout_id: None,
        redirect_url: None,
        outcome: None,
    };
    let stored = match records::create_transaction(&form.transaction_id, &wanted) {
        Ok(t) => t,
        Err(e) => {
            payhost_sdk::error("platform24 could not store a transaction", &[("transaction", &form.transaction_id), ("error", &e)]);
            return refuse(503, &Failure::Unavailable.errmsg());
        }
    };
    if !stored.same_payment(&wanted) {
        return refuse(409, "TransactionID уже использован для другого платежа");
    }
    if stored.outcome == Some(Outcome::Confirmed) {
        return refuse(409, "Эта транзакция уже оплачена");
    }
    if let Some(url) = stored.redirect_url {
        return answer_redirect(&form, &url);
    }
    start(config, &form, &wanted)
}

fn start(config: &Config, form: &FormRequest, txn: &Transaction) -> Response {
    let request = payments::CheckoutRequest {
        amount: txn.amount.clone(),
        currency: txn.currency.clone(),
        description: tv_description(&form.order_description),
        reference: form.transaction_id.clone(),
        return_url: config.return_url.clone(),
        customer: txn.account.clone(),
        save_card: false,
    };
    match checkout::start_checkout(&config.payment_system, &request) {
        Ok(co) => {
            let (id, url) = (co.id.clone(), co.redirect_url.clone());
            let saved = records::update_transaction(&form.transaction_id, |t| Transaction {
                checkout_id: Some(id.clone()),
                redirect_url: Some(url.clone()),
                ..t
            });
            if let Err(e) = saved {
                // The checkout exists; a repeat would only start another one.
                payhost_sdk::warn("platform24 could not remember a checkout", &[("transaction", &form.transaction_id), ("error", &e)]);
            }
            answer_redirect(form, &co.redirect_url)
        }
        Err(e) => {
            let (status, errmsg) = match &e {
                payments::Error::Unavailable(_) => (503, "Платёжная система не ответила, попробуйте позже"),
                payments::Error::UnknownSystem(_) => (500, "Биллинг провайдера не настроен для оплаты картой"),
                payments::Error::Rejected(_) => (502, "Платёжная система отклонила платёж"),
                _ => (502, "Платёжная система не смогла создать платёж"),
            };
            payhost_sdk::warn(
                "platform24 checkout failed",
                &[("system", &config.payment_system), ("transaction", &form.transaction_id), ("error", &format!("{e:?}"))],
            );
            refuse(status, errmsg)
        }
    }
}

fn answer_redirect(form: &FormRequest, url: &str) -> Response {
    payhost_sdk::info(
        "platform24 payment form issued",
        &[("user", &form.user_id), ("transaction", &form.transaction_id), ("amount", &form.amount)],
    );
    Response::raw_json(200, answer::redirect(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tv_description_is_one_short_line() {
        assert_eq!(tv_description("  Пакет\n«Кино»\t на 30 дней "), "Пакет «Кино» на 30 дней");
        assert_eq!(tv_description(""), DEFAULT_DESCRIPTION);
        assert_eq!(tv_description("\u{7}\r\n"), DEFAULT_DESCRIPTION);
        let long = "Очень длинное описание ".repeat(10);
        let d = tv_description(&long);
        assert!(d.starts_with("Очень длинное описание Очень"));
        assert!(d.chars().count() <= DESCRIPTION_CHARS);
        assert!(d.ends_with('…'));
    }
}
