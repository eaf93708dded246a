//! Reading WebTV's GET vars: the pay request and its `rp_*` recurring items, as the
//! vendor's PHP reads them (missing item fields default like the PHP sample).

use crate::signature::PayFields;
use payhost_sdk::query::Params;

/// More items than any store sells in one order; `rp_num` is not signed, so it is capped.
pub const MAX_ITEMS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    pub id_gateway: String,
    pub id_order: String,
    pub amount: String,
    pub currency_code: String,
    pub order_number: String,
    pub signature: String,
    pub id_user: String,
}

impl PayRequest {
    /// The request, or the names of the parameters that are missing or empty.
    pub fn parse(params: &Params) -> Result<Self, Vec<&'static str>> {
        let mut missing = Vec::new();
        let mut take = |name: &'static str, may_be_empty: bool| -> String {
            match params.get(name) {
                Some(v) if may_be_empty || !v.is_empty() => v.to_string(),
                _ => {
                    missing.push(name);
                    String::new()
                }
            }
        };
        let request = Self {
            id_gateway: take("id_gateway", false),
            id_order: take("id_order", false),
            amount: take("amount", false),
            currency_code: take("currency_code", false),
            order_number: take("order_number", true),
            signature: take("signature", false),
            id_user: take("id_user", false),
        };
        if missing.is_empty() {
            Ok(request)
        } else {
            Err(missing)
        }
    }

    pub fn fields(&self) -> PayFields<'_> {
        PayFields {
            id_gateway: &self.id_gateway,
            id_order: &self.id_order,
            amount: &self.amount,
            currency_code: &self.currency_code,
            order_number: &self.order_number,
        }
    }
}

/// One `rp_n_*` item as received, before its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawItem {
    pub index: usize,
    pub sku: String,
    pub amount: String,
    pub period: String,
    pub frequency: String,
    pub first_payment_date: String,
    pub signature: String,
}

/// The `rp_0_* .. rp_{rp_num-1}_*` items (none without `rp_num`).
pub fn parse_items(params: &Params) -> Result<Vec<RawItem>, String> {
    let count = match params.get("rp_num").map(str::trim) {
        None | Some("") => 0,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| format!("rp_num `{n}` is not a number"))?,
    };
    if count > MAX_ITEMS {
        return Err(format!("rp_num {count} is over the limit of {MAX_ITEMS} recurring items"));
    }
    Ok((0..count)
        .map(|i| {
            let field = |name: &str, default: &str| {
                params
                    .get(&format!("rp_{i}_{name}"))
                    .unwrap_or(default)
                    .to_string()
            };
            RawItem {
                index: i,
                sku: field("sku", ""),
                // The PHP sample's defaults: 0.0 prints as "0", as does 0.
                amount: field("amount", "0"),
                period: field("period", ""),
                frequency: field("period_frequency", "0"),
                first_payment_date: field("first_payment_date", "0"),
                signature: field("signature", ""),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_pay_request() {
        let p = Params::parse(
            "action=pay&id_gateway=3&id_order=99&amount=10.50&currency_code=USD&order_number=A%2F1&signature=c2ln&id_user=7",
        );
        let r = PayRequest::parse(&p).unwrap();
        assert_eq!(r.order_number, "A/1");
        assert_eq!(r.fields().amount, "10.50");
    }

    #[test]
    fn names_every_missing_parameter() {
        let p = Params::parse("id_gateway=3&amount=&order_number=");
        let missing = PayRequest::parse(&p).unwrap_err();
        assert_eq!(missing, vec!["id_order", "amount", "currency_code", "signature", "id_user"]);
    }

    #[test]
    fn reads_items_with_php_defaults() {
        let p = Params::parse(
            "rp_num=2&rp_0_sku=GOLD&rp_0_amount=9.99&rp_0_period=MONTH&rp_0_period_frequency=1&rp_0_first_payment_date=1700000000&rp_0_signature=x&rp_1_sku=S",
        );
        let items = parse_items(&p).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].period, "MONTH");
        assert_eq!(items[0].first_payment_date, "1700000000");
        assert_eq!(
            items[1],
            RawItem {
                index: 1,
                sku: "S".into(),
                amount: "0".into(),
                period: "".into(),
                frequency: "0".into(),
                first_payment_date: "0".into(),
                signature: "".into(),
            }
        );
    }

    #[test]
    fn rp_num_is_checked() {
        assert!(parse_items(&Params::parse("")).unwrap().is_empty());
        assert!(parse_items(&Params::parse("rp_num=0")).unwrap().is_empty());
        assert!(parse_items(&Params::parse("rp_num=x")).is_err());
        assert!(parse_items(&Params::parse("rp_num=1000")).is_err());
    }
}
