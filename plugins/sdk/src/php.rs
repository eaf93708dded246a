//! Byte-exact reproductions of PHP functions whose output counterparts sign.
//!
//! WebTV (and other PHP-based gateways) sign `json_encode(...)` output; serde_json
//! writes different bytes for `/` and non-ASCII text, so the signature would not match.
//! These follow PHP 8's defaults (no flags).

/// `json_encode($string)` with default flags: `/` as `\/`, every non-ASCII character as
/// lowercase `\uXXXX` (UTF-16 surrogate pairs beyond the BMP), control characters as
/// `\b \f \n \r \t` or `\u00XX`.
pub fn json_string(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let push_unit = |out: &mut String, unit: u16| {
        out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[((unit >> shift) & 0xf) as usize] as char);
        }
    };
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => push_unit(&mut out, c as u16),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_unit(&mut out, *unit);
                }
            }
        }
    }
    out.push('"');
    out
}

/// `json_encode(['k' => 'v', ...])` for an associative array of strings, keys in order.
pub fn json_object(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(k));
        out.push(':');
        out.push_str(&json_string(v));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_php() {
        assert_eq!(json_string("a/b"), r#""a\/b""#);
        assert_eq!(json_string("Заказ"), r#""\u0417\u0430\u043a\u0430\u0437""#);
        assert_eq!(json_string("😀"), r#""\ud83d\ude00""#);
        assert_eq!(json_string("\u{1}\n\t\"\\"), r#""\u0001\n\t\"\\""#);
        assert_eq!(json_object(&[("a", "1"), ("b", "x")]), r#"{"a":"1","b":"x"}"#);
    }
}
