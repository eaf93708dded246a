//! WebTV's signatures: what is signed (byte for byte as the vendor's PHP builds it) and
//! the sign/verify calls, which go to the host so the key never enters the plugin.
//!
//! - pay request: `base64(hmac_sha256(key, json_encode({id_gateway, id_order, amount,
//!   currency_code, order_number})))`, values as received;
//! - return URL: the same over `{id_gateway, id_order, status, id_transaction}`;
//! - `rp_status` / `rp_cancel`: over `{action, profile_id}`;
//! - a recurring item: `base64(hmac_sha256(key, md5(sku . floatval(amount) . frequency
//!   . period)))`, and a returned profile: over `md5(profile_id . status)`.
//!
//! PHP's `json_encode` escapes `/` and non-ASCII text (see `payhost_sdk::php`), and
//! `floatval` prints with 14 significant digits: both decide whether WebTV agrees.

use crate::host::Host;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use payhost_sdk::php;

/// The five signed fields of a pay request, as received (url-decoded).
pub struct PayFields<'a> {
    pub id_gateway: &'a str,
    pub id_order: &'a str,
    pub amount: &'a str,
    pub currency_code: &'a str,
    pub order_number: &'a str,
}

pub fn pay_message(f: &PayFields<'_>) -> String {
    php::json_object(&[
        ("id_gateway", f.id_gateway),
        ("id_order", f.id_order),
        ("amount", f.amount),
        ("currency_code", f.currency_code),
        ("order_number", f.order_number),
    ])
}

pub fn return_message(id_gateway: &str, id_order: &str, status: &str, id_transaction: &str) -> String {
    php::json_object(&[
        ("id_gateway", id_gateway),
        ("id_order", id_order),
        ("status", status),
        ("id_transaction", id_transaction),
    ])
}

/// Signed text of `action=rp_status` and `action=rp_cancel`.
pub fn action_message(action: &str, profile_id: &str) -> String {
    php::json_object(&[("action", action), ("profile_id", profile_id)])
}

/// What WebTV MD5s for recurring item: `sku . floatval(amount) . frequency . period`.
pub fn item_digest_input(sku: &str, amount: &str, frequency: &str, period: &str) -> String {
    format!("{sku}{}{frequency}{period}", php::floatval_string(amount))
}

/// What we MD5 for a returned profile: `profile_id . status`.
pub fn profile_digest_input(profile_id: &str, status: &str) -> String {
    format!("{profile_id}{status}")
}

/// Base64 signature bytes as they arrive, tolerating the ways a URL mangles them: a
/// still-encoded value (`%2B`) and `+` turned into a space by form decoding. Base64
/// has no `%` or space, so neither reading can change a genuine signature.
pub fn decode_signature(text: &str) -> Option<Vec<u8>> {
    let text = if text.contains('%') { php::rawurldecode(text) } else { text.to_string() };
    let text = text.replace(' ', "+");
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    STANDARD.decode(text).ok()
}

/// True when `signature` is WebTV's signature of `message`.
pub fn verify(host: &dyn Host, message: &str, signature: &str) -> Result<bool, String> {
    match decode_signature(signature) {
        Some(expected) => crate::host::verify(host, message.as_bytes(), &expected),
        None => Ok(false),
    }
}

/// Our signature of `message`, base64.
pub fn sign(host: &dyn Host, message: &str) -> Result<String, String> {
    Ok(STANDARD.encode(crate::host::sign(host, message.as_bytes())?))
}

/// True when `signature` is WebTV's signature of `md5(input)`.
pub fn verify_digest(host: &dyn Host, input: &str, signature: &str) -> Result<bool, String> {
    let digest = crate::host::md5_hex(host, input.as_bytes())?;
    verify(host, &digest, signature)
}

/// Our signature of `md5(input)`, base64.
pub fn sign_digest(host: &dyn Host, input: &str) -> Result<String, String> {
    let digest = crate::host::md5_hex(host, input.as_bytes())?;
    sign(host, &digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pay_message_is_php_json() {
        let f = PayFields {
            id_gateway: "3",
            id_order: "99",
            amount: "10.50",
            currency_code: "USD",
            order_number: "Заказ/1",
        };
        assert_eq!(
            pay_message(&f),
            r#"{"id_gateway":"3","id_order":"99","amount":"10.50","currency_code":"USD","order_number":"\u0417\u0430\u043a\u0430\u0437\/1"}"#
        );
        assert_eq!(
            return_message("3", "99", "SUCCESS", "tx/1"),
            r#"{"id_gateway":"3","id_order":"99","status":"SUCCESS","id_transaction":"tx\/1"}"#
        );
        assert_eq!(action_message("rp_status", "rp-3-99-0"), r#"{"action":"rp_status","profile_id":"rp-3-99-0"}"#);
    }

    #[test]
    fn item_input_uses_php_floatval() {
        assert_eq!(item_digest_input("GOLD", "10.50", "1", "MONTH"), "GOLD10.51MONTH");
        assert_eq!(item_digest_input("G", "5.00", "12", "DAY"), "G512DAY");
        assert_eq!(item_digest_input("G", "", "0", ""), "G00");
        assert_eq!(profile_digest_input("rp-3-99-0", "Active"), "rp-3-99-0Active");
    }

    #[test]
    fn signatures_survive_url_mangling() {
        let bytes = vec![0xfb, 0xff, 0xfe, 0x01];
        let b64 = STANDARD.encode(&bytes);
        assert_eq!(b64, "+//+AQ==");
        assert_eq!(decode_signature(&b64), Some(bytes.clone()));
        assert_eq!(decode_signature(" //+AQ=="), Some(bytes.clone()));
        assert_eq!(decode_signature("%2B%2F%2F%2BAQ%3D%3D"), Some(bytes));
        assert_eq!(decode_signature(""), None);
        assert_eq!(decode_signature("not base64!"), None);
    }
}
