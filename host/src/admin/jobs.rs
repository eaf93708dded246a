//! Admin API views of the durable jobs: outbound deliveries, payment events and timers,
//! with their attempts, state and last error, so an operator can see what is stuck and
//! why; given-up deliveries have a list of their own. Header values that carry
//! credentials or signatures are redacted and saved card tokens are never shown.
//! Retrying and cancelling live in `control`.

use hyper::{Method, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ok, query_limit, query_param, AdminError, Answer};
use crate::storage::{DeliveryRow, JobState, PaymentEventRow, Storage, TimerRow};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Routes `GET /deliveries`, `/deliveries/given-up`, `/events` and `/timers`: `kind` is
/// the first segment and `rest` what follows it.
pub async fn handle(storage: &dyn Storage, method: &Method, kind: &str, rest: &[&str], query: &str) -> Answer {
    let given_up = match (kind, rest) {
        (_, []) => false,
        ("deliveries", ["given-up"]) => true,
        _ => return AdminError::not_found(&format!("no such route under /{kind}")).answer(),
    };
    if method != Method::GET {
        return AdminError::new(StatusCode::METHOD_NOT_ALLOWED, "bad-request", &format!("/{kind} is a list: use GET")).answer();
    }
    let limit = match query_limit(query, DEFAULT_LIMIT, MAX_LIMIT) {
        Ok(limit) => limit,
        Err(e) => return e.answer(),
    };
    let backend = |e: crate::storage::StorageError| AdminError::backend(&e.to_string()).answer();
    match kind {
        "deliveries" => {
            let instance = query_param(query, "instance");
            let state = if given_up {
                Some(JobState::Failed)
            } else {
                match query_param(query, "state").map(|s| JobState::parse(&s).ok_or(s)) {
                    None => None,
                    Some(Ok(state)) => Some(state),
                    Some(Err(s)) => {
                        return AdminError::bad_request(&format!("state `{s}` is not one of pending, done, failed, cancelled")).answer()
                    }
                }
            };
            match storage.delivery_list_in(instance.as_deref(), state, limit).await {
                Ok(rows) => {
                    let deliveries: Vec<DeliveryView> = rows.iter().map(DeliveryView::from).collect();
                    ok(&DeliveryList { instance, state: state.map(|s| s.as_str().to_string()), count: deliveries.len(), deliveries })
                }
                Err(e) => backend(e),
            }
        }
        "events" => {
            let provider = query_param(query, "provider");
            match storage.event_list(provider.as_deref(), limit).await {
                Ok(rows) => {
                    let events: Vec<EventView> = rows.iter().map(EventView::from).collect();
                    ok(&EventList { provider, count: events.len(), events })
                }
                Err(e) => backend(e),
            }
        }
        "timers" => {
            let instance = query_param(query, "instance");
            match storage.timer_list(instance.as_deref(), limit).await {
                Ok(rows) => {
                    let timers: Vec<TimerView> = rows.iter().map(TimerView::from).collect();
                    ok(&TimerList { instance, count: timers.len(), timers })
                }
                Err(e) => backend(e),
            }
        }
        _ => AdminError::not_found(&format!("no such job list /{kind}")).answer(),
    }
}

/// `GET /deliveries` and `/deliveries/given-up`.
#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub instance: Option<String>,
    /// The state listed (`failed` for given-up deliveries), or none for all.
    pub state: Option<String>,
    pub count: usize,
    pub deliveries: Vec<DeliveryView>,
}

/// `GET /events`.
#[derive(Serialize, ToSchema)]
pub struct EventList {
    pub provider: Option<String>,
    pub count: usize,
    pub events: Vec<EventView>,
}

/// `GET /timers`.
#[derive(Serialize, ToSchema)]
pub struct TimerList {
    pub instance: Option<String>,
    pub count: usize,
    pub timers: Vec<TimerView>,
}

/// An outbound delivery, newest first in lists.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// `dl_…`
    pub id: String,
    pub instance: String,
    /// The plugin's idempotency key.
    pub key: String,
    pub method: String,
    pub url: String,
    /// `[name, value]` pairs; credentials and signatures redacted.
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    /// `pending`, `done`, `failed` (given up) or `cancelled`.
    pub state: String,
    pub attempts: u32,
    /// 0 means the host default.
    pub max_attempts: u32,
    pub next_at_ms: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
}

/// A payment event for a provider instance.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    pub provider: String,
    pub system: String,
    pub reference: String,
    /// `succeeded`, `failed` or `pending` (the payment's status).
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub external_id: String,
    /// `[redacted]` when the event carries a saved card, else null.
    pub saved_method: Option<String>,
    pub message: Option<String>,
    /// `pending`, `done`, `failed` (given up) or `cancelled` (the hand-over's state).
    pub state: String,
    pub attempts: u32,
    pub next_at_ms: i64,
    pub last_error: Option<String>,
}

