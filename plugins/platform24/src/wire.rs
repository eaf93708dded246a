//! Reading Platform24's requests: query parameters and a JSON (or form) body.
//!
//! The document lets the billing rely on either the URL parameters or the JSON body, so
//! both are read and, when both are present, must agree. Ids and prices may arrive as
//! JSON strings or numbers; a number's exact digits are kept (`RawValue`), so a price
//! never passes through a float. Error texts are Russian: they reach the TV screen.

use crate::amount::Amount;
use payhost_sdk::query::Params;
use serde::Deserialize;
use serde_json::value::RawValue;

type Raw = Option<Box<RawValue>>;

#[derive(Debug, Default, Deserialize)]
struct Body {
    #[serde(default)]
    user: Option<UserJson>,
    #[serde(default)]
    packets: Option<Vec<PacketJson>>,
    #[serde(default)]
    packet: Option<PacketJson>,
    #[serde(default)]
    subscription: Option<SubscriptionJson>,
    #[serde(default)]
    provider_uid: Raw,
    #[serde(default)]
    phone: Raw,
    #[serde(default)]
    ip: Raw,
}

#[derive(Debug, Default, Deserialize)]
struct UserJson {
    #[serde(default)]
    id: Raw,
    #[serde(default)]
    provider_uid: Raw,
    #[serde(default)]
    phone: Raw,
}

#[derive(Debug, Default, Deserialize)]
struct PacketJson {
    #[serde(default)]
    id: Raw,
    #[serde(default)]
    price: Raw,
    #[serde(default)]
    name: Raw,
    #[serde(default)]
    is_base: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct SubscriptionJson {
    #[serde(default)]
    id: Raw,
    /// A packet object (`{"id": ..}`) or just its id.
    #[serde(default)]
    packet: Raw,
    #[serde(default)]
    start_at: Raw,
    #[serde(default)]
    end_at: Raw,
}

/// A JSON scalar as text: strings decoded, numbers and booleans verbatim; empty
/// strings count as absent. Objects and arrays are not scalars.
fn scalar(raw: &Raw) -> Result<Option<String>, ()> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim();
    let value = match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).map_err(|_| ())?,
        Some(b'{' | b'[') | None => return Err(()),
        Some(b'n') => return Ok(None),
        Some(_) => text.to_owned(),
    };
    Ok(Some(value).filter(|v| !v.trim().is_empty()))
}

fn field(raw: &Raw, what: &str) -> Result<Option<String>, String> {
    scalar(raw).map_err(|_| format!("поле {what} должно быть строкой или числом"))
}

fn non_empty(v: Option<&str>) -> Option<String> {
    v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// One packet of a purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub id: String,
    pub price: Amount,
    pub name: String,
    pub is_base: Option<bool>,
}

/// A `packet` or `packets` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    pub user: String,
    /// The platform's id of the user (`user.id`), for the provider API.
    pub platform_user_id: Option<String>,
    pub packets: Vec<Packet>,
}

/// A `delete_subscription` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub user: String,
    pub platform_user_id: Option<String>,
    pub sub_id: Option<String>,
    pub packet_id: Option<String>,
    pub start_at: Option<String>,
    pub end_at: Option<String>,
}

/// An `auth` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub provider_uid: Option<String>,
    pub phone: Option<String>,
    pub ip: Option<String>,
    /// The platform's own user id, when the body carries a `user` object.
    pub platform_user_id: Option<String>,
}

/// A billing request's parameters and parsed body.
#[derive(Debug)]
pub struct Inbound {
    params: Params,
    body: Body,
}

/// How to read a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Empty,
    Form,
    Json,
}

/// A body that opens with `{` is JSON whatever its content type says (HTTP clients
/// often send JSON text with a form or no content type); otherwise a form content type,
/// or none with `name=value` text, is a form; anything else must be JSON.
fn body_kind(content_type: Option<&str>, body: &[u8]) -> BodyKind {
    let text = body.trim_ascii();
    if text.is_empty() {
        return BodyKind::Empty;
    }
    if text.starts_with(b"{") {
        return BodyKind::Json;
    }
    let form_type = content_type
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if form_type || (content_type.is_none() && text.contains(&b'=')) {
        BodyKind::Form
    } else {
        BodyKind::Json
    }
}

