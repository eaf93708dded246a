//! Decimal amounts at the edges, integers inside: the one place that turns `"300.50"`
//! into minor units of a currency and back. Parsing is strict (no signs, exponents,
//! separators or spaces) so that an amount means one thing wherever it came from.

use crate::storage::Minor;

/// An ISO 4217 currency and how many decimals its minor unit has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    pub code: &'static str,
    pub exponent: u32,
}

/// Currencies the ledger accepts. Exponents follow ISO 4217.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AMD", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AZN", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("BYN", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KGS", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KZT", 2),
    ("LYD", 3),
    ("MDL", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("UZS", 2),
    ("VND", 0),
    ("ZAR", 2),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency `{0}` (expected an ISO 4217 code such as RUB or USD)")]
    UnknownCurrency(String),
    #[error("amount `{amount}` has more decimals than {currency} allows ({exponent})")]
    TooManyDecimals { amount: String, currency: &'static str, exponent: u32 },
    #[error("amount `{0}` is not a plain decimal such as 300 or 300.50 (no sign, exponent, spaces or separators)")]
    Malformed(String),
    #[error("amount `{0}` is too large")]
    Overflow(String),
}

/// Looks a currency up by its code, ignoring ASCII case (`rub` is RUB).
pub fn currency(code: &str) -> Result<Currency, MoneyError> {
    CURRENCIES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map(|&(code, exponent)| Currency { code, exponent })
        .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))
}

impl Currency {
    /// `"300"`, `"300.5"`, `"300.50"` (for RUB) -> 30050. Never negative.
    pub fn parse(self, text: &str) -> Result<Minor, MoneyError> {
        let malformed = || MoneyError::Malformed(text.to_string());
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
            return Err(malformed());
        }
        let fraction = fraction.unwrap_or("");
        if fraction.len() > self.exponent as usize {
            return Err(MoneyError::TooManyDecimals { amount: text.to_string(), currency: self.code, exponent: self.exponent });
        }
        let overflow = || MoneyError::Overflow(text.to_string());
        let mut minor: Minor = 0;
        let padding = self.exponent as usize - fraction.len();
        for b in whole.bytes().chain(fraction.bytes()).chain(std::iter::repeat_n(b'0', padding)) {
            minor = minor.checked_mul(10).and_then(|m| m.checked_add(Minor::from(b - b'0'))).ok_or_else(overflow)?;
        }
        Ok(minor)
    }

    /// 30050 -> `"300.50"`, -510 -> `"-5.10"`; JPY 150 -> `"150"`.
    pub fn format(self, minor: Minor) -> String {
        let sign = if minor < 0 { "-" } else { "" };
        let magnitude = minor.unsigned_abs();
        if self.exponent == 0 {
            return format!("{sign}{magnitude}");
        }
        let scale = 10u64.pow(self.exponent);
        format!("{sign}{}.{:0width$}", magnitude / scale, magnitude % scale, width = self.exponent as usize)
    }
}

/// Parses a non-negative decimal amount of `currency` into minor units.
pub fn parse_amount(text: &str, currency_code: &str) -> Result<Minor, MoneyError> {
    currency(currency_code)?.parse(text)
}

/// Formats minor units of `currency` as a decimal string. An unknown code (never stored
/// by the ledger, which validates on the way in) is formatted with two decimals.
pub fn format_amount(minor: Minor, currency_code: &str) -> String {
    currency(currency_code).unwrap_or(Currency { code: "XXX", exponent: 2 }).format(minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_and_fractional_amounts() {
        assert_eq!(parse_amount("300", "RUB"), Ok(30000));
        assert_eq!(parse_amount("300.5", "RUB"), Ok(30050));
        assert_eq!(parse_amount("300.50", "RUB"), Ok(30050));
        assert_eq!(parse_amount("0.01", "USD"), Ok(1));
        assert_eq!(parse_amount("0", "EUR"), Ok(0));
        assert_eq!(parse_amount("007", "EUR"), Ok(700));
        assert_eq!(parse_amount("150", "JPY"), Ok(150));
        assert_eq!(parse_amount("1.234", "KWD"), Ok(1234));
        assert_eq!(parse_amount("1.2", "BHD"), Ok(1200));
    }

    #[test]
    fn currency_codes_ignore_case_and_unknown_ones_are_named() {
        assert_eq!(parse_amount("1", "rub"), Ok(100));
        assert_eq!(currency("usd").unwrap().code, "USD");
        assert_eq!(parse_amount("1", "XYZ"), Err(MoneyError::UnknownCurrency("XYZ".into())));
        assert_eq!(parse_amount("1", ""), Err(MoneyError::UnknownCurrency(String::new())));
    }

    #[test]
    fn too_many_decimals_is_its_own_error() {
        assert!(matches!(parse_amount("300.505", "RUB"), Err(MoneyError::TooManyDecimals { exponent: 2, .. })));
        assert!(matches!(parse_amount("150.0", "JPY"), Err(MoneyError::TooManyDecimals { exponent: 0, .. })));
        assert!(matches!(parse_amount("1.2345", "KWD"), Err(MoneyError::TooManyDecimals { exponent: 3, .. })));
    }

    #[test]
    fn rejects_everything_that_is_not_a_plain_decimal() {
        for text in [
            "", " 1", "1 ", "1e3", "1E3", "-1", "+1", "1,5", "1,000", "1_000", ".5", "5.", "1.2.3", "0x10", "NaN", "inf",
            "１", "1.-5", "1. 5",
        ] {
            assert_eq!(parse_amount(text, "RUB"), Err(MoneyError::Malformed(text.to_string())), "{text:?}");
        }
    }

    #[test]
    fn rejects_overflow_instead_of_wrapping() {
        assert_eq!(parse_amount("92233720368547758.07", "RUB"), Ok(i64::MAX));
        assert!(matches!(parse_amount("92233720368547758.08", "RUB"), Err(MoneyError::Overflow(_))));
        assert!(matches!(parse_amount("99999999999999999999999", "JPY"), Err(MoneyError::Overflow(_))));
    }

    #[test]
    fn formats_with_the_currency_exponent() {
        assert_eq!(format_amount(30000, "RUB"), "300.00");
        assert_eq!(format_amount(-510, "RUB"), "-5.10");
        assert_eq!(format_amount(5, "USD"), "0.05");
        assert_eq!(format_amount(0, "EUR"), "0.00");
        assert_eq!(format_amount(150, "JPY"), "150");
        assert_eq!(format_amount(-150, "KRW"), "-150");
        assert_eq!(format_amount(1234, "KWD"), "1.234");
        assert_eq!(format_amount(i64::MIN, "RUB"), "-92233720368547758.08");
    }

    #[test]
    fn format_then_parse_round_trips() {
        for (minor, code) in [(0, "RUB"), (1, "USD"), (123456789, "GBP"), (7, "JPY"), (1001, "BHD")] {
            assert_eq!(parse_amount(&format_amount(minor, code), code), Ok(minor));
        }
    }
}