/// A durable timer, soonest first in lists.
#[derive(Serialize, ToSchema)]
pub struct TimerView {
    pub id: i64,
    pub instance: String,
    pub name: String,
    pub due_at_ms: i64,
    pub payload: String,
    /// `scheduled` or `firing`.
    pub state: String,
    pub leased_until_ms: Option<i64>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Header names whose values are credentials or signatures.
fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["auth", "cookie", "sign", "token", "secret", "key", "password", "session"].iter().any(|word| name.contains(word))
}

impl From<&DeliveryRow> for DeliveryView {
    fn from(d: &DeliveryRow) -> Self {
        let headers = d
            .request
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if is_sensitive(name) { "[redacted]" } else { value.as_str() };
                (name.clone(), shown.to_string())
            })
            .collect();
        Self {
            id: d.id.clone(),
            instance: d.instance.clone(),
            key: d.key.clone(),
            method: d.request.method.clone(),
            url: d.request.url.clone(),
            headers,
            body: String::from_utf8_lossy(&d.request.body).into_owned(),
            state: d.state.as_str().to_string(),
            attempts: d.attempts,
            max_attempts: d.request.max_attempts,
            next_at_ms: d.next_at,
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            created_at_ms: d.created_at,
        }
    }
}

impl From<&PaymentEventRow> for EventView {
    fn from(row: &PaymentEventRow) -> Self {
        let e = &row.event;
        Self {
            id: row.id,
            provider: row.provider.clone(),
            system: e.system.clone(),
            reference: e.reference.clone(),
            status: e.status.as_str().to_string(),
            amount: e.amount.clone(),
            currency: e.currency.clone(),
            external_id: e.external_id.clone(),
            // A saved card token charges the buyer's card: say whether there is one, never what.
            saved_method: e.saved_method.as_ref().map(|_| "[redacted]".to_string()),
            message: e.message.clone(),
            state: row.state.as_str().to_string(),
            attempts: row.attempts,
            next_at_ms: row.next_at,
            last_error: row.last_error.clone(),
        }
    }
}

impl From<&TimerRow> for TimerView {
    fn from(t: &TimerRow) -> Self {
        Self {
            id: t.id,
            instance: t.instance.clone(),
            name: t.name.clone(),
            due_at_ms: t.due_at,
            payload: String::from_utf8_lossy(&t.payload).into_owned(),
            state: if t.leased_until.is_some() { "firing" } else { "scheduled" }.to_string(),
            leased_until_ms: t.leased_until,
            attempts: t.attempts,
            last_error: t.last_error.clone(),
        }
    }
}

#[utoipa::path(get, path = "/deliveries", tag = "jobs",
    params(
        ("instance" = Option<String>, Query, description = "Only this instance's deliveries"),
        ("state" = Option<String>, Query, description = "Only deliveries in this state: `pending`, `done`, `failed`, `cancelled`"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000, default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Deliveries, newest first", body = DeliveryList),
        (status = 400, description = "A query parameter is not valid", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_deliveries() {}

#[utoipa::path(get, path = "/deliveries/given-up", tag = "jobs",
    params(
        ("instance" = Option<String>, Query, description = "Only this instance's deliveries"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000, default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Deliveries whose attempts ran out (`failed`), newest first", body = DeliveryList),
        (status = 400, description = "A query parameter is not valid", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_given_up() {}

#[utoipa::path(get, path = "/events", tag = "jobs",
    params(
        ("provider" = Option<String>, Query, description = "Only events for this provider instance"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000, default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Payment events, newest first", body = EventList),
        (status = 400, description = "A query parameter is not valid", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_events() {}

#[utoipa::path(get, path = "/timers", tag = "jobs",
    params(
        ("instance" = Option<String>, Query, description = "Only this instance's timers"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000, default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Timers, soonest first", body = TimerList),
        (status = 400, description = "A query parameter is not valid", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub fn doc_timers() {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::DeliveryRequest;

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
        let shown = serde_json::to_value(DeliveryView::from(&row)).unwrap();
        let text = shown.to_string();
        assert!(!text.contains("s3cret") && !text.contains("\"abc\""));
        assert_eq!(shown["headers"][3], serde_json::json!(["Content-Type", "application/json"]));
        assert_eq!(shown["body"], "{\"ok\":true}\u{fffd}");
        assert_eq!(shown["state"], "pending");
    }
}
