//! The `Stripe-Signature` webhook header: parsing, the signed payload, and freshness.
//!
//! Stripe signs `{t}.{raw body}` with HMAC-SHA256 under the endpoint's signing secret and
//! sends `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (several `v1` while a secret is being
//! rolled; `v0` and unknown schemes are ignored). The HMAC itself is computed and compared
//! by the host in constant time, so this module stays pure and testable.

use payhost_sdk::hex;
use payhost_sdk::signing::Part;

/// More `v1` entries than this is not something Stripe sends; refuse rather than loop.
const MAX_SIGNATURES: usize = 8;

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The timestamp exactly as sent: the signed payload uses this text, not a reformat.
    pub timestamp_text: String,
    pub timestamp: i64,
    /// Every `v1` signature, decoded from hex.
    pub v1: Vec<Vec<u8>>,
}

/// Parses `t=...,v1=...`; an error says what is wrong (never echoes signature bytes).
pub fn parse_header(value: &str) -> Result<SignatureHeader, String> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in value.split(',') {
        let Some((key, val)) = item.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" => {
                let text = val.trim();
                let parsed: i64 = text
                    .parse()
                    .map_err(|_| "the Stripe-Signature timestamp is not an integer".to_string())?;
                timestamp = Some((text.to_string(), parsed));
            }
            "v1" => {
                // A malformed entry cannot match; others in the header still may.
                if let Some(sig) = hex::decode(val.trim()).filter(|sig| !sig.is_empty()) {
                    v1.push(sig);
                }
            }
            _ => {}
        }
    }
    let (timestamp_text, timestamp) =
        timestamp.ok_or_else(|| "the Stripe-Signature header has no timestamp".to_string())?;
    if v1.is_empty() {
        return Err("the Stripe-Signature header has no v1 signature".into());
    }
    if v1.len() > MAX_SIGNATURES {
        return Err("the Stripe-Signature header has too many signatures".into());
    }
    Ok(SignatureHeader { timestamp_text, timestamp, v1 })
}

/// The message Stripe signs, as parts for the host's HMAC: `{t}.{raw body}`.
pub fn signed_parts(timestamp_text: &str, body: &[u8]) -> Vec<Part> {
    vec![
        Part::Text(timestamp_text.to_string()),
        Part::Text(".".into()),
        Part::Bytes(body.to_vec()),
    ]
}

/// A signed timestamp further than `tolerance` seconds from now (either way) is refused,
/// so a captured webhook cannot be replayed later.
pub fn check_freshness(timestamp: i64, now: i64, tolerance: i64) -> Result<(), String> {
    let age = now.saturating_sub(timestamp);
    if age > tolerance {
        Err(format!("the webhook timestamp is {age} s old (tolerance {tolerance} s)"))
    } else if age.saturating_neg() > tolerance {
        let ahead = age.saturating_neg();
        Err(format!("the webhook timestamp is {ahead} s in the future (tolerance {tolerance} s)"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(parts: &[Part]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                Part::Text(t) => out.extend_from_slice(t.as_bytes()),
                Part::Bytes(b) => out.extend_from_slice(b),
                Part::Secret(_) => panic!("the signed payload holds no secret"),
            }
        }
        out
    }

    #[test]
    fn parses_timestamp_and_every_v1() {
        let h = parse_header("t=1492774577,v1=5257a869,v0=6ffbb59b,v1=00ff").unwrap();
        assert_eq!(h.timestamp, 1492774577);
        assert_eq!(h.timestamp_text, "1492774577");
        assert_eq!(h.v1, vec![vec![0x52, 0x57, 0xa8, 0x69], vec![0x00, 0xff]]);
    }

    #[test]
    fn tolerates_spaces_unknown_schemes_and_bad_entries() {
        let h = parse_header(" t = 10 , v1=zz, foo=bar, junk, v1=AB ").unwrap();
        assert_eq!(h.timestamp, 10);
        assert_eq!(h.v1, vec![vec![0xab]]);
    }

    #[test]
    fn refuses_incomplete_headers() {
        assert!(parse_header("v1=abcd").unwrap_err().contains("no timestamp"));
        assert!(parse_header("t=12,v0=abcd").unwrap_err().contains("no v1"));
        assert!(parse_header("t=soon,v1=abcd").unwrap_err().contains("not an integer"));
        assert!(parse_header("").is_err());
        let many = format!("t=1,{}", ["v1=00"; 9].join(","));
        assert!(parse_header(&many).unwrap_err().contains("too many"));
    }

    #[test]
    fn signed_payload_is_timestamp_dot_raw_body() {
        let body = br#"{"id":"evt_1","object":"event"}"#;
        let parts = signed_parts("1700000000", body);
        assert_eq!(concat(&parts), br#"1700000000.{"id":"evt_1","object":"event"}"#.to_vec());
        // The raw timestamp text is signed, not a reformatted number.
        assert_eq!(concat(&signed_parts("0042", b"x")), b"0042.x".to_vec());
    }

    #[test]
    fn freshness_window() {
        assert!(check_freshness(1000, 1000, 300).is_ok());
        assert!(check_freshness(700, 1000, 300).is_ok());
        assert!(check_freshness(699, 1000, 300).unwrap_err().contains("301 s old"));
        assert!(check_freshness(1300, 1000, 300).is_ok());
        assert!(check_freshness(1301, 1000, 300).unwrap_err().contains("in the future"));
        assert!(check_freshness(i64::MIN, 1000, 300).is_err());
        assert!(check_freshness(i64::MAX, -1, 300).is_err());
    }
}
