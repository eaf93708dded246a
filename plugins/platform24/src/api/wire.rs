//! The provider API's JSON, as `platform24-provider-api.md` digests it: users, the
//! packet catalog, subscriptions and the error body. Pure, so it is tested natively.
//!
//! Ids arrive as numbers or strings and are kept as text; prices are decimal strings
//! (a JSON number keeps its digits). Fields we do not use are ignored, and the shapes
//! accept what the digest marks as variants (`available` as ids or packet objects).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A JSON scalar as text (`12` and `"12"` are both `12`); `None` for null/absent.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// One packet of `GET /packets?includes=availables`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPacket {
    pub id: String,
    pub name: String,
    pub price: Option<String>,
    pub base: bool,
    /// Add-on packet ids allowed with this base (empty: the catalog does not say).
    pub available: Vec<String>,
}

impl CatalogPacket {
    fn from_value(v: &Value) -> Option<Self> {
        let id = text(&v["id"])?;
        let available = match &v["available"] {
            Value::Array(list) => list.iter().filter_map(|a| text(a).or_else(|| text(&a["id"]))).collect(),
            _ => Vec::new(),
        };
        Some(Self {
            id,
            name: text(&v["name"]).unwrap_or_default(),
            price: text(&v["price"]),
            base: flag(&v["base"]).or_else(|| flag(&v["is_base"])).unwrap_or(false),
            available,
        })
    }
}

/// A user's subscription (`GET`/`POST /users/{id}/subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformSubscription {
    pub id: String,
    pub packet_id: String,
    pub packet_name: String,
    /// `packet.base` when the platform includes it.
    pub base: Option<bool>,
    pub price: Option<String>,
    /// Unix seconds; `None` when absent or unreadable.
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
    pub renew: bool,
}

impl PlatformSubscription {
    fn from_value(v: &Value) -> Option<Self> {
        let packet = &v["packet"];
        let packet_id = text(&packet["id"]).or_else(|| text(packet)).or_else(|| text(&v["packet_id"]))?;
        let when = |name: &str| v[name].as_str().and_then(crate::time::parse);
        Some(Self {
            id: text(&v["id"])?,
            packet_id,
            packet_name: text(&packet["name"]).unwrap_or_default(),
            base: flag(&packet["base"]).or_else(|| flag(&packet["is_base"])),
            price: text(&packet["price"]),
            start_at: when("start_at"),
            end_at: when("end_at"),
            renew: flag(&v["renew"]).unwrap_or(false),
        })
    }
}

#[cfg(test)]
impl PlatformSubscription {
    /// A renewing subscription of `packet`, for the pure modules' tests.
    pub fn fixture(id: &str, packet: &str, start_at: Option<i64>, end_at: Option<i64>) -> Self {
        Self {
            id: id.into(),
            packet_id: packet.into(),
            packet_name: String::new(),
            base: None,
            price: None,
            start_at,
            end_at,
            renew: true,
        }
    }
}

/// A platform user (`POST /users`, `GET /users?provider_uid=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformUser {
    pub id: String,
    pub provider_uid: Option<String>,
    pub username: Option<String>,
    pub is_active: Option<bool>,
}

impl PlatformUser {
    fn from_value(v: &Value) -> Option<Self> {
        Some(Self {
            id: text(&v["id"])?,
            provider_uid: text(&v["provider_uid"]),
            username: text(&v["username"]),
            is_active: flag(&v["is_active"]),
        })
    }
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))
}

/// A list answer; some deployments wrap lists as `{"results": [...]}`.
fn list<T>(body: &[u8], what: &str, item: fn(&Value) -> Option<T>) -> Result<Vec<T>, String> {
    let value = parse_json(body)?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(o) => match o.get("results").or_else(|| o.get("data")) {
            Some(Value::Array(items)) => items,
            _ => return Err(format!("the {what} answer is not a list")),
        },
        _ => return Err(format!("the {what} answer is not a list")),
    };
    items.iter().map(|v| item(v).ok_or_else(|| format!("a {what} entry lacks its id: {v}"))).collect()
}

pub fn catalog(body: &[u8]) -> Result<Vec<CatalogPacket>, String> {
    list(body, "packets", CatalogPacket::from_value)
}

pub fn subscriptions(body: &[u8]) -> Result<Vec<PlatformSubscription>, String> {
    list(body, "subscriptions", PlatformSubscription::from_value)
}

pub fn users(body: &[u8]) -> Result<Vec<PlatformUser>, String> {
    list(body, "users", PlatformUser::from_value)
}

pub fn user(body: &[u8]) -> Result<PlatformUser, String> {
    PlatformUser::from_value(&parse_json(body)?).ok_or_else(|| "the user answer has no id".into())
}