impl Inbound {
    /// Reads the raw query and the body: a form body adds parameters, any other
    /// non-empty body must be a JSON object.
    pub fn parse(query: &str, content_type: Option<&str>, body: &[u8]) -> Result<Self, String> {
        let mut params = Params::parse(query);
        let mut parsed = Body::default();
        match body_kind(content_type, body) {
            BodyKind::Empty => {}
            BodyKind::Form => params.merge(Params::parse_bytes(body)),
            BodyKind::Json => {
                parsed = serde_json::from_slice(body)
                    .map_err(|e| format!("тело запроса не является ожидаемым JSON ({e})"))?;
            }
        }
        Ok(Self { params, body: parsed })
    }

    fn param(&self, name: &str) -> Option<String> {
        non_empty(self.params.get(name))
    }

    /// The platform's user id (`user.id` in the body).
    pub fn platform_user_id(&self) -> Result<Option<String>, String> {
        match &self.body.user {
            Some(u) => field(&u.id, "user.id"),
            None => Ok(None),
        }
    }

    /// The provider uid: `user_id` in the URL and/or `user.provider_uid` in the body.
    pub fn user(&self) -> Result<String, String> {
        let from_query = self.param("user_id");
        let from_body = match &self.body.user {
            Some(u) => field(&u.provider_uid, "user.provider_uid")?,
            None => None,
        };
        match (from_query, from_body) {
            (Some(q), Some(b)) if q != b => {
                Err(format!("user_id «{q}» в адресе не совпадает с user.provider_uid «{b}» в теле"))
            }
            (Some(uid), _) | (None, Some(uid)) => Ok(uid),
            (None, None) => Err("не указан абонент (user_id или user.provider_uid)".into()),
        }
    }

    /// Packet ids named in the URL: `trf_ids=1,2,3` or `trf_id=1`.
    fn query_packet_ids(&self) -> Vec<String> {
        let raw = self.param("trf_ids").or_else(|| self.param("trf_id")).unwrap_or_default();
        raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }

    /// A `packet` or `packets` request: prices come from the body; ids named in the URL
    /// must be the same packets.
    pub fn purchase(&self) -> Result<Purchase, String> {
        let user = self.user()?;
        let listed: Vec<&PacketJson> = match (&self.body.packets, &self.body.packet) {
            (Some(list), _) => list.iter().collect(),
            (None, Some(one)) => vec![one],
            (None, None) => Vec::new(),
        };
        let query_ids = self.query_packet_ids();
        if listed.is_empty() {
            return Err(if query_ids.is_empty() {
                "не указаны пакеты".into()
            } else {
                "не указана стоимость пакетов (ожидается JSON с полем packets или packet)".into()
            });
        }
        let mut packets = Vec::with_capacity(listed.len());
        for p in listed {
            let id = field(&p.id, "id пакета")?.ok_or("у пакета не указан id")?;
            let price = field(&p.price, "price")?
                .ok_or_else(|| format!("у пакета {id} не указана стоимость"))?;
            let price = Amount::parse(&price).map_err(|e| format!("пакет {id}: {e}"))?;
            let name = field(&p.name, "name")?.unwrap_or_default();
            let is_base = match &p.is_base {
                Some(serde_json::Value::Bool(b)) => Some(*b),
                Some(serde_json::Value::Number(n)) => n.as_i64().map(|n| n != 0),
                Some(serde_json::Value::String(s)) => match s.as_str() {
                    "true" | "1" => Some(true),
                    "false" | "0" => Some(false),
                    _ => None,
                },
                _ => None,
            };
            packets.push(Packet { id, price, name, is_base });
        }
        if !query_ids.is_empty() {
            let mut from_body: Vec<&str> = packets.iter().map(|p| p.id.as_str()).collect();
            let mut from_query: Vec<&str> = query_ids.iter().map(String::as_str).collect();
            from_body.sort_unstable();
            from_query.sort_unstable();
            if from_body != from_query {
                return Err("пакеты в адресе (trf_ids) не совпадают с пакетами в теле запроса".into());
            }
        }
        Ok(Purchase { user, platform_user_id: self.platform_user_id()?, packets })
    }

