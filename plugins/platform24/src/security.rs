//! The two `SecurityKey` formulas of the card-payment scheme.
//!
//! Both are `sha1hex("Name=value&...&PrivateSecurityKey=<key>")` over UTF-8, but the
//! field order differs: the payment-form request signs UserID, Amount, Currency,
//! OrderDescription, TransactionID; the confirm/fail callbacks sign TransactionID,
//! Amount, ExternalTransactionID, Currency. The builders here produce everything up to
//! and including `PrivateSecurityKey=`; the host appends the named secret and hashes,
//! so the key never enters the plugin. Values are inserted raw (no URL encoding): the
//! formula is over the decoded values.

use payhost_sdk::signing::{self, DigestAlgorithm, Part};

/// Name of the granted secret holding Platform24's PrivateSecurityKey.
pub const SECRET: &str = "platform24_private_key";

/// The fields Platform24 signs in a payment-form request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormFields<'a> {
    pub user_id: &'a str,
    pub amount: &'a str,
    pub currency: &'a str,
    pub order_description: &'a str,
    pub transaction_id: &'a str,
}

/// The fields we sign in a confirm or fail callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackFields<'a> {
    pub transaction_id: &'a str,
    pub amount: &'a str,
    pub external_transaction_id: &'a str,
    pub currency: &'a str,
}

/// `UserID=..&Amount=..&Currency=..&OrderDescription=..&TransactionID=..&PrivateSecurityKey=`
pub fn form_prefix(f: &FormFields) -> String {
    format!(
        "UserID={}&Amount={}&Currency={}&OrderDescription={}&TransactionID={}&PrivateSecurityKey=",
        f.user_id, f.amount, f.currency, f.order_description, f.transaction_id
    )
}

/// `TransactionID=..&Amount=..&ExternalTransactionID=..&Currency=..&PrivateSecurityKey=`
pub fn callback_prefix(f: &CallbackFields) -> String {
    format!(
        "TransactionID={}&Amount={}&ExternalTransactionID={}&Currency={}&PrivateSecurityKey=",
        f.transaction_id, f.amount, f.external_transaction_id, f.currency
    )
}

/// Why a payment-form `SecurityKey` was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Not hex, or the wrong length for SHA1.
    Malformed,
    /// Well-formed but not what the formula gives.
    Mismatch,
    /// The instance config does not grant the secret (an operator error).
    NotGranted(String),
}

/// Checks a payment-form request's `SecurityKey` in constant time (in the host).
pub fn verify_form(fields: &FormFields, security_key: &str) -> Result<(), VerifyError> {
    let expected = signing::from_hex(security_key.trim()).map_err(|_| VerifyError::Malformed)?;
    if expected.len() != 20 {
        return Err(VerifyError::Malformed);
    }
    let message = [Part::Text(form_prefix(fields)), Part::Secret(SECRET.into())];
    match signing::verify_digest(DigestAlgorithm::Sha1, &message, &expected) {
        Ok(true) => Ok(()),
        Ok(false) => Err(VerifyError::Mismatch),
        Err(e) => Err(VerifyError::NotGranted(format!("{e:?}"))),
    }
}

/// The lowercase hex `SecurityKey` of a confirm or fail callback.
pub fn sign_callback(fields: &CallbackFields) -> Result<String, String> {
    let message = [Part::Text(callback_prefix(fields)), Part::Secret(SECRET.into())];
    signing::digest(DigestAlgorithm::Sha1, &message)
        .map(|bytes| signing::to_hex(&bytes))
        .map_err(|e| format!("cannot sign the callback with `{SECRET}`: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};

    /// The host's digest over `[Text(prefix), Secret(key)]`, natively.
    fn sha1_with_key(prefix: &str, key: &str) -> String {
        let mut h = Sha1::new();
        h.update(prefix.as_bytes());
        h.update(key.as_bytes());
        hex::encode(h.finalize())
    }

    // Vectors computed with Python's hashlib from the document's formulas:
    //   hashlib.sha1(("UserID=%s&Amount=%s&Currency=%s&OrderDescription=%s"
    //                 "&TransactionID=%s&PrivateSecurityKey=%s" % (...)).encode()).hexdigest()

    #[test]
    fn form_formula_field_order_and_vector() {
        let f = FormFields {
            user_id: "abonent-1001",
            amount: "150.50",
            currency: "RUB",
            order_description: "Пакет «Кино» на 30 дней",
            transaction_id: "tx-777",
        };
        let prefix = form_prefix(&f);
        assert_eq!(
            prefix,
            "UserID=abonent-1001&Amount=150.50&Currency=RUB&OrderDescription=Пакет «Кино» на 30 дней&TransactionID=tx-777&PrivateSecurityKey="
        );
        assert_eq!(
            sha1_with_key(&prefix, "s3cr3t-ключ"),
            "c39d3c41b959ec8c97d39e161c200537b8b9f5d4"
        );
    }

    #[test]
    fn callback_formula_field_order_and_vector() {
        let f = CallbackFields {
            transaction_id: "tx-777",
            amount: "150.50",
            external_transaction_id: "ext-42",
            currency: "RUB",
        };
        let prefix = callback_prefix(&f);
        assert_eq!(
            prefix,
            "TransactionID=tx-777&Amount=150.50&ExternalTransactionID=ext-42&Currency=RUB&PrivateSecurityKey="
        );
        assert_eq!(
            sha1_with_key(&prefix, "s3cr3t-ключ"),
            "f3e853d38102bd45ff63dabe0339e807c7498829"
        );
    }

    #[test]
    fn the_two_orders_differ() {
        let form = form_prefix(&FormFields {
            user_id: "u",
            amount: "1.00",
            currency: "RUB",
            order_description: "d",
            transaction_id: "t",
        });
        let cb = callback_prefix(&CallbackFields {
            transaction_id: "t",
            amount: "1.00",
            external_transaction_id: "e",
            currency: "RUB",
        });
        assert!(form.find("Amount").unwrap() < form.find("Currency").unwrap());
        assert!(cb.find("ExternalTransactionID").unwrap() < cb.find("Currency").unwrap());
        assert!(cb.starts_with("TransactionID=") && form.starts_with("UserID="));
    }
}
