//! Percent-encoding of one text as one path segment or store-key part: every byte but
//! ASCII letters, digits and `-._~` becomes `%XX`, so an id holding `/`, `?` or spaces
//! neither splits a key nor a URL path. (Form and query strings are `crate::query`.)

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What stays as it is: RFC 3986's unreserved characters.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, RESERVED).to_string()
}

/// `%XX` sequences back to bytes (malformed ones are kept as written), read as UTF-8
/// with invalid sequences replaced.
pub fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_awkward_ids() {
        for id in ["plain-1", "a/b", "x y+z=", "Заказ", "100%"] {
            assert_eq!(decode(&encode(id)), id);
        }
        assert_eq!(encode("ab+/="), "ab%2B%2F%3D");
    }

    #[test]
    fn decode_leaves_malformed_escapes() {
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%41%"), "A%");
    }
}
