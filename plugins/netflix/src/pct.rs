//! Percent-encoding for the two places ids travel as text: store keys (where `/`
//! separates parts, so an id containing `/` must not split a key) and URLs (the activation
//! token in the link, customer ids in our route paths).

/// Every byte except ASCII letters, digits and `-._~` as `%XX`.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `%XX` sequences back to bytes; malformed ones are kept as written.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