/// One entry of `POST /users/{id}/subscriptions` (a JSON array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectEntry {
    pub packet_id: String,
    /// Unix seconds; absent = starts now.
    pub start_at: Option<i64>,
}

/// The connect call's body: `[{"packet_id":N,"renew":true,"start_at"?:ISO}]`.
pub fn connect_body(entries: &[ConnectEntry]) -> Vec<u8> {
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            // A numeric id goes out as a number, as the platform's own ids are.
            let id = e.packet_id.parse::<u64>().map(Value::from).unwrap_or_else(|_| Value::from(e.packet_id.clone()));
            let mut o = serde_json::json!({ "packet_id": id, "renew": true });
            if let Some(at) = e.start_at {
                o["start_at"] = Value::from(crate::time::format(at));
            }
            o
        })
        .collect();
    serde_json::to_vec(&list).unwrap_or_default()
}

/// The readable part of an error answer: `error.message`, `detail` (text or field
/// errors), or the raw text cut short. Meant for the operator's log, not the TV.
pub fn error_message(body: &[u8]) -> String {
    let raw = || String::from_utf8_lossy(body).chars().take(200).collect::<String>();
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return raw() };
    let mut parts = Vec::new();
    if let Some(m) = value["error"]["message"].as_str().or_else(|| value["error"].as_str()) {
        parts.push(m.to_owned());
    }
    match &value["detail"] {
        Value::String(s) => parts.push(s.clone()),
        Value::Object(fields) => {
            for (field, errors) in fields {
                let errors = match errors {
                    Value::Array(list) => list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "),
                    other => other.to_string(),
                };
                parts.push(format!("{field}: {errors}"));
            }
        }
        _ => {}
    }
    if parts.is_empty() { raw() } else { parts.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_accepts_ids_or_objects_in_available() {
        let body = r#"[
            {"id":11,"name":"Базовый","price":"300.00","base":true,"available":[12,{"id":"13"}],"period":30},
            {"id":"12","name":"Кино","price":150.5,"base":false}
        ]"#;
        let c = catalog(body.as_bytes()).unwrap();
        assert_eq!(c[0], CatalogPacket {
            id: "11".into(), name: "Базовый".into(), price: Some("300.00".into()), base: true,
            available: vec!["12".into(), "13".into()],
        });
        assert_eq!((c[1].id.as_str(), c[1].base, c[1].price.as_deref()), ("12", false, Some("150.5")));
        assert!(catalog(br#"{"results":[{"id":1}]}"#).is_ok());
        assert!(catalog(br#"{"detail":"x"}"#).is_err());
        assert!(catalog(b"[{}]").unwrap_err().contains("id"));
    }

    #[test]
    fn subscriptions_read_dates_and_packet() {
        let body = r#"[{"id":"77","packet":{"id":11,"name":"Базовый","base":true,"price":"300.00"},
            "start_at":"2025-01-01T00:00:00Z","end_at":"2025-01-31T00:00:00+00:00","renew":true,"is_paused":false,"pauses":[]}]"#;
        let s = &subscriptions(body.as_bytes()).unwrap()[0];
        assert_eq!(s.id, "77");
        assert_eq!(s.packet_id, "11");
        assert_eq!(s.base, Some(true));
        assert_eq!(s.start_at, Some(1_735_689_600));
        assert_eq!(s.end_at, Some(1_735_689_600 + 30 * 86_400));
        assert!(s.renew);
    }

    #[test]
    fn users_and_one_user() {
        let u = user(br#"{"id":981,"username":"ivanov","provider_uid":"abon-1","is_active":true}"#).unwrap();
        assert_eq!((u.id.as_str(), u.provider_uid.as_deref(), u.is_active), ("981", Some("abon-1"), Some(true)));
        assert!(users(b"[]").unwrap().is_empty());
    }

    #[test]
    fn connect_body_is_an_array_with_optional_start() {
        let body = connect_body(&[
            ConnectEntry { packet_id: "11".into(), start_at: None },
            ConnectEntry { packet_id: "x-2".into(), start_at: Some(1_735_689_600) },
        ]);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"[{"packet_id":11,"renew":true},{"packet_id":"x-2","renew":true,"start_at":"2025-01-01T00:00:00Z"}]"#
        );
    }

    #[test]
    fn error_messages_in_every_documented_form() {
        let full = br#"{"error":{"message":"Bad request"},"status_code":400,"detail":{"packet_id":["Packet is not available"]}}"#;
        assert_eq!(error_message(full), "Bad request; packet_id: Packet is not available");
        assert_eq!(error_message(br#"{"detail":"Invalid token"}"#), "Invalid token");
        assert_eq!(error_message(b"<html>502</html>"), "<html>502</html>");
    }
}