    /// A `delete_subscription` request: `sub_id` (URL or `subscription.id`) and/or the
    /// packet (`subscription.packet`, an object or an id; or `trf_id`).
    pub fn cancellation(&self) -> Result<Cancellation, String> {
        let user = self.user()?;
        let sub = self.body.subscription.as_ref();
        let sub_id = match self.param("sub_id") {
            Some(id) => Some(id),
            None => sub.map(|s| field(&s.id, "subscription.id")).transpose()?.flatten(),
        };
        let packet_id = match sub.and_then(|s| s.packet.as_ref()) {
            Some(raw) if raw.get().trim_start().starts_with('{') => {
                let packet: PacketJson = serde_json::from_str(raw.get())
                    .map_err(|e| format!("поле subscription.packet не разобрано ({e})"))?;
                field(&packet.id, "subscription.packet.id")?
            }
            Some(_) => field(&sub.unwrap().packet, "subscription.packet")?,
            None => None,
        }
        .or_else(|| self.param("trf_id"));
        if sub_id.is_none() && packet_id.is_none() {
            return Err("не указана подписка (sub_id или subscription.packet)".into());
        }
        let (start_at, end_at) = match sub {
            Some(s) => (field(&s.start_at, "start_at")?, field(&s.end_at, "end_at")?),
            None => (None, None),
        };
        Ok(Cancellation { user, platform_user_id: self.platform_user_id()?, sub_id, packet_id, start_at, end_at })
    }

    /// An `auth` request: `provider_uid`, `phone`, `ip` from the URL or the body.
    pub fn auth(&self) -> Result<AuthRequest, String> {
        let user = self.body.user.as_ref();
        let from_user = |f: fn(&UserJson) -> &Raw, what: &str| -> Result<Option<String>, String> {
            user.map(|u| field(f(u), what)).transpose().map(Option::flatten)
        };
        let provider_uid = match self.param("provider_uid") {
            Some(uid) => Some(uid),
            None => field(&self.body.provider_uid, "provider_uid")?
                .or(from_user(|u| &u.provider_uid, "user.provider_uid")?),
        };
        let phone = match self.param("phone") {
            Some(p) => Some(p),
            None => field(&self.body.phone, "phone")?.or(from_user(|u| &u.phone, "user.phone")?),
        };
        let ip = match self.param("ip") {
            Some(ip) => Some(ip),
            None => field(&self.body.ip, "ip")?,
        };
        let platform_user_id = from_user(|u| &u.id, "user.id")?;
        Ok(AuthRequest { provider_uid, phone, ip, platform_user_id })
    }
}

/// The payment-form URL request's fields (query, form body or flat JSON object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormRequest {
    pub user_id: String,
    pub transaction_id: String,
    pub order_description: String,
    pub amount: String,
    pub currency: String,
    pub security_key: String,
}

