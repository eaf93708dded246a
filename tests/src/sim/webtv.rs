//! A WS.WebTV store: builds the signed GET requests WebTV sends to its external payment
//! processor (pay, `rp_status`, `rp_cancel`) and checks the processor's return redirects
//! the way WebTV does, with its own PHP-compatible `json_encode`, `floatval` printing,
//! `urlencode`, MD5 and HMAC (never the plugin's code).
//!
//! The store serves `GET /index.php?go=store&do=payOrder&...`: a test plays the buyer's
//! browser by following payhost's redirect there; the store answers 200 when every
//! signature holds (and records the result) and 403 otherwise.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

use super::http::{SimResponse, SimServer};

/// One `rp_n_*` recurring item of an order.
#[derive(Debug, Clone)]
pub struct RecurringItem {
    pub sku: String,
    pub amount: String,
    /// `DAY`, `WEEK`, `MONTH` or `YEAR`.
    pub period: String,
    pub frequency: String,
    pub first_payment_date: i64,
    /// Sign this amount instead of `amount` (a tampered item).
    pub signed_amount: Option<String>,
    /// Sign with this key instead of the store's (a forged item).
    pub signing_key: Option<String>,
}

impl RecurringItem {
    pub fn new(sku: &str, amount: &str, period: &str, frequency: u32, first_payment_date: i64) -> Self {
        Self {
            sku: sku.into(),
            amount: amount.into(),
            period: period.into(),
            frequency: frequency.to_string(),
            first_payment_date,
            signed_amount: None,
            signing_key: None,
        }
    }
}

/// An order as WebTV hands it to the payment processor.
#[derive(Debug, Clone)]
pub struct Order {
    pub id_gateway: String,
    pub id_order: String,
    pub amount: String,
    pub currency_code: String,
    pub order_number: String,
    pub id_user: String,
    pub items: Vec<RecurringItem>,
}

impl Order {
    pub fn new(id_order: &str, amount: &str, id_user: &str) -> Self {
        Self {
            id_gateway: "3".into(),
            id_order: id_order.into(),
            amount: amount.into(),
            currency_code: "USD".into(),
            order_number: format!("WTV-{id_order}"),
            id_user: id_user.into(),
            items: Vec::new(),
        }
    }

    pub fn with_item(mut self, item: RecurringItem) -> Self {
        self.items.push(item);
        self
    }
}

/// What WebTV reads from a verified return URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    pub id_order: String,
    pub id_gateway: String,
    pub status: String,
    pub status_msg: String,
    pub transaction: String,
    /// `-rp_1` was present.
    pub recurring: bool,
    pub items: Vec<ReturnedItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedItem {
    pub index: usize,
    pub error: Option<String>,
    pub profile_id: String,
    pub status: String,
    pub first_payment_date: String,
}

pub struct WebTvSim {
    server: SimServer,
    key: String,
    accepted: Arc<Mutex<Vec<Returned>>>,
}

