//! Decimal amounts as Platform24 writes them: digits with a dot, never floats.
//!
//! Prices and payment amounts travel as text from the request to the ledger, so the
//! only job here is to refuse what is not a plain decimal (a comma, an exponent, a sign)
//! with a message the subscriber can read, and to say whether a price is zero (a free
//! packet moves no money; the ledger refuses zero debits).

/// A validated non-negative decimal, exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    text: String,
    zero: bool,
}

impl Amount {
    /// Parses `digits[.digits]`; surrounding spaces are ignored. Errors are in Russian
    /// because they end up on the subscriber's TV screen.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        if text.is_empty() {
            return Err("не указана сумма".into());
        }
        if text.contains(',') {
            return Err(format!("сумма «{text}» должна быть записана с точкой, а не с запятой"));
        }
        let (int, frac) = match text.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !frac.is_none_or(digits) {
            return Err(format!("сумма «{text}» не является десятичным числом"));
        }
        let zero = text.bytes().all(|b| b == b'0' || b == b'.');
        Ok(Self { text: text.to_owned(), zero })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_zero(&self) -> bool {
        self.zero
    }
}

/// Orders two non-negative plain decimals by value (`300.00` equals `300`); `None`
/// when either is not one. Used to tell a dearer base packet from a cheaper one.
pub fn compare(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let split = |text: &str| -> Option<(String, String)> {
        let amount = Amount::parse(text).ok()?;
        let (int, frac) = amount.as_str().split_once('.').unwrap_or((amount.as_str(), ""));
        let int = int.trim_start_matches('0').to_owned();
        Some((int, frac.trim_end_matches('0').to_owned()))
    };
    let ((ia, fa), (ib, fb)) = (split(a)?, split(b)?);
    Some(ia.len().cmp(&ib.len()).then_with(|| ia.cmp(&ib)).then_with(|| fa.cmp(&fb)))
}

/// Whether `text` is a decimal that is also a valid JSON number (`-?int[.frac]`, no
/// leading zeros), so a ledger balance can be written into JSON digit for digit.
pub fn is_json_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int)
        && (int == "0" || !int.starts_with('0'))
        && frac.is_none_or(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_decimals_as_received() {
        let a = Amount::parse(" 300.00 ").unwrap();
        assert_eq!(a.as_str(), "300.00");
        assert!(!a.is_zero());
        assert_eq!(Amount::parse("15").unwrap().as_str(), "15");
        assert_eq!(Amount::parse("0.01").unwrap().as_str(), "0.01");
    }

    #[test]
    fn knows_zero() {
        assert!(Amount::parse("0").unwrap().is_zero());
        assert!(Amount::parse("0.00").unwrap().is_zero());
        assert!(!Amount::parse("0.10").unwrap().is_zero());
    }

    #[test]
    fn refuses_what_is_not_a_dot_decimal() {
        assert!(Amount::parse("300,00").unwrap_err().contains("с точкой"));
        for bad in ["", "-1", "+1", "1e3", "1.", ".5", "1.2.3", "abc", "NaN", "1 000"] {
            assert!(Amount::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn compares_by_value() {
        use std::cmp::Ordering::*;
        assert_eq!(compare("300.00", "300"), Some(Equal));
        assert_eq!(compare("500.00", "300.00"), Some(Greater));
        assert_eq!(compare("99.99", "100"), Some(Less));
        assert_eq!(compare("0100.5", "100.45"), Some(Greater));
        assert_eq!(compare("1000", "999.999"), Some(Greater));
        assert_eq!(compare("1,5", "1"), None);
    }

    #[test]
    fn json_decimal_check() {
        for good in ["0", "0.00", "1234.56", "-5.00", "10"] {
            assert!(is_json_decimal(good), "{good}");
        }
        for bad in ["", "01.00", "1.", ".5", "1,5", "1e2", "--1", "-"] {
            assert!(!is_json_decimal(bad), "{bad}");
        }
    }
}
