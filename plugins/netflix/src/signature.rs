//! What Netflix's `nflxv1` signatures cover, without the key.
//!
//! The header signature is HMAC-SHA256 over `name=value` pairs of the signed headers
//! that the request actually carries, names lowercase, in a fixed order, joined by commas
//! with no spaces. The payload signature is HMAC-SHA256 over the exact body bytes sent
//! (the sample code signs the header string twice; that is a bug in the sample). The HMAC
//! itself is computed by the host, so this module only builds what gets signed and how
//! the result is written into a header.

pub const AUTHORIZATION_TIME: &str = "X-Netflix-AuthorizationTime";
pub const CUSTOMER_IDENTIFIER: &str = "X-Netflix-PartnerCustomerIdentifier";
pub const HEADER_AUTHORIZATION: &str = "X-Netflix-Header-Authorization";
pub const PAYLOAD_AUTHORIZATION: &str = "X-Netflix-Payload-Authorization";

/// Signed headers, in the order they appear in the string to sign.
const SIGNED_HEADERS: [&str; 2] = [AUTHORIZATION_TIME, CUSTOMER_IDENTIFIER];

/// The header string to sign, built from the headers that will be sent.
pub fn header_string_to_sign(sent: &[(String, String)]) -> String {
    SIGNED_HEADERS
        .iter()
        .filter_map(|signed| {
            sent.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(signed))
                .map(|(_, value)| format!("{}={}", signed.to_ascii_lowercase(), value))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `nflxv1 Credential=CRED,Signature=SIG` with a base64 signature.
pub fn authorization_value(credential: &str, signature_base64: &str) -> String {
    format!("nflxv1 Credential={credential},Signature={signature_base64}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use hmac::{Hmac, Mac};

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn hmac_b64(key: &[u8], message: &[u8]) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(message);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn lists_only_sent_signed_headers_lowercase_in_order() {
        let sent = headers(&[
            ("Content-Type", "application/json"),
            (CUSTOMER_IDENTIFIER, "1234567"),
            (AUTHORIZATION_TIME, "20261122T153012+0530"),
        ]);
        assert_eq!(
            header_string_to_sign(&sent),
            "x-netflix-authorizationtime=20261122T153012+0530,x-netflix-partnercustomeridentifier=1234567"
        );
    }

    #[test]
    fn a_call_without_customer_signs_the_time_only() {
        let sent = headers(&[("x-netflix-authorizationtime", "20261122T153012+0530")]);
        assert_eq!(header_string_to_sign(&sent), "x-netflix-authorizationtime=20261122T153012+0530");
    }

    #[test]
    fn header_value_format() {
        assert_eq!(authorization_value("partner-1", "abc="), "nflxv1 Credential=partner-1,Signature=abc=");
    }

    // Vectors computed independently with Python:
    //   key = base64.b64decode("c2VjcmV0LXBhcnRuZXIta2V5LWZvci10ZXN0cw==")
    //   base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest())
    const KEY: &[u8] = b"secret-partner-key-for-tests";

    #[test]
    fn header_signature_matches_an_independent_vector() {
        let with_customer = headers(&[
            (AUTHORIZATION_TIME, "20261122T153012+0530"),
            (CUSTOMER_IDENTIFIER, "1234567"),
        ]);
        assert_eq!(
            hmac_b64(KEY, header_string_to_sign(&with_customer).as_bytes()),
            "cQx95gmNsoGiddL5xgGBepk40MmfiFq6lYI+R73Yfjs="
        );
        let time_only = headers(&[(AUTHORIZATION_TIME, "20261122T153012+0530")]);
        assert_eq!(
            hmac_b64(KEY, header_string_to_sign(&time_only).as_bytes()),
            "NWUoSC1FhK4MrFzxm7qMxC6QAK9Jo3RfNvGCsp+Zbnw="
        );
    }

    #[test]
    fn payload_signature_is_over_the_body_not_the_header_string() {
        let body = br#"{"PartnerChargeCountry":"IN","Channel":"Website","TokenErrorURL":"http://www.partner.com/error","Type":"IntPay"}"#;
        assert_eq!(hmac_b64(KEY, body), "o4hevSREeW59JKb9N939ioDMTJi8XtDrv0FeoyxsaEY=");
        assert_ne!(hmac_b64(KEY, body), "cQx95gmNsoGiddL5xgGBepk40MmfiFq6lYI+R73Yfjs=");
    }
}
