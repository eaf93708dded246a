//! Which admin calls are audited, and `GET /audit`. Every call that moves money or
//! changes what runs is appended to the trail after it ran, with what was asked and
//! what was answered (refusals too: an attempt is worth knowing about). Reads, the
//! clock and refused bearer tokens are not actions and are not recorded.

use hyper::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{ok, query_limit, query_param, AdminError, Answer};
use crate::storage::{AuditEntry, AuditQuery, NewAuditEntry, Storage};

/// Largest request body kept whole in an entry; a larger one is kept as its length.
const MAX_KEPT_BODY: usize = 16 * 1024;

/// The audited kinds, for `?kind=` validation and the API document.
pub const KINDS: [&str; 9] = ["credit", "debit", "reversal", "overdraft", "reload", "rollback", "config-reload", "retry", "cancel"];

/// The audit kind and target of an admin call, or `None` when it is not an action.
pub fn classify(method: &Method, segments: &[&str]) -> Option<(&'static str, String)> {
    let decoded = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    match (method, segments) {
        (&Method::POST, ["accounts", id, "credit"]) => Some(("credit", decoded(id))),
        (&Method::POST, ["accounts", id, "debit"]) => Some(("debit", decoded(id))),
        (&Method::PUT, ["accounts", id, "overdraft"]) => Some(("overdraft", decoded(id))),
        (&Method::POST, ["accounts", id, "transactions", tx, "reverse"]) => Some(("reversal", format!("{}/{}", decoded(id), decoded(tx)))),
        (&Method::POST, ["plugins", name, "reload"]) => Some(("reload", decoded(name))),
        (&Method::POST, ["plugins", name, "rollback"]) => Some(("rollback", decoded(name))),
        (&Method::POST, ["config", "reload"]) => Some(("config-reload", "config".to_string())),
        (&Method::POST, [kind @ ("deliveries" | "timers" | "events"), id, action @ ("retry" | "cancel")]) => {
            let audit_kind = if *action == "retry" { "retry" } else { "cancel" };
            Some((audit_kind, format!("{}/{}", kind, decoded(id))))
        }
        _ => None,
    }
}

/// What was asked, as stored: method, path, query and the JSON body.
pub fn asked(method: &Method, path: &str, query: &str, body: &[u8]) -> Value {
    let body = if body.is_empty() {
        Value::Null
    } else if body.len() > MAX_KEPT_BODY {
        json!({ "bytes": body.len() })
    } else {
        serde_json::from_slice(body).unwrap_or_else(|_| json!({ "text": String::from_utf8_lossy(body) }))
    };
    json!({ "method": method.as_str(), "path": path, "query": query, "body": body })
}

/// Appends one entry; a trail that cannot be written is an error in the log, never a
/// reason to pretend the action did not happen (it already did).
pub async fn append(storage: &dyn Storage, entry: NewAuditEntry) {
    if let Err(e) = storage.audit_append(&entry).await {
        tracing::error!(kind = %entry.kind, target = %entry.target, request = %entry.request_id, error = %e, "could not append to the audit trail");
    }
}

/// Records a config reload an operator asked for with SIGHUP (no HTTP request: the
/// source is `signal`, the request id a fresh one).
pub async fn config_reload_by_signal(app: &crate::live::LiveOps, result: &anyhow::Result<Value>) {
    let (status, answer) = super::plugins::config_reload_answer(result);
    let services = &app.runtime.services;
    let entry = NewAuditEntry {
        at: services.clock.now_millis(),
        kind: "config-reload".into(),
        source: "signal".into(),
        request_id: app.runtime.next_request_id(),
        target: "config".into(),
        request: json!({ "signal": "SIGHUP" }),
        outcome: outcome(status).into(),
        status: status.as_u16(),
        result: answer,
    };
    append(services.storage.as_ref(), entry).await;
}

/// `ok` for a carried-out action, `refused` for any other answer.
pub fn outcome(status: StatusCode) -> &'static str {
    if status.is_success() { "ok" } else { "refused" }
}

/// `GET /audit` answer: entries oldest first.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    /// The `since` asked for (host-clock ms), if any.
    pub since: Option<i64>,
    pub kind: Option<String>,
    pub count: usize,
    pub entries: Vec<AuditEntryView>,
}

