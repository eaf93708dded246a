//! Names we derive from WebTV ids: store keys, payment references, profile ids, timer
//! names.
//!
//! They are deterministic (the same order always maps to the same reference and profile
//! ids, which is what makes replays and retried timers idempotent) and reversible (a
//! payment event's reference leads back to its order or profile). WebTV ids are
//! normally numbers, but any text is made safe by [`slug`], whose output never holds
//! `-`, so `-` can separate the parts.

/// Letters and digits stay; every other byte becomes `_XX` (uppercase hex).
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

/// One WebTV order: gateway and order id.
pub fn order_slug(id_gateway: &str, id_order: &str) -> String {
    format!("{}-{}", slug(id_gateway), slug(id_order))
}

pub fn order_key(order_slug: &str) -> String {
    format!("order/{order_slug}")
}

/// The payment reference of one attempt to pay an order (attempts start at 1).
pub fn order_reference(order_slug: &str, attempt: u32) -> String {
    format!("webtv-{order_slug}-a{attempt}")
}

/// `(order slug, attempt)` of an [`order_reference`].
pub fn parse_order_reference(reference: &str) -> Option<(String, u32)> {
    let rest = reference.strip_prefix("webtv-")?;
    let (slug, attempt) = rest.rsplit_once('-')?;
    let attempt = number(attempt.strip_prefix('a')?)?;
    slug.contains('-').then(|| (slug.to_string(), attempt as u32))
}

/// The profile set up for recurring item `index` of an order.
pub fn profile_id(order_slug: &str, index: usize) -> String {
    format!("rp-{order_slug}-{index}")
}

pub fn profile_key(profile_id: &str) -> String {
    format!("profile/{profile_id}")
}

/// The reference of the charge for `period` (0 = the first payment date) of a profile,
/// `retry` being the number of earlier declined tries of that period. A timer that fires
/// again for the same try uses the same reference, so the payment system charges once.
pub fn charge_reference(profile_id: &str, period: u32, retry: u32) -> String {
    if retry == 0 {
        format!("{profile_id}-p{period}")
    } else {
        format!("{profile_id}-p{period}-r{retry}")
    }
}

/// `(profile id, period, retry)` of a [`charge_reference`].
pub fn parse_charge_reference(reference: &str) -> Option<(String, u32, u32)> {
    if !reference.starts_with("rp-") {
        return None;
    }
    let (mut rest, last) = reference.rsplit_once('-')?;
    let mut retry = 0;
    let period_part = match last.strip_prefix('r') {
        Some(n) => {
            retry = number(n)? as u32;
            let (head, period) = rest.rsplit_once('-')?;
            rest = head;
            period
        }
        None => last,
    };
    let period = number(period_part.strip_prefix('p')?)? as u32;
    // A profile id is `rp-GW-ORDER-INDEX`.
    (rest.matches('-').count() == 3).then(|| (rest.to_string(), period, retry))
}

/// A profile's timer; `tick` changes every time it is rescheduled, so a timer that was
/// replaced or belongs to an earlier state is recognised as stale when it fires.
pub fn timer_name(profile_id: &str, tick: u64) -> String {
    format!("{profile_id}/t{tick}")
}

/// `(profile id, tick)` of a [`timer_name`].
pub fn parse_timer_name(name: &str) -> Option<(String, u64)> {
    let (profile, tick) = name.rsplit_once('/')?;
    let tick = number(tick.strip_prefix('t')?)?;
    profile.starts_with("rp-").then(|| (profile.to_string(), tick))
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_the_separator_free() {
        assert_eq!(slug("99"), "99");
        assert_eq!(slug("a-b/я"), "a_2Db_2F_D1_8F");
        assert_eq!(order_slug("3", "99"), "3-99");
    }

    #[test]
    fn order_references_round_trip() {
        let slug = order_slug("3", "9-9/x");
        let r = order_reference(&slug, 2);
        assert_eq!(r, "webtv-3-9_2D9_2Fx-a2");
        assert_eq!(parse_order_reference(&r), Some((slug, 2)));
        assert_eq!(parse_order_reference("webtv-3-a1"), None);
        assert_eq!(parse_order_reference("rp-3-99-0-p1"), None);
        assert_eq!(parse_order_reference("webtv-3-99-ax"), None);
    }

    #[test]
    fn charge_references_round_trip() {
        let id = profile_id("3-99", 1);
        assert_eq!(id, "rp-3-99-1");
        assert_eq!(charge_reference(&id, 0, 0), "rp-3-99-1-p0");
        assert_eq!(parse_charge_reference("rp-3-99-1-p0"), Some((id.clone(), 0, 0)));
        assert_eq!(parse_charge_reference(&charge_reference(&id, 12, 2)), Some((id.clone(), 12, 2)));
        assert_eq!(parse_charge_reference("rp-3-99-p0"), None);
        assert_eq!(parse_charge_reference("webtv-3-99-a1"), None);
        assert_eq!(parse_charge_reference("rp-3-99-1-px"), None);
    }

    #[test]
    fn timer_names_round_trip() {
        let name = timer_name("rp-3-99-0", 7);
        assert_eq!(name, "rp-3-99-0/t7");
        assert_eq!(parse_timer_name(&name), Some(("rp-3-99-0".to_string(), 7)));
        assert_eq!(parse_timer_name("other/t1"), None);
        assert_eq!(parse_timer_name("rp-3-99-0/x"), None);
    }
}