impl FormRequest {
    pub fn parse(query: &str, content_type: Option<&str>, body: &[u8]) -> Result<Self, String> {
        let mut pairs: Vec<(String, String)> = Params::parse(query).pairs().to_vec();
        match body_kind(content_type, body) {
            BodyKind::Empty => {}
            BodyKind::Form => pairs.extend(Params::parse_bytes(body).pairs().iter().cloned()),
            BodyKind::Json => {
                let object: std::collections::BTreeMap<String, Box<RawValue>> = serde_json::from_slice(body)
                    .map_err(|e| format!("тело запроса не является JSON-объектом ({e})"))?;
                for (name, raw) in object {
                    let value = scalar(&Some(raw)).map_err(|_| format!("поле {name} должно быть строкой или числом"))?;
                    pairs.push((name, value.unwrap_or_default()));
                }
            }
        }
        // The signature is over exact values, so no trimming; names match case-insensitively.
        let get = |name: &str| pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let mut missing = Vec::new();
        let mut need = |name: &'static str| {
            get(name).filter(|v| !v.is_empty()).unwrap_or_else(|| {
                missing.push(name);
                String::new()
            })
        };
        let request = Self {
            user_id: need("UserID"),
            transaction_id: need("TransactionID"),
            amount: need("Amount"),
            currency: need("Currency"),
            security_key: need("SecurityKey"),
            order_description: get("OrderDescription").unwrap_or_default(),
        };
        if missing.is_empty() {
            Ok(request)
        } else {
            Err(format!("не указаны поля: {}", missing.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = r#""user":{"id":981,"phone":"+79990001122","email":"a@b.c","provider_uid":"abon-1","last_name":"Иванов","username":"ivanov","timezone":"Europe/Moscow","first_name":"Иван"}"#;

    fn json(query: &str, body: &str) -> Inbound {
        Inbound::parse(query, Some("application/json"), body.as_bytes()).unwrap()
    }

    #[test]
    fn packets_from_body_and_query_agree() {
        let body = format!(
            r#"{{{USER},"type":"packets","packets":[{{"id":11,"price":"300.00","is_base":true,"name":"Базовый"}},{{"id":"12","price":150.5,"is_base":false,"name":"Кино"}}]}}"#
        );
        let p = json("user_id=abon-1&trf_ids=12,11", &body).purchase().unwrap();
        assert_eq!(p.user, "abon-1");
        assert_eq!(p.platform_user_id.as_deref(), Some("981"));
        assert_eq!(p.packets.len(), 2);
        assert_eq!(p.packets[0].id, "11");
        assert_eq!(p.packets[0].price.as_str(), "300.00");
        assert_eq!(p.packets[0].is_base, Some(true));
        assert_eq!(p.packets[0].name, "Базовый");
        // A numeric price keeps its exact digits.
        assert_eq!(p.packets[1].price.as_str(), "150.5");
        assert_eq!(p.packets[1].id, "12");
    }

    #[test]
    fn body_only_and_single_packet() {
        let body = format!(r#"{{"type":"packet",{USER},"packet":{{"id":5,"price":"99.90","is_base":false,"name":"Спорт"}}}}"#);
        let p = json("", &body).purchase().unwrap();
        assert_eq!(p.user, "abon-1");
        assert_eq!(p.packets[0].id, "5");
        assert_eq!(p.packets[0].price.as_str(), "99.90");
        // The URL style of the base scheme: ?user_id=&trf_id= with the body.
        assert!(json("user_id=abon-1&trf_id=5", &body).purchase().is_ok());
    }

    #[test]
    fn purchase_errors_are_readable() {
        let body = format!(r#"{{{USER},"packets":[{{"id":11,"price":"300.00"}}]}}"#);
        assert!(json("user_id=other", &body).purchase().unwrap_err().contains("не совпадает"));
        assert!(json("trf_ids=11,12", &body).purchase().unwrap_err().contains("trf_ids"));
        assert!(json("user_id=abon-1&trf_ids=11", "").purchase().unwrap_err().contains("стоимость"));
        assert!(json("", r#"{"packets":[{"id":1,"price":"1"}]}"#).purchase().unwrap_err().contains("абонент"));
        let comma = r#"{"user":{"provider_uid":"u"},"packets":[{"id":1,"price":"300,00"}]}"#;
        assert!(json("", comma).purchase().unwrap_err().contains("с точкой"));
        let no_price = r#"{"user":{"provider_uid":"u"},"packets":[{"id":1}]}"#;
        assert!(json("", no_price).purchase().unwrap_err().contains("стоимость"));
        let empty = r#"{"user":{"provider_uid":"u"},"packets":[]}"#;
        assert!(json("", empty).purchase().unwrap_err().contains("пакеты"));
        assert!(Inbound::parse("", Some("application/json"), b"{not json").unwrap_err().contains("JSON"));
    }

    #[test]
    fn numeric_provider_uid_is_text() {
        let body = r#"{"user":{"provider_uid":1001},"packet":{"id":1,"price":"1.00"}}"#;
        assert_eq!(json("", body).purchase().unwrap().user, "1001");
        assert_eq!(json("user_id=1001", body).purchase().unwrap().user, "1001");
    }

    #[test]
    fn user_from_query_only() {
        assert_eq!(json("user_id=abc", "").user().unwrap(), "abc");
        assert!(json("user_id=", "").user().is_err());
    }

    #[test]
    fn cancellation_styles() {
        let body = format!(
            r#"{{"type":"delete_sub",{USER},"subscription":{{"packet":{{"id":11,"name":"Кино"}},"start_at":"2024-01-01T00:00:00","end_at":"2024-02-01T00:00:00","renew":true,"is_paused":false}}}}"#
        );
        let c = json("user_id=abon-1&sub_id=77", &body).cancellation().unwrap();
        assert_eq!(c.sub_id.as_deref(), Some("77"));
        assert_eq!(c.packet_id.as_deref(), Some("11"));
        assert_eq!(c.end_at.as_deref(), Some("2024-02-01T00:00:00"));
        let c = json("", r#"{"user":{"provider_uid":"u"},"subscription":{"packet":12}}"#).cancellation().unwrap();
        assert_eq!((c.sub_id, c.packet_id.as_deref()), (None, Some("12")));
        let c = json("user_id=u&sub_id=5", "").cancellation().unwrap();
        assert_eq!(c.sub_id.as_deref(), Some("5"));
        assert!(json("user_id=u", "").cancellation().unwrap_err().contains("подписка"));
    }

    #[test]
    fn auth_from_query_or_body() {
        let a = json("ip=10.0.0.1&phone=%2B7999&provider_uid=abon-1", "").auth().unwrap();
        assert_eq!(a.provider_uid.as_deref(), Some("abon-1"));
        assert_eq!(a.phone.as_deref(), Some("+7999"));
        assert_eq!(a.ip.as_deref(), Some("10.0.0.1"));
        let a = json("", &format!("{{{USER}}}")).auth().unwrap();
        assert_eq!(a.provider_uid.as_deref(), Some("abon-1"));
        assert_eq!(a.platform_user_id.as_deref(), Some("981"));
        assert_eq!(json("", "").auth().unwrap().provider_uid, None);
    }

    #[test]
    fn body_kind_follows_the_text_first() {
        assert_eq!(body_kind(Some("application/json"), b"  "), BodyKind::Empty);
        assert_eq!(body_kind(Some("application/x-www-form-urlencoded"), b"{\"a\":1}"), BodyKind::Json);
        assert_eq!(body_kind(None, b"{\"a\":1}"), BodyKind::Json);
        assert_eq!(body_kind(Some("application/x-www-form-urlencoded; charset=utf-8"), b"a=1"), BodyKind::Form);
        assert_eq!(body_kind(None, b"a=1&b=2"), BodyKind::Form);
        assert_eq!(body_kind(Some("application/json"), b"a=1"), BodyKind::Json);
        assert_eq!(body_kind(Some("text/plain"), b"[1]"), BodyKind::Json);
    }

    #[test]
    fn json_sent_with_a_form_content_type_is_still_json() {
        let body = br#"{"user":{"provider_uid":"u9"},"packets":[{"id":1,"price":"5.00"}]}"#;
        let i = Inbound::parse("", Some("application/x-www-form-urlencoded"), body).unwrap();
        assert_eq!(i.purchase().unwrap().user, "u9");
    }

    #[test]
    fn form_body_counts_as_parameters() {
        let i = Inbound::parse("", Some("application/x-www-form-urlencoded"), b"user_id=u7").unwrap();
        assert_eq!(i.user().unwrap(), "u7");
    }

    #[test]
    fn payment_form_in_every_style() {
        let q = "UserID=abon-1&TransactionID=t1&OrderDescription=%D0%9F%D0%B0%D0%BA%D0%B5%D1%82+%C2%AB%D0%9A%D0%B8%D0%BD%D0%BE%C2%BB&Amount=150.50&Currency=RUB&SecurityKey=abc";
        let expect = FormRequest {
            user_id: "abon-1".into(),
            transaction_id: "t1".into(),
            order_description: "Пакет «Кино»".into(),
            amount: "150.50".into(),
            currency: "RUB".into(),
            security_key: "abc".into(),
        };
        assert_eq!(FormRequest::parse(q, None, b"").unwrap(), expect);
        assert_eq!(
            FormRequest::parse("", Some("application/x-www-form-urlencoded; charset=utf-8"), q.as_bytes()).unwrap(),
            expect
        );
        let body = r#"{"UserID":"abon-1","TransactionID":"t1","OrderDescription":"Пакет «Кино»","Amount":150.50,"Currency":"RUB","SecurityKey":"abc"}"#;
        assert_eq!(FormRequest::parse("", Some("application/json"), body.as_bytes()).unwrap(), expect);
        let err = FormRequest::parse("UserID=u&Amount=1.00", None, b"").unwrap_err();
        assert!(err.contains("TransactionID") && err.contains("SecurityKey") && !err.contains("UserID"));
    }
}
