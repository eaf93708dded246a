//! Bearer-token checks for a plugin's operator routes. The token is a host secret the
//! plugin never sees: we hash what the caller presented and let the host compare it
//! with the digest of the secret in constant time.

use crate::signing::{self, DigestAlgorithm, Part};

/// The token of an `Authorization: Bearer TOKEN` header.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether `authorization` carries the token held by the secret `secret`. An error
/// means the secret is not granted or does not decode (an operator error).
pub fn is_bearer(secret: &str, authorization: Option<&str>) -> Result<bool, String> {
    let Some(token) = bearer_token(authorization) else {
        return Ok(false);
    };
    let presented = signing::digest(DigestAlgorithm::Sha256, &[Part::Text(token.into())]).map_err(signing_error)?;
    signing::verify_digest(DigestAlgorithm::Sha256, &[Part::Secret(secret.into())], &presented).map_err(signing_error)
}

fn signing_error(e: signing::Error) -> String {
    match e {
        signing::Error::NotGranted(name) => format!("secret `{name}` is not granted"),
        signing::Error::InvalidEncoding(m) => format!("secret does not decode: {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_tokens_only() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer   abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }
}
