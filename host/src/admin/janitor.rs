//! `GET /janitor`: the payments the janitor watches (a checkout or charge the payment
//! system has an id for), open ones first: how often each was looked up, the last
//! error, when it is asked about next, and how it was settled.

use serde::Serialize;
use utoipa::ToSchema;

use super::{ok, query_limit, query_param, AdminError, Answer};
use crate::config::JanitorSettings;
use crate::storage::{Storage, TrackedPayment};

/// `GET /janitor`.
#[derive(Serialize, ToSchema)]
pub struct JanitorState {
    pub enabled: bool,
    /// Payments with no final outcome this long after they started are looked up.
    pub after_seconds: u64,
    pub count: usize,
    pub payments: Vec<TrackedPaymentView>,
}

/// One checkout or charge.
#[derive(Serialize, ToSchema)]
pub struct TrackedPaymentView {
    /// Payment-system instance.
    pub system: String,
    pub reference: String,
    /// Provider instance that started it.
    pub provider: String,
    /// `checkout`, `charge`, or null when the payment system never answered with an id.
    pub kind: Option<String>,
    /// The payment system's id (`cs_…`, `pi_…`).
    pub external_id: Option<String>,
    /// `open` (no final outcome yet) or `settled`.
    pub state: String,
    pub created_at_ms: i64,
    pub lookups: u32,
    pub last_lookup_at_ms: Option<i64>,
    pub next_lookup_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub settled_at_ms: Option<i64>,
    /// `event` (webhook), `lookup` (the janitor) or `charge` (final when charged).
    pub settled_by: Option<String>,
}

impl From<TrackedPayment> for TrackedPaymentView {
    fn from(p: TrackedPayment) -> Self {
        let open = p.settled_at.is_none();
        Self {
            system: p.system,
            reference: p.reference,
            provider: p.provider,
            kind: p.kind.map(|k| k.as_str().to_string()),
            state: if open { "open" } else { "settled" }.to_string(),
            // A payment without an id is never looked up: no next time to show.
            next_lookup_at_ms: (open && p.external_id.is_some()).then_some(p.next_lookup_at),
            external_id: p.external_id,
            created_at_ms: p.created_at,
            lookups: p.lookups,
            last_lookup_at_ms: p.last_lookup_at,
            last_error: p.last_error,
            settled_at_ms: p.settled_at,
            settled_by: p.settled_by,
        }
    }
}

#[utoipa::path(get, path = "/janitor", tag = "payments",
    params(
        ("open" = Option<bool>, Query, description = "`true`: only payments with no final outcome yet"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000, default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Watched payments, open first, newest first", body = JanitorState),
        (status = 400, description = "A query parameter is not valid", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub async fn state(storage: &dyn Storage, settings: &JanitorSettings, query: &str) -> Answer {
    let open_only = match query_param(query, "open").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return AdminError::bad_request(&format!("open must be true or false, not `{other}`")).answer(),
    };
    let limit = match query_limit(query, 100, 1000) {
        Ok(limit) => limit,
        Err(e) => return e.answer(),
    };
    match storage.tracked_payments(open_only, limit).await {
        Ok(rows) => {
            let payments: Vec<TrackedPaymentView> = rows.into_iter().map(TrackedPaymentView::from).collect();
            ok(&JanitorState { enabled: settings.enabled, after_seconds: settings.after_seconds, count: payments.len(), payments })
        }
        Err(e) => AdminError::backend(&e.to_string()).answer(),
    }
}
