//! Byte-exact reproductions of PHP functions whose output counterparts sign.
//!
//! WebTV (and other PHP-based gateways) sign `json_encode(...)` output; serde_json
//! writes different bytes for `/` and non-ASCII text, so the signature would not match.
//! These follow PHP 8's defaults (no flags, `precision=14`). Every function is checked
//! against vectors that PHP itself printed (`tests/php/vectors.php` ->
//! `tests/php_vectors.txt`).

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

/// PHP's `urlencode`: letters, digits and `-_.` stay, a space becomes `+`, every other
/// byte becomes `%XX` (uppercase hex).
pub fn urlencode(value: &str) -> String {
    percent_encode(value, b"-_.", true)
}

/// PHP's `rawurlencode` (RFC 3986): letters, digits and `-_.~` stay, everything else
/// (space included) becomes `%XX`.
pub fn rawurlencode(value: &str) -> String {
    percent_encode(value, b"-_.~", false)
}

fn percent_encode(value: &str, keep: &[u8], space_as_plus: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else if b == b' ' && space_as_plus {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
    }
    out
}

/// PHP's `rawurldecode`: `%XX` becomes the byte, anything else (a `+`, a broken escape)
/// stays as it is. Bytes that are not UTF-8 after decoding are replaced (U+FFFD).
pub fn rawurldecode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `(string) floatval($text)` with PHP's default `precision=14`: the text a PHP script
/// gets when it concatenates `floatval($amount)` into a string it then signs (WebTV's
/// recurring-payment signature does exactly that).
///
/// The float here exists only to reproduce PHP's bytes; money itself is never handled
/// as a float.
pub fn floatval_string(text: &str) -> String {
    float_to_string(floatval(text))
}

/// PHP's `floatval($text)`: C whitespace is skipped, then the longest leading decimal
/// number (`[+-]digits[.digits][e[+-]digits]`, no hex, no `inf`/`nan`) is read;
/// no number at all gives 0 (`"12abc"` -> 12, `""` -> 0, `"1e"` -> 1).
pub fn floatval(text: &str) -> f64 {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let start = i;
    if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
        i += 1;
    }
    let int_digits = count_digits(&bytes[i..]);
    i += int_digits;
    let mut frac_digits = 0;
    if i < bytes.len() && bytes[i] == b'.' {
        frac_digits = count_digits(&bytes[i + 1..]);
        if int_digits > 0 || frac_digits > 0 {
            i += 1 + frac_digits;
        }
    }
    if int_digits == 0 && frac_digits == 0 {
        return 0.0;
    }
    let mut end = i;
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < bytes.len() && matches!(bytes[j], b'+' | b'-') {
            j += 1;
        }
        let exp_digits = count_digits(&bytes[j..]);
        if exp_digits > 0 {
            end = j + exp_digits;
        }
    }
    // The slice is ASCII and matches Rust's float grammar, which rounds correctly like
    // PHP's zend_strtod (overflow gives an infinity in both).
    text[start..end].parse::<f64>().unwrap_or(0.0)
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// PHP's float-to-string conversion at `precision=14` (`zend_gcvt` with 14 significant
/// digits): `10.5`, `5`, `1000`, `0.0001`, `1.0E-5`, `1.0E+15`, `-0`, `INF`, `NAN`.
pub fn float_to_string(value: f64) -> String {
    gcvt(value, 14)
}

/// `zend_gcvt(value, precision, '.', 'E')`: round to `precision` significant digits,
/// drop trailing zeros, and switch to `d.dddE+X` when the decimal exponent is below -4
/// or at least `precision`.
fn gcvt(value: f64, precision: usize) -> String {
    if value.is_nan() {
        return "NAN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "INF".into() } else { "-INF".into() };
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0");
    }
    // Rust formats the exact binary value rounded half-to-even, as zend_dtoa mode 2 does.
    let scientific = format!("{:.*e}", precision - 1, value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` output always has an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` exponent is an integer");
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let digits = String::from_utf8(digits).expect("ASCII digits");
    // Position of the decimal point relative to the digits, as zend_dtoa reports it.
    let decpt = exponent + 1;
    let mut out = String::from(sign);
    if decpt < -3 || decpt > precision as i32 {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        out.push('.');
        out.push_str(if rest.is_empty() { "0" } else { rest });
        out.push('E');
        out.push(if exponent < 0 { '-' } else { '+' });
        out.push_str(&exponent.abs().to_string());
    } else if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let decpt = decpt as usize;
        if digits.len() <= decpt {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', decpt - digits.len()));
        } else {
            out.push_str(&digits[..decpt]);
            out.push('.');
            out.push_str(&digits[decpt..]);
        }
    }
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

    #[test]
    fn php_float_strings() {
        assert_eq!(floatval_string("10.50"), "10.5");
        assert_eq!(floatval_string("5.00"), "5");
        assert_eq!(floatval_string("1e3"), "1000");
        assert_eq!(floatval_string("0.1"), "0.1");
        assert_eq!(floatval_string("1e15"), "1.0E+15");
        assert_eq!(floatval_string("123456789012345"), "1.2345678901234E+14");
        assert_eq!(floatval_string("-10.50"), "-10.5");
        assert_eq!(floatval_string("12abc"), "12");
        assert_eq!(floatval_string(""), "0");
        assert_eq!(floatval_string("0.00001"), "1.0E-5");
    }

    #[test]
    fn url_encodings_differ_like_php() {
        assert_eq!(urlencode("a b*~/"), "a+b%2A%7E%2F");
        assert_eq!(rawurlencode("a b*~/"), "a%20b%2A~%2F");
        assert_eq!(rawurldecode("a%2Fb+%zz%4"), "a/b+%zz%4");
    }

    /// Every vector PHP printed (`tests/php/vectors.php`) must come out byte for byte.
    #[test]
    fn matches_php_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/php_vectors.txt");
        let text = std::fs::read_to_string(path).expect("the vector file is committed");
        let mut checked = std::collections::BTreeMap::<String, usize>::new();
        let mut failures = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let vector: (String, serde_json::Value, String) =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
            let (kind, input, expected) = vector;
            let got = match (kind.as_str(), &input) {
                ("json_object", serde_json::Value::Array(pairs)) => {
                    let pairs: Vec<(&str, &str)> = pairs
                        .iter()
                        .map(|p| (p[0].as_str().unwrap(), p[1].as_str().unwrap()))
                        .collect();
                    json_object(&pairs)
                }
                (kind, serde_json::Value::String(s)) => match kind {
                    "floatval" => floatval_string(s),
                    "json_string" => json_string(s),
                    "urlencode" => urlencode(s),
                    "rawurlencode" => rawurlencode(s),
                    "rawurldecode" => rawurldecode(s),
                    other => panic!("line {}: unknown kind {other}", n + 1),
                },
                _ => panic!("line {}: unexpected input {input}", n + 1),
            };
            if got != expected {
                failures.push(format!("line {}: {kind}({input}) = {got:?}, PHP says {expected:?}", n + 1));
            }
            *checked.entry(kind).or_default() += 1;
        }
        assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
        // Guard against an empty or truncated vector file passing silently.
        for kind in ["floatval", "json_string", "json_object", "urlencode", "rawurlencode", "rawurldecode"] {
            assert!(checked.get(kind).copied().unwrap_or(0) > 0, "no `{kind}` vectors");
        }
        assert!(checked["floatval"] > 800, "floatval vectors missing: {checked:?}");
    }
}
