//! Amounts between our decimal strings ("300.00") and Stripe's integer minor units.
//!
//! Stripe wants every amount as an integer in the currency's smallest unit, with its own
//! table of how many decimals a currency has (JPY none, KWD three, ISK still two for
//! backwards compatibility). The conversion is exact: an amount that would need rounding
//! is refused, never silently changed.

use rust_decimal::Decimal;

/// Charged in whole units: Stripe's documented zero-decimal currencies.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// Three decimals, and Stripe's card partners need the last digit to be zero.
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// Stripe's spelling of a currency: three ASCII letters, lowercase.
pub fn stripe_currency(currency: &str) -> Result<String, String> {
    let code = lowercase_code(currency);
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code)
    } else {
        Err(format!("`{currency}` is not a three-letter currency code"))
    }
}

/// A currency code as every conversion here reads it, trimmed and lowercase, without
/// checking it: a padded "kwd " is KWD, with three decimals, wherever it is read.
pub fn lowercase_code(currency: &str) -> String {
    currency.trim().to_ascii_lowercase()
}

/// How many decimals Stripe's minor unit has for this (lowercase) currency.
pub fn exponent(currency: &str) -> u32 {
    if ZERO_DECIMAL.contains(&currency) {
        0
    } else if THREE_DECIMAL.contains(&currency) {
        3
    } else {
        2
    }
}

/// "300.00" USD -> 30000; "500" JPY -> 500. Only plain positive decimals are accepted.
pub fn to_minor(amount: &str, currency: &str) -> Result<i64, String> {
    let currency = stripe_currency(currency)?;
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let plain = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (!amount.contains('.') || !fraction.is_empty())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !plain {
        return Err(format!("amount `{amount}` is not a plain decimal like 300.00"));
    }
    let value: Decimal = amount
        .parse()
        .map_err(|_| format!("amount `{amount}` is out of range"))?;
    let exp = exponent(&currency);
    let scaled = value
        .checked_mul(Decimal::from(10_i64.pow(exp)))
        .ok_or_else(|| format!("amount `{amount}` is out of range"))?;
    if !scaled.fract().is_zero() {
        return Err(format!(
            "amount `{amount}` has more decimals than {} allows ({exp})",
            currency.to_ascii_uppercase()
        ));
    }
    let minor = i64::try_from(scaled).map_err(|_| format!("amount `{amount}` is out of range"))?;
    if minor <= 0 {
        return Err(format!("amount `{amount}` must be positive"));
    }
    if exp == 3 && minor % 10 != 0 {
        return Err(format!(
            "amount `{amount}`: Stripe needs {} amounts in multiples of 0.010",
            currency.to_ascii_uppercase()
        ));
    }
    Ok(minor)
}

/// 30000 USD -> "300.00"; 500 JPY -> "500"; 5120 KWD -> "5.120".
pub fn from_minor(minor: i64, currency: &str) -> String {
    Decimal::new(minor, exponent(&lowercase_code(currency))).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_decimal_currencies() {
        assert_eq!(to_minor("300.00", "USD"), Ok(30000));
        assert_eq!(to_minor("300", "usd"), Ok(30000));
        assert_eq!(to_minor("0.5", "EUR"), Ok(50));
        assert_eq!(to_minor("19.99", "RUB"), Ok(1999));
        assert_eq!(from_minor(30000, "usd"), "300.00");
        assert_eq!(from_minor(1999, "RUB"), "19.99");
        assert_eq!(from_minor(5, "eur"), "0.05");
    }

    #[test]
    fn zero_decimal_currencies() {
        assert_eq!(to_minor("500", "JPY"), Ok(500));
        assert_eq!(to_minor("500.00", "JPY"), Ok(500));
        assert!(to_minor("500.5", "JPY").unwrap_err().contains("more decimals than JPY"));
        assert_eq!(from_minor(500, "jpy"), "500");
        assert_eq!(from_minor(1200, "KRW"), "1200");
    }

    #[test]
    fn three_decimal_currencies_need_a_zero_last_digit() {
        assert_eq!(to_minor("5.12", "KWD"), Ok(5120));
        assert!(to_minor("5.124", "KWD").unwrap_err().contains("multiples"));
        assert_eq!(from_minor(5120, "kwd"), "5.120");
        assert_eq!(from_minor(5120, "kwd "), "5.120", "padded as to_minor accepts it");
    }

    #[test]
    fn rounding_is_refused() {
        assert!(to_minor("1.001", "USD").unwrap_err().contains("more decimals"));
    }

    #[test]
    fn only_plain_positive_decimals() {
        for bad in ["", ".5", "5.", "-1.00", "+1", "1e3", "1,00", " 1", "1_000", "0", "0.00", "abc"] {
            assert!(to_minor(bad, "USD").is_err(), "{bad:?} should be refused");
        }
        assert!(to_minor("99999999999999999999999.00", "USD").is_err());
    }

    #[test]
    fn currency_codes_are_checked() {
        assert_eq!(stripe_currency("USD"), Ok("usd".to_string()));
        assert!(stripe_currency("US").is_err());
        assert!(stripe_currency("us1").is_err());
        assert!(to_minor("1.00", "dollars").is_err());
    }

    #[test]
    fn round_trip_is_exact() {
        for (minor, cur) in [(1, "usd"), (123456789, "usd"), (7, "jpy"), (10, "bhd")] {
            assert_eq!(to_minor(&from_minor(minor, cur), cur), Ok(minor));
        }
    }
}
