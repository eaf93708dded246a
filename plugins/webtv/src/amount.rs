//! Amounts as WebTV sends them (`10.5`, `5`, `10.50`): plain non-negative decimals,
//! checked and kept as text with a dot for the payment system, never as floats.

use rust_decimal::Decimal;
use std::str::FromStr;

/// Parses `digits[.digits]`; anything else (sign, exponent, comma, spaces) is refused.
pub fn parse(text: &str) -> Result<Decimal, String> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !frac.is_none_or(digits) {
        return Err(format!("`{text}` is not a decimal amount"));
    }
    let amount = Decimal::from_str(text).map_err(|_| format!("`{text}` is not a usable amount"))?;
    // The decimal type rounds what it cannot hold (past 28 digits) instead of failing;
    // a rounded amount is not the one WebTV signed, so it is refused.
    if amount.scale() as usize != frac.map_or(0, str::len) {
        return Err(format!("`{text}` has more digits than an amount can hold"));
    }
    Ok(amount)
}

/// The amount as the payment system gets it (`10.5` stays `10.5`, `10.50` stays `10.50`).
pub fn format(amount: &Decimal) -> String {
    amount.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_decimals_only() {
        assert_eq!(format(&parse("10.50").unwrap()), "10.50");
        assert_eq!(format(&parse("5").unwrap()), "5");
        assert!(parse("0").unwrap().is_zero());
        assert_eq!(parse("10.5").unwrap(), parse("10.50").unwrap());
        for bad in ["", "-1", "+1", "1e3", "1,5", " 1", "1.", ".5", "abc", "1.2.3", "99999999999999999999999999999999"] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    /// Found by the `php` fuzz target: 31 significant digits used to come back rounded
    /// to 28, so the order was charged an amount other than the signed one.
    #[test]
    fn refuses_what_it_would_round() {
        assert!(parse("8729535838683.8548597243507529275").unwrap_err().contains("more digits"));
        assert!(parse("0.00000000000000000000000000001").is_err());
        assert_eq!(format(&parse("0.0000000000000000000000000001").unwrap()), "0.0000000000000000000000000001");
        assert_eq!(format(&parse("007.50").unwrap()), "7.50");
    }
}
