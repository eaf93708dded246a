//! Readiness: the host is ready when storage answers and every configured instance is
//! loaded; otherwise the answer names what is not. (`/healthz` is liveness only: the
//! process answers.)

use hyper::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::runtime::Runtime;

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not-ready`.
    pub status: &'static str,
    /// `ok`, or why storage did not answer.
    pub storage: String,
    /// Configured instances that are not loaded.
    pub missing: Vec<String>,
}

pub async fn readiness(runtime: &Runtime) -> (StatusCode, Readiness) {
    let storage = match runtime.services.storage.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let table = runtime.registry.table();
    let missing: Vec<String> =
        runtime.config.load().plugins.iter().filter(|p| !table.by_name.contains_key(&p.name)).map(|p| p.name.clone()).collect();
    let ready = storage == "ok" && missing.is_empty();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Readiness { status: if ready { "ready" } else { "not-ready" }, storage, missing })
}
