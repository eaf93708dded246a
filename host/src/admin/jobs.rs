//! Admin API views of the durable jobs: outbound deliveries, payment events and timers,
//! with their attempts, state and last error, so an operator can see what is stuck and
//! why. Read-only. Header values that carry credentials or signatures are redacted and
//! saved card tokens are never shown.

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::storage::{DeliveryRow, PaymentEventRow, Storage, TimerRow};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Routes `/deliveries`, `/events` and `/timers`: `kind` is that first segment and
/// `rest` what follows it (nothing, for these list endpoints).
pub async fn handle(storage: &dyn Storage, method: &Method, kind: &str, rest: &[&str], query: &str) -> (StatusCode, Value) {
    if !rest.is_empty() {
        return bad(StatusCode::NOT_FOUND, &format!("no such route under /{kind}"));
    }
    if method != Method::GET {
        return bad(StatusCode::METHOD_NOT_ALLOWED, &format!("/{kind} is read-only: use GET"));
    }
    let (filter_name, filter) = match kind {
        "deliveries" | "timers" => ("instance", filter(query, "instance")),
        "events" => ("provider", filter(query, "provider")),
        _ => return bad(StatusCode::NOT_FOUND, &format!("no such job list /{kind}")),
    };
    let limit = match limit(query) {
        Ok(limit) => limit,
        Err(answer) => return answer,
    };
    let listed = match kind {
        "deliveries" => storage.delivery_list(filter.as_deref(), limit).await.map(|rows| rows.iter().map(delivery).collect()),
        "events" => storage.event_list(filter.as_deref(), limit).await.map(|rows| rows.iter().map(event).collect()),
        _ => storage.timer_list(filter.as_deref(), limit).await.map(|rows| rows.iter().map(timer).collect()),
    };
    match listed {
        Ok(items) => {
            let items: Vec<Value> = items;
            let mut answer = serde_json::Map::new();
            answer.insert(filter_name.to_string(), json!(filter));
            answer.insert("count".to_string(), json!(items.len()));
            answer.insert(kind.to_string(), Value::Array(items));
            (StatusCode::OK, Value::Object(answer))
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": e.to_string(), "code": "backend" })),
    }
}

fn filter(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.into_owned())
}

fn limit(query: &str) -> Result<u32, (StatusCode, Value)> {
    match form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "limit") {
        None => Ok(DEFAULT_LIMIT),
        Some((_, v)) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(bad(StatusCode::BAD_REQUEST, &format!("limit must be a whole number from 1 to {MAX_LIMIT}"))),
        },
    }
}

fn bad(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({ "error": message, "code": "bad-request" }))
}

/// Header names whose values are credentials or signatures.
fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["auth", "cookie", "sign", "token", "secret", "key", "password", "session"].iter().any(|word| name.contains(word))
}

fn delivery(d: &DeliveryRow) -> Value {
    let headers: Vec<Value> = d
        .request
        .headers
        .iter()
        .map(|(name, value)| {
            let shown = if is_sensitive(name) { "[redacted]" } else { value.as_str() };
            json!([name, shown])
        })
        .collect();
    json!({
        "id": d.id,
        "instance": d.instance,
        "key": d.key,
        "method": d.request.method,
        "url": d.request.url,
        "headers": headers,
        "body": String::from_utf8_lossy(&d.request.body),
        "state": d.state,
        "attempts": d.attempts,
        "max_attempts": d.request.max_attempts,
        "next_at_ms": d.next_at,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at_ms": d.created_at,
    })
}

fn event(row: &PaymentEventRow) -> Value {
    let e = &row.event;
    json!({
        "id": row.id,
        "provider": row.provider,
        "system": e.system,
        "reference": e.reference,
        "status": e.status,
        "amount": e.amount,
        "currency": e.currency,
        "external_id": e.external_id,
        // A saved card token charges the buyer's card: say whether there is one, never what.
        "saved_method": e.saved_method.as_ref().map(|_| "[redacted]"),
        "message": e.message,
        "state": row.state,
        "attempts": row.attempts,
        "next_at_ms": row.next_at,
        "last_error": row.last_error,
    })
}

fn timer(t: &TimerRow) -> Value {
    json!({
        "id": t.id,
        "instance": t.instance,
        "name": t.name,
        "due_at_ms": t.due_at,
        "payload": String::from_utf8_lossy(&t.payload),
        "state": if t.leased_until.is_some() { "firing" } else { "scheduled" },
        "leased_until_ms": t.leased_until,
        "attempts": t.attempts,
        "last_error": t.last_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{DeliveryRequest, JobState};

    #[test]
    fn credential_headers_are_redacted_and_others_kept() {
        let row = DeliveryRow {
            id: "dl_1".into(),
            instance: "p24".into(),
            key: "k".into(),
            request: DeliveryRequest {
                method: "POST".into(),
                url: "http://example.test/cb".into(),
                headers: vec![
                    ("Authorization".into(), "Bearer s3cret".into()),
                    ("X-Signature".into(), "abc".into()),
                    ("X-Api-Key".into(), "k".into()),
                    ("Content-Type".into(), "application/json".into()),
                ],
                body: b"{\"ok\":true}\xff".to_vec(),
                max_attempts: 5,
            },
            state: JobState::Pending,
            attempts: 2,
            next_at: 10,
            last_error: Some("HTTP 500".into()),
            last_status: Some(500),
            created_at: 1,
        };
        let shown = delivery(&row);
        let text = shown.to_string();
        assert!(!text.contains("s3cret") && !text.contains("\"abc\""));
        assert_eq!(shown["headers"][3], json!(["Content-Type", "application/json"]));
        assert_eq!(shown["body"], "{\"ok\":true}\u{fffd}");
        assert_eq!(shown["state"], "pending");
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit("").unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit("limit=5").unwrap(), 5);
        assert!(limit("limit=0").is_err());
        assert!(limit("limit=100000").is_err());
        assert_eq!(filter("instance=p24&limit=3", "instance").as_deref(), Some("p24"));
    }
}
