//! The admin API's `Authorization: Bearer <token>` check. The scheme is matched
//! case-insensitively (RFC 9110 §11.1) and the token compared in constant time over
//! digests, so neither its bytes nor its length show in the answer's timing.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The token of an `Authorization` value of the Bearer scheme, if it is one.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_matches([' ', '\t']);
    (!token.is_empty()).then_some(token)
}

/// Whether `authorization` carries exactly `expected` (never true for an empty one).
pub fn authorizes(authorization: Option<&str>, expected: &str) -> bool {
    let Some(token) = authorization.and_then(bearer_token) else { return false };
    !expected.is_empty() && bool::from(Sha256::digest(token.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive() {
        for header in ["Bearer s3cret", "bearer s3cret", "BEARER s3cret", "bEaReR  s3cret", "Bearer\ts3cret"] {
            assert!(authorizes(Some(header), "s3cret"), "{header}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for header in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "Bearers3cret", "Bearer ", "s3cret", ""] {
            assert!(!authorizes(Some(header), "s3cret"), "{header}");
        }
        assert!(!authorizes(None, "s3cret"));
        assert!(!authorizes(Some("Bearer x"), ""), "an empty expected token authorizes nobody");
    }
}
