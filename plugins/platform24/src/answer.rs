//! The JSON answers Platform24 understands, and the status codes of our failures.
//!
//! Platform24 reads `status`: `1` is success, `-1` means "not enough money" (it then
//! asks for the balance and offers a card payment), and anything below `-1` is another
//! failure whose `errmsg` it shows on the TV, so those texts are Russian and short.

use crate::amount::is_json_decimal;

/// A JSON string literal (serde_json leaves non-ASCII as UTF-8, which Platform24 reads).
fn js(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Why a billing request (`packet`, `packets`, `delete_subscription`, `balance`) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The subscriber's balance does not cover the purchase: always status -1.
    InsufficientFunds,
    /// No billing account for this provider uid.
    UnknownUser(String),
    /// The request could not be understood (the detail says what was wrong).
    Malformed(String),
    /// The currency is unknown, or not the account's.
    Currency(String),
    /// The billing itself failed (storage, configuration); worth retrying later.
    Unavailable,
    /// The same purchase is being carried out by an earlier request right now.
    InProgress,
    /// The purchase breaks the packet rules; the text says which (nothing debited).
    Rules(String),
    /// The platform could not be asked before the debit (nothing debited).
    PlatformUnavailable,
    /// The platform did not connect the packets; the debit was reversed.
    ConnectFailed,
    /// The subscriber has no user on the platform we know of.
    NotOnPlatform(String),
    /// The platform did not stop the subscription's renewal (nothing changed).
    CancelFailed,
}

impl Failure {
    pub fn status(&self) -> i32 {
        match self {
            Failure::InsufficientFunds => -1,
            Failure::UnknownUser(_) => -2,
            Failure::Malformed(_) => -3,
            Failure::Currency(_) => -4,
            Failure::Unavailable => -5,
            Failure::InProgress => -6,
            Failure::Rules(_) => -7,
            Failure::PlatformUnavailable => -8,
            Failure::ConnectFailed => -9,
            Failure::NotOnPlatform(_) => -10,
            Failure::CancelFailed => -11,
        }
    }

    pub fn errmsg(&self) -> String {
        match self {
            Failure::InsufficientFunds => "На вашем балансе не хватает денежных средств".into(),
            Failure::UnknownUser(uid) => format!("Абонент «{uid}» не найден в биллинге провайдера"),
            Failure::Malformed(detail) => format!("Неверный запрос: {detail}"),
            Failure::Currency(detail) => format!("Ошибка валюты: {detail}"),
            Failure::Unavailable => {
                "Биллинг провайдера временно недоступен, попробуйте позже".into()
            }
            Failure::InProgress => "Покупка уже выполняется, проверьте подписки через минуту".into(),
            Failure::Rules(text) => text.clone(),
            Failure::PlatformUnavailable => "Платформа не ответила, деньги не списаны. Попробуйте позже".into(),
            Failure::ConnectFailed => {
                "Не удалось подключить пакеты, деньги возвращены на баланс. Попробуйте позже".into()
            }
            Failure::NotOnPlatform(uid) => format!("Абонент «{uid}» не зарегистрирован на платформе"),
            Failure::CancelFailed => "Не удалось отключить продление подписки, попробуйте позже".into(),
        }
    }

    /// A short English tag for the host log.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::InsufficientFunds => "insufficient-funds",
            Failure::UnknownUser(_) => "unknown-user",
            Failure::Malformed(_) => "malformed",
            Failure::Currency(_) => "currency",
            Failure::Unavailable => "unavailable",
            Failure::InProgress => "in-progress",
            Failure::Rules(_) => "packet-rules",
            Failure::PlatformUnavailable => "platform-unavailable",
            Failure::ConnectFailed => "connect-failed",
            Failure::NotOnPlatform(_) => "not-on-platform",
            Failure::CancelFailed => "cancel-failed",
        }
    }
}

/// `{"status":1}`
pub fn success() -> Vec<u8> {
    br#"{"status":1}"#.to_vec()
}