impl WebTvSim {
    pub async fn start(key: &str) -> Self {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (k, a) = (key.to_string(), accepted.clone());
        let server = SimServer::start(move |req| {
            if req.path != "/index.php" {
                return SimResponse::empty(404);
            }
            match verify_return(&k, &req.query) {
                Ok(returned) => {
                    let body = format!("order {} {}", returned.id_order, returned.status);
                    a.lock().expect("accepted").push(returned);
                    SimResponse { status: 200, headers: vec![("content-type".into(), "text/plain".into())], body: body.into_bytes() }
                }
                Err(problem) => SimResponse {
                    status: 403,
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: problem.into_bytes(),
                },
            }
        })
        .await;
        Self { server, key: key.to_string(), accepted }
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn host_port(&self) -> String {
        self.server.host_port()
    }

    /// Return URLs the store accepted, in order.
    pub fn accepted(&self) -> Vec<Returned> {
        self.accepted.lock().expect("accepted").clone()
    }

    /// The pay request's query string, signed with the store's key.
    pub fn pay_query(&self, order: &Order) -> String {
        self.pay_query_signed_with(order, &self.key)
    }

    /// The pay request's query string signed with `key` (a wrong key for tests).
    pub fn pay_query_signed_with(&self, order: &Order, key: &str) -> String {
        let data = json_encode_object(&[
            ("id_gateway", &order.id_gateway),
            ("id_order", &order.id_order),
            ("amount", &order.amount),
            ("currency_code", &order.currency_code),
            ("order_number", &order.order_number),
        ]);
        let mut pairs: Vec<(String, String)> = vec![
            ("action".into(), "pay".into()),
            ("id_gateway".into(), order.id_gateway.clone()),
            ("id_order".into(), order.id_order.clone()),
            ("amount".into(), order.amount.clone()),
            ("currency_code".into(), order.currency_code.clone()),
            ("order_number".into(), order.order_number.clone()),
            ("signature".into(), sign(key, &data)),
            ("id_user".into(), order.id_user.clone()),
        ];
        if !order.items.is_empty() {
            pairs.push(("rp_num".into(), order.items.len().to_string()));
        }
        for (n, item) in order.items.iter().enumerate() {
            let amount = item.signed_amount.as_deref().unwrap_or(&item.amount);
            let digest = md5_hex(&format!("{}{}{}{}", item.sku, php_float(amount), item.frequency, item.period));
            let item_key = item.signing_key.as_deref().unwrap_or(key);
            pairs.push((format!("rp_{n}_sku"), item.sku.clone()));
            pairs.push((format!("rp_{n}_amount"), item.amount.clone()));
            pairs.push((format!("rp_{n}_period"), item.period.clone()));
            pairs.push((format!("rp_{n}_period_frequency"), item.frequency.clone()));
            pairs.push((format!("rp_{n}_first_payment_date"), item.first_payment_date.to_string()));
            pairs.push((format!("rp_{n}_signature"), sign(item_key, &digest)));
        }
        query_string(&pairs)
    }

    /// `action=rp_status|rp_cancel&profile_id=..&signature=..`.
    pub fn action_query(&self, action: &str, profile_id: &str) -> String {
        let data = json_encode_object(&[("action", action), ("profile_id", profile_id)]);
        query_string(&[
            ("action".into(), action.into()),
            ("profile_id".into(), profile_id.into()),
            ("signature".into(), sign(&self.key, &data)),
        ])
    }

    /// Checks a processor's redirect as WebTV does; `Err` says what WebTV would reject.
    pub fn verify_location(&self, location: &str) -> Result<Returned, String> {
        let Some((base, query)) = location.split_once('?') else {
            return Err(format!("no query in {location}"));
        };
        if base != format!("{}/index.php", self.base_url()) {
            return Err(format!("redirect to {base}, not this store"));
        }
        verify_return(&self.key, query)
    }
}

/// WebTV's check of a return URL's query: the order signature over
/// `json_encode({id_gateway, id_order, status, id_transaction})` and, per recurring item,
/// the signature over `md5(profile_id . status)`.
fn verify_return(key: &str, query: &str) -> Result<Returned, String> {
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let need = |name: &str| get(name).ok_or_else(|| format!("missing `{name}`"));
    if get("go").as_deref() != Some("store") || get("do").as_deref() != Some("payOrder") {
        return Err("not a payOrder return".into());
    }
    let tp = need("tp")?;
    let rest = tp.strip_prefix("gid_").ok_or("tp lacks gid_")?;
    let (id_gateway, recurring) = if let Some(g) = rest.strip_suffix("-step_2-rp_1") {
        (g.to_string(), true)
    } else {
        (rest.strip_suffix("-step_2").ok_or("tp lacks -step_2")?.to_string(), false)
    };
    let returned = Returned {
        id_order: need("iq")?,
        id_gateway,
        status: need("status")?,
        status_msg: need("status_msg")?,
        transaction: need("transaction")?,
        recurring,
        items: Vec::new(),
    };
    if returned.status != "SUCCESS" && returned.status != "ERROR" {
        return Err(format!("status `{}`", returned.status));
    }
    let data = json_encode_object(&[
        ("id_gateway", &returned.id_gateway),
        ("id_order", &returned.id_order),
        ("status", &returned.status),
        ("id_transaction", &returned.transaction),
    ]);
    if need("signature")? != sign(key, &data) {
        return Err("return signature mismatch".into());
    }
    let mut returned = returned;
    if recurring {
        let mut n = 0;
        while let Some(profile_id) = get(&format!("rp_{n}_profile_id")) {
            let status = need(&format!("rp_{n}_status"))?;
            let expected = sign(key, &md5_hex(&format!("{profile_id}{status}")));
            if need(&format!("rp_{n}_signature"))? != expected {
                return Err(format!("recurring item {n} signature mismatch"));
            }
            returned.items.push(ReturnedItem {
                index: n,
                error: get(&format!("rp_{n}_error")),
                profile_id,
                status,
                first_payment_date: need(&format!("rp_{n}_first_payment_date"))?,
            });
            n += 1;
        }
        if n == 0 {
            return Err("-rp_1 without recurring items".into());
        }
    }
    Ok(returned)
}

/// `base64_encode(hash_hmac('sha256', $data, $key, true))`.
pub fn sign(key: &str, data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// PHP's `md5()`: lowercase hex.
pub fn md5_hex(data: &str) -> String {
    Md5::digest(data.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// PHP's `json_encode` of an associative array of strings, default flags: `/` becomes
/// `\/`, non-ASCII becomes `\uXXXX` (lowercase, UTF-16 surrogate pairs), control
/// characters their short escape or `\u00XX`.
pub fn json_encode_object(pairs: &[(&str, &str)]) -> String {
    let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("{}:{}", json_encode_string(k), json_encode_string(v))).collect();
    format!("{{{}}}", fields.join(","))
}

fn json_encode_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `"" . floatval($amount)` for the plain decimal amounts the tests use: PHP rounds to
/// 14 significant digits and drops trailing zeros (`10.50` -> `10.5`, `5.00` -> `5`).
pub fn php_float(amount: &str) -> String {
    let value: f64 = amount.parse().unwrap_or(0.0);
    if value == 0.0 {
        return "0".into();
    }
    let rounded = format!("{:.13e}", value);
    let (mantissa, exponent) = rounded.split_once('e').expect("exponent");
    let exponent: i32 = exponent.parse().expect("exponent");
    assert!((-4..14).contains(&exponent), "the simulator prints plain amounts only, not {amount}");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let point = exponent + 1;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if digits.len() as i32 <= point {
        format!("{digits}{}", "0".repeat((point - digits.len() as i32) as usize))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    };
    if negative {
        format!("-{text}")
    } else {
        text
    }
}

/// A query string as PHP's `http_build_query` writes it.
fn query_string(pairs: &[(String, String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_encodings() {
        assert_eq!(
            json_encode_object(&[("n", "Заказ №5/7 😀"), ("c", "\u{1}\n")]),
            r#"{"n":"\u0417\u0430\u043a\u0430\u0437 \u21165\/7 \ud83d\ude00","c":"\u0001\n"}"#
        );
        assert_eq!(php_float("10.50"), "10.5");
        assert_eq!(php_float("5.00"), "5");
        assert_eq!(php_float("1000"), "1000");
        assert_eq!(php_float("0.1"), "0.1");
        assert_eq!(php_float("9.989999999999999"), "9.99");
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn the_documented_return_example_verifies() {
        let key = "the secret key";
        let signature = sign(key, &json_encode_object(&[
            ("id_gateway", "3"),
            ("id_order", "99"),
            ("status", "SUCCESS"),
            ("id_transaction", "98dfgdf89g7dg97df"),
        ]));
        let query = format!(
            "go=store&do=payOrder&iq=99&tp=gid_3-step_2&status=SUCCESS&status_msg=&transaction=98dfgdf89g7dg97df&signature={}",
            form_urlencoded::byte_serialize(signature.as_bytes()).collect::<String>()
        );
        let r = verify_return(key, &query).unwrap();
        assert_eq!((r.id_order.as_str(), r.id_gateway.as_str(), r.recurring), ("99", "3", false));
        assert!(verify_return("another key", &query).is_err());
    }
}