/// One audit entry.
#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the trail (increasing).
    pub id: i64,
    /// Host clock, ms since the Unix epoch.
    pub at_ms: i64,
    /// `credit`, `debit`, `reversal`, `overdraft`, `reload`, `rollback`, `config-reload`, `retry`, `cancel`.
    pub kind: String,
    /// The admin client's address, or `signal` for SIGHUP.
    pub source: String,
    pub request_id: String,
    /// Account id, instance name, `config`, or `kind/id` of a job.
    pub target: String,
    /// What was asked: `{method, path, query, body}`.
    pub request: Value,
    /// `ok` or `refused`.
    pub outcome: String,
    /// HTTP status answered.
    pub status: u16,
    /// What was answered.
    pub result: Value,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        let AuditEntry { id, entry } = e;
        Self {
            id,
            at_ms: entry.at,
            kind: entry.kind,
            source: entry.source,
            request_id: entry.request_id,
            target: entry.target,
            request: entry.request,
            outcome: entry.outcome,
            status: entry.status,
            result: entry.result,
        }
    }
}

/// Lists the trail.
#[utoipa::path(get, path = "/audit", tag = "audit",
    params(
        ("since" = Option<i64>, Query, description = "Only entries at or after this host-clock time (ms since the Unix epoch)"),
        ("kind" = Option<String>, Query, description = "Only entries of this kind (`credit`, `debit`, `reversal`, `overdraft`, `reload`, `rollback`, `config-reload`, `retry`, `cancel`)"),
        ("limit" = Option<u32>, Query, description = "At most this many entries (1 to 1000, default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Entries, oldest first", body = AuditList),
        (status = 400, description = "A query parameter is not valid", body = AdminError),
        (status = 503, description = "Storage did not answer", body = AdminError),
    ))]
pub async fn list(storage: &dyn Storage, query: &str) -> Answer {
    let since = match query_param(query, "since") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(ms) if ms >= 0 => Some(ms),
            _ => return AdminError::bad_request("since must be a host-clock time in milliseconds (a whole number >= 0)").answer(),
        },
    };
    let kind = query_param(query, "kind");
    if let Some(k) = &kind {
        if !KINDS.contains(&k.as_str()) {
            return AdminError::bad_request(&format!("kind must be one of {}", KINDS.join(", "))).answer();
        }
    }
    let limit = match query_limit(query, 100, 1000) {
        Ok(limit) => limit,
        Err(e) => return e.answer(),
    };
    match storage.audit_list(&AuditQuery { since, kind: kind.clone(), limit }).await {
        Ok(entries) => {
            let entries: Vec<AuditEntryView> = entries.into_iter().map(AuditEntryView::from).collect();
            ok(&AuditList { since, kind, count: entries.len(), entries })
        }
        Err(e) => AdminError::backend(&e.to_string()).answer(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_actions_are_audited() {
        assert_eq!(classify(&Method::POST, &["accounts", "sub%2F1", "credit"]), Some(("credit", "sub/1".to_string())));
        assert_eq!(classify(&Method::PUT, &["accounts", "a", "overdraft"]), Some(("overdraft", "a".to_string())));
        assert_eq!(classify(&Method::POST, &["accounts", "a", "transactions", "tx_1", "reverse"]), Some(("reversal", "a/tx_1".to_string())));
        assert_eq!(classify(&Method::POST, &["config", "reload"]).map(|c| c.0), Some("config-reload"));
        assert_eq!(classify(&Method::POST, &["deliveries", "dl_1", "cancel"]), Some(("cancel", "deliveries/dl_1".to_string())));
        assert_eq!(classify(&Method::POST, &["timers", "7", "retry"]), Some(("retry", "timers/7".to_string())));
        for (method, path) in [
            (Method::GET, vec!["accounts", "a"]),
            (Method::GET, vec!["audit"]),
            (Method::GET, vec!["deliveries"]),
            (Method::POST, vec!["clock", "advance"]),
            (Method::GET, vec!["plugins"]),
            (Method::GET, vec!["accounts", "a", "credit"]),
        ] {
            assert_eq!(classify(&method, &path), None, "{method} {path:?}");
        }
        assert!(KINDS.iter().all(|k| !k.is_empty()));
    }

    #[test]
    fn asked_keeps_json_bodies_and_sizes_of_huge_ones() {
        let v = asked(&Method::POST, "/accounts/a/credit", "", br#"{"amount":"1.00"}"#);
        assert_eq!(v["body"]["amount"], "1.00");
        assert_eq!(asked(&Method::POST, "/x", "", b"not json")["body"]["text"], "not json");
        assert_eq!(asked(&Method::POST, "/x", "", &vec![b' '; MAX_KEPT_BODY + 1])["body"]["bytes"], MAX_KEPT_BODY + 1);
        assert_eq!(asked(&Method::POST, "/x", "", b"")["body"], Value::Null);
    }
}
