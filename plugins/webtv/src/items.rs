//! Checking the `rp_n_*` recurring items: each one's signature, then its values.
//!
//! A bad item does not spoil the order: it is returned failed with `rp_n_error`, as the
//! vendor's sample does, and the others are set up. Two things only the signature can
//! vouch for shape how values are used: the amount is signed as PHP's
//! `floatval(amount)` text, so that text (not the raw parameter, which may differ past
//! 14 digits) is what gets charged; and `first_payment_date` is not signed at all, so a
//! date in the past is refused rather than charged for periods nobody bought.

use crate::amount;
use crate::host::Host;
use crate::order::{Item, ItemOutcome, ItemSpec};
use crate::request::RawItem;
use crate::schedule::Period;
use crate::signature;
use payhost_sdk::php;

/// The vendor sample's error text for an item whose signature does not match.
pub const SIGNATURE_ERROR: &str = "Invalid recurring payment data or signature mismatch";

/// The status the vendor sample returns for a failed item (Spanish for "invalid
/// profile"); kept byte for byte because WebTV checks `md5(profile_id . status)`.
pub const FAILED_STATUS: &str = "Perfil inválido";

/// How far in the past a first payment date may be (clock skew, a slow buyer).
pub const PAST_GRACE_SECONDS: i64 = 86_400;

/// Checks every item's signature and values.
pub fn verify(host: &dyn Host, raw: &[RawItem], now: i64) -> Result<Vec<Item>, String> {
    raw.iter().map(|item| verify_one(host, item, now)).collect()
}

fn verify_one(host: &dyn Host, raw: &RawItem, now: i64) -> Result<Item, String> {
    let Some(sku) = signed_sku(host, raw)? else {
        return Ok(Item::Invalid { index: raw.index, error: SIGNATURE_ERROR.to_string() });
    };
    Ok(match check_values(raw, sku, now) {
        Ok(spec) => Item::Valid(spec),
        Err(error) => Item::Invalid { index: raw.index, error },
    })
}

/// The SKU the signature vouches for, if any. The vendor's sample `rawurldecode`s the
/// SKU once more after PHP's own decoding; a WebTV that encodes it twice signs that
/// form, so it is tried when the value as received does not match.
fn signed_sku(host: &dyn Host, raw: &RawItem) -> Result<Option<String>, String> {
    let mut candidates = vec![raw.sku.clone()];
    if raw.sku.contains('%') {
        candidates.push(php::rawurldecode(&raw.sku));
    }
    for sku in candidates {
        let input = signature::item_digest_input(&sku, &raw.amount, &raw.frequency, &raw.period);
        if signature::verify_digest(host, &input, &raw.signature)? {
            return Ok(Some(sku));
        }
    }
    Ok(None)
}

fn check_values(raw: &RawItem, sku: String, now: i64) -> Result<ItemSpec, String> {
    let signed_amount = php::floatval_string(&raw.amount);
    let amount = amount::parse(&signed_amount)
        .ok()
        .filter(|a| a.is_sign_positive() && !a.is_zero())
        .ok_or_else(|| format!("Invalid recurring amount `{}`", raw.amount))?;
    let period = Period::parse(&raw.period)
        .ok_or_else(|| format!("Invalid period `{}` (DAY, WEEK, MONTH or YEAR)", raw.period))?;
    let frequency = raw
        .frequency
        .parse::<u32>()
        .ok()
        .filter(|f| *f >= 1)
        .ok_or_else(|| format!("Invalid period frequency `{}`", raw.frequency))?;
    let first_payment_date = raw
        .first_payment_date
        .parse::<i64>()
        .map_err(|_| format!("Invalid first payment date `{}`", raw.first_payment_date))?;
    if first_payment_date < now - PAST_GRACE_SECONDS {
        return Err(format!("First payment date {first_payment_date} is in the past"));
    }
    Ok(ItemSpec {
        index: raw.index,
        sku,
        amount: amount::format(&amount),
        period,
        frequency,
        first_payment_date,
    })
}

/// The failed-item result the vendor sample returns.
pub fn failed_outcome(index: usize, error: &str) -> ItemOutcome {
    ItemOutcome {
        index,
        error: Some(error.to_string()),
        profile_id: String::new(),
        status: FAILED_STATUS.to_string(),
        first_payment_date: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{md5_hex, webtv_sign, test_host, START};

    fn raw(sku: &str, amount: &str, period: &str, frequency: &str, first: i64) -> RawItem {
        let signature = webtv_sign(&md5_hex(format!("{sku}{}{frequency}{period}", php::floatval_string(amount)).as_bytes()));
        RawItem {
            index: 0,
            sku: sku.into(),
            amount: amount.into(),
            period: period.into(),
            frequency: frequency.into(),
            first_payment_date: first.to_string(),
            signature,
        }
    }

    fn check(item: RawItem) -> Item {
        verify(&test_host(&[]), &[item], START).unwrap().remove(0)
    }

    fn error_of(item: RawItem) -> String {
        match check(item) {
            Item::Invalid { error, .. } => error,
            Item::Valid(spec) => panic!("accepted {spec:?}"),
        }
    }

    #[test]
    fn a_good_item_keeps_the_signed_values() {
        let Item::Valid(spec) = check(raw("GOLD", "10.50", "month", "3", START + 5)) else { panic!() };
        assert_eq!((spec.sku.as_str(), spec.amount.as_str(), spec.frequency), ("GOLD", "10.5", 3));
        assert_eq!((spec.period, spec.first_payment_date), (crate::schedule::Period::Month, START + 5));
    }

    #[test]
    fn signed_but_unusable_values_fail_the_item() {
        assert!(error_of(raw("G", "0", "MONTH", "1", START)).contains("amount"));
        assert!(error_of(raw("G", "-5", "MONTH", "1", START)).contains("amount"));
        assert!(error_of(raw("G", "1e20", "MONTH", "1", START)).contains("amount"));
        assert!(error_of(raw("G", "5", "FORTNIGHT", "1", START)).contains("period"));
        assert!(error_of(raw("G", "5", "DAY", "0", START)).contains("frequency"));
        assert!(error_of(raw("G", "5", "DAY", "x", START)).contains("frequency"));
        assert!(error_of(raw("G", "5", "DAY", "1", START - 2 * PAST_GRACE_SECONDS)).contains("in the past"));
        let mut item = raw("G", "5", "DAY", "1", START);
        item.first_payment_date = "tomorrow".into();
        assert!(error_of(item).contains("first payment date"));
    }

    #[test]
    fn a_bad_signature_fails_with_the_samples_text() {
        let mut item = raw("G", "5", "DAY", "1", START);
        item.amount = "4".into();
        assert_eq!(error_of(item), SIGNATURE_ERROR);
        let mut item = raw("G", "5", "DAY", "1", START);
        item.signature = String::new();
        assert_eq!(error_of(item), SIGNATURE_ERROR);
    }

    #[test]
    fn a_sku_encoded_twice_is_accepted_in_its_signed_form() {
        let mut item = raw("Gold/Plus", "5", "DAY", "1", START);
        item.sku = "Gold%2FPlus".into();
        let Item::Valid(spec) = check(item) else { panic!() };
        assert_eq!(spec.sku, "Gold/Plus");
    }
}