/// `{"status":-N,"errmsg":"..."}`
pub fn failure(f: &Failure) -> Vec<u8> {
    // Written by hand to keep the document's key order.
    format!(r#"{{"status":{},"errmsg":{}}}"#, f.status(), js(&f.errmsg())).into_bytes()
}

/// `{"balance":1234.56}` with the ledger's digits written as the JSON number, so no
/// float ever rounds the subscriber's money. `None` when `balance` is not a decimal.
pub fn balance(balance: &str) -> Option<Vec<u8>> {
    is_json_decimal(balance).then(|| format!(r#"{{"balance":{balance}}}"#).into_bytes())
}

/// AUTH success: `{"result":"success","provider_uid":"..."}`
pub fn auth_success(provider_uid: &str) -> Vec<u8> {
    format!(r#"{{"result":"success","provider_uid":{}}}"#, js(provider_uid)).into_bytes()
}

/// AUTH failure: `{"result":"error","errmsg":"..."}`
pub fn auth_error(errmsg: &str) -> Vec<u8> {
    format!(r#"{{"result":"error","errmsg":{}}}"#, js(errmsg)).into_bytes()
}

/// Payment-form success: `{"redirect_url":"..."}`
pub fn redirect(url: &str) -> Vec<u8> {
    format!(r#"{{"redirect_url":{}}}"#, js(url)).into_bytes()
}

/// Payment-form failure: `{"errmsg":"..."}` (any answer without `redirect_url` is an
/// error for Platform24; the text is for the operator and the TV).
pub fn form_error(errmsg: &str) -> Vec<u8> {
    format!(r#"{{"errmsg":{}}}"#, js(errmsg)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("answers are UTF-8")
    }

    #[test]
    fn short_money_is_always_minus_one_and_others_below() {
        assert_eq!(Failure::InsufficientFunds.status(), -1);
        for f in [
            Failure::UnknownUser("u".into()),
            Failure::Malformed("x".into()),
            Failure::Currency("x".into()),
            Failure::Unavailable,
            Failure::InProgress,
            Failure::Rules("x".into()),
            Failure::PlatformUnavailable,
            Failure::ConnectFailed,
            Failure::NotOnPlatform("u".into()),
            Failure::CancelFailed,
        ] {
            assert!(f.status() < -1, "{f:?}");
        }
    }

    #[test]
    fn tv_texts_are_short_single_lines() {
        for f in [Failure::InProgress, Failure::PlatformUnavailable, Failure::ConnectFailed, Failure::Unavailable, Failure::CancelFailed] {
            let text = f.errmsg();
            assert!(text.chars().count() <= 80 && !text.contains('\n'), "{text}");
            assert!(text.chars().any(|c| ('а'..='я').contains(&c)), "Russian: {text}");
        }
    }

    #[test]
    fn failure_json_keeps_russian_as_utf8() {
        let body = text(failure(&Failure::InsufficientFunds));
        assert_eq!(body, r#"{"status":-1,"errmsg":"На вашем балансе не хватает денежных средств"}"#);
        let v: serde_json::Value = serde_json::from_str(&text(failure(&Failure::UnknownUser("42".into())))).unwrap();
        assert_eq!(v["status"], -2);
        assert_eq!(v["errmsg"], "Абонент «42» не найден в биллинге провайдера");
    }

    #[test]
    fn balance_digits_are_written_verbatim() {
        assert_eq!(text(balance("1234.56").unwrap()), r#"{"balance":1234.56}"#);
        assert_eq!(text(balance("0.10").unwrap()), r#"{"balance":0.10}"#);
        assert_eq!(text(balance("-3.00").unwrap()), r#"{"balance":-3.00}"#);
        assert_eq!(text(balance("12345678901234567.89").unwrap()), r#"{"balance":12345678901234567.89}"#);
        assert!(balance("1,5").is_none());
    }

    #[test]
    fn simple_answers() {
        assert_eq!(text(success()), r#"{"status":1}"#);
        assert_eq!(text(auth_success("u1")), r#"{"result":"success","provider_uid":"u1"}"#);
        assert_eq!(text(redirect("https://pay/x?a=1&b=2")), r#"{"redirect_url":"https://pay/x?a=1&b=2"}"#);
        assert_eq!(text(auth_error("нет \"uid\"")), r#"{"result":"error","errmsg":"нет \"uid\""}"#);
    }
}
